r"""The records qaflow stores and returns, and their JSON form.

Every record is a frozen attrs class. :data:`converter` turns each one into JSON-ready
primitives and back unchanged; datetimes travel as UTC ISO 8601 strings and a naive
datetime is refused on the way in.

The hash encoding, version 1 (:data:`HASH_FORMAT`)
--------------------------------------------------
An event's ``hash`` is the lowercase hex SHA-256 of the UTF-8 bytes of one JSON array::

    [workflow_id, seq, trigger, source, dest, actor_id, actor_role, at, payload,
     prev_hash, idempotency_key]

written with sorted object keys, ``","`` and ``":"`` separators and no other white space,
non-ASCII characters as themselves (not ``\u`` escapes), NaN and infinities refused. ``at``
is ``datetime.isoformat()`` of the moment in UTC (``+00:00``; microseconds only when not
zero); ``idempotency_key`` is ``null`` when absent; ``prev_hash`` of the first event is
:data:`GENESIS_HASH`. Every id is non-empty printable text; the payload holds only JSON values
(:mod:`qaflow._checks` refuses anything else at the boundary, so what is stored re-encodes to
the same bytes).

The store-wide anchor (:class:`AnchorEntry`) chains every committed event in commit order:
``head`` of position *n* is the hex SHA-256 of the UTF-8 text
``"<head n-1>\n<workflow_id>\n<seq>\n<event hash>"``, with :data:`GENESIS_HASH` before the
first. A later format changes :data:`HASH_FORMAT` and is told apart by it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import attrs
import cattrs

from qaflow._timetext import utc_isoformat
from qaflow.calendar import ensure_aware
from qaflow.errors import ValidationError

__all__ = [
    "GENESIS_HASH",
    "HASH_FORMAT",
    "JSON",
    "SYSTEM",
    "Actor",
    "AnchorEntry",
    "Deadline",
    "Event",
    "Notification",
    "Step",
    "Task",
    "TickFailure",
    "WorkflowSnapshot",
    "anchor_head",
    "canonical_json",
    "converter",
    "event_hash",
    "from_json",
    "hash_fields",
    "to_json",
    "utc_isoformat",
]

GENESIS_HASH = "0" * 64
HASH_FORMAT = 1
"""The version of the canonical hash encoding described in this module's docstring."""

JSON = Any
"""A JSON value (what a payload or workflow data holds): kept as ``Any`` for the type checker."""


def _aware_utc(value: datetime) -> datetime:
    if getattr(value, "tzinfo", None) is UTC:
        return value
    return ensure_aware(value).astimezone(UTC)


def _text(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str):
        raise ValidationError(field=f"actor.{attribute.name}", value=value, expected="text")


@attrs.frozen
class Actor:
    """Who fires a command: an opaque person id and the role they act in."""

    id: str = attrs.field(validator=_text)
    role: str = attrs.field(validator=_text)


SYSTEM = Actor("qaflow", "system")
"""The actor of commands qaflow fires itself (deadline breaches from ``tick``)."""


@attrs.frozen(weakref_slot=False)  # no __weakref__: see qaflow._build
class Event:
    """One accepted command, the unit of the append-only log.

    ``hash`` is SHA-256 over the canonical JSON of every other field, chained through
    ``prev_hash`` to the workflow's previous event, so changing or deleting any event is
    detected.
    """

    workflow_id: str
    seq: int
    trigger: str
    source: str
    dest: str
    actor: Actor
    at: datetime = attrs.field(converter=_aware_utc)
    payload: dict[str, JSON] = attrs.field(factory=dict, hash=False)
    prev_hash: str = GENESIS_HASH
    hash: str = ""
    idempotency_key: str | None = None


@attrs.frozen(weakref_slot=False)  # no __weakref__: see qaflow._build
class Deadline:
    """A durable timer: opened by a state or transition, closed by leaving it or by ``tick``.

    ``state`` is the state it belongs to, or ``None`` for a deadline on the whole workflow.
    """

    id: str
    workflow_id: str
    name: str
    state: str | None
    opened_at: datetime = attrs.field(converter=_aware_utc)
    due_at: datetime = attrs.field(converter=_aware_utc)
    rule: str
    breach_trigger: str | None = None
    clause: str | None = None
    notify: tuple[str, ...] = ()
    opened_seq: int = 0


@attrs.frozen(weakref_slot=False)  # no __weakref__: see qaflow._build
class Notification:
    """An outbox row: who must be told what about which workflow, and under which clause."""

    id: str
    workflow_id: str
    seq: int
    recipient_role: str
    recipient_id: str | None
    reason: str
    clause: str | None
    created_at: datetime = attrs.field(converter=_aware_utc)


@attrs.frozen(weakref_slot=False)  # no __weakref__: see qaflow._build
class Task:
    """Work someone must do by a time (e.g. the 24 h tasks after an Inadequate grade)."""

    id: str
    workflow_id: str
    seq: int
    kind: str
    owner_role: str
    owner_id: str | None
    due_at: datetime | None
    clause: str | None
    created_at: datetime = attrs.field(converter=_aware_utc)


