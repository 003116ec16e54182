"""The report's charts as static inline SVG, drawn here rather than by a library.

Why hand-drawn: four simple bar charts do not earn matplotlib (tens of MB, numpy at run time)
or pygal (its SVG expects a script for tooltips and its accessibility is its own); drawn here,
every chart has what a reader and a screen reader need -- a ``<title>`` and ``<desc>``, both
axes with a scale (ticks and tick labels) and axis titles -- and the output is byte-for-byte
stable for tests. Every chart also has a table alternative in the page (the templates).
Colours reach WCAG AA contrast against white.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Final, NamedTuple

BAR: Final = "#3f6fb5"
GRADE_COLOURS: Final = {
    "OUTSTANDING": "#2e7d32",
    "GOOD": "#1565c0",
    "REQUIRES_IMPROVEMENT": "#b45309",
    "INADEQUATE": "#c62828",
}
_INK: Final = "#1f2328"
_MUTED: Final = "#57606a"
_GRID: Final = "#d0d7de"
_FONT: Final = "font-family:system-ui,sans-serif;font-size:12px"


class Bar(NamedTuple):
    """One bar: its label, its value, the value as text and its colour."""

    label: str
    value: float
    text: str
    colour: str = BAR
    group: str = ""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def nice_ticks(peak: float, *, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``peak`` (1, 2, 2.5 or 5 times a power of ten)."""
    if peak <= 0:
        return [0.0, 1.0]
    raw = peak / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    top = math.ceil(peak / step - 1e-9) * step
    return [round(i * step, 10) for i in range(round(top / step) + 1)]


def _tick_text(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.0f}%"
    return f"{value:g}"


def _svg(chart_id: str, title: str, desc: str, width: int, height: int, body: list[str]) -> str:
    return (
        f'<svg id="{_e(chart_id)}" class="qa-chart" role="img" '
        f'aria-labelledby="{_e(chart_id)}-title {_e(chart_id)}-desc" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" style="{_FONT}">'
        f'<title id="{_e(chart_id)}-title">{_e(title)}</title>'
        f'<desc id="{_e(chart_id)}-desc">{_e(desc)}</desc>'
        f'<rect class="frame" x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" '
        f'fill="#ffffff" stroke="{_GRID}"/>'
        f'<text class="chart-title" x="12" y="20" fill="{_INK}" font-weight="600">'
        f"{_e(title)}</text>" + "".join(body) + "</svg>"
    )


def _no_data(width: int, height: int) -> str:
    return (
        f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" '
        f'fill="{_MUTED}">No data in this period</text>'
    )


def column_chart(
    chart_id: str,
    title: str,
    bars: Sequence[Bar],
    *,
    x_title: str,
    y_title: str,
    width: int = 640,
    height: int = 300,
) -> str:
    """Vertical bars over categories, with a y scale (gridlines, ticks) and both axis titles."""
    left, right, top, bottom = 64, 16, 40, 62
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((b.value for b in bars), default=0.0)
    ticks = nice_ticks(peak)
    scale = ticks[-1]
    body: list[str] = []
    for tick in ticks:
        y = top + plot_h - plot_h * tick / scale
        body.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{_GRID}"/>'
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'fill="{_INK}">{_tick_text(tick, False)}</text>'
        )
    body.append(
        f'<path class="axis" d="M{left} {top} V{top + plot_h} H{left + plot_w}" '
        f'stroke="{_MUTED}" fill="none"/>'
    )
    body.append(
        f'<text class="axis-title" x="{left + plot_w / 2:.0f}" y="{height - 10}" '
        f'text-anchor="middle" fill="{_INK}">{_e(x_title)}</text>'
        f'<text class="axis-title" x="16" y="{top + plot_h / 2:.0f}" text-anchor="middle" '
        f'fill="{_INK}" transform="rotate(-90 16 {top + plot_h / 2:.0f})">{_e(y_title)}</text>'
    )
    desc = "; ".join(f"{b.label}: {b.text}" for b in bars) or "No data in this period"
    if not bars or peak <= 0:
        body.append(_no_data(width, height))
        return _svg(chart_id, title, desc, width, height, body)
    slot = plot_w / len(bars)
    bar_w = max(4.0, slot * 0.6)
    for i, bar in enumerate(bars):
        h = plot_h * bar.value / scale
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h - h
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
            f'height="{max(h, 0.5):.1f}" fill="{bar.colour}"><title>{_e(bar.label)}: '
            f"{_e(bar.text)}</title></rect>"
            f'<text x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" '
            f'fill="{_INK}">{_e(bar.text)}</text>'
            f'<text class="category" x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" '
            f'text-anchor="middle" fill="{_INK}">{_e(bar.label)}</text>'
        )
    return _svg(chart_id, title, desc, width, height, body)


