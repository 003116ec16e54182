"""Records as the JSON the service returns: one function per shape, matching ``_schemas``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from qaflow.records import Deadline, Event, Notification, Step, WorkflowSnapshot
from qaflow.spec import MachineSpec

__all__ = ["deadline_view", "event_view", "notification_view", "step_view", "workflow_view"]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def deadline_view(deadline: Deadline, now: datetime) -> dict[str, Any]:
    return {
        "id": deadline.id,
        "name": deadline.name,
        "state": deadline.state,
        "opened_at": _iso(deadline.opened_at),
        "due_at": _iso(deadline.due_at),
        "rule": deadline.rule,
        "breach_trigger": deadline.breach_trigger,
        "clause": deadline.clause,
        "overdue": deadline.due_at <= now,
    }


def workflow_view(
    snapshot: WorkflowSnapshot, now: datetime, spec: MachineSpec | None = None
) -> dict[str, Any]:
    return {
        "workflow_id": snapshot.workflow_id,
        "machine": snapshot.machine,
        "policy": snapshot.policy,
        "policy_version": snapshot.policy_version,
        "state": snapshot.state,
        "terminal": bool(spec is not None and spec.state(snapshot.state).terminal),
        "version": snapshot.version,
        "created_at": _iso(snapshot.created_at),
        "updated_at": _iso(snapshot.updated_at),
        "data": snapshot.data,
        "deadlines": [deadline_view(d, now) for d in snapshot.deadlines],
    }


def event_view(event: Event) -> dict[str, Any]:
    return {
        "workflow_id": event.workflow_id,
        "seq": event.seq,
        "trigger": event.trigger,
        "source": event.source,
        "dest": event.dest,
        "actor": {"id": event.actor.id, "role": event.actor.role},
        "at": _iso(event.at),
        "payload": event.payload,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
        "idempotency_key": event.idempotency_key,
    }


def notification_view(note: Notification) -> dict[str, Any]:
    return {
        "id": note.id,
        "workflow_id": note.workflow_id,
        "seq": note.seq,
        "recipient_role": note.recipient_role,
        "recipient_id": note.recipient_id,
        "reason": note.reason,
        "clause": note.clause,
        "created_at": _iso(note.created_at),
    }


def step_view(step: Step, now: datetime, spec: MachineSpec | None = None) -> dict[str, Any]:
    return {
        "workflow": workflow_view(step.snapshot, now, spec),
        "event": event_view(step.event),
        "opened": [deadline_view(d, now) for d in step.opened],
        "notifications": [notification_view(n) for n in step.notifications],
    }