@attrs.frozen(weakref_slot=False)  # no __weakref__: see qaflow._build
class WorkflowSnapshot:
    """The current state of one workflow: a cache of replaying its events.

    ``version`` equals the number of events; ``deadlines`` are the open ones.
    """

    workflow_id: str
    machine: str
    policy: str
    policy_version: str
    state: str
    data: dict[str, JSON] = attrs.field(factory=dict, hash=False)
    version: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_hash: str = GENESIS_HASH
    deadlines: tuple[Deadline, ...] = ()
    fingerprint: str = ""
    """The :attr:`~qaflow.spec.MachineSpec.fingerprint` of the spec it runs under ("" unknown)."""


@attrs.frozen(weakref_slot=False)  # no __weakref__: see qaflow._build
class Step:
    """Everything one command changes, committed in one transaction."""

    event: Event
    snapshot: WorkflowSnapshot
    opened: tuple[Deadline, ...] = ()
    closed: tuple[str, ...] = ()
    breached: tuple[str, ...] = ()
    notifications: tuple[Notification, ...] = ()
    tasks: tuple[Task, ...] = ()


@attrs.frozen
class AnchorEntry:
    """One position of the store-wide anchor: an event, in commit order, and the running head."""

    position: int
    workflow_id: str
    seq: int
    hash: str
    head: str


def anchor_head(previous: str, workflow_id: str, seq: int, event_hash: str) -> str:
    """The anchor head after ``previous`` once this event is appended (format above)."""
    text = f"{previous}\n{workflow_id}\n{seq}\n{event_hash}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@attrs.frozen
class TickFailure:
    """A deadline ``tick`` could not fire: the workflow is skipped, the others go on."""

    workflow_id: str
    deadline_id: str
    error: str
    """The error's type and message (no payload contents)."""


def _structure_datetime(value: object, _: type) -> datetime:
    if isinstance(value, datetime):
        return _aware_utc(value)
    if not isinstance(value, str):
        raise ValidationError(field="datetime", value=value, expected="an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            field="datetime", value=value, expected="an ISO 8601 string"
        ) from None
    return _aware_utc(parsed)


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter()
    conv.register_unstructure_hook(datetime, lambda d: _aware_utc(d).isoformat())
    conv.register_structure_hook(datetime, _structure_datetime)
    return conv


converter = _make_converter()
"""The cattrs converter for every qaflow record (datetimes as UTC ISO 8601)."""


def to_json(record: object) -> str:
    """A record as JSON text."""
    return json.dumps(converter.unstructure(record), sort_keys=True)


def from_json(text: str, cls: type[Any]) -> Any:
    """A record of type ``cls`` from :func:`to_json` text."""
    return converter.structure(json.loads(text), cls)


def canonical_json(value: JSON) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept (the hashing form)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(event: Event) -> str:
    """SHA-256 of the canonical JSON of every field of ``event`` except ``hash``."""
    return hash_fields(
        event.workflow_id,
        event.seq,
        event.trigger,
        event.source,
        event.dest,
        event.actor,
        event.at,
        event.payload,
        event.prev_hash,
        event.idempotency_key,
    )


def hash_fields(
    workflow_id: str,
    seq: int,
    trigger: str,
    source: str,
    dest: str,
    actor: Actor,
    at: datetime,
    payload: dict[str, JSON],
    prev_hash: str,
    idempotency_key: str | None,
) -> str:
    """The hash an event with these fields carries (so it is built once, hash included).

    Raises ``TypeError``, ``ValueError`` or ``RecursionError`` if the payload is not
    JSON-compatible (not JSON values; NaN or infinity; circular).
    """
    body = [
        workflow_id,
        seq,
        trigger,
        source,
        dest,
        actor.id,
        actor.role,
        utc_isoformat(at) if at.tzinfo is UTC else at.isoformat(),
        payload,
        prev_hash,
        idempotency_key,
    ]
    # (CPython has the C accelerator; the pure-Python encoder is the fallback.)
    text = _HASH_ENCODER.encode(body) if _c_encode is None else "".join(_c_encode(body, 0))
    return hashlib.sha256(text.encode()).hexdigest()


_HASH_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
# The C accelerator ``json.JSONEncoder`` itself uses (None without it).
_c_make_encoder: Callable[..., Callable[[Any, int], Iterable[str]]] | None = getattr(
    json.encoder, "c_make_encoder", None
)
_encode_str = json.encoder.encode_basestring
# Exactly what ``_HASH_ENCODER.encode`` does for a list, built once rather than per event.
# Its ``markers`` is None: the encoder then keeps no state between calls (safe to share
# across threads) and skips the circular-reference bookkeeping; a circular payload (which
# the boundary's depth check refuses first) raises RecursionError instead of ValueError.
_c_encode = (
    None
    if _c_make_encoder is None
    else _c_make_encoder(
        None, _HASH_ENCODER.default, _encode_str, None, ":", ",", True, False, False
    )
)
