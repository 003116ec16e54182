"""Validation at the boundary: every value that goes into an event's hash is checked here.

The canonical hash encoding (:func:`qaflow.records.hash_fields`) is defined only for text
ids and JSON values, so a command is refused before it is computed unless each field fits:

- ids (workflow id, trigger, actor id and role, idempotency key): non-empty ``str`` of at most
  :data:`MAX_ID_LENGTH` characters, encodable as UTF-8 (no lone surrogates), without control
  characters;
- the payload: a mapping with text keys whose values are ``None``, ``bool``, ``int`` (at most
  :data:`MAX_INT_BITS` bits), finite ``float``, ``str`` (UTF-8 encodable), ``list`` or ``dict``,
  nested at most :data:`MAX_DEPTH` deep;
- times: timezone-aware, from :data:`MIN_AT` to the clock plus :data:`MAX_CLOCK_SKEW`.

Each refusal is a :class:`~qaflow.errors.ValidationError` naming the field; a value never
reaches the store in a form that would hash differently after a round trip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from qaflow.errors import ValidationError

__all__ = [
    "MAX_CLOCK_SKEW",
    "MAX_DEPTH",
    "MAX_ID_LENGTH",
    "MAX_INT_BITS",
    "MIN_AT",
    "check_at",
    "check_id",
    "check_ids",
    "check_payload",
    "ids_fit",
    "to_utc",
]

MAX_ID_LENGTH: Final = 200
"""The longest id (workflow, trigger, actor, role, idempotency key) accepted."""

MAX_DEPTH: Final = 32
"""How deeply lists and mappings may nest in a payload."""

MAX_INT_BITS: Final = 63
"""Integers in a payload fit a signed 64-bit column: at most 63 bits of magnitude."""

MAX_CLOCK_SKEW = timedelta(minutes=5)
"""How far ahead of the engine's clock a command's ``at`` (or a tick's ``now``) may be."""

MIN_AT = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest ``at`` accepted (older moments are typing errors, not history)."""


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_FITTING: Final[set[str]] = set()
"""Ids that passed :func:`_fits` recently (exact ``str`` only; bounded, cleared when full).

A command names the same few ids again and again (its workflow, the spec's triggers, the
roles, the actor): an id text that passed once passes again, so a recent pass is a set look-up
instead of a scan of every character. Only passing texts are kept: a refused value is checked
in full every time it is offered."""

_FITTING_MAX: Final = 8192


def _fits(value: object) -> bool:
    """Whether ``value`` is an id :func:`check_id` accepts by its fast path: exact ``str``,
    non-empty, at most :data:`MAX_ID_LENGTH` long, printable (which excludes control
    characters and lone surrogates alike)."""
    if type(value) is not str:
        return False
    text: str = value
    if text in _FITTING:
        return True
    if 0 < len(text) <= MAX_ID_LENGTH and text.isprintable():
        if len(_FITTING) >= _FITTING_MAX:
            _FITTING.clear()
        _FITTING.add(text)
        return True
    return False


def check_id(field: str, value: object, *, optional: bool = False) -> None:
    """Refuse anything but short, printable, UTF-8 encodable, non-empty text."""
    if _fits(value):
        return
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise ValidationError(field=field, value=value, expected="non-empty text")
    if len(value) > MAX_ID_LENGTH:
        raise ValidationError(
            field=field, value=len(value), expected=f"at most {MAX_ID_LENGTH} characters long"
        )
    if not _utf8(value) or not value.isprintable():
        raise ValidationError(
            field=field,
            value=value,
            expected="printable text encodable as UTF-8 (no control characters)",
        )


def ids_fit(
    workflow_id: object, trigger: object, actor_id: object, role: object, key: object
) -> bool:
    """Whether a command's ids all pass :func:`check_id` by its fast path (``key`` may be
    ``None``): one call for the common case. ``False`` says only "check each one"."""
    return (
        _fits(workflow_id)
        and _fits(trigger)
        and _fits(actor_id)
        and _fits(role)
        and (key is None or _fits(key))
    )


def check_ids(field: str, values: object) -> list[str]:
    """A collection of ids (``mark_sent``, ``complete_tasks``): never one text."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValidationError(
            field=field, value=values, expected="an iterable of ids (a list, not one text)"
        )
    out: list[str] = []
    for value in values:
        if not isinstance(value, str) or not _utf8(value):
            raise ValidationError(
                field=field, value=value, expected="ids that are text encodable as UTF-8"
            )
        out.append(value)
    return out


