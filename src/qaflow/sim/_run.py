"""The shared core of an audit programme run: engine, scheduler, counts and tasks.

:class:`Run` holds what every part of a programme uses: the engine (with the council's
directory, so every actor must hold the role it acts in), the :class:`Scheduler` bounded by
the period's end, one :class:`random.Random`, the knobs (a
:class:`~qaflow.sim._behaviour.ProgrammeBehaviour`) and the counts. ``tick`` runs before
every action, as a host's timer would; what it fires is offered to each ``follower`` (the
escalation actors) and counted. Tasks the machines open are completed through the store,
mostly before they fall due.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from qaflow.calendar import LONDON, WorkingCalendar
from qaflow.clock import ManualClock
from qaflow.engine import Engine
from qaflow.records import Actor, Step, Task
from qaflow.sim._behaviour import ProgrammeBehaviour
from qaflow.sim._council import Council
from qaflow.sim._scheduler import Scheduler
from qaflow.spec import MachineSpec
from qaflow.store import Store

__all__ = ["Run"]


def _call(action: Callable[[], object]) -> None:
    action()


class Run:
    """One programme run's engine, clock, queue, knobs and counts (see the module docstring)."""

    def __init__(
        self,
        council: Council,
        specs: list[MachineSpec],
        store: Store,
        calendar: WorkingCalendar,
        behaviour: ProgrammeBehaviour,
        *,
        seed: int,
        begin: datetime,
        end: datetime,
        prefix: str,
    ) -> None:
        self.council = council
        self.store = store
        self.calendar = calendar
        self.behaviour = behaviour
        self.seed = seed
        self.begin = begin
        self.end = end
        self.prefix = prefix
        self.rng = random.Random(f"programme:{seed}")
        self.clock = ManualClock(begin)
        self.scheduler = Scheduler(self.clock, until=end)
        self.engine = Engine(store, specs, clock=self.clock, directory=council.directory)
        self.counts: dict[str, int] = {}
        self.followers: list[Callable[[Step], bool]] = []
        self.sa_tasks: dict[str, list[str]] = {}
        auditors = sorted((*council.team_managers, *council.service_managers))
        n_slow = round(behaviour.slow_auditor_share * len(auditors))
        self.slow = frozenset(self.rng.sample(auditors, n_slow))

    # --- bookkeeping --------------------------------------------------------------------

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def later(self, when: datetime, action: Callable[[], object]) -> None:
        """Plan ``action()`` for ``when``; actions after the period are not played."""
        self.scheduler.at(when, _call, action)

    def play(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Play everything planned; ``progress(days, total)`` counts simulated days."""
        total = max(1, (self.end - self.begin).days)
        shown = -1

        def before(now: datetime) -> None:
            nonlocal shown
            if progress is not None and (now - self.begin).days > shown:
                shown = min(total, (now - self.begin).days)
                progress(shown, total)
            self.tick(now)

        self.scheduler.run(before)
        if self.end > self.clock.now():
            self.clock.set(self.end)
        self.tick(self.clock.now())
        if progress is not None:
            progress(total, total)

    def tick(self, now: datetime) -> None:
        for step in self.engine.tick(now):
            self.count("breaches")
            self.after(step)
            for follow in self.followers:
                if follow(step):
                    break

    def after(self, step: Step) -> None:
        """Book a written step: count it and plan when its tasks get done."""
        self.count("events")
        for task in step.tasks:
            self.plan_task(task)

    def fire(
        self, wid: str, trigger: str, actor: Actor, payload: Mapping[str, Any] | None = None
    ) -> Step:
        step = self.engine.fire(wid, trigger, actor, payload)
        self.after(step)
        return step

    # --- time ---------------------------------------------------------------------------

    def local(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, LONDON).astimezone(UTC)

    def working_day(self, moment: datetime, k: int, hour: int | None = None) -> datetime:
        """A moment on the ``k``-th working day after ``moment``'s local date (random hour
        in office hours unless ``hour`` is given)."""
        day = self.calendar.add_working_days_to_date(moment.astimezone(LONDON).date(), k)
        if hour is None:
            at = time(self.rng.randint(9, 16), self.rng.randrange(0, 60, 5))
        else:
            at = time(hour, self.rng.randrange(0, 30, 5))
        return self.local(day, at)

    # --- tasks --------------------------------------------------------------------------

    def plan_task(self, task: Task) -> None:
        """Plan the task's completion: mostly before it falls due, sometimes late."""
        if task.kind == "self_assessment":
            self.sa_tasks.setdefault(task.workflow_id, []).append(task.id)
            return
        rng = self.rng
        on_time = self.behaviour.task_on_time_rate
        if task.owner_id in self.slow:
            on_time /= 2
        if task.due_at is not None:
            span = task.due_at - task.created_at
            if rng.random() < on_time:
                done = task.created_at + span * rng.uniform(0.1, 0.95)
            else:
                done = task.due_at + timedelta(hours=rng.uniform(2, 96))
        else:
            done = self.working_day(task.created_at, rng.randint(1, 10))
        self.later(done, lambda: self.complete([task.id]))

    def complete(self, ids: list[str]) -> None:
        self.count("tasks_completed", self.store.complete_tasks(ids, self.clock.now()))
