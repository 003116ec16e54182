"""Escalation ladders: the model's names, read from procedure files, and their plain-data form.

The model lives in :mod:`qaflow.procedure` (format-neutral frozen records); this module keeps
the names councils and callers already use, reads ladder files with the procedure reader,
and turns a ladder into plain data and back (JSON, a dict). A council adds its own ladders
without code, in a procedure file read by :func:`load_ladders`::

    format_version = 1

    [policy]
    name = "example-council"
    version = "2026.1"
    closure_days = [2026-12-29]

    [policy.roles]
    iro = "Independent reviewing officer"
    team_manager = "Team manager"
    director = "Director of children's services"
    child = "The child the escalation is about"

    [[ladders]]
    name = "iro"
    kind = "iro"
    raised_by = ["iro"]
    statutory = ["iro_dispute_resolution"]
    stages = [
        { holders = ["team_manager"], response = "5 WD" },
        { holders = ["director"], response = "5 WD" },
    ]

The file goes through the same validation (unknown keys are refused, every role must be
declared, and every problem is reported at once with its key path).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, Literal, get_args, get_origin

import cattrs
from cattrs.v import format_exception

from qaflow.calendar import Duration
from qaflow.errors import PolicyError, ValidationError
from qaflow.procedure._ladder import (
    IRO_DISPUTE_RESOLUTION,
    IRO_MAX_TOTAL_RESPONSE,
    REASONS,
    RESERVED_ROLES,
    AgreedTimescale,
    BreachAction,
    EscalationLadder,
    ExtensionRule,
    ExtensionScope,
    ExternalReferral,
    LadderStage,
    Notice,
    PartyDeadline,
    ReferralTrack,
    ReferralWhen,
)
from qaflow.procedure._toml import ProcedureFile, load_procedure, loads_procedure

__all__ = [
    "IRO_DISPUTE_RESOLUTION",
    "IRO_MAX_TOTAL_RESPONSE",
    "REASONS",
    "RESERVED_ROLES",
    "AgreedTimescale",
    "BreachAction",
    "EscalationLadder",
    "ExtensionRule",
    "ExtensionScope",
    "ExternalReferral",
    "LadderFile",
    "LadderStage",
    "Notice",
    "PartyDeadline",
    "ReferralTrack",
    "ReferralWhen",
    "ladder_from_dict",
    "ladder_to_dict",
    "load_ladders",
    "loads_ladders",
]

LadderFile = ProcedureFile
"""A council's ladders as loaded from a file (the procedure file record)."""


def _structure_duration(value: object, _: type) -> Duration:
    if isinstance(value, Duration):
        return value
    if not isinstance(value, str):
        raise ValidationError(field="duration", value=value, expected="text like '5 WD'")
    return Duration.parse(value)


def _structure_date(value: object, _: type) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValidationError(field="date", value=value, expected="a date like 2026-12-29")


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(Duration, _structure_duration)
    conv.register_unstructure_hook(Duration, str)
    conv.register_structure_hook(date, _structure_date)
    conv.register_unstructure_hook(date, date.isoformat)
    return conv


_converter: Final = _make_converter()


def _format(exc: BaseException, type_: type | None) -> str:
    """One failure as text: our own errors as they are, cattrs' in plain words."""
    if isinstance(exc, PolicyError):
        text = str(exc)
        return text.removesuffix(f" ({exc.clause})") if exc.clause else text
    if isinstance(exc, ValidationError):
        return str(exc)
    if get_origin(type_) is Literal:
        return "must be one of " + ", ".join(map(repr, get_args(type_)))
    if isinstance(exc, KeyError):
        return f"required key {exc.args[0]!r} missing" if exc.args else "required key missing"
    return format_exception(exc, type_)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, cattrs.BaseValidationError):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def _structure(data: object, cls: type[Any], what: str) -> Any:
    """Structure ``data`` into ``cls``; every failure becomes one :class:`PolicyError`."""
    if not isinstance(data, Mapping):
        raise PolicyError(f"{what} must be a table of keys, not {type(data).__name__}")
    try:
        return _converter.structure(dict(data), cls)
    except PolicyError as error:
        raise PolicyError(f"{what}: {error}", clause=error.clause) from None
    except cattrs.BaseValidationError as error:
        messages = [
            m.removesuffix(" @ $")
            for m in cattrs.transform_error(error, path="$", format_exception=_format)
        ]
        clause = next(
            (e.clause for e in _leaves(error) if isinstance(e, PolicyError) and e.clause), None
        )
        raise PolicyError(f"{what}: " + "; ".join(messages), clause=clause) from None


def ladder_from_dict(data: Mapping[str, Any]) -> EscalationLadder:
    """A validated ladder from plain data (:func:`ladder_to_dict`'s form, JSON, a dict)."""
    name = data.get("name", "?") if isinstance(data, Mapping) else "?"
    ladder: EscalationLadder = _structure(data, EscalationLadder, f"ladder {name!r}")
    return ladder


def ladder_to_dict(ladder: EscalationLadder) -> dict[str, Any]:
    """The ladder as plain data (durations as text); :func:`ladder_from_dict` reads it back."""
    data: dict[str, Any] = _converter.unstructure(ladder)
    return data


def loads_ladders(text: str, *, source: str = "<string>") -> ProcedureFile:
    """Read a procedure file's ladders (see the module docstring); writes nothing."""
    return loads_procedure(text, source=source)


def load_ladders(path: str | Path) -> ProcedureFile:
    """Read and validate a procedure file's ladders; writes nothing."""
    return load_procedure(path)
