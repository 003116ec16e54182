"""The fingerprint of a machine spec: SHA-256 over a canonical description of its content.

A workflow pins (machine, policy, version) and this fingerprint: two specs under
the same key with different content are told apart, so the engine refuses to register the
second one and refuses to run a workflow under a spec other than the one it started with.

What is described: every state (name, terminal, deadlines, on-enter effects), every
transition (trigger, sources, destination, roles, fields, guards, effects, clause, actor key,
re-entry), the initial state and the calendar's closure days. Callables (guards, computed
durations and effects) are described by their module and qualified name and by the plain
values they close over (numbers, text, durations, nested records), which is as far as Python
code can be described stably across processes. Descriptions are not free text: a changed
``description`` does not change the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date
from typing import Any

import attrs

from qaflow.calendar import Duration, WorkingCalendar

__all__ = ["FINGERPRINT_FORMAT", "spec_fingerprint"]

FINGERPRINT_FORMAT = 1
"""Bumped whenever the description below changes, so old fingerprints are not misread."""

_MAX_DEPTH = 12
_SKIPPED = frozenset({"description"})


def _describe(value: object, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        return type(value).__name__
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Duration):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, WorkingCalendar):
        return {
            "closures": sorted(d.isoformat() for d in value.closures),
            "years": [value.first_year, value.last_year],
        }
    if isinstance(value, (frozenset, set)):
        return sorted((_describe(v, depth + 1) for v in value), key=repr)
    if isinstance(value, (tuple, list)):
        return [_describe(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): _describe(v, depth + 1) for k, v in sorted(value.items(), key=repr)}
    cls: Any = type(value)
    if attrs.has(cls):
        out: dict[str, Any] = {"type": cls.__qualname__}
        for field in attrs.fields(cls):
            if field.init and field.name not in _SKIPPED:
                out[field.name] = _describe(getattr(value, field.name), depth + 1)
        return out
    if callable(value):
        return _describe_callable(value, depth)
    return type(value).__qualname__


def _describe_callable(fn: Callable[..., Any], depth: int) -> Any:
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
    cells = getattr(fn, "__closure__", None) or ()
    captured = []
    for cell in cells:
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        captured.append(_describe(content, depth + 1))
    return {"fn": name, "captured": captured} if captured else {"fn": name}


def spec_fingerprint(spec: object) -> str:
    """The hex SHA-256 of the spec's canonical description (format :data:`FINGERPRINT_FORMAT`)."""
    body = {"format": FINGERPRINT_FORMAT, "spec": _describe(spec)}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()
