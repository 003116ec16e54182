"""The report's trend and breakdown sections: monthly figures over the trend's months, and
the period's work per team and per service, as tables a council reader can scan."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from qaflow.report._model import Block, Section, Table
from qaflow.report._records import Breakdown, MonthTrend, QAReport
from qaflow.report._stats import rate

__all__ = ["breakdown_sections"]

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


def _cells(row: MonthTrend | Breakdown) -> tuple[str, ...]:
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


def _table(caption: str, first: str, rows: Sequence[tuple[str, ...]]) -> Block:
    return Block("table", table=Table(caption, (first, *_HEAD), tuple(rows)))


def breakdown_sections(r: QAReport) -> tuple[Section, ...]:
    """The "Trends by month" and "By team and service" sections (empty ones are left out)."""
    out: list[Section] = []
    if r.trends:
        out.append(
            Section(
                "trends",
                "Trends by month",
                2,
                (
                    _table(
                        f"Each month from {_month(r.trends[0])} to {_month(r.trends[-1])}",
                        "Month",
                        [(_month(m), *_cells(m)) for m in r.trends],
                    ),
                ),
            )
        )
    blocks: list[Block] = []
    for unit, rows in (("Team", r.by_team), ("Service", r.by_service)):
        if rows:
            blocks.append(
                _table(
                    f"The period's work by {unit.lower()}",
                    unit,
                    [(b.id or f"No {unit.lower()} recorded", *_cells(b)) for b in rows],
                )
            )
    if blocks:
        out.append(Section("by-team", "By team and service", 2, tuple(blocks)))
    return tuple(out)
