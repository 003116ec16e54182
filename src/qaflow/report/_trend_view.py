"""The report's trend and breakdown sections: monthly figures over the trend's months, and
the period's work per team and per service, as tables a council reader can scan."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from qaflow.report._charts import Bar, column_chart
from qaflow.report._model import Block, Figure, Section, Table
from qaflow.report._records import MonthTrend, QAReport, WorkCounts
from qaflow.report._stats import rate

__all__ = ["TREND_CHART", "breakdown_sections"]

TREND_CHART = "chart-trends"
"""The id of the trend chart (present when the report has trends)."""

_HEAD = (
    "Audits completed",
    "Good or better (of graded)",
    "Follow-ups on time",
    "Escalations raised",
    "Escalations resolved",
    "Deadlines breached",
)


def _share(part: int, whole: int) -> str:
    found = rate(part, whole)
    return "n/a" if found is None else f"{found * 100:.0f}% ({part}/{whole})"


def _cells(row: WorkCounts) -> tuple[str, ...]:
    return (
        str(row.audits_completed),
        _share(row.good_or_better, row.audits_graded),
        _share(row.follow_ups_on_time, row.follow_ups_due),
        str(row.escalations_raised),
        str(row.escalations_resolved),
        str(row.breaches),
    )


def _month(row: MonthTrend) -> str:
    first = date.fromisoformat(f"{row.month}-01")
    return f"{first:%B %Y}"


def _short(row: MonthTrend, index: int) -> str:
    """ "Mar" on the chart's axis, with the year on the first bar and on each January."""
    first = date.fromisoformat(f"{row.month}-01")
    return f"{first:%b %y}" if index == 0 or first.month == 1 else f"{first:%b}"


def _table(caption: str, first: str, rows: Sequence[tuple[str, ...]]) -> Block:
    return Block("table", table=Table(caption, (first, *_HEAD), tuple(rows)))


def breakdown_sections(r: QAReport) -> tuple[Section, ...]:
    """The "Trends by month" and "By team and service" sections (empty ones are left out)."""
    out: list[Section] = []
    if r.trends:
        span = f"{_month(r.trends[0])} to {_month(r.trends[-1])}"
        svg = column_chart(
            TREND_CHART,
            f"Audits completed each month, {span}",
            [
                Bar(_short(m, k), m.audits_completed, str(m.audits_completed))
                for k, m in enumerate(r.trends)
            ],
            x_title="Month",
            y_title="Audits completed",
            width=700,
            height=240,
        )
        table = Table(
            f"Data of the chart, and more: each month from {span}",
            ("Month", *_HEAD),
            tuple((_month(m), *_cells(m)) for m in r.trends),
            TREND_CHART,
        )
        figure = Figure(TREND_CHART, svg, "Audits completed each month.", table)
        out.append(Section("trends", "Trends by month", 2, (Block("figure", figure=figure),)))
    blocks: list[Block] = []
    for unit, rows in (("Team", r.by_team), ("Service", r.by_service)):
        if rows:
            blocks.append(
                _table(
                    f"The period's work by {unit.lower()}",
                    unit,
                    [(b.id or f"In no {unit.lower()}", *_cells(b)) for b in rows],
                )
            )
    if blocks:
        out.append(Section("by-team", "By team and service", 2, tuple(blocks)))
    return tuple(out)
