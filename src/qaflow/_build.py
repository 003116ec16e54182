"""Fast private constructors for the records a live command builds on every call.

attrs' generated ``__init__`` of a frozen slotted class sets each field through a bound
``object.__setattr__`` (a generic attribute look-up per field) and runs each converter; a
command builds an event, a snapshot and a step, each of 7-12 fields. These functions build
the very same classes (:class:`~qaflow.records.Event`, :class:`~qaflow.records.WorkflowSnapshot`,
:class:`~qaflow.records.Step`, ...) and return records equal to, and as immutable as, the ones
attrs builds, about four times as fast. Each is one function per record class generated at
import from attrs' field list (:func:`_maker`, as attrs generates ``__init__``), so every field
is named once. It makes the record as an instance of the record's filler class (a subclass
that adds no slots and stores attributes with ``object``'s own ``__setattr__``: one attribute
store a field, which the interpreter does without a call) and then sets its ``__class__`` to
the record's class. Python allows that switch between a class and a subclass of the same memory
layout, and checks it in a few comparisons (a sibling class with the same slots would have its
slot list compared on every switch); the switch is tried once per class at import, and where it
is refused (a compiled build) the generated function writes each slot of the record through
its member descriptor instead. Either way the object is the record's class from the moment it
is returned. A record that is not frozen (the guards' and effects'
:class:`~qaflow.spec.Context`) is filled directly, one plain store a slot.

They skip only what the caller has already done: each takes its fields already in their
stored form (tuples where the record holds tuples), and runs no validator (the six records
have none). A field attrs converts to UTC is converted here too when it is not already UTC.
The interpreter calls them on values it built itself; tests check field for field that they
give what the attrs constructors give, made either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

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
from qaflow.spec import Context, MachineSpec

__all__ = [
    "chained_event",
    "event_digest",
    "new_context",
    "new_deadline",
    "new_event",
    "new_notification",
    "new_snapshot",
    "new_step",
    "new_task",
    "snapshot_of",
]

_new = object.__new__


def _maker(cls: type[Any], *, switch: bool = True) -> Callable[..., Any]:
    """One function that builds ``cls`` from its fields by position, generated from attrs'
    field list at import as attrs generates ``__init__`` (each field named once, here).

    With ``switch`` (and where Python allows it, see the module docstring) the function fills
    an instance of ``cls``'s filler subclass, one attribute store a field, then sets its class
    to ``cls``; otherwise it writes each slot of a ``cls`` through its member descriptor (a
    ``cls`` that is not frozen is filled directly, see :func:`_filled`). A field
    attrs converts (a time to UTC) is converted unless it is already UTC; trailing fields with
    a constant default take it, as attrs' ``__init__`` does. ``cls`` may have no validators.
    """
    fields = attrs.fields(cls)
    names = [a.name for a in fields]
    ns: dict[str, Any] = {"_UTC": UTC}
    params: list[str] = []
    constant: set[str] = set()
    for a in reversed(fields):  # trailing constant defaults become the parameters' defaults
        default = a.default
        if default is attrs.NOTHING or isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            break
        constant.add(a.name)
        ns[f"_d_{a.name}"] = default
    for a in fields:
        if a.validator is not None:
            raise TypeError(f"{cls.__name__}.{a.name} has a validator: no maker for it")
        params.append(f"{a.name}=_d_{a.name}" if a.name in constant else a.name)
    lines = []
    for a in fields:
        if a.converter is _aware_utc:
            lines.append(f"if {a.name}.tzinfo is not _UTC: {a.name} = _c_{a.name}({a.name})")
        elif a.converter is not None:
            lines.append(f"{a.name} = _c_{a.name}({a.name})")
        if a.converter is not None:
            ns[f"_c_{a.name}"] = a.converter
    lines.extend(_filled(cls, {n: n for n in names}, ns, switch))
    body = "".join(f"\n    {line}" for line in lines)
    exec(f"def make_{cls.__name__}({', '.join(params)}):{body}", ns)  # generated, as attrs does
    return ns[f"make_{cls.__name__}"]  # type: ignore[no-any-return]


def _filled(cls: type[Any], values: dict[str, str], ns: dict[str, Any], switch: bool) -> list[str]:
    """The lines that make a ``cls`` of ``values`` (each field's expression, in field order)
    and return it, with what they need put in ``ns``: a class that is not frozen takes a
    plain store a slot; a frozen one is filled as an instance of its filler subclass (no
    slots of its own, object's ``__setattr__``) whose class is then switched to ``cls``
    (``switch``, where Python allows it), or else through each slot's setter."""
    ns.update(_new=_new, _C=cls)
    setter: object = cls.__setattr__
    if setter is object.__setattr__:  # not frozen: its own slots take a plain store
        return ["o = _new(_C)", *(f"o.{n} = {v}" for n, v in values.items()), "return o"]
    # a subclass adding no slots, with object's own attribute stores: Python switches an
    # instance of it to ``cls`` after a few comparisons (no slot lists compared)
    plain = type(
        f"_{cls.__name__}Fields",
        (cls,),
        {"__slots__": (), "__setattr__": object.__setattr__, "__delattr__": object.__delattr__},
    )
    if switch and _switchable(plain, cls, list(values)):
        ns["_F"] = plain
        stores = [f"o.{n} = {v}" for n, v in values.items()]
        return ["o = _new(_F)", *stores, "o.__class__ = _C", "return o"]
    ns.update({f"_s_{n}": cls.__dict__[n].__set__ for n in values})
    return ["o = _new(_C)", *(f"_s_{n}(o, {v})" for n, v in values.items()), "return o"]


def _successor(
    cls: type[Any], params: tuple[str, ...], moving: dict[str, str]
) -> Callable[..., Any]:
    """One function ``(previous, *params)`` building the ``cls`` that follows ``previous``:
    each field named in ``moving`` takes its expression (of ``previous`` and ``params``),
    every other field is ``previous``'s, read in the same generated code (the interpreter
    reads a slot without a call; compiled code would ask for each field by name). Generated
    from attrs' field list like :func:`_maker`; ``cls`` may have no converters or
    validators."""
    fields = attrs.fields(cls)
    if any(a.converter is not None or a.validator is not None for a in fields):
        raise TypeError(f"{cls.__name__} converts or validates: no successor maker for it")
    if not set(moving) <= {a.name for a in fields}:
        raise TypeError(f"{cls.__name__} has no field {sorted(set(moving))!r}")
    ns: dict[str, Any] = {}
    values = {a.name: moving.get(a.name, f"previous.{a.name}") for a in fields}
    body = "".join(f"\n    {line}" for line in _filled(cls, values, ns, True))
    exec(f"def next_{cls.__name__}(previous, {', '.join(params)}):{body}", ns)  # generated
    return ns[f"next_{cls.__name__}"]  # type: ignore[no-any-return]


def _switchable(plain: type[Any], cls: type[Any], names: list[str]) -> bool:
    """Whether an instance of ``plain`` may become a ``cls`` (the same memory layout)."""
    probe = _new(plain)
    for n in names:
        setattr(probe, n, None)
    try:
        probe.__class__ = cls
    except TypeError:  # another layout (a __weakref__ slot, a compiled class)
        return False
    return True


new_event: Callable[
    [str, int, str, str, str, Actor, datetime, dict[str, Any], str, str, str | None], Event
] = _maker(Event)
"""``Event(workflow_id, seq, trigger, source, dest, actor, at, payload, prev_hash, hash,
idempotency_key)``, by position (``at`` converted to UTC as attrs would)."""

snapshot_of: Callable[
    [str, str, str, str, str, dict[str, Any], int, datetime | None, datetime | None, str,
     tuple[Deadline, ...], str],
    WorkflowSnapshot,
] = _maker(WorkflowSnapshot)  # fmt: skip
"""``WorkflowSnapshot(...)`` with every field given by position (it has no converters): the
engine's blank snapshot and the replay fold's per-event one (:mod:`qaflow._fold`)."""

new_step: Callable[..., Step] = _maker(Step)
"""``Step(event, snapshot, opened=(), closed=(), breached=(), notifications=(), tasks=())``."""

new_deadline: Callable[
    [str, str, str, str | None, datetime, datetime, str, str | None, str | None,
     tuple[str, ...], int],
    Deadline,
] = _maker(Deadline)  # fmt: skip
"""``Deadline(...)`` with every field by position (both times converted to UTC as attrs
would)."""

new_task: Callable[
    [str, str, int, str, str, str | None, datetime | None, str | None, datetime], Task
] = _maker(Task)
"""``Task(...)`` with every field by position (``created_at`` converted to UTC as attrs
would)."""

new_notification: Callable[
    [str, str, int, str, str | None, str, str | None, datetime], Notification
] = _maker(Notification)
"""``Notification(...)`` with every field by position (``created_at`` converted to UTC as
attrs would)."""


new_context: Callable[
    [MachineSpec, WorkflowSnapshot, str, str, str, Actor, datetime, Mapping[str, Any],
     dict[str, Any], int],
    Context,
] = _maker(Context)  # fmt: skip
"""``Context(spec, snapshot, trigger, source, dest, actor, at, payload, data, seq)`` by
position: the same object attrs' ``__init__`` makes (a context is not frozen: one plain store a
slot), without the call through the class."""

new_snapshot: Callable[
    [WorkflowSnapshot, str, dict[str, Any], int, datetime, str, tuple[Deadline, ...]],
    WorkflowSnapshot,
] = _successor(
    WorkflowSnapshot,
    ("state", "data", "version", "at", "last_hash", "deadlines"),
    {
        "state": "state", "data": "data", "version": "version",
        "created_at": "previous.created_at or at", "updated_at": "at",
        "last_hash": "last_hash", "deadlines": "deadlines",
    },
)  # fmt: skip
"""``new_snapshot(previous, state, data, version, at, last_hash, deadlines)``: the snapshot
after a command, ``previous``'s identity (workflow, machine, policy, fingerprint) with these
moving parts; ``created_at`` is ``previous``'s, or ``at`` for a workflow's first event."""


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
        at,  # converted to UTC by the maker, as by Event's converter
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
