"""The legacy renderings of a :class:`QAReport` (Markdown and HTML), moved verbatim from the
former ``qaflow/report.py``; the template renderers replace them."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final

from qaflow.calendar import LONDON
from qaflow.report._build import QAReport

# --- shared text ------------------------------------------------------------------------------


def _day(moment: datetime) -> str:
    return moment.astimezone(LONDON).strftime("%d %b %Y").lstrip("0")


def _local(moment: datetime) -> str:
    return moment.astimezone(LONDON).isoformat()


def _period(report: QAReport) -> str:
    last = report.end - timedelta(microseconds=1)
    return f"{_day(report.start)} to {_day(last)}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}"


def _activity_rows(report: QAReport) -> list[tuple[str, str]]:
    a = report.activity
    return [
        ("Audits allocated", str(a.audits_allocated)),
        ("Audits graded", str(a.audits_graded)),
        ("Audits completed", str(a.audits_completed)),
        ("Audits followed up", str(a.audits_followed_up)),
        ("Audits cancelled", str(a.audits_cancelled)),
        ("Audits still open at the end", str(a.audits_open_at_end)),
        ("Moderations sampled", str(a.moderations_sampled)),
        ("Moderations finalised", str(a.moderations_finalised)),
        ("Moderations cancelled", str(a.moderations_cancelled)),
        ("Escalations raised", str(a.escalations_raised)),
        ("Escalations closed", str(a.escalations_closed)),
    ]


def _on_time_rows(report: QAReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for name, item in (
        ("Follow-ups within 5 WD (BX-AUD-09)", report.follow_ups),
        ("24 h tasks (BX-AUD-12, BX-MOD-06)", report.urgent_tasks),
    ):
        rows.append(
            (
                name,
                str(item.total),
                str(item.on_time) if item.timing_known else "n/a",
                str(item.late) if item.timing_known else "n/a",
                str(item.overdue),
                str(item.pending),
                _pct(item.rate),
            )
        )
    return rows


def _grade_rows(report: QAReport) -> list[tuple[str, ...]]:
    before = {g.grade: g.count for g in report.auditor_grades}
    return [(g.label, str(before.get(g.grade, 0)), str(g.count)) for g in report.grades]


def _practice_rows(report: QAReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for q in report.practice_areas:
        if q.kind == "scale_0_10":
            figure = f"mean {_num(q.mean)} / 10"
        else:
            figure = (
                f"{_pct(q.share_good)} at least good ({q.exceeds_good} exceeds, "
                f"{q.meets_good} meets, {q.does_not_meet_good} does not meet)"
            )
        rows.append((q.question_id, q.section or "", str(q.answered), figure))
    return rows


def _overdue_rows(report: QAReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for item in (*report.overdue_follow_ups, *report.overdue_tasks, *report.overdue_deadlines):
        due = item.due_at.astimezone(LONDON).strftime("%Y-%m-%d %H:%M") if item.due_at else ""
        owner = f"{item.owner_role} {item.owner_id}" if item.owner_id else (item.owner_role or "")
        days = "" if item.working_days_overdue is None else str(item.working_days_overdue)
        rows.append((item.kind, item.workflow_id, item.name, due, days, owner.strip()))
    return rows


# --- Markdown ---------------------------------------------------------------------------------


def _md_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, head)) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return [*lines, ""]


def to_markdown(report: QAReport) -> str:
    """The report as Markdown: headings, tables and notes (ids and counts only)."""
    r = report
    out = [
        f"# Quality assurance report: {_period(r)}",
        "",
        f"Period `{_local(r.start)}` to `{_local(r.end)}` (Europe/London, end excluded), "
        f"{r.working_days} working days; {r.workflows_read} workflows read"
        + (f"; policies: {', '.join(r.policies)}." if r.policies else "."),
        "",
        "## How much did we do?",
        "",
        *_md_table(("Measure", "Count"), _activity_rows(r)),
        "## How well did we do it?",
        "",
        "### Grades of the audits graded in the period",
        "",
        *_md_table(("Grade", "As graded by the auditor", "After moderation"), _grade_rows(r)),
        "### Practice areas (per question, averaged)",
        "",
        *(
            _md_table(("Question", "Section", "Answered", "Score"), _practice_rows(r))
            if r.practice_areas
            else ["No audit was graded in the period.", ""]
        ),
        "### Moderation",
        "",
        f"{r.moderation.finalised} moderations finalised: {r.moderation.agreed} agreed, "
        f"{r.moderation.disagreed} disagreed (agreement rate "
        f"{_pct(r.moderation.agreement_rate)}); the grade changed in "
        f"{r.moderation.grade_changed}.",
        "",
        "### On time",
        "",
        *_md_table(
            ("Work", "Total", "On time", "Late", "Overdue at end", "Not yet due", "Rate"),
            _on_time_rows(r),
        ),
        "### Family feedback (BX-AUD-07)",
        "",
        f"Feedback obtained for {r.feedback_obtained} completed audits; for "
        f"{r.feedback_not_obtained} the reason it could not be obtained was recorded.",
        "",
        *(
            _md_table(
                ("Statement", "Responses", "Mean (0-10)"),
                [(s.question_id, str(s.responses), _num(s.mean)) for s in r.family_feedback],
            )
            if r.family_feedback
            else []
        ),
        "## Is anyone better off?",
        "",
        *(
            _md_table(
                ("Self-assessment scale", "Practitioners", "Mean change", "Up", "Same", "Down"),
                [
                    (
                        d.question_id,
                        str(d.practitioners),
                        _signed(d.mean_change),
                        str(d.improved),
                        str(d.unchanged),
                        str(d.worse),
                    )
                    for d in r.distance_travelled
                ],
            )
            if r.distance_travelled
            else ["Distance travelled is not computable for this period (see the notes).", ""]
        ),
        "## Escalations",
        "",
    ]
    if r.escalations:
        out += _md_table(
            ("Ladder", "Raised", "Resolved", "Withdrawn", "Referred", "Open at end"),
            [
                (
                    s.ladder,
                    str(s.raised),
                    str(s.resolved),
                    str(s.withdrawn),
                    str(s.referred),
                    str(s.open),
                )
                for s in r.escalations
            ],
        )
        out += ["### By stage reached", ""]
        out += _md_table(
            ("Ladder", "Stage", "Reached (or beyond)", "Ended or standing there"),
            [
                (s.ladder, f"{st.level} {st.state}", str(st.reached), str(st.ended_here))
                for s in r.escalations
                for st in s.stages
            ],
        )
    else:
        out += ["No escalation was raised in the period.", ""]
    out += [
        "### Time to resolution (working days)",
        "",
        f"Resolved in the period: {r.resolution.count}; median {_num(r.resolution.median)}, "
        f"90th percentile {r.resolution.p90 if r.resolution.p90 is not None else 'n/a'}. "
        f"Closed with any outcome: {r.time_to_close.count}; median "
        f"{_num(r.time_to_close.median)}.",
        "",
        *_md_table(
            ("Working days", "Resolved"),
            [(f"{b.low}-{b.high}", str(b.count)) for b in r.resolution.histogram],
        ),
        "## Breaches",
        "",
        *(
            _md_table(
                ("Machine", "Deadline", "Breaches"),
                [(b.machine, b.deadline, str(b.count)) for b in r.breaches],
            )
            if r.breaches
            else ["No deadline was breached in the period.", ""]
        ),
        "## Overdue at the end of the period",
        "",
        *(
            _md_table(
                ("Kind", "Workflow", "What", "Due (London)", "WD overdue", "Owner"),
                _overdue_rows(r),
            )
            if _overdue_rows(r)
            else ["Nothing is overdue.", ""]
        ),
        "## Notifications written, by clause",
        "",
        *(
            _md_table(
                ("Clause", "Notifications"), [(c.clause, str(c.count)) for c in r.notifications]
            )
            if r.notifications
            else ["None.", ""]
        ),
    ]
    if r.notes:
        out += ["## Notes", "", *(f"- {n}" for n in r.notes), ""]
    return "\n".join(out).rstrip() + "\n"


# --- HTML and SVG -----------------------------------------------------------------------------

_GRADE_COLOURS: Final[Mapping[str, str]] = {
    "OUTSTANDING": "#2e7d32",
    "GOOD": "#1565c0",
    "REQUIRES_IMPROVEMENT": "#ef6c00",
    "INADEQUATE": "#c62828",
}
_BAR: Final = "#3f6fb5"
_FONT: Final = "font-family:system-ui,sans-serif;font-size:12px"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _svg(chart_id: str, title: str, width: int, height: int, body: list[str]) -> str:
    return (
        f'<svg id="{_e(chart_id)}" class="qa-chart" role="img" '
        f'aria-labelledby="{_e(chart_id)}-title" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="{_FONT}">'
        f'<title id="{_e(chart_id)}-title">{_e(title)}</title>'
        f'<rect class="frame" x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" '
        'fill="#ffffff" stroke="#d0d7de"/>' + "".join(body) + "</svg>"
    )


def _no_data(width: int, height: int) -> str:
    return (
        f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" '
        'fill="#57606a">No data in this period</text>'
    )


def _column_chart(
    chart_id: str,
    title: str,
    bars: Sequence[tuple[str, float, str, str]],
    *,
    width: int = 560,
    height: int = 260,
) -> str:
    """Vertical bars: (label, value, value text, colour)."""
    left, right, top, bottom = 40, 12, 24, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    body = [
        f'<path class="axis" d="M{left} {top} V{top + plot_h} H{left + plot_w}" '
        'stroke="#57606a" fill="none"/>'
    ]
    peak = max((v for _, v, _, _ in bars), default=0.0)
    if not bars or peak <= 0:
        body.append(_no_data(width, height))
        return _svg(chart_id, title, width, height, body)
    slot = plot_w / len(bars)
    bar_w = max(4.0, slot * 0.6)
    for i, (label, value, text, colour) in enumerate(bars):
        h = plot_h * value / peak
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h - h
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
            f'height="{max(h, 0.5):.1f}" fill="{colour}"><title>{_e(label)}: {_e(text)}'
            "</title></rect>"
        )
        body.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{_e(text)}</text>'
        )
        body.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" '
            f'text-anchor="middle">{_e(label)}</text>'
        )
    return _svg(chart_id, title, width, height, body)


def _bar_chart(
    chart_id: str,
    title: str,
    bars: Sequence[tuple[str, float, str]],
    *,
    scale: float,
    width: int = 560,
    centred: bool = False,
) -> str:
    """Horizontal bars (label, value on 0..scale, value text); ``centred`` draws a funnel."""
    left, right, top, row = 170, 60, 12, 22
    height = max(80, top * 2 + row * len(bars))
    plot_w = width - left - right
    body = [
        f'<path class="axis" d="M{left} {top - 4} V{height - top + 4}" stroke="#57606a" '
        'fill="none"/>'
    ]
    if not bars or scale <= 0:
        body.append(_no_data(width, height))
        return _svg(chart_id, title, width, height, body)
    for i, (label, value, text) in enumerate(bars):
        y = top + i * row
        w = plot_w * max(0.0, min(value, scale)) / scale
        x = left + (plot_w - w) / 2 if centred else left
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{y + 3}" width="{max(w, 0.5):.1f}" '
            f'height="{row - 6}" fill="{_BAR}"><title>{_e(label)}: {_e(text)}</title></rect>'
        )
        body.append(
            f'<text x="{left - 6}" y="{y + row / 2 + 4:.1f}" text-anchor="end">{_e(label)}</text>'
        )
        tx = (x + w + 6) if not centred else (left + plot_w + 6)
        body.append(f'<text x="{tx:.1f}" y="{y + row / 2 + 4:.1f}">{_e(text)}</text>')
    return _svg(chart_id, title, width, height, body)


def _charts(report: QAReport) -> dict[str, str]:
    grades = _column_chart(
        "chart-grades",
        "Grade distribution of audits graded in the period (after moderation)",
        [
            (g.label, float(g.count), str(g.count), _GRADE_COLOURS.get(g.grade, _BAR))
            for g in report.grades
        ]
        if any(g.count for g in report.grades)
        else [],
    )
    practice: list[tuple[str, float, str]] = []
    for q in report.practice_areas:
        if q.kind == "scale_0_10" and q.mean is not None:
            practice.append((q.question_id, q.mean / 10, f"{q.mean:.1f}/10"))
        elif q.share_good is not None:
            practice.append((q.question_id, q.share_good, f"{q.share_good * 100:.0f}% good"))
    practice_chart = _bar_chart(
        "chart-practice-areas",
        "Practice-area scores per question (0-10 mean, or share at least good)",
        practice,
        scale=1.0,
    )
    funnel: list[tuple[str, float, str]] = []
    peak = 0
    for summary in report.escalations:
        for stage in summary.stages:
            funnel.append(
                (f"{summary.ladder} {stage.state}", float(stage.reached), str(stage.reached))
            )
            peak = max(peak, stage.reached)
    funnel_chart = _bar_chart(
        "chart-escalation-funnel",
        "Escalations by stage reached (raised in the period)",
        funnel,
        scale=float(peak),
        centred=True,
    )
    histogram = _column_chart(
        "chart-resolution-histogram",
        "Time to resolution in working days (resolved in the period)",
        [
            (f"{b.low}-{b.high}", float(b.count), str(b.count), _BAR)
            for b in report.resolution.histogram
        ]
        if report.resolution.count
        else [],
    )
    return {
        "chart-grades": grades,
        "chart-practice-areas": practice_chart,
        "chart-escalation-funnel": funnel_chart,
        "chart-resolution-histogram": histogram,
    }


def _html_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    cells = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


_CSS: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:60rem;
color:#1f2328;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.3rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #d0d7de;
padding:.25rem .6rem;text-align:left}th{background:#f6f8fa}
figure{margin:1rem 0}figcaption{color:#57606a;font-size:.9rem}.note{color:#57606a}
svg.qa-chart{display:block;max-width:100%;height:auto}
"""


