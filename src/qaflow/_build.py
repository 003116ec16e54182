"""Fast private constructors for the records a live command builds on every call.

attrs' generated ``__init__`` of a frozen slotted class sets each field through a bound
``object.__setattr__`` (a generic attribute look-up per field) and runs each converter; a
command builds an event, a snapshot and a step, each of 7-12 fields. These functions build
the very same classes (:class:`~qaflow.records.Event`, :class:`~qaflow.records.WorkflowSnapshot`,
:class:`~qaflow.records.Step`) by writing each slot through its own member descriptor, about
twice as fast, and return records equal to, and as immutable as, the ones attrs builds.

They skip only what the caller has already done: each takes its fields already in their
stored form (tuples where the record holds tuples; ``new_event``'s ``at`` already in UTC).
A field attrs converts to UTC is converted here too when it is not already UTC. The
interpreter calls them on values it built itself; tests check field for field that they give
what the attrs constructors give.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs

from qaflow.calendar import ensure_aware
from qaflow.errors import ValidationError
from qaflow.records import (
    Actor,
    Deadline,
    Event,
    Notification,
    Step,
    Task,
    WorkflowSnapshot,
    _aware_utc,
    hash_fields,
)

__all__ = [
    "chained_event",
    "event_digest",
    "new_deadline",
    "new_event",
    "new_notification",
    "new_snapshot",
    "new_step",
    "new_task",
    "snapshot_of",
]

_new = object.__new__


def _setters(cls: type[Any]) -> tuple[Any, ...]:
    """Each field's slot setter, in the order attrs declares the fields."""
    return tuple(cls.__dict__[a.name].__set__ for a in attrs.fields(cls))


_EVENT = _setters(Event)
_SNAPSHOT = _setters(WorkflowSnapshot)
_STEP = _setters(Step)
_DEADLINE = _setters(Deadline)
_TASK = _setters(Task)
_NOTIFICATION = _setters(Notification)


def new_event(
    workflow_id: str,
    seq: int,
    trigger: str,
    source: str,
    dest: str,
    actor: Actor,
    at: datetime,
    payload: dict[str, Any],
    prev_hash: str,
    digest: str,
    idempotency_key: str | None,
) -> Event:
    """``Event(...)`` with these fields; ``at`` must already be in UTC (its converter's form)."""
    e = _new(Event)
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10 = _EVENT
    s0(e, workflow_id)
    s1(e, seq)
    s2(e, trigger)
    s3(e, source)
    s4(e, dest)
    s5(e, actor)
    s6(e, at)
    s7(e, payload)
    s8(e, prev_hash)
    s9(e, digest)
    s10(e, idempotency_key)
    return e


def new_snapshot(
    previous: WorkflowSnapshot,
    state: str,
    data: dict[str, Any],
    version: int,
    at: datetime,
    last_hash: str,
    deadlines: tuple[Deadline, ...],
) -> WorkflowSnapshot:
    """The snapshot after a command: ``previous``'s identity, these moving parts.

    ``created_at`` is ``previous``'s, or ``at`` for a workflow's first event.
    """
    s = _new(WorkflowSnapshot)
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11 = _SNAPSHOT
    s0(s, previous.workflow_id)
    s1(s, previous.machine)
    s2(s, previous.policy)
    s3(s, previous.policy_version)
    s4(s, state)
    s5(s, data)
    s6(s, version)
    s7(s, previous.created_at or at)
    s8(s, at)
    s9(s, last_hash)
    s10(s, deadlines)
    s11(s, previous.fingerprint)
    return s


def snapshot_of(
    workflow_id: str,
    machine: str,
    policy: str,
    policy_version: str,
    state: str,
    data: dict[str, Any],
    version: int,
    created_at: datetime | None,
    updated_at: datetime | None,
    last_hash: str,
    deadlines: tuple[Deadline, ...],
    fingerprint: str,
) -> WorkflowSnapshot:
    """``WorkflowSnapshot(...)`` with these fields, every one given (it has no converters):
    the replay fold's per-event snapshot (:mod:`qaflow._fold`)."""
    s = _new(WorkflowSnapshot)
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11 = _SNAPSHOT
    s0(s, workflow_id)
    s1(s, machine)
    s2(s, policy)
    s3(s, policy_version)
    s4(s, state)
    s5(s, data)
    s6(s, version)
    s7(s, created_at)
    s8(s, updated_at)
    s9(s, last_hash)
    s10(s, deadlines)
    s11(s, fingerprint)
    return s


