"""The one virtual-time scheduler every simulation runs on.

A :class:`Scheduler` is a heap of planned actions over a :class:`~qaflow.clock.ManualClock`:
:meth:`Scheduler.at` plans ``action(arg)`` for a moment, :meth:`Scheduler.run` plays the
actions in time order (ties in the order they were planned), moving the clock forward to
each one first. An action planned in the past runs now; with ``until`` set, actions at or
after it are dropped (a programme's period ends, whatever was still planned). Both the
escalation simulation and the audit programme use it, so "what happens next" has one
definition.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from qaflow.clock import ManualClock

__all__ = ["Scheduler"]

_T = TypeVar("_T")


class Scheduler:
    """Planned actions in virtual time (see the module docstring)."""

    __slots__ = ("_queue", "_seq", "clock", "until")

    def __init__(self, clock: ManualClock, *, until: datetime | None = None) -> None:
        self.clock = clock
        self.until = until
        self._queue: list[tuple[datetime, int, Callable[[Any], object], Any]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._queue)

    def at(self, when: datetime, action: Callable[[_T], object], arg: _T) -> None:
        """Plan ``action(arg)`` for ``when`` (now if earlier; dropped at or after ``until``)."""
        until = self.until
        if until is not None and when >= until:
            return
        now = self.clock.now()
        if when < now:
            when = now
        self._seq += 1
        heapq.heappush(self._queue, (when, self._seq, action, arg))

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
