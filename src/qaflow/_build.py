"""Fast private constructors for the records a live command builds on every call.

attrs' generated ``__init__`` of a frozen slotted class sets each field through a bound
``object.__setattr__`` (a generic attribute look-up per field) and runs each converter; a
command builds an event, a snapshot and a step, each of 7-12 fields. These functions build
the very same classes (:class:`~qaflow.records.Event`, :class:`~qaflow.records.WorkflowSnapshot`,
:class:`~qaflow.records.Step`, ...) and return records equal to, and as immutable as, the ones
attrs builds, about four times as fast: each record is first made as an instance of a plain
class with exactly the record's slots (its ``__init__`` stores each field by position, which
the interpreter does without a call per field), whose ``__class__`` is then set to the record's
class. Python allows that switch only between classes of the same memory layout (the same
slots, no ``__dict__``, no ``__weakref__``: the hot records declare ``weakref_slot=False``);
the switch is tried once per class at import, and where it is refused (another layout, a
compiled build) the record is built as before, each slot written through its member
descriptor. Either way the object is the record's class from the moment it is returned.

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


def _fields_class(cls: type[Any]) -> type[Any] | None:
    """A plain class with ``cls``'s slots whose ``__init__`` takes the fields by position, in
    attrs' order; ``None`` if one of its instances cannot become a ``cls`` (see above)."""
    names = [a.name for a in attrs.fields(cls)]
    lines = "".join(f"\n    self.{n} = {n}" for n in names)
    namespace: dict[str, Any] = {}
    exec(f"def __init__(self, {', '.join(names)}):{lines}", namespace)  # generated, as attrs does
    fields = type(f"_{cls.__name__}Fields", (), {
        "__slots__": cls.__dict__.get("__slots__", ()), "__init__": namespace["__init__"],
    })  # fmt: skip
    try:
        probe = fields(*[None] * len(names))
        probe.__class__ = cls
    except TypeError:  # another layout (a __weakref__ slot, a compiled class): setters
        return None
    return fields


def _by_setters(cls: type[Any], setters: tuple[Any, ...], values: tuple[Any, ...]) -> Any:
    """``cls`` built by writing each slot through its member descriptor (the fallback)."""
    obj = _new(cls)
    for set_field, value in zip(setters, values, strict=True):
        set_field(obj, value)
    return obj


_EVENT = _setters(Event)
_SNAPSHOT = _setters(WorkflowSnapshot)
_STEP = _setters(Step)
_DEADLINE = _setters(Deadline)
_TASK = _setters(Task)
_NOTIFICATION = _setters(Notification)
_EVENT_FIELDS = _fields_class(Event)
_SNAPSHOT_FIELDS = _fields_class(WorkflowSnapshot)
_STEP_FIELDS = _fields_class(Step)
_DEADLINE_FIELDS = _fields_class(Deadline)
_TASK_FIELDS = _fields_class(Task)
_NOTIFICATION_FIELDS = _fields_class(Notification)


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
    if _EVENT_FIELDS is not None:
        e: Event = _EVENT_FIELDS(
            workflow_id,
            seq,
            trigger,
            source,
            dest,
            actor,
            at,
            payload,
            prev_hash,
            digest,
            idempotency_key,
        )
        e.__class__ = Event
        return e
    return _by_setters(  # type: ignore[no-any-return]
        Event,
        _EVENT,
        (
            workflow_id,
            seq,
            trigger,
            source,
            dest,
            actor,
            at,
            payload,
            prev_hash,
            digest,
            idempotency_key,
        ),
    )


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
    if _SNAPSHOT_FIELDS is not None:
        s: WorkflowSnapshot = _SNAPSHOT_FIELDS(
            previous.workflow_id,
            previous.machine,
            previous.policy,
            previous.policy_version,
            state,
            data,
            version,
            previous.created_at or at,
            at,
            last_hash,
            deadlines,
            previous.fingerprint,
        )
        s.__class__ = WorkflowSnapshot
        return s
    return _by_setters(  # type: ignore[no-any-return]
        WorkflowSnapshot,
        _SNAPSHOT,
        (
            previous.workflow_id,
            previous.machine,
            previous.policy,
            previous.policy_version,
            state,
            data,
            version,
            previous.created_at or at,
            at,
            last_hash,
            deadlines,
            previous.fingerprint,
        ),
    )


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
    if _SNAPSHOT_FIELDS is not None:
        s: WorkflowSnapshot = _SNAPSHOT_FIELDS(
            workflow_id,
            machine,
            policy,
            policy_version,
            state,
            data,
            version,
            created_at,
            updated_at,
            last_hash,
            deadlines,
            fingerprint,
        )
        s.__class__ = WorkflowSnapshot
        return s
    return _by_setters(  # type: ignore[no-any-return]
        WorkflowSnapshot,
        _SNAPSHOT,
        (
            workflow_id,
            machine,
            policy,
            policy_version,
            state,
            data,
            version,
            created_at,
            updated_at,
            last_hash,
            deadlines,
            fingerprint,
        ),
    )


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
    if _STEP_FIELDS is not None:
        st: Step = _STEP_FIELDS(
            event,
            snapshot,
            opened,
            closed,
            breached,
            notifications,
            tasks,
        )
        st.__class__ = Step
        return st
    return _by_setters(  # type: ignore[no-any-return]
        Step, _STEP, (event, snapshot, opened, closed, breached, notifications, tasks)
    )


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
    if _DEADLINE_FIELDS is not None:
        d: Deadline = _DEADLINE_FIELDS(
            id,
            workflow_id,
            name,
            state,
            _utc(opened_at),
            _utc(due_at),
            rule,
            breach_trigger,
            clause,
            notify,
            opened_seq,
        )
        d.__class__ = Deadline
        return d
    return _by_setters(  # type: ignore[no-any-return]
        Deadline,
        _DEADLINE,
        (
            id,
            workflow_id,
            name,
            state,
            _utc(opened_at),
            _utc(due_at),
            rule,
            breach_trigger,
            clause,
            notify,
            opened_seq,
        ),
    )


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
    if _TASK_FIELDS is not None:
        t: Task = _TASK_FIELDS(
            id,
            workflow_id,
            seq,
            kind,
            owner_role,
            owner_id,
            due_at,
            clause,
            _utc(created_at),
        )
        t.__class__ = Task
        return t
    return _by_setters(  # type: ignore[no-any-return]
        Task,
        _TASK,
        (id, workflow_id, seq, kind, owner_role, owner_id, due_at, clause, _utc(created_at)),
    )


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
    if _NOTIFICATION_FIELDS is not None:
        n: Notification = _NOTIFICATION_FIELDS(
            id,
            workflow_id,
            seq,
            recipient_role,
            recipient_id,
            reason,
            clause,
            _utc(created_at),
        )
        n.__class__ = Notification
        return n
    return _by_setters(  # type: ignore[no-any-return]
        Notification,
        _NOTIFICATION,
        (id, workflow_id, seq, recipient_role, recipient_id, reason, clause, _utc(created_at)),
    )


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