def new_step(
    event: Event,
    snapshot: WorkflowSnapshot,
    opened: tuple[Deadline, ...] = (),
    closed: tuple[str, ...] = (),
    breached: tuple[str, ...] = (),
    notifications: tuple[Notification, ...] = (),
    tasks: tuple[Task, ...] = (),
) -> Step:
    """``Step(...)`` with these fields."""
    st = _new(Step)
    s0, s1, s2, s3, s4, s5, s6 = _STEP
    s0(st, event)
    s1(st, snapshot)
    s2(st, opened)
    s3(st, closed)
    s4(st, breached)
    s5(st, notifications)
    s6(st, tasks)
    return st


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is UTC else _aware_utc(moment)


def new_deadline(
    id: str,
    workflow_id: str,
    name: str,
    state: str | None,
    opened_at: datetime,
    due_at: datetime,
    rule: str,
    breach_trigger: str | None,
    clause: str | None,
    notify: tuple[str, ...],
    opened_seq: int,
) -> Deadline:
    """``Deadline(...)`` with these fields (both times converted to UTC as attrs would)."""
    d = _new(Deadline)
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10 = _DEADLINE
    s0(d, id)
    s1(d, workflow_id)
    s2(d, name)
    s3(d, state)
    s4(d, _utc(opened_at))
    s5(d, _utc(due_at))
    s6(d, rule)
    s7(d, breach_trigger)
    s8(d, clause)
    s9(d, notify)
    s10(d, opened_seq)
    return d


def new_task(
    id: str,
    workflow_id: str,
    seq: int,
    kind: str,
    owner_role: str,
    owner_id: str | None,
    due_at: datetime | None,
    clause: str | None,
    created_at: datetime,
) -> Task:
    """``Task(...)`` with these fields (``created_at`` converted to UTC as attrs would)."""
    t = _new(Task)
    s0, s1, s2, s3, s4, s5, s6, s7, s8 = _TASK
    s0(t, id)
    s1(t, workflow_id)
    s2(t, seq)
    s3(t, kind)
    s4(t, owner_role)
    s5(t, owner_id)
    s6(t, due_at)
    s7(t, clause)
    s8(t, _utc(created_at))
    return t


def new_notification(
    id: str,
    workflow_id: str,
    seq: int,
    recipient_role: str,
    recipient_id: str | None,
    reason: str,
    clause: str | None,
    created_at: datetime,
) -> Notification:
    """``Notification(...)`` with these fields (``created_at`` converted to UTC as attrs would)."""
    n = _new(Notification)
    s0, s1, s2, s3, s4, s5, s6, s7 = _NOTIFICATION
    s0(n, id)
    s1(n, workflow_id)
    s2(n, seq)
    s3(n, recipient_role)
    s4(n, recipient_id)
    s5(n, reason)
    s6(n, clause)
    s7(n, _utc(created_at))
    return n


# --- a command's event -----------------------------------------------------------------


def chained_event(
    snapshot: WorkflowSnapshot,
    seq: int,
    trigger: str,
    source: str,
    dest: str,
    actor: Actor,
    at: datetime,
    payload: dict[str, Any],
    idempotency_key: str | None,
    digest: str | None = None,
    *,
    lean: bool = False,
) -> Event:
    """A command's event, its hash chained to the workflow's last one (``digest`` if known).

    ``lean``: no hash chain (``prev_hash`` and ``hash`` empty), for a
    :class:`~qaflow.store.SimulationStore`, which keeps no event log.
    """
    prev = snapshot.last_hash
    if lean:
        prev = digest = ""
    elif digest is None:
        digest = event_digest(
            snapshot, seq, trigger, source, dest, actor, at, payload, idempotency_key
        )
    return new_event(
        snapshot.workflow_id,
        seq,
        trigger,
        source,
        dest,
        actor,
        at if at.tzinfo is UTC else ensure_aware(at).astimezone(UTC),  # Event's converter
        payload,
        prev,
        digest,
        idempotency_key,
    )


def event_digest(
    snapshot: WorkflowSnapshot,
    seq: int,
    trigger: str,
    source: str,
    dest: str,
    actor: Actor,
    at: datetime,
    payload: dict[str, Any],
    idempotency_key: str | None,
) -> str:
    try:
        return hash_fields(
            snapshot.workflow_id, seq, trigger, source, dest, actor, at, payload,
            snapshot.last_hash, idempotency_key,
        )  # fmt: skip
    except (TypeError, ValueError, RecursionError):
        raise ValidationError(
            field="payload", value=payload, expected="JSON-compatible values"
        ) from None
