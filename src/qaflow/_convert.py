"""The converters and checks the definition records share: names and durations.

One home for what the procedure model, the machine spec and the rolling rules each needed:
what a lower-case identifier is (a role, state, stage or ``<role>_id`` data key), a list of
names that refuses a lone string, and a duration field given as text or as a
:class:`~qaflow.calendar.Duration`. Private: the public names stay where they were
(``qaflow.procedure.IDENT``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from qaflow.calendar import Duration
from qaflow.errors import PolicyError

__all__ = ["IDENT", "check_ident", "duration", "name_tuple", "optional_duration"]

IDENT: Final = re.compile(r"^[a-z][a-z0-9_]*$")
"""A name usable as a role, state, stage or ``<role>_id`` data key."""


def check_ident(what: str, value: object, clause: str | None = None) -> None:
    """Refuse a name that could not be a role, state or ``<role>_id`` data key."""
    if not isinstance(value, str) or not IDENT.match(value):
        raise PolicyError(
            f"{what} must be a lower-case identifier (a letter, then letters, digits or '_'), "
            f"got {value!r}",
            clause=clause,
        )


def name_tuple(items: Iterable[str]) -> tuple[str, ...]:
    """A list of names as a tuple; a lone string is refused (it would become its letters)."""
    if isinstance(items, str):
        raise PolicyError(f"expected a list of names, not the string {items!r}")
    return tuple(items)


def duration(value: Duration | str) -> Duration:
    """A duration field's converter: ``"5 WD"`` or a :class:`Duration`."""
    return Duration.parse(value)


def optional_duration(value: Duration | str | None) -> Duration | None:
    """An optional duration field's converter: ``None`` stays ``None``."""
    return None if value is None else Duration.parse(value)
