"""A workflow's deadline instances: the record, and how the replay or a snapshot lists them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import attrs

from qaflow._rolling import event_bindings, instance_rule
from qaflow.engine import Engine
from qaflow.errors import PolicyError
from qaflow.records import WorkflowSnapshot
from qaflow.spec import DEADLINE_MISSED

__all__ = ["Instance", "Outcome", "counted", "still_open", "workflow_instances"]

Outcome = Literal["met", "missed", "open", "superseded"]


@attrs.frozen
class Instance:
    """One deadline instance and what became of it.

    ``outcome``: ``met`` (closed by a qualifying event by its due time; for a deadline that is
    not rolling, closed by any command by its due time), ``missed`` (breached by ``tick``, or
    met only after its due time), ``superseded`` (closed without being met: a restart, a
    change of cadence, the workflow ending) or ``open``. ``resolved_at`` is when the duty was
    done or dropped: for a missed instance, the first later event that meets its timescale.
    """

    workflow_id: str
    machine: str
    policy: str
    team: str | None
    name: str
    clause: str | None
    opened_at: datetime
    due_at: datetime
    closed_at: datetime | None
    outcome: Outcome
    resolved_at: datetime | None


def counted(
    engine: Engine,
    snap: WorkflowSnapshot,
    machines: set[str] | None,
    known_only: bool,
    start: datetime | None,
    end: datetime | None,
) -> bool | None:
    """How a period's compliance treats ``snap``: ``None`` not at all (another machine, an
    unknown policy when only known ones count, created after ``end``), ``True`` quiet since
    ``start`` (only its open deadlines count), ``False`` read its instances."""
    if machines is not None and snap.machine not in machines:
        return None
    if known_only:
        try:
            engine.spec_for(snap)
        except PolicyError:
            return None
    if end is not None and snap.created_at is not None and snap.created_at > end:
        return None
    return start is not None and snap.updated_at is not None and snap.updated_at < start


def still_open(snap: WorkflowSnapshot) -> list[Instance]:
    """The open instances of a workflow quiet since before the period: its snapshot's."""
    team = snap.data.get("team_id")
    return [
        Instance(
            snap.workflow_id,
            snap.machine,
            snap.policy,
            team if isinstance(team, str) else None,
            d.name,
            d.clause,
            d.opened_at,
            d.due_at,
            None,
            "open",
            None,
        )
        for d in snap.deadlines
    ]


def workflow_instances(engine: Engine, wid: str, limit: datetime | None) -> list[Instance]:
    steps = engine.replay_steps(wid)
    if limit is not None:
        steps = [s for s in steps if s.event.at <= limit]
    if not steps:
        return []
    spec = engine.spec_for(steps[-1].snapshot)
    team = steps[-1].snapshot.data.get("team_id")
    team = team if isinstance(team, str) else None
    rows: dict[str, dict[str, object]] = {}
    missed_open: dict[str, list[str]] = {}
    before: dict[str, object] = {}
    for step in steps:
        event = step.event
        names = None
        for did in step.breached:
            rows[did]["outcome"], rows[did]["closed_at"] = "missed", event.at
            missed_open.setdefault(str(rows[did]["name"]), []).append(did)
        for did in step.closed:
            row = rows.get(did)
            if row is None:  # pragma: no cover - every closed id was opened earlier
                continue
            rule = instance_rule(spec.rolling, str(row["name"]))
            if rule is None:
                met = event.trigger != DEADLINE_MISSED
            else:
                names = names or event_bindings(event, before)
                met = rule.is_met_by(event.trigger, names)
            due = row["due_at"]
            assert isinstance(due, datetime)
            row["closed_at"] = event.at
            row["resolved_at"] = event.at
            row["outcome"] = ("met" if event.at <= due else "missed") if met else "superseded"
        for rule in spec.rolling:  # a missed duty is resolved by the next event that meets it
            waiting = missed_open.get(rule.name)
            if waiting and event.trigger in rule.met_by:
                names = names or event_bindings(event, before)
                if rule.is_met_by(event.trigger, names):
                    for did in waiting:
                        rows[did]["resolved_at"] = event.at
                    waiting.clear()
        for d in step.opened:
            rows[d.id] = {
                "name": d.name,
                "clause": d.clause,
                "opened_at": d.opened_at,
                "due_at": d.due_at,
                "closed_at": None,
                "outcome": "open",
                "resolved_at": None,
            }
        if spec.state(step.snapshot.state).terminal:
            for did in (d for ids in missed_open.values() for d in ids):
                rows[did]["resolved_at"] = rows[did]["resolved_at"] or event.at
            missed_open.clear()
        before = step.snapshot.data
    snap = steps[-1].snapshot
    return [
        Instance(wid, snap.machine, snap.policy, team, **row)  # type: ignore[arg-type]
        for row in rows.values()
    ]
