"""Monthly trends: the report's headline counts for each calendar month (London) up to the
period's end -- over a quarter and the four before it, ``months=15``.

The whole span is read once through the store's period query (the workflows touched in
it, in SQL), never whole histories; each month is then counted by
:func:`._breakdown.tally` over those workflows as of that month's end, so a month's figures
are those a report of that month alone would give (a test checks they are).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Final

from qaflow.calendar import LONDON
from qaflow.report._breakdown import FIELDS, tally
from qaflow.report._read import Period
from qaflow.report._records import MonthTrend

__all__ = ["MAX_TREND_MONTHS", "month_starts", "monthly_trends"]

MAX_TREND_MONTHS: Final = 60
"""The most months a trend may cover (five years)."""


def _add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), LONDON)


def month_starts(end: datetime, months: int) -> list[date]:
    """The first days of the ``months`` calendar months ending with the one holding ``end``'s
    last moment, plus the first day after the last of them."""
    last = (end - timedelta(microseconds=1)).astimezone(LONDON).date().replace(day=1)
    return [_add_months(last, k) for k in range(1 - months, 2)]


def monthly_trends(
    p: Period, months: int, progress: Callable[[int], None] | None = None
) -> tuple[MonthTrend, ...]:
    """``months`` months of trend ending with the period's last month (the last one stops
    at the period's end); ``()`` for ``months=0``. ``progress(2 + k)`` follows month k."""
    if months <= 0:
        return ()
    firsts = month_starts(p.end, months)
    span = Period(
        p.store,
        _midnight(firsts[0]),
        p.end,
        p.calendar,
        p.policies,
        p.filters,
        p.directory,
        touched_only=True,
    )
    out: list[MonthTrend] = []
    for first, after in pairwise(firsts):
        start = _midnight(first)
        end = min(_midnight(after), p.end)
        row = tally(span.sliced(start, end), lambda kind, w: "").get("", dict.fromkeys(FIELDS, 0))
        counts = (row[f] for f in FIELDS)
        out.append(MonthTrend(*counts, month=f"{first:%Y-%m}", start=start, end=end))
        if progress is not None:
            progress(1 + len(out))
    return tuple(out)
