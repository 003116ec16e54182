"""One chunk of an escalation simulation played: engine, actors, scheduler and the paths' ends.

:func:`play` is the per-chunk loop behind :func:`qaflow.simulate.simulate_escalations` (which
checks every argument and splits the run into chunks); :class:`PathEnds` is what the actors
call as each escalation ends. Both run once per path or more, so this module is one of
``qaflow._compiled.HOT_MODULES``; everything it is given has been checked by the facade.
The engine is driven through its public :meth:`~qaflow.Engine.start`, :meth:`~qaflow.Engine.fire`
and :meth:`~qaflow.Engine.tick`, with every check.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from random import Random
from typing import TYPE_CHECKING

from qaflow.calendar import LONDON
from qaflow.clock import ManualClock
from qaflow.engine import Engine
from qaflow.machines.escalation import REFERRED, state_of
from qaflow.records import Actor, Step
from qaflow.sim._escalation import _RAISE, Escalation, EscalationActors
from qaflow.sim._results import EscalationPath
from qaflow.sim._scheduler import Scheduler
from qaflow.sim._tally import Tally
from qaflow.spec import MachineSpec
from qaflow.store import MemoryStore, SimulationStore, Store

if TYPE_CHECKING:
    from qaflow.sim._simulate import _Job

__all__ = ["PathEnds", "play"]


class PathEnds:
    """Counts each escalation as it ends into ``tally`` (and keeps its path when asked)."""

    def __init__(
        self,
        tally: Tally,
        stage_names: dict[int, str],
        kept: list[EscalationPath | None] | None,
        first: int,
        progress: Callable[[int, int], None] | None,
        done_before: int,
        n: int,
    ) -> None:
        self.tally = tally
        self.stage_names = stage_names
        self.kept = kept
        self.first = first
        self.progress = progress
        self.done_before = done_before
        self.n = n
        self.every = max(1, n // 200)

    def __call__(self, esc: Escalation, step: Step) -> None:
        snapshot = step.snapshot
        data = snapshot.data
        level = data["level"]
        assert isinstance(level, int)
        days = int(data["working_days_open"])
        tally = self.tally
        kept = self.kept
        if kept is not None:
            raised = esc.raised_at
            assert raised is not None
            path = EscalationPath(
                esc.wid,
                snapshot.state,
                self.stage_names[level],
                level,
                raised,
                step.event.at,
                days,
                esc.commands,
                esc.breaches,
                esc.asked,
                esc.granted,
                esc.bypasses,
            )
            tally.add(path)
            kept[esc.index - self.first] = path
        else:
            tally.count(
                snapshot.state,
                self.stage_names[level],
                days,
                esc.commands,
                esc.breaches,
                esc.asked,
                esc.granted,
                esc.bypasses,
            )
        progress = self.progress
        if progress is not None:
            done = self.done_before + tally.paths
            if done == self.n or done % self.every == 0:
                progress(done, self.n)


@lru_cache(maxsize=8)
def _minutes(window: int) -> tuple[timedelta, ...]:
    """Each offset of a raise within its window, ``timedelta(minutes=k)`` for k < ``window``
    (built once per process: a raise draws one)."""
    return tuple(timedelta(minutes=k) for k in range(window))


def play(
    job: _Job,
    spec: MachineSpec,
    store: Store | None,
    progress: Callable[[int, int], None] | None,
    done_before: int,
) -> tuple[Tally, tuple[EscalationPath, ...]]:
    """Play one chunk; its tally and (when kept) its paths in index order."""
    first = job.chunk * job.size
    count = min(job.size, job.n - first)
    rng = Random(f"{job.seed}/{job.chunk}")
    clock = ManualClock(datetime(1990, 1, 1, tzinfo=UTC))
    if store is not None:
        engine = Engine(store, [spec], clock=clock)
    elif job.lean:
        engine = Engine(SimulationStore(), [spec], clock=clock, simulation=True)
    else:
        engine = Engine(MemoryStore(), [spec], clock=clock)
    scheduler = Scheduler(clock)
    ladder = job.ladder
    tally = Tally()
    kept: list[EscalationPath | None] | None = [None] * count if job.keep_paths else None
    stage_names = {lv: state_of(ladder, lv) for lv in ladder.levels}
    if ladder.referral_level is not None:
        stage_names[ladder.referral_level] = REFERRED
    on_end = PathEnds(tally, stage_names, kept, first, progress, done_before, job.n)
    actors = EscalationActors(
        ladder, spec, job.behaviour, engine=engine, scheduler=scheduler, rng=rng, on_end=on_end
    )
    day0 = job.start.astimezone(LONDON).date()
    days = actors.calendar.working_dates(day0, day0 + timedelta(days=job.period_days - 1))
    if not days:
        days = [actors.calendar.add_working_days_to_date(day0, 1)]
    role = ladder.raiser
    raisers = [Actor(f"{role.upper()}-{k:02d}", role) for k in range(1, job.behaviour.raisers + 1)]
    width = max(6, len(str(job.n)))
    zeros = ["0" * k for k in range(width + 1)]
    prefix = job.prefix
    start = job.start
    minutes = _minutes(job.behaviour.raise_window_minutes)
    window = len(minutes)
    n_days = len(days)
    n_raisers = len(raisers)
    random = rng.random
    after = actors.moments.after
    plans: list[tuple[Escalation, datetime]] = []
    for i in range(first, first + count):
        day = days[int(random() * n_days)].toordinal()
        when = after(day, 0, _RAISE) + minutes[int(random() * window)]
        number = str(i + 1)  # f"{prefix}-{i + 1:0{width}d}" and f"S-{i + 1:06d}", unformatted
        digits = len(number)
        esc = Escalation(
            i,
            f"{prefix}-{zeros[width - digits]}{number}",
            raisers[i % n_raisers],
            f"S-{zeros[6 - digits] if digits < 6 else ''}{number}",
        )
        plans.append((esc, start if start > when else when))
    actors.begin_each(plans)
    try:
        scheduler.run()
    finally:
        actors.close()
    assert tally.paths == count, "every path ends"
    tally.add_play(actors.breaches_by_stage, actors.load)
    return tally, tuple(p for p in kept or () if p is not None)
