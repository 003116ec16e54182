"""The one virtual-time scheduler every simulation runs on.

A :class:`Scheduler` is a heap of planned actions over a :class:`~qaflow.clock.ManualClock`:
:meth:`Scheduler.at` plans ``action(arg)`` for a moment, :meth:`Scheduler.run` plays the
actions in time order (ties in the order they were planned), moving the clock forward to
each one first. An action planned in the past runs now; with ``until`` set, actions at or
after it are dropped (a programme's period ends, whatever was still planned). Both the
escalation simulation and the audit programme use it, so "what happens next" has one
definition.

:meth:`Scheduler.at_each` plans many actions at once, exactly as that many calls of
:meth:`~Scheduler.at` in the same order would (the same moments, the same order of ties),
but keeps them sorted aside and lets only the next one into the heap: a simulation plans
every raise of a chunk before it starts, and a heap holding thousands of future raises
made every other action's push and pop slower.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from qaflow.clock import ManualClock

__all__ = ["Scheduler"]

_T = TypeVar("_T")
_Entry = tuple[datetime, int, Callable[[Any], object], Any]


class Scheduler:
    """Planned actions in virtual time (see the module docstring)."""

    __slots__ = ("_queue", "_seq", "clock", "until")

    def __init__(self, clock: ManualClock, *, until: datetime | None = None) -> None:
        self.clock = clock
        self.until = until
        self._queue: list[_Entry] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._queue)

    def at(self, when: datetime, action: Callable[[_T], object], arg: _T) -> None:
        """Plan ``action(arg)`` for ``when`` (now if earlier; dropped at or after ``until``)."""
        until = self.until
        if until is not None and when >= until:
            return
        clock = self.clock
        # a ManualClock read without a Python-level call (a subclass is asked)
        now = clock._now if type(clock) is ManualClock else clock.now()
        if when < now:
            when = now
        self._seq += 1
        heapq.heappush(self._queue, (when, self._seq, action, arg))

    def at_each(self, plans: Iterable[tuple[datetime, Callable[[_T], object], _T]]) -> None:
        """Plan each ``(when, action, arg)`` of ``plans``: the same as calling :meth:`at`
        for each in turn, with only the earliest of them in the heap at any time."""
        until = self.until
        now = self.clock.now()
        seq = self._seq
        batch: list[_Entry] = []
        for when, action, arg in plans:
            if until is not None and when >= until:
                continue
            seq += 1
            batch.append((now if when < now else when, seq, action, arg))
        self._seq = seq
        if batch:
            batch.sort()  # (moment, seq) is unique: actions are never compared
            when, seq, _, _ = batch[0]
            heapq.heappush(self._queue, (when, seq, self._next_of, (batch, 0)))

    def _next_of(self, place: tuple[list[_Entry], int]) -> None:
        """Let the next action of an :meth:`at_each` batch into the heap, then run this one
        (the next one's (moment, seq) is not earlier: the order is that of the heap)."""
        batch, i = place
        if i + 1 < len(batch):
            when, seq, _, _ = batch[i + 1]
            heapq.heappush(self._queue, (when, seq, self._next_of, (batch, i + 1)))
        _, _, action, arg = batch[i]
        action(arg)

    def run(self, before: Callable[[datetime], object] | None = None) -> None:
        """Play every planned action (and those they plan) in time order.

        ``before(now)``, when given, runs before each action, after the clock has moved:
        the audit programme ticks the whole store there, as a host's timer would.
        """
        queue = self._queue
        pop = heapq.heappop
        clock = self.clock
        now = clock.now()
        if before is None:
            while queue:
                when, _, action, arg = pop(queue)
                if when > now:
                    now = clock.set(when)
                action(arg)
            return
        while queue:
            when, _, action, arg = pop(queue)
            if when > now:
                now = clock.set(when)
            before(now)
            action(arg)
