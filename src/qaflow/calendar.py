"""Working days and durations, the arithmetic behind every deadline.

A working day is a Monday to Friday local date (Europe/London) that is not an England bank
holiday (from `holidays`, one-off days included) and not one of the council's own closure
days (NAT-CAL-01). A deadline of N working days from a moment falls at the end of the Nth
working day after that moment's local date.

Simulation calls this millions of times, so each calendar precomputes a working-day index
over its year range: every call is a few list look-ups, never a day-by-day loop.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Final, Literal, cast
from zoneinfo import ZoneInfo

import attrs
import holidays

from qaflow.errors import ValidationError

__all__ = [
    "LONDON",
    "Duration",
    "Unit",
    "WorkingCalendar",
    "add_hours",
    "default_calendar",
    "ensure_aware",
]

LONDON = ZoneInfo("Europe/London")
_UTC: Final = UTC
_END_OF_DAY = time(23, 59, 59, 999999)

Unit = Literal["WD", "h", "d", "weeks", "months"]
_UNIT_WORDS: dict[str, Unit] = {
    "wd": "WD",
    "working day": "WD",
    "working days": "WD",
    "h": "h",
    "hour": "h",
    "hours": "h",
    "d": "d",
    "day": "d",
    "days": "d",
    "week": "weeks",
    "weeks": "weeks",
    "month": "months",
    "months": "months",
}
_PARSED: dict[str, Duration] = {}
"""Durations read from text (a machine names a few, on every command that opens one)."""
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([A-Za-z][A-Za-z ]*?)\s*$")


def ensure_aware(value: object, field: str = "at") -> datetime:
    """Return ``value`` if it is a timezone-aware datetime; refuse anything else."""
    if not isinstance(value, datetime):
        raise ValidationError(field=field, value=value, expected="a timezone-aware datetime")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValidationError(
            field=field, value=value.isoformat(), expected="a timezone-aware datetime, not naive"
        )
    return value


def add_hours(start: datetime, hours: float) -> datetime:
    """``start`` plus elapsed hours (a "24 h" rule ignores working days), in UTC."""
    return ensure_aware(start, "start").astimezone(UTC) + timedelta(hours=hours)


def _local_ordinal(moment: datetime, name: str) -> int:
    """``moment``'s Europe/London date as an ordinal (before 23:00 UTC, its UTC date: see
    :meth:`WorkingCalendar.add_working_days`); a naive ``moment`` is refused as ``name``."""
    if type(moment) is datetime and moment.tzinfo is _UTC and moment.hour < 23:
        return moment.toordinal()
    return ensure_aware(moment, name).astimezone(LONDON).toordinal()


class WorkingCalendar:
    """Working-day arithmetic for England plus a council's own closure days.

    Build one per policy (they are cached by closure set through :func:`default_calendar`)
    and share it: it is immutable after construction.
    """

    __slots__ = (
        "_cum",
        "_due",
        "_due_on",
        "_eod",
        "_epoch",
        "_last",
        "_wd",
        "closures",
        "first_year",
        "last_year",
    )

    def __init__(
        self,
        closures: Iterable[date] = (),
        *,
        first_year: int = 1990,
        last_year: int = 2100,
    ) -> None:
        if first_year > last_year:
            raise ValidationError(
                field="first_year", value=first_year, expected=f"at most last_year ({last_year})"
            )
        self.closures = frozenset(closures)
        self.first_year = first_year
        self.last_year = last_year
        bank = _bank_holidays(first_year, last_year)
        first = date(first_year, 1, 1).toordinal()
        last = date(last_year, 12, 31).toordinal()
        cum: list[int] = []
        wd: list[int] = []
        count = 0
        for ordinal in range(first, last + 1):
            day = date.fromordinal(ordinal)
            if day.weekday() < 5 and day not in bank and day not in self.closures:
                count += 1
                wd.append(ordinal)
            cum.append(count)
        self._epoch = first
        self._last = last
        self._cum = cum
        self._wd = wd
        self._eod: dict[int, datetime] = {}
        self._due: dict[tuple[datetime, int], datetime] = {}
        self._due_on: dict[int, datetime] = {}

    def __repr__(self) -> str:
        return (
            f"WorkingCalendar(closures={sorted(self.closures)!r}, "
            f"first_year={self.first_year}, last_year={self.last_year})"
        )

    def _index(self, day: date) -> int:
        return self._ordinal_index(day.toordinal())

    def _ordinal_index(self, ordinal: int) -> int:
        """The index of the day ``ordinal`` (a proleptic Gregorian ordinal) in the tables."""
        i = ordinal - self._epoch
        if i < 0 or ordinal > self._last:
            raise ValidationError(
                field="date",
                value=date.fromordinal(ordinal).isoformat(),
                expected=f"a date in {self.first_year}..{self.last_year}",
            )
        return i

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` (a local date) is a working day."""
        i = self._index(day)
        return self._cum[i] != (self._cum[i - 1] if i else 0)

    def add_working_days_to_date(self, day: date, n: int) -> date:
        """The Nth working day after ``day``; for n=0, ``day`` itself or the next working day."""
        return date.fromordinal(self._wd[self._nth_index(day, n)])

    def _nth_index(self, day: date, n: int) -> int:
        if n < 0:
            raise ValidationError(field="n", value=n, expected="a whole number >= 0")
        i = self._index(day)
        k = self._cum[i] + n - 1 if n else (self._cum[i - 1] if i else 0)
        if k >= len(self._wd):
            raise ValidationError(
                field="n", value=n, expected=f"a count that stays within {self.last_year}"
            )
        return k

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """End of the Nth working day after ``start``'s local date, as an aware UTC datetime."""
        # London is UTC or one hour ahead of it (GMT/BST), so before 23:00 UTC its date is
        # the UTC date: the answer depends on (that date, n) alone, remembered by that pair,
        # with no time-zone conversion (checked against the conversion for every day of the
        # range). Only an answer is remembered: an error is raised again each time.
        if type(n) is int and start.tzinfo is _UTC and start.hour < 23 and 0 <= n < 65536:
            on = start.toordinal() << 16 | n  # (date, n) as one int: no tuple to build or hash
            due = self._due_on.get(on)
            if due is None:
                due = self._end_of(self._nth_index(start.date(), n))
                if len(self._due_on) >= 4096:
                    self._due_on.clear()
                self._due_on[on] = due
            return due
        # Other instants: recently asked (instant, n) pairs are remembered. Equal instants
        # have the same local date, so the cache is exact; aware keys never equal naive ones,
        # which are refused below and never cached.
        due = self._due.get((start, n)) if type(n) is int else None
        if due is not None:
            return due
        if start.tzinfo is None:
            ensure_aware(start, "start")
        due = self._end_of(self._nth_index(start.astimezone(LONDON).date(), n))
        if len(self._due) >= 4096:
            self._due.clear()
        self._due[(start, n)] = due
        return due

    def _end_of(self, k: int) -> datetime:
        """The end of the working day at index ``k``, local time, as an aware UTC datetime."""
        due = self._eod.get(k)
        if due is None:
            local = datetime.combine(date.fromordinal(self._wd[k]), _END_OF_DAY, LONDON)
            due = self._eod[k] = local.astimezone(UTC)
        return due

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Working days in (start's local date, end's local date]; negative if end is earlier."""
        return (
            self._cum[self._ordinal_index(_local_ordinal(end, "end"))]
            - self._cum[self._ordinal_index(_local_ordinal(start, "start"))]
        )

    def working_dates(self, start: date, end: date) -> list[date]:
        """Every working day in [start, end], in order."""
        lo = self._cum[self._index(start) - 1] if self._index(start) else 0
        hi = self._cum[self._index(end)]
        return [date.fromordinal(o) for o in self._wd[lo:hi]]


@lru_cache(maxsize=4)
def _bank_holidays(first_year: int, last_year: int) -> frozenset[date]:
    table = holidays.country_holidays("GB", subdiv="ENG", years=range(first_year, last_year + 1))
    return frozenset(cast(Iterable[date], table.keys()))


@lru_cache(maxsize=32)
def default_calendar(closures: frozenset[date] = frozenset()) -> WorkingCalendar:
    """The shared calendar for a closure set (England bank holidays, 1990 to 2100)."""
    return WorkingCalendar(closures)


def _check_amount(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or value < 0:
        raise ValidationError(field="amount", value=value, expected="a whole number >= 0")


_AMOUNT_CHECKS: list[Any] = [attrs.validators.instance_of(int), _check_amount]


def _check_unit(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in ("WD", "h", "d", "weeks", "months"):
        raise ValidationError(
            field="unit", value=value, expected="one of 'WD', 'h', 'd', 'weeks', 'months'"
        )


@attrs.frozen(order=False)
class Duration:
    """A policy time rule: "5 WD", "24 h", "3 weeks", "6 months", "10 d".

    ``WD`` counts working days (end of the Nth working day); ``h`` and ``d`` and ``weeks`` are
    elapsed time; ``months`` are calendar months on the local date, same local time.
    """

    # Validators are module functions, not ``@amount.validator`` methods, and typed loosely: a
    # compiled build (mypyc) would otherwise read the field in the class body as an int.
    amount: int = attrs.field(validator=_AMOUNT_CHECKS)
    unit: Unit = attrs.field(validator=_check_unit)

    @classmethod
    def parse(cls, text: object) -> Duration:
        """Read "5 WD", "24 h", "3 weeks", "6 months" (the words the policies use)."""
        if isinstance(text, Duration):
            return text
        if cls is Duration and type(text) is str:
            found = _PARSED.get(text)
            if found is not None:
                return found
        match = _DURATION_RE.match(text) if isinstance(text, str) else None
        unit = _UNIT_WORDS.get(match.group(2).lower()) if match else None
        if match is None or unit is None:
            raise ValidationError(
                field="duration",
                value=text,
                expected="a number and a unit, e.g. '5 WD', '24 h', '3 weeks', '6 months'",
            )
        parsed = cls(int(match.group(1)), unit)
        if cls is Duration and type(text) is str and len(_PARSED) < 1024:
            _PARSED[text] = parsed  # frozen: one object serves every command naming it
        return parsed

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}"

    @property
    def is_working_days(self) -> bool:
        return self.unit == "WD"

    def after(self, start: datetime, calendar: WorkingCalendar | None = None) -> datetime:
        """When this rule expires for something that starts at ``start`` (aware UTC)."""
        unit = self.unit
        utc = type(start) is datetime and start.tzinfo is _UTC  # ensure_aware would pass
        if unit == "WD" and utc and calendar is not None:
            return calendar.add_working_days(start, self.amount)
        ensure_aware(start, "start")
        if self.unit == "WD":
            return (calendar or default_calendar()).add_working_days(start, self.amount)
        if self.unit == "h":
            return add_hours(start, self.amount)
        if self.unit == "d":
            return start.astimezone(UTC) + timedelta(days=self.amount)
        if self.unit == "weeks":
            return start.astimezone(UTC) + timedelta(weeks=self.amount)
        local = start.astimezone(LONDON)
        month0 = local.month - 1 + self.amount
        year, month = local.year + month0 // 12, month0 % 12 + 1
        day = min(local.day, _days_in_month(year, month))
        moved = datetime.combine(date(year, month, day), local.timetz().replace(tzinfo=None))
        return moved.replace(tzinfo=LONDON).astimezone(UTC)

    def before(self, end: datetime) -> datetime:
        """The start of a look-back window of this length ending at ``end`` (elapsed units)."""
        ensure_aware(end, "end")
        if self.unit == "months":
            local = end.astimezone(LONDON)
            month0 = local.month - 1 - self.amount
            year, month = local.year + month0 // 12, month0 % 12 + 1
            day = min(local.day, _days_in_month(year, month))
            moved = datetime.combine(date(year, month, day), local.timetz().replace(tzinfo=None))
            return moved.replace(tzinfo=LONDON).astimezone(UTC)
        if self.unit == "WD":
            raise ValidationError(
                field="unit", value=self.unit, expected="an elapsed unit for a look-back"
            )
        hours = {"h": 1, "d": 24, "weeks": 24 * 7}[self.unit] * self.amount
        return end.astimezone(UTC) - timedelta(hours=hours)


def _days_in_month(year: int, month: int) -> int:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day