_KEYS: Final[set[str]] = set()
"""Payload keys (exact ``str``) that passed the UTF-8 check recently: a command's payload
names the transition's few fields again and again. Only passing keys are kept (bounded,
cleared when full); any other key is checked in full every time."""

_KEYS_MAX: Final = 4096


def check_payload(payload: object) -> dict[str, Any]:
    """The payload as a plain dict, after checking it is JSON that hashes stably."""
    if payload is None:
        return {}
    if type(payload) is not dict and not isinstance(payload, Mapping):
        raise ValidationError(
            field="payload", value=payload, expected="a mapping of field names to JSON values"
        )
    out = dict(payload)
    for key, value in out.items():  # fast path: a flat mapping of plain values
        kind = type(value)
        if type(key) is not str:
            break
        if key not in _KEYS:  # a field name seen before is UTF-8 text still
            if not (key.isascii() or _utf8(key)):
                break
            if len(_KEYS) >= _KEYS_MAX:
                _KEYS.clear()
            _KEYS.add(key)
        if kind is str:
            if not (value.isascii() or _utf8(value)):
                break
        elif kind is int:
            if value.bit_length() > MAX_INT_BITS:
                break
        elif kind is float:
            if not math.isfinite(value):
                break
        elif value is not None and kind is not bool:
            break
    else:
        return out
    # Iterative, so a hostile nesting depth cannot exhaust the interpreter's stack.
    todo: list[tuple[str, object, int]] = [("payload", out, 0)]
    while todo:
        where, value, depth = todo.pop()
        if depth > MAX_DEPTH:
            raise ValidationError(field=where, value=value, expected=f"nested at most {MAX_DEPTH}")
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, int):
            if value.bit_length() > MAX_INT_BITS:
                raise ValidationError(
                    field=where, value=value, expected=f"an integer of at most {MAX_INT_BITS} bits"
                )
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValidationError(field=where, value=value, expected="a finite number")
        elif isinstance(value, str):
            if not _utf8(value):
                raise ValidationError(field=where, value=value, expected="text encodable as UTF-8")
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or not _utf8(key):
                    raise ValidationError(
                        field=where, value=key, expected="mapping keys that are UTF-8 text"
                    )
                todo.append((key if depth == 0 else where, item, depth + 1))
        elif isinstance(value, list):
            todo.extend((where, item, depth + 1) for item in value)
        else:
            raise ValidationError(
                field=where,
                value=value,
                expected="a JSON value (None, bool, int, float, text, list or dict)",
            )
    return out


def to_utc(value: object, field: str) -> datetime:
    """``value`` in UTC: aware datetimes only; an out-of-range moment is refused, not raised."""
    if not isinstance(value, datetime):
        raise ValidationError(field=field, value=value, expected="a timezone-aware datetime")
    try:
        offset = value.utcoffset()
    except (ValueError, TypeError, OverflowError):
        offset = None
    if offset is None:
        raise ValidationError(
            field=field, value=value, expected="a timezone-aware datetime, not naive"
        )
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValidationError(
            field=field, value=value, expected="a moment between the years 1 and 9999 in UTC"
        ) from None


def check_at(value: object, field: str, now: datetime) -> datetime:
    """A command's time in UTC: aware, not before :data:`MIN_AT`, not after ``now`` + skew."""
    # Already an aware UTC datetime (the clock's own, a converted one): nothing to convert.
    at = value if type(value) is datetime and value.tzinfo is UTC else to_utc(value, field)
    if at < MIN_AT:
        raise ValidationError(
            field=field, value=at.isoformat(), expected="not before 1970-01-01", quote=True
        )
    if at > now + MAX_CLOCK_SKEW:
        raise ValidationError(
            field=field,
            value=at.isoformat(),
            expected=f"not later than the clock ({now.isoformat()}) plus {MAX_CLOCK_SKEW}",
            quote=True,
        )
    return at
