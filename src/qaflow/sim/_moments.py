"""Local dates and the moments simulated people act at, cached (compiled in a compiled build).

:class:`Moments` answers "which London date is this moment" and "the local time ``times[at]``
on the ``k``-th working day after this date" for the escalation actors
(:mod:`qaflow.sim._escalation`), several times a path, so it is one of
``qaflow._compiled.HOT_MODULES``; :func:`moments_for` shares one per calendar and set of times.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Final

from qaflow.calendar import LONDON, WorkingCalendar

__all__ = ["Moments", "moments_for"]

_UTC: Final = UTC  # read by compiled code without a namespace lookup
_CAP: Final = 65_536


class Moments:
    """Local dates and action moments, cached: simulated moments repeat a great deal.

    Shared by every play of the same calendar and action times (:func:`moments_for`): the
    values are pure functions of those, and a chunk would otherwise start cold.
    """

    __slots__ = ("_at", "_dates", "_moments", "calendar", "months", "times")

    def __init__(self, calendar: WorkingCalendar, times: tuple[time, ...]) -> None:
        self.calendar = calendar
        self.times = times
        self._moments: dict[int, datetime] = {}
        self._at: dict[int, datetime] = {}
        self._dates: dict[datetime, int] = {}
        self.months: dict[int, int] = {}  # read directly by EscalationActors.enter

    def local_day(self, moment: datetime) -> int:
        """The proleptic ordinal of ``moment``'s Europe/London date.

        London is UTC or one hour ahead of it (GMT/BST), so before 23:00 UTC its date is the
        UTC date (tested for every day 1990-2100); later moments are converted.
        """
        if moment.hour < 23 and moment.tzinfo is _UTC:
            return moment.toordinal()
        day = self._dates.get(moment)
        if day is None:
            if len(self._dates) > _CAP:
                self._dates.clear()
            day = self._dates[moment] = moment.astimezone(LONDON).toordinal()
        return day

    def month(self, day: int) -> int:
        """``year * 12 + month - 1`` of the date of ordinal ``day``."""
        month = self.months.get(day)
        if month is None:
            if len(self.months) > _CAP:
                self.months.clear()
            d = date.fromordinal(day)
            month = self.months[day] = d.year * 12 + d.month - 1
        return month

    def local_date(self, moment: datetime) -> date:
        """The Europe/London date of ``moment``."""
        return date.fromordinal(self.local_day(moment))

    def after(self, day: int, k: int, at: int) -> datetime:
        """Local time ``times[at]`` on the ``k``-th working day after the day of ordinal
        ``day`` (k >= 0; k = 0 is that day itself)."""
        key = (day << 11) | (k << 2) | at
        found = self._moments.get(key)
        if found is None:
            target = (
                self.calendar.add_working_days_to_date(date.fromordinal(day), k).toordinal()
                if k
                else day
            )
            place = (target << 2) | at
            found = self._at.get(place)
            if found is None:
                local = datetime.combine(date.fromordinal(target), self.times[at], LONDON)
                found = self._at[place] = local.astimezone(UTC)
            if len(self._moments) > _CAP:
                self._moments.clear()
            self._moments[key] = found
        return found

    def day_after(self, day: date, k: int, at: int) -> datetime:
        """Local time ``times[at]`` on the ``k``-th working day after ``day`` (k >= 0)."""
        return self.after(day.toordinal(), k, at)


@lru_cache(maxsize=16)
def moments_for(calendar: WorkingCalendar, times: tuple[time, ...]) -> Moments:
    """The one :class:`Moments` of ``calendar`` and ``times`` in this process."""
    return Moments(calendar, times)