def to_html(report: QAReport) -> str:
    """The report as one self-contained HTML page with inline SVG charts (no script, no
    external resource): the charts' ids are :data:`CHART_IDS`."""
    r = report
    charts = _charts(r)

    def figure(chart_id: str, caption: str) -> str:
        return f"<figure>{charts[chart_id]}<figcaption>{_e(caption)}</figcaption></figure>"

    m = r.moderation
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>QA report {_e(_period(r))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Quality assurance report: {_e(_period(r))}</h1>",
        f'<p class="note">Period {_e(_local(r.start))} to {_e(_local(r.end))} '
        f"(Europe/London, end excluded), {r.working_days} working days; "
        f"{r.workflows_read} workflows read"
        + (f"; policies: {_e(', '.join(r.policies))}" if r.policies else "")
        + ".</p>",
        "<h2>How much did we do?</h2>",
        _html_table(("Measure", "Count"), _activity_rows(r)),
        "<h2>How well did we do it?</h2>",
        "<h3>Grades of the audits graded in the period</h3>",
        figure("chart-grades", "Grades after moderation."),
        _html_table(("Grade", "As graded by the auditor", "After moderation"), _grade_rows(r)),
        "<h3>Practice areas</h3>",
        figure("chart-practice-areas", "Per question, averaged over the audits graded."),
        _html_table(("Question", "Section", "Answered", "Score"), _practice_rows(r)),
        "<h3>Moderation</h3>",
        f"<p>{m.finalised} moderations finalised: {m.agreed} agreed, {m.disagreed} disagreed "
        f"(agreement rate {_e(_pct(m.agreement_rate))}); the grade changed in "
        f"{m.grade_changed}.</p>",
        "<h3>On time</h3>",
        _html_table(
            ("Work", "Total", "On time", "Late", "Overdue at end", "Not yet due", "Rate"),
            _on_time_rows(r),
        ),
        "<h3>Family feedback (BX-AUD-07)</h3>",
        f"<p>Feedback obtained for {r.feedback_obtained} completed audits; for "
        f"{r.feedback_not_obtained} the reason it could not be obtained was recorded.</p>",
        _html_table(
            ("Statement", "Responses", "Mean (0-10)"),
            [(s.question_id, str(s.responses), _num(s.mean)) for s in r.family_feedback],
        )
        if r.family_feedback
        else "",
        "<h2>Is anyone better off?</h2>",
        _html_table(
            ("Self-assessment scale", "Practitioners", "Mean change", "Up", "Same", "Down"),
            [
                (
                    d.question_id,
                    str(d.practitioners),
                    _signed(d.mean_change),
                    str(d.improved),
                    str(d.unchanged),
                    str(d.worse),
                )
                for d in r.distance_travelled
            ],
        )
        if r.distance_travelled
        else '<p class="note">Distance travelled is not computable for this period.</p>',
        "<h2>Escalations</h2>",
        figure("chart-escalation-funnel", "How far the escalations raised in the period went."),
        _html_table(
            ("Ladder", "Raised", "Resolved", "Withdrawn", "Referred", "Open at end"),
            [
                (
                    s.ladder,
                    str(s.raised),
                    str(s.resolved),
                    str(s.withdrawn),
                    str(s.referred),
                    str(s.open),
                )
                for s in r.escalations
            ],
        ),
        "<h3>Time to resolution</h3>",
        figure(
            "chart-resolution-histogram",
            f"Resolved: {r.resolution.count}; median {_num(r.resolution.median)} WD, 90th "
            f"percentile {r.resolution.p90 if r.resolution.p90 is not None else 'n/a'} WD.",
        ),
        "<h2>Breaches</h2>",
        _html_table(
            ("Machine", "Deadline", "Breaches"),
            [(b.machine, b.deadline, str(b.count)) for b in r.breaches],
        ),
        "<h2>Overdue at the end of the period</h2>",
        _html_table(
            ("Kind", "Workflow", "What", "Due (London)", "WD overdue", "Owner"), _overdue_rows(r)
        )
        if _overdue_rows(r)
        else "<p>Nothing is overdue.</p>",
        "<h2>Notifications written, by clause</h2>",
        _html_table(
            ("Clause", "Notifications"), [(c.clause, str(c.count)) for c in r.notifications]
        ),
    ]
    if r.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in r.notes) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p) + "\n"
