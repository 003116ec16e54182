"""The period's work by team and by service, and timescale compliance under the filters.

One pass over the workflows read (:func:`tally`) counts, per key, what the breakdown table
and the monthly trends show: audits completed and graded, how many good or better, follow-ups
due and on time (BX-AUD-09), escalations raised and resolved, deadlines breached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from qaflow.compliance import TimescaleCompliance, report_rows
from qaflow.procedure import Grade
from qaflow.records import SYSTEM
from qaflow.report._audits import grade_of
from qaflow.report._escalations import closed_at
from qaflow.report._ontime import follow_up_outcome
from qaflow.report._read import Period, Workflow
from qaflow.report._records import Breakdown
from qaflow.report._stats import in_period

__all__ = ["FIELDS", "breakdown", "compliance_rows", "tally"]

FIELDS: Final = (
    "audits_completed",
    "audits_graded",
    "good_or_better",
    "follow_ups_due",
    "follow_ups_on_time",
    "escalations_raised",
    "escalations_resolved",
    "breaches",
)
"""The counts :func:`tally` gives each key, in the order of :class:`WorkCounts`' fields."""

_GOOD: Final = frozenset({Grade.OUTSTANDING, Grade.GOOD})


def _counts(p: Period, kind: str, w: Workflow) -> dict[str, int]:
    out: dict[str, int] = {}
    if kind == "audit":
        if w.any_in("complete", p.start) is not None:
            out["audits_completed"] = 1
            outcome = follow_up_outcome(p, w)
            if outcome is not None and outcome[0] != "pending":
                out["follow_ups_due"] = 1
                out["follow_ups_on_time"] = int(outcome[0] == "on_time")
        if w.any_in("grade", p.start) is not None:
            out["audits_graded"] = 1
            out["good_or_better"] = int(grade_of(p, w)[0] in _GOOD)
    elif kind == "escalation":
        out["escalations_raised"] = int(in_period(w.events[0].at, p.start, p.end))
        closed = closed_at(p, w)
        resolved = w.snapshot.data.get("outcome") == "resolved"
        out["escalations_resolved"] = int(resolved and in_period(closed, p.start, p.end))
    out["breaches"] = sum(
        1
        for e in w.before_end
        if e.at >= p.start and e.actor == SYSTEM and "deadline_id" in e.payload
    )
    return out


def tally(p: Period, key: Callable[[str, Workflow], str]) -> dict[str, dict[str, int]]:
    """Per ``key(kind, workflow)``, the sum of each of :data:`FIELDS` over the period."""
    found: dict[str, dict[str, int]] = {}
    for kind, flows in p.flows.items():
        for w in flows:
            row = found.setdefault(key(kind, w), dict.fromkeys(FIELDS, 0))
            for name, value in _counts(p, kind, w).items():
                row[name] += value
    return found


def breakdown(p: Period, unit: str) -> tuple[Breakdown, ...]:
    """The period's work per team (``unit="team"``) or per service, by id ("" if unknown)."""

    def key(kind: str, w: Workflow) -> str:
        team = p.team_of(kind, w.snapshot)
        found = team if unit == "team" else p.service_of(team)
        return found or ""

    rows = tally(p, key)
    return tuple(
        Breakdown(*(rows[name][f] for f in FIELDS), unit=unit, id=name)
        for name in sorted(rows, key=lambda n: (n == "", n))
        if any(rows[name].values())
    )


def compliance_rows(p: Period) -> tuple[TimescaleCompliance, ...]:
    """Timescale compliance per team (:mod:`qaflow.compliance`) under the report's filters."""
    rows = report_rows(p.store, p.start, p.end, policy=p.filters.policy)
    team, service = p.filters.team, p.filters.service
    return tuple(
        r
        for r in rows
        if (team is None or r.team == team) and (service is None or p.service_of(r.team) == service)
    )
