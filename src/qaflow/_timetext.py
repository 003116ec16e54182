"""A moment's UTC ISO 8601 text, remembered for recently seen moments (compiled in a compiled
build: a simulated path formats about ten moments, for the event hash and the stage history).

:func:`utc_isoformat` is re-exported by :mod:`qaflow.records`, where callers find it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

__all__ = ["utc_isoformat"]

_ISO_CACHE: Final[dict[datetime, str]] = {}
_ISO_CACHE_MAX: Final = 4096


def utc_isoformat(moment: datetime) -> str:
    """``moment.astimezone(UTC).isoformat()``, remembered for recently seen moments.

    One command formats its time several times (the event hash, the stage history), and
    many simulated commands share a moment (end-of-day deadlines); equal instants give the
    same UTC text, so a small cache keyed by the instant is exact.
    """
    if type(moment) is not datetime:  # a subclass may format itself differently
        return moment.astimezone(UTC).isoformat()
    text = _ISO_CACHE.get(moment)
    if text is None:
        if len(_ISO_CACHE) >= _ISO_CACHE_MAX:
            _ISO_CACHE.clear()
        text = _ISO_CACHE[moment] = moment.astimezone(UTC).isoformat()
    return text
