"""The simulation driver's shortcuts give what the long way gives.

The scheduler's batch planning (``at_each``) plays actions in the same order as planning each
with ``at``; the actors' local dates and action moments, computed without a time-zone
conversion where London's date is the UTC date, equal the converted ones. (That whole
seeded runs are unchanged is pinned in ``test_sim_pinned.py``.)
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from qaflow.calendar import LONDON
from qaflow.clock import ManualClock
from qaflow.policies import bexley
from qaflow.sim import Scheduler
from qaflow.sim._escalation import _Moments

START = datetime(2026, 3, 1, tzinfo=UTC)
plans = st.lists(
    st.tuples(st.integers(-3, 40), st.integers(0, 1_000)),  # minutes from START, a label
    max_size=40,
)


def _played(plans: list[tuple[int, int]], *, batch: bool, until: int | None) -> list[object]:
    clock = ManualClock(START)
    end = None if until is None else START + timedelta(minutes=until)
    scheduler = Scheduler(clock, until=end)
    played: list[object] = []

    def act(label: int) -> None:
        played.append((clock.now(), label))
        if label % 7 == 0:  # an action that plans another, now and later
            scheduler.at(clock.now() - timedelta(minutes=1), act, label + 1)
            scheduler.at(clock.now() + timedelta(minutes=label % 5), act, label + 3)

    scheduler.at(START, act, -3)  # planned before the batch: ties with clamped moments
    scheduler.at(START + timedelta(minutes=5), act, -1)
    moments = [(START + timedelta(minutes=m), act, label) for m, label in plans]
    if batch:
        scheduler.at_each(moments)
    else:
        for when, action, label in moments:
            scheduler.at(when, action, label)
    scheduler.at(START + timedelta(minutes=5), act, -2)  # and after it, at a tied moment
    scheduler.run()
    return played


@given(plans, st.one_of(st.none(), st.integers(0, 45)))
def test_planning_a_batch_plays_as_planning_each_in_turn(
    plans: list[tuple[int, int]], until: int | None
) -> None:
    assert _played(plans, batch=True, until=until) == _played(plans, batch=False, until=until)


def test_a_batch_planned_mid_run_is_clamped_to_now_like_at() -> None:
    clock = ManualClock(START)
    scheduler = Scheduler(clock)
    seen: list[tuple[datetime, str]] = []

    def later(_: object) -> None:
        seen.append((clock.now(), "later"))
        scheduler.at_each([(START, lambda _: seen.append((clock.now(), "past")), None)])

    scheduler.at(START + timedelta(hours=1), later, None)
    scheduler.run()
    assert seen == [(START + timedelta(hours=1), "later"), (START + timedelta(hours=1), "past")]


def test_the_local_date_is_londons_on_every_day_from_1990_to_2100() -> None:
    moments = _Moments(bexley.POLICY.calendar, (time(9), time(9), time(10), time(11)))
    day = date(1990, 1, 1)
    while day.year <= 2100:
        midnight = datetime.combine(day, time(0), UTC)
        for moment in (
            midnight,
            midnight + timedelta(hours=1) - timedelta(microseconds=1),
            midnight + timedelta(hours=1),
            midnight + timedelta(hours=23) - timedelta(microseconds=1),
            midnight + timedelta(hours=23),
            midnight + timedelta(days=1) - timedelta(microseconds=1),
        ):
            assert moments.local_day(moment) == moment.astimezone(LONDON).toordinal(), moment
        day += timedelta(days=1)
    other = datetime(2026, 6, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # not UTC
    assert moments.local_date(other) == other.astimezone(LONDON).date() == date(2026, 6, 2)


@given(
    st.dates(date(1995, 1, 1), date(2090, 12, 31)),
    st.integers(0, 400),
    st.integers(0, 3),
)
def test_an_action_moment_is_the_local_time_on_the_kth_working_day(
    day: date, k: int, at: int
) -> None:
    calendar = bexley.POLICY.calendar
    times = (time(9), time(17, 30), time(8, 15), time(23, 45))
    moments = _Moments(calendar, times)
    target = calendar.add_working_days_to_date(day, k) if k else day
    expected = datetime.combine(target, times[at], LONDON).astimezone(UTC)
    assert moments.after(day.toordinal(), k, at) == expected
    assert moments.after(day.toordinal(), k, at) is moments.after(day.toordinal(), k, at)
    assert moments.day_after(day, k, at) == expected
    assert moments.month(day.toordinal()) == day.year * 12 + day.month - 1
