"""What was due in the period and whether it was done on time: follow-ups (BX-AUD-09) and
24 hour tasks (BX-AUD-12, BX-MOD-06), with what is overdue at the end.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import attrs

from qaflow.machines import audit as audit_machine
from qaflow.records import SYSTEM, Task
from qaflow.report._audits import completed
from qaflow.report._read import Period, Workflow, overdue_item, task_done_times
from qaflow.report._records import OnTime, OverdueItem
from qaflow.report._stats import in_period, rate

__all__ = ["follow_up_outcome", "follow_ups", "urgent_tasks"]

_URGENT: Final = timedelta(hours=24)


def follow_up_outcome(p: Period, w: Workflow) -> tuple[str, datetime | None] | None:
    """BX-AUD-09 for one audit completed in the period: "on_time", "late", "overdue" (with
    its due time) or "pending"; ``None`` when its policy sets no follow-up."""
    name = audit_machine.FOLLOW_UP_DEADLINE
    policy = p.audit_policies.get(w.snapshot.policy)
    missed = next(
        (e for e in w.before_end if e.actor == SYSTEM and e.payload.get("deadline") == name),
        None,
    )
    done = w.first("follow_up")
    open_due = next((d.due_at for d in w.snapshot.deadlines if d.name == name), None)
    if policy is not None:
        if policy.follow_up is None:
            return None
    elif done is None and missed is None and open_due is None:
        return None
    if done is not None:
        return ("late" if missed is not None and missed.at <= done.at else "on_time"), None
    if missed is not None or (open_due is not None and open_due < p.end):
        return "overdue", open_due if open_due is not None else (missed.at if missed else None)
    return "pending", None


def follow_ups(p: Period) -> tuple[OnTime, list[OverdueItem]]:
    """BX-AUD-09 for audits completed in the period: followed up before any miss."""
    found = {"on_time": 0, "late": 0, "overdue": 0, "pending": 0}
    items: list[OverdueItem] = []
    clauses: set[str] = set()
    for w in completed(p):
        outcome = follow_up_outcome(p, w)
        if outcome is None:
            continue
        policy = p.audit_policies.get(w.snapshot.policy)
        if policy is not None and policy.follow_up is not None and policy.follow_up.clause:
            clauses.add(policy.follow_up.clause)
        found[outcome[0]] += 1
        if outcome[0] == "overdue":
            name = audit_machine.FOLLOW_UP_DEADLINE
            items.append(overdue_item(p, "follow_up", w.id, name, outcome[1]))
    on_time, late, overdue, pending = found.values()
    total = on_time + late + overdue + pending
    return OnTime(
        total,
        on_time,
        late,
        overdue,
        pending,
        rate(on_time, total - pending),
        clauses=tuple(sorted(clauses)),
    ), items


def urgent_tasks(p: Period) -> tuple[OnTime, list[OverdueItem]]:
    """Tasks due within 24 h of being opened (BX-AUD-12, BX-MOD-06), opened in the period."""
    created = getattr(p.store, "tasks_created", None)
    if callable(created):
        period: list[tuple[Task, datetime | None]] = created(p.start, p.end)
        done_at: dict[str, datetime] | None = {t.id: d for t, d in period if d is not None}
        open_ids = {t.id for t, d in period if d is None}
        tasks = [t for t, _ in period]
    else:
        done_at = task_done_times(p.store)
        open_ids = {t.id for t in p.store.tasks(open_only=True)}
        tasks = p.store.tasks()
    on_time = late = overdue = pending = unknown = 0
    items: list[OverdueItem] = []
    clauses: set[str] = set()
    wanted = p.workflow_ids() if p.filters.any else None
    for task in tasks:
        if not urgent(p, task) or (wanted is not None and task.workflow_id not in wanted):
            continue
        assert task.due_at is not None
        if task.clause:
            clauses.add(task.clause)
        when = done_at.get(task.id) if done_at is not None else None
        if done_at is None and task.id not in open_ids:
            unknown += 1
        elif when is not None and when < p.end:
            if when <= task.due_at:
                on_time += 1
            else:
                late += 1
        elif task.due_at < p.end:
            overdue += 1
            items.append(
                attrs.evolve(
                    overdue_item(p, "task", task.workflow_id, task.kind, task.due_at),
                    owner_role=task.owner_role,
                    owner_id=task.owner_id,
                )
            )
        else:
            pending += 1
    total = on_time + late + overdue + pending + unknown
    if done_at is None:
        p.notes.append(
            "This store does not record when tasks were done: 24 h tasks done are counted "
            "without judging whether they were on time."
        )
    return (
        OnTime(
            total,
            on_time,
            late,
            overdue,
            pending,
            rate(on_time, on_time + late + overdue) if done_at is not None else None,
            timing_known=done_at is not None,
            done_time_unknown=unknown,
            clauses=tuple(sorted(clauses)),
        ),
        items,
    )


def urgent(p: Period, task: Task) -> bool:
    return (
        task.due_at is not None
        and task.due_at - task.created_at <= _URGENT
        and in_period(task.created_at, p.start, p.end)
    )
