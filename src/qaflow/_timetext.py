"""A moment's UTC ISO 8601 text, written by hand (compiled in a compiled build: a simulated
path formats about ten moments, for the event hash and the stage history).

:func:`utc_isoformat` is re-exported by :mod:`qaflow.records`, where callers find it. Its text
is byte for byte ``moment.astimezone(UTC).isoformat()`` (the event hash and the stage history
depend on that exact text; ``tests/test_timetext.py`` compares the two over many moments):
``YYYY-MM-DDTHH:MM:SS``, then ``.ffffff`` only when the microsecond is not zero, then
``+00:00``. ``datetime.isoformat`` builds its text with ``PyUnicode_FromFormat`` and asks the
time zone for its offset, about fourteen thousand instructions a moment; reading the fields
and joining two-digit pieces from a table is a fraction of that. Recently seen moments are
remembered (a hit is cheaper still).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

__all__ = ["utc_isoformat"]

_UTC: Final = UTC
_TWO: Final[tuple[str, ...]] = tuple(f"{i:02d}" for i in range(100))
"""``"00"`` to ``"99"``: every field of the text is one or more of these."""
_ISO_CACHE: Final[dict[datetime, str]] = {}
_ISO_CACHE_MAX: Final = 4096


class _Last:
    """The last moment formatted and its text: one command formats its own time several
    times (a raise and the stage it enters, a stage left and the next entered), the same
    object each time, which is then answered without hashing it. The pair is one tuple,
    replaced in one store, so a thread never sees one moment with another's text."""

    __slots__ = ("pair",)

    def __init__(self) -> None:
        self.pair: tuple[object, str] = (None, "")


_LAST: Final = _Last()
_DATETIME: Final = datetime


def utc_isoformat(moment: datetime) -> str:
    """``moment.astimezone(UTC).isoformat()``, the same text, built without ``isoformat`` and
    remembered for recently seen moments.

    One command formats its time several times (the event hash, the stage history), and
    many simulated commands share a moment (end-of-day deadlines); equal instants give the
    same UTC text, so a small cache keyed by the instant is exact. A moment in another zone
    (or naive, read as local time, as ``astimezone`` reads it) is converted first; a
    ``datetime`` subclass may format itself differently, so it is asked.
    """
    last = _LAST.pair
    if moment is last[0]:  # only ever an exact datetime (set below)
        return last[1]
    if type(moment) is not _DATETIME:
        return moment.astimezone(_UTC).isoformat()
    text = _ISO_CACHE.get(moment)
    if text is None:
        if len(_ISO_CACHE) >= _ISO_CACHE_MAX:
            _ISO_CACHE.clear()
        text = _ISO_CACHE[moment] = _written(
            moment if moment.tzinfo is _UTC else moment.astimezone(_UTC)
        )
    _LAST.pair = (moment, text)
    return text


def _written(moment: datetime) -> str:
    """The ISO text of an aware UTC ``datetime``: fields as two-digit pieces from a table
    (each branch one f-string: the text is joined once)."""
    two = _TWO
    year: int = moment.year
    micro: int = moment.microsecond
    if micro:
        return (
            f"{two[year // 100]}{two[year % 100]}-{two[moment.month]}-{two[moment.day]}"
            f"T{two[moment.hour]}:{two[moment.minute]}:{two[moment.second]}"
            f".{two[micro // 10000]}{two[micro // 100 % 100]}{two[micro % 100]}+00:00"
        )
    return (
        f"{two[year // 100]}{two[year % 100]}-{two[moment.month]}-{two[moment.day]}"
        f"T{two[moment.hour]}:{two[moment.minute]}:{two[moment.second]}+00:00"
    )