def bar_chart(
    chart_id: str,
    title: str,
    bars: Sequence[Bar],
    *,
    x_title: str,
    y_title: str,
    percent: bool = False,
    width: int = 640,
    label_width: int = 250,
) -> str:
    """Horizontal bars (long category labels read left of the axis) with an x scale.

    ``percent`` draws a 0-100% scale for values in 0..1; else the scale is counts.
    """
    left, right, top, row, bottom = label_width, 70, 40, 22, 54
    groups = sum(
        1 for i, b in enumerate(bars) if b.group and (i == 0 or bars[i - 1].group != b.group)
    )
    rows = max(1, len(bars) + groups)
    height = top + bottom + row * rows
    plot_w = width - left - right
    peak = max((b.value for b in bars), default=0.0)
    ticks = [i / 5 for i in range(6)] if percent else nice_ticks(peak)
    scale = ticks[-1]
    plot_bottom = top + row * rows
    body: list[str] = []
    for tick in ticks:
        x = left + plot_w * tick / scale
        body.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{plot_bottom}" '
            f'stroke="{_GRID}"/>'
            f'<text class="tick" x="{x:.1f}" y="{plot_bottom + 16}" text-anchor="middle" '
            f'fill="{_INK}">{_tick_text(tick, percent)}</text>'
        )
    body.append(
        f'<path class="axis" d="M{left} {top} V{plot_bottom} H{left + plot_w}" '
        f'stroke="{_MUTED}" fill="none"/>'
    )
    body.append(
        f'<text class="axis-title" x="{left + plot_w / 2:.0f}" y="{height - 10}" '
        f'text-anchor="middle" fill="{_INK}">{_e(x_title)}</text>'
        f'<text class="axis-title" x="12" y="{top - 6}" fill="{_INK}">{_e(y_title)}</text>'
    )
    desc = (
        "; ".join(f"{b.group + ': ' if b.group else ''}{b.label}: {b.text}" for b in bars)
        or "No data in this period"
    )
    if not bars or peak <= 0:
        body.append(_no_data(width, height))
        return _svg(chart_id, title, desc, width, height, body)
    y = top
    for i, bar in enumerate(bars):
        if bar.group and (i == 0 or bars[i - 1].group != bar.group):
            body.append(
                f'<text class="group" x="12" y="{y + row / 2 + 4:.1f}" fill="{_INK}" '
                f'font-weight="600">{_e(bar.group)}</text>'
            )
            y += row
        w = plot_w * max(0.0, min(bar.value, scale)) / scale
        limit = max(12, (left - 24) // 7)
        label = bar.label if len(bar.label) <= limit else bar.label[: limit - 1] + "\u2026"
        body.append(
            f'<rect class="bar" x="{left}" y="{y + 4}" width="{max(w, 0.5):.1f}" '
            f'height="{row - 8}" fill="{bar.colour}"><title>{_e(bar.label)}: {_e(bar.text)}'
            "</title></rect>"
            f'<text class="category" x="{left - 6}" y="{y + row / 2 + 4:.1f}" '
            f'text-anchor="end" fill="{_INK}">{_e(label)}</text>'
            f'<text x="{left + w + 6:.1f}" y="{y + row / 2 + 4:.1f}" fill="{_INK}">'
            f"{_e(bar.text)}</text>"
        )
        y += row
    return _svg(chart_id, title, desc, width, height, body)
