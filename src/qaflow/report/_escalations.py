"""Escalation figures of a period: by ladder and stage reached, time to resolution, and the
deadlines breached, notifications written and deadlines overdue across every machine.
"""

from __future__ import annotations

from datetime import datetime

from qaflow.machines.escalation import state_of
from qaflow.records import SYSTEM
from qaflow.report._read import Period, Workflow, overdue_item
from qaflow.report._records import (
    BreachCount,
    ClauseCount,
    Distribution,
    LadderSummary,
    OverdueItem,
    StageCount,
)
from qaflow.report._stats import distribution, in_period

__all__ = ["breaches", "closed_at", "escalations", "notifications", "overdue_deadlines"]


def closed_at(p: Period, w: Workflow) -> datetime | None:
    raw = w.snapshot.data.get("closed_at")
    if not isinstance(raw, str):
        return None
    closed = datetime.fromisoformat(raw)
    return closed if closed < p.end else None


def escalations(p: Period) -> tuple[tuple[LadderSummary, ...], Distribution, Distribution]:
    raised = [w for w in p.flows["escalation"] if in_period(w.events[0].at, p.start, p.end)]
    by_ladder: dict[str, list[Workflow]] = {}
    for w in raised:
        by_ladder.setdefault(str(w.snapshot.data.get("ladder", w.snapshot.machine)), []).append(w)
    summaries: list[LadderSummary] = []
    for name in sorted(by_ladder):
        flows = by_ladder[name]
        outcomes: dict[str, int] = {"resolved": 0, "withdrawn": 0, "referred": 0, "open": 0}
        reached: dict[int, int] = {}
        ended: dict[int, int] = {}
        states: dict[int, str] = {}
        ladder = p.ladders.get(name)
        if ladder is not None:
            for level in ladder.levels:
                states[level] = state_of(ladder, level)
            if ladder.referral_level is not None:
                states[ladder.referral_level] = state_of(ladder, ladder.referral_level)
        for w in flows:
            closed = closed_at(p, w)
            outcome = w.snapshot.data.get("outcome") if closed is not None else None
            outcomes[str(outcome) if outcome in outcomes else "open"] += 1
            visits = [
                v
                for v in w.snapshot.data.get("history", [])
                if isinstance(v, dict)
                and isinstance(v.get("level"), int)
                and datetime.fromisoformat(str(v["entered_at"])) < p.end
            ]
            if not visits:
                continue
            top = max(int(v["level"]) for v in visits)
            last = int(visits[-1]["level"])
            for v in visits:
                states.setdefault(int(v["level"]), str(v["state"]))
            for level in states:
                if level <= top:
                    reached[level] = reached.get(level, 0) + 1
            ended[last] = ended.get(last, 0) + 1
        stages = tuple(
            StageCount(level, states[level], reached.get(level, 0), ended.get(level, 0))
            for level in sorted(states)
        )
        summaries.append(
            LadderSummary(
                ladder=name,
                machine=flows[0].snapshot.machine,
                raised=len(flows),
                resolved=outcomes["resolved"],
                withdrawn=outcomes["withdrawn"],
                referred=outcomes["referred"],
                open=outcomes["open"],
                stages=stages,
            )
        )
    resolution: list[int] = []
    closing: list[int] = []
    for w in p.flows["escalation"]:
        closed = closed_at(p, w)
        if closed is None or closed < p.start:
            continue
        data = w.snapshot.data
        days = data.get("working_days_open")
        if not isinstance(days, int):
            raised_at = datetime.fromisoformat(str(data["raised_at"]))
            days = p.calendar.working_days_between(raised_at, closed)
        closing.append(days)
        if data.get("outcome") == "resolved":
            resolution.append(days)
    return tuple(summaries), distribution(resolution), distribution(closing)


# --- breaches, notifications, deadlines -------------------------------------------------


def breaches(p: Period) -> tuple[BreachCount, ...]:
    found: dict[tuple[str, str], int] = {}
    for flows in p.flows.values():
        for w in flows:
            for e in w.before_end:
                if e.at >= p.start and e.actor == SYSTEM and "deadline_id" in e.payload:
                    key = (w.snapshot.machine, str(e.payload.get("deadline", "?")))
                    found[key] = found.get(key, 0) + 1
    return tuple(BreachCount(m, d, n) for (m, d), n in sorted(found.items()))


def notifications(p: Period) -> tuple[ClauseCount, ...]:
    reader = getattr(p.store, "notifications", None)
    if not callable(reader):
        p.notes.append("This store cannot list its notifications; none are counted.")
        return ()
    found: dict[str, int] = {}
    created = getattr(p.store, "notifications_created", None)
    notes = created(p.start, p.end) if callable(created) else reader()
    wanted = p.workflow_ids() if p.filters.any else None
    for note in notes:
        if wanted is not None and note.workflow_id not in wanted:
            continue
        if in_period(note.created_at, p.start, p.end):
            clause = note.clause or "(none)"
            found[clause] = found.get(clause, 0) + 1
    return tuple(ClauseCount(c, n) for c, n in sorted(found.items()))


def overdue_deadlines(p: Period) -> tuple[OverdueItem, ...]:
    """Deadlines still open and due by the end (``tick`` has not fired them yet)."""
    due = [d for d in p.store.due_deadlines(p.end) if d.due_at < p.end]
    wanted = p.kept(d.workflow_id for d in due) if p.filters.any else None
    return tuple(
        overdue_item(p, "deadline", d.workflow_id, d.name, d.due_at)
        for d in due
        if wanted is None or d.workflow_id in wanted
    )
