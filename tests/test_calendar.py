"""Working-day arithmetic (NAT-CAL-01) against an independent oracle (I13)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qaflow.calendar import LONDON, Duration, WorkingCalendar, add_hours, default_calendar
from qaflow.errors import ValidationError

CAL = default_calendar()
HOLIDAYS = sorted(
    d
    for d in (date(2019, 1, 1) + timedelta(days=i) for i in range(365 * 16))
    if d.weekday() < 5 and not CAL.is_working_day(d)
)


def _eod(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59, 999999), LONDON).astimezone(UTC)


def test_NAT_CAL_01_christmas_boxing_day_and_weekends_skipped() -> None:
    friday = datetime(2025, 12, 19, 10, 0, tzinfo=UTC)
    assert CAL.add_working_days(friday, 1) == _eod(date(2025, 12, 22))
    assert CAL.add_working_days(friday, 5) == _eod(date(2025, 12, 30))


@pytest.mark.parametrize(
    "day", [date(2022, 9, 19), date(2023, 5, 8), date(2024, 3, 29), date(2026, 8, 31)]
)
def test_NAT_CAL_01_one_off_and_regular_bank_holidays(day: date) -> None:
    assert not CAL.is_working_day(day)


def test_NAT_CAL_01_council_closure_days() -> None:
    closed = WorkingCalendar([date(2025, 12, 29)])
    friday = datetime(2025, 12, 19, 10, 0, tzinfo=UTC)
    assert closed.add_working_days(friday, 5) == _eod(date(2025, 12, 31))


def test_deadline_counts_from_local_date() -> None:
    # 23:30 UTC on 31 Mar 2025 is 00:30 BST on 1 Apr: the count starts from 1 Apr.
    late = datetime(2025, 3, 31, 23, 30, tzinfo=UTC)
    assert CAL.add_working_days(late, 1) == _eod(date(2025, 4, 2))


def test_add_working_days_before_23_utc_equals_the_local_date_count() -> None:
    """Before 23:00 UTC the count starts from the UTC date (London is GMT or BST), from 23:00
    from the next day: the same due time as converting to the local date, at four moments of
    every day from 1990 to mid-December 2100, asked twice (the second answer remembered)."""
    cal = WorkingCalendar()
    day, last = date(1990, 1, 1), date(2100, 12, 15)
    while day <= last:
        for clock in (time(0), time(22, 59, 59, 999999), time(23), time(23, 59, 59, 999999)):
            moment = datetime.combine(day, clock, UTC)
            expected = _eod(cal.add_working_days_to_date(moment.astimezone(LONDON).date(), 5))
            assert cal.add_working_days(moment, 5) == expected, moment
            assert cal.add_working_days(moment, 5) == expected, moment
        day += timedelta(days=1)


def test_working_days_between_counts_from_the_local_dates_at_every_hour_of_the_day() -> None:
    """``working_days_between`` reads a UTC moment before 23:00 as its UTC date without a
    conversion: the same count as converting both ends to London's dates, at four moments of
    every day from 1990 to mid-December 2100 (and from a moment in London's own zone)."""
    cal = WorkingCalendar()
    day, last = date(1990, 1, 2), date(2100, 12, 15)
    end = datetime(2100, 12, 20, 12, tzinfo=UTC)
    while day <= last:
        for clock in (time(0), time(22, 59, 59, 999999), time(23), time(23, 59, 59, 999999)):
            moment = datetime.combine(day, clock, UTC)
            local = moment.astimezone(LONDON)
            start = datetime(1990, 1, 1, 12, tzinfo=UTC)
            expected = cal.working_days_between(start, end) - cal.working_days_between(start, local)
            assert cal.working_days_between(moment, end) == expected, moment
            assert cal.working_days_between(local, end) == expected, moment
        day += timedelta(days=1)
    with pytest.raises(ValidationError, match="'end' must be a timezone-aware datetime"):
        cal.working_days_between(end, datetime(2025, 1, 1))


def test_naive_datetime_refused() -> None:
    with pytest.raises(ValidationError, match="'start' must be a timezone-aware datetime"):
        CAL.add_working_days(datetime(2025, 1, 1), 3)


@given(
    day=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    n=st.integers(min_value=0, max_value=400),
)
def test_I13_add_working_days_matches_numpy_busday_offset(day: date, n: int) -> None:
    """The Nth working day after ``day`` (n=0: ``day`` or the next working day)."""
    hol = [np.datetime64(h) for h in HOLIDAYS]
    if n == 0:
        expected = np.busday_offset(np.datetime64(day), 0, roll="forward", holidays=hol)
    else:
        last_on_or_before = np.busday_offset(np.datetime64(day), 0, roll="backward", holidays=hol)
        expected = np.busday_offset(last_on_or_before, n, holidays=hol)
    assert CAL.add_working_days_to_date(day, n) == expected.astype(date)


@given(
    a=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    b=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
)
def test_I13_working_days_between_matches_numpy_busday_count(a: date, b: date) -> None:
    a, b = min(a, b), max(a, b)
    hol = [np.datetime64(h) for h in HOLIDAYS]
    expected = np.busday_count(
        np.datetime64(a + timedelta(days=1)), np.datetime64(b + timedelta(days=1)), holidays=hol
    )
    start = datetime.combine(a, time(12), LONDON)
    end = datetime.combine(b, time(12), LONDON)
    assert CAL.working_days_between(start, end) == int(expected)
    assert CAL.working_days_between(end, start) == -int(expected)


def test_holiday_list_agrees_with_numpy_weekmask() -> None:
    assert date(2025, 12, 25) in HOLIDAYS and date(2025, 12, 26) in HOLIDAYS


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [
        ("5 WD", 5, "WD"),
        ("24 h", 24, "h"),
        ("3 weeks", 3, "weeks"),
        ("6 months", 6, "months"),
        ("8 working days", 8, "WD"),
        ("1 day", 1, "d"),
    ],
)
def test_duration_parse(text: str, amount: int, unit: str) -> None:
    rule = Duration.parse(text)
    assert (rule.amount, rule.unit) == (amount, unit)
    assert Duration.parse(str(rule)) == rule


@pytest.mark.parametrize("text", ["", "five WD", "5 fortnights", "-1 WD", "5"])
def test_duration_parse_refuses_bad_text(text: str) -> None:
    with pytest.raises(ValidationError, match="'duration' must be a number and a unit"):
        Duration.parse(text)


def test_duration_after() -> None:
    start = datetime(2025, 12, 19, 10, tzinfo=UTC)
    assert Duration.parse("24 h").after(start) == add_hours(start, 24)
    assert Duration.parse("3 weeks").after(start) == start + timedelta(weeks=3)
    # 6 calendar months on the local clock: 10:00 GMT in December is 10:00 BST in June.
    assert Duration.parse("6 months").after(start) == datetime(2026, 6, 19, 9, tzinfo=UTC)
    assert Duration.parse("1 months").after(datetime(2026, 1, 31, 12, tzinfo=UTC)).day == 28
    assert Duration.parse("6 months").before(datetime(2026, 6, 19, 9, tzinfo=UTC)) == start


@given(
    day=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    n=st.integers(min_value=1, max_value=60),
)
def test_add_working_days_lands_on_a_working_day(day: date, n: int) -> None:
    due = CAL.add_working_days_to_date(day, n)
    assert CAL.is_working_day(due)
    assert (
        CAL.working_days_between(
            datetime.combine(day, time(9), LONDON), datetime.combine(due, time(9), LONDON)
        )
        == n
    )
