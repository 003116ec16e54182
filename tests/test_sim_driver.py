"""The simulation driver's shortcuts give what the long way gives.

The scheduler's batch planning (``at_each``) plays actions in the same order as planning each
with ``at``, a batch planned while another plays too; the actors drive an exact ``Engine``
through its command path directly and a subclass through its methods, with the same paths;
the actors' local dates and action moments, computed without a time-zone
conversion where London's date is the UTC date, equal the converted ones. (That whole
seeded runs are unchanged is pinned in ``test_sim_pinned.py``.)
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from random import Random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qaflow import Actor, Engine
from qaflow.calendar import LONDON
from qaflow.clock import ManualClock
from qaflow.machines.escalation import escalation_machine
from qaflow.policies import bexley
from qaflow.records import Step
from qaflow.sim import Behaviour, Scheduler
from qaflow.sim._escalation import Escalation, EscalationActors
from qaflow.sim._moments import Moments
from qaflow.store import SimulationStore

START = datetime(2026, 3, 1, tzinfo=UTC)
plans = st.lists(
    st.tuples(st.integers(-3, 40), st.integers(0, 1_000)),  # minutes from START, a label
    max_size=40,
)


def _plan(scheduler: Scheduler, act: Any, plans: list[tuple[int, int]], *, batch: bool) -> None:
    """Plan ``act`` at each (minute, label) of ``plans``: one batch, or action by action."""
    moments = [(START + timedelta(minutes=m), act, label) for m, label in plans]
    if batch:
        scheduler.at_each(moments)
    else:
        for when, action, label in moments:
            scheduler.at(when, action, label)


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
    _plan(scheduler, act, plans, batch=batch)
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
    moments = Moments(bexley.POLICY.calendar, (time(9), time(9), time(10), time(11)))
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
    moments = Moments(calendar, times)
    target = calendar.add_working_days_to_date(day, k) if k else day
    expected = datetime.combine(target, times[at], LONDON).astimezone(UTC)
    assert moments.after(day.toordinal(), k, at) == expected
    assert moments.after(day.toordinal(), k, at) is moments.after(day.toordinal(), k, at)
    assert moments.day_after(day, k, at) == expected
    assert moments.month(day.toordinal()) == day.year * 12 + day.month - 1


def _two_batches(
    first: list[tuple[int, int]], second: list[tuple[int, int]], mid: int, *, batch: bool
) -> list[object]:
    """``first`` planned before the run, ``second`` by an action at minute ``mid``, while
    what ``first`` planned is still being played (each as one batch, or action by action)."""
    clock = ManualClock(START)
    scheduler = Scheduler(clock)
    played: list[object] = []

    def act(label: int) -> None:
        played.append((clock.now(), label))

    _plan(scheduler, act, first, batch=batch)
    scheduler.at(
        START + timedelta(minutes=mid), lambda _: _plan(scheduler, act, second, batch=batch), None
    )
    scheduler.at(START + timedelta(minutes=mid), act, -5)  # tied with the second's clamped
    scheduler.run()
    return played


@given(plans, plans, st.integers(-3, 45))
def test_a_batch_planned_while_another_plays_merges_as_planning_each_in_turn(
    first: list[tuple[int, int]], second: list[tuple[int, int]], mid: int
) -> None:
    assert _two_batches(first, second, mid, batch=True) == _two_batches(
        first, second, mid, batch=False
    )


def test_the_length_is_every_action_planned_and_not_yet_played() -> None:
    clock = ManualClock(START)
    scheduler = Scheduler(clock)
    left: list[int] = []
    minute = timedelta(minutes=1)
    scheduler.at(START, lambda _: left.append(len(scheduler)), None)
    scheduler.at(START, lambda _: left.append(len(scheduler)), None)
    scheduler.at_each(
        [(START + k * minute, lambda _: left.append(len(scheduler)), k) for k in (2, 1)]
    )
    assert len(scheduler) == 4
    scheduler.run()
    assert left == [3, 2, 1, 0]
    assert len(scheduler) == 0


def test_a_moment_in_another_zone_moves_the_clock_as_set_does() -> None:
    clock = ManualClock(START)
    scheduler = Scheduler(clock)
    seen: list[datetime] = []
    later = (START + timedelta(hours=2)).astimezone(timezone(timedelta(hours=5)))
    scheduler.at(later, lambda _: seen.append(clock.now()), None)
    scheduler.run()
    assert seen == [START + timedelta(hours=2)]
    assert seen[0].tzinfo is UTC  # normalised by ManualClock.set, as before


# --- the actors and the engine they drive ---------------------------------------------------


class _CountingEngine(Engine):
    """An Engine subclass: the actors must drive it through its own methods."""

    commands = 0

    def start(self, *args: Any, **kwargs: Any) -> Step:
        _CountingEngine.commands += 1
        return super().start(*args, **kwargs)

    def fire(self, *args: Any, **kwargs: Any) -> Step:
        _CountingEngine.commands += 1
        return super().fire(*args, **kwargs)


def _escalations_played(engine_class: type[Engine]) -> list[tuple[str, str, int, datetime]]:
    ladder = bexley.IRO_LADDER
    spec = escalation_machine(ladder, bexley.POLICY)
    clock = ManualClock(START)
    engine = engine_class(SimulationStore(), [spec], clock=clock, simulation=True)
    scheduler = Scheduler(clock)
    ended: list[tuple[str, str, int, datetime]] = []

    def on_end(esc: Escalation, step: Step) -> None:
        ended.append((esc.wid, step.snapshot.state, step.snapshot.version, step.event.at))

    actors = EscalationActors(
        ladder, spec, Behaviour(), engine=engine, scheduler=scheduler, rng=Random(7), on_end=on_end
    )
    raiser = Actor("IRO-01", ladder.raiser)
    for i in range(40):
        actors.begin(
            Escalation(i, f"W-{i:03d}", raiser, f"S-{i:03d}"), START + i * timedelta(hours=3)
        )
    scheduler.run()
    actors.close()
    with pytest.raises(RuntimeError):  # closed: its actions are dropped
        actors.begin(Escalation(40, "W-040", raiser, "S-040"), START)
        scheduler.run()
    return ended


def test_actors_drive_an_engine_subclass_through_its_methods_with_the_same_paths() -> None:
    """An exact Engine is driven through qaflow._command directly; a subclass through its
    own start and fire, every command of the same paths."""
    direct = _escalations_played(Engine)
    assert _CountingEngine.commands == 0
    through = _escalations_played(_CountingEngine)
    assert len(direct) == 40
    assert through == direct
    assert _CountingEngine.commands >= 40 * 2
