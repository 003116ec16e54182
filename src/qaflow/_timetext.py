"""A moment's UTC ISO 8601 text, written by hand (compiled in a compiled build: a simulated
path formats about ten moments, for the event hash and the stage history).

:func:`utc_isoformat` is re-exported by :mod:`qaflow.records`, where callers find it. Its text
is byte for byte ``moment.astimezone(UTC).isoformat()`` (the event hash and the stage history
depend on that exact text; ``tests/test_timetext.py`` compares the two over many moments):
``YYYY-MM-DDTHH:MM:SS``, then ``.ffffff`` only when the microsecond is not zero, then
``+00:00``. ``datetime.isoformat`` builds its text with ``PyUnicode_FromFormat`` and asks the
time zone for its offset, about fourteen thousand instructions a moment; reading the fields
and joining two-digit pieces from a table is a small fraction of that, with no cache to miss.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

__all__ = ["utc_isoformat"]

_UTC: Final = UTC
_TWO: Final[tuple[str, ...]] = tuple(f"{i:02d}" for i in range(100))
"""``"00"`` to ``"99"``: every field of the text is one or more of these."""


def utc_isoformat(moment: datetime) -> str:
    """``moment.astimezone(UTC).isoformat()``, the same text, built without ``isoformat``.

    A moment in another zone (or naive, read as local time, as ``astimezone`` reads it) is
    converted first; a ``datetime`` subclass may format itself differently, so it is asked.
    """
    if type(moment) is not datetime:
        return moment.astimezone(_UTC).isoformat()
    if moment.tzinfo is not _UTC:
        moment = moment.astimezone(_UTC)
    two = _TWO
    year: int = moment.year
    micro: int = moment.microsecond
    text = (
        f"{two[year // 100]}{two[year % 100]}-{two[moment.month]}-{two[moment.day]}"
        f"T{two[moment.hour]}:{two[moment.minute]}:{two[moment.second]}"
    )
    if micro:
        return f"{text}.{two[micro // 10000]}{two[micro // 100 % 100]}{two[micro % 100]}+00:00"
    return f"{text}+00:00"
