"""The one virtual-time scheduler every simulation runs on.

A :class:`Scheduler` plans actions over a :class:`~qaflow.clock.ManualClock`:
:meth:`Scheduler.at` plans ``action(arg)`` for a moment, :meth:`Scheduler.run` plays the
actions in time order (ties in the order they were planned), moving the clock forward to
each one first. An action planned in the past runs now; with ``until`` set, actions at or
after it are dropped (a programme's period ends, whatever was still planned). Both the
escalation simulation and the audit programme use it, so "what happens next" has one
definition.

Simulated people act at a few moments of each working day, so hundreds of planned actions
share a handful of moments: each moment keeps a list of its actions in the order they were
planned (a bucket), and only the moments are kept in a heap. Planning is then an append to
the moment's list, and playing the next action a step along it; a moment's list is sorted by
the order of planning because :meth:`~Scheduler.at` numbers each action as it is planned.

:meth:`Scheduler.at_each` plans many actions at once, exactly as that many calls of
:meth:`~Scheduler.at` in the same order would (the same moments, the same order of ties),
but keeps them in one sorted list beside the moments, played in turn with them: a
simulation plans every raise of a chunk before it starts, and thousands of future raises,
each at a moment of its own, would otherwise each hold a list and a place in the heap.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, Final, TypeVar

from qaflow.clock import ManualClock

__all__ = ["Scheduler"]

_UTC: Final = UTC
_DATETIME: Final = datetime
_moment: Final = itemgetter(0)

_T = TypeVar("_T")
_Entry = tuple[int, Callable[[Any], object], Any]
"""(planned order, action, argument): one action in its moment's list."""
_Planned = tuple[datetime, int, Callable[[Any], object], Any]
"""(moment, planned order, action, argument): one action of an :meth:`Scheduler.at_each` batch."""


class Scheduler:
    """Planned actions in virtual time (see the module docstring)."""

    __slots__ = (
        "_batch",
        "_buckets",
        "_manual",
        "_moments",
        "_next",
        "_pos",
        "_seq",
        "clock",
        "until",
    )

    def __init__(self, clock: ManualClock, *, until: datetime | None = None) -> None:
        self.clock = clock
        self._manual = type(clock) is ManualClock  # read without a call (a subclass is asked)
        self.until = until
        self._moments: list[datetime] = []  # a heap: each moment with a list in _buckets
        self._buckets: dict[datetime, list[_Entry]] = {}
        self._pos = 0  # how far the list of the earliest moment has been played
        self._seq = 0
        self._batch: list[_Planned] = []  # what at_each planned, sorted
        self._next = 0  # the place in _batch of the next of them to play

    def __len__(self) -> int:
        """The number of actions planned and not yet played."""
        waiting = sum(len(bucket) for bucket in self._buckets.values()) - self._pos
        return waiting + len(self._batch) - self._next

    def _now(self) -> datetime:
        clock = self.clock
        return clock._now if self._manual else clock.now()

    def at(self, when: datetime, action: Callable[[_T], object], arg: _T) -> None:
        """Plan ``action(arg)`` for ``when`` (now if earlier; dropped at or after ``until``)."""
        until = self.until
        if until is not None and when >= until:
            return
        now = self._now()
        if when is not now and when < now:
            when = now
        seq = self._seq + 1
        self._seq = seq
        entry: _Entry = (seq, action, arg)
        bucket = self._buckets.get(when)
        if bucket is None:
            self._buckets[when] = [entry]
            heapq.heappush(self._moments, when)
        else:  # planned last of all: last of its moment
            bucket.append(entry)

    def at_each(self, plans: Iterable[tuple[datetime, Callable[[_T], object], _T]]) -> None:
        """Plan each ``(when, action, arg)`` of ``plans``: the same as calling :meth:`at`
        for each in turn, kept in one sorted list beside the moments' lists."""
        until = self.until
        now = self._now()
        seq = self._seq
        batch: list[_Planned] = self._batch[self._next :]  # what earlier batches left
        for when, action, arg in plans:
            if until is not None and when >= until:
                continue
            seq += 1
            batch.append((now if when < now else when, seq, action, arg))
        self._seq = seq
        # by moment alone: the sort is stable and ties are in planned order already (what
        # earlier batches left, sorted, all planned before these), so this is (moment, seq)
        # order, with one datetime comparison per step instead of two tuple ones
        batch.sort(key=_moment)
        self._batch = batch
        self._next = 0

    def run(self, before: Callable[[datetime], object] | None = None) -> None:
        """Play every planned action (and those they plan) in time order.

        ``before(now)``, when given, runs before each action, after the clock has moved:
        the audit programme ticks the whole store there, as a host's timer would.
        """
        moments = self._moments
        buckets = self._buckets
        clock = self.clock
        manual = self._manual
        now = clock.now()
        top: datetime | None = None  # the earliest moment when its list was last looked up
        bucket: list[_Entry] = []
        while True:
            # the next action: the earliest moment's next, or the batch's next if that is
            # earlier ((moment, seq) order, as if every action were in one heap)
            batch = self._batch
            i = self._next
            if moments:
                moment = moments[0]
                if moment is not top:
                    bucket = buckets[moment]
                    top = moment
                pos = self._pos
                if pos == len(bucket):  # every action of the moment played
                    heapq.heappop(moments)
                    del buckets[moment]
                    self._pos = 0
                    top = None
                    continue
                seq, action, arg = bucket[pos]
                if i < len(batch):
                    first = batch[i]
                    at = first[0]
                    if at is moment:
                        earlier = first[1] < seq
                    elif at > moment:  # the common case: one comparison
                        earlier = False
                    else:  # earlier, or the same moment planned before
                        earlier = at < moment or first[1] < seq
                    if earlier:
                        moment, _, action, arg = first
                        self._next = i + 1
                    else:
                        self._pos = pos + 1
                else:
                    self._pos = pos + 1
            elif i < len(batch):
                moment, _, action, arg = batch[i]
                self._next = i + 1
            else:
                if batch:
                    self._batch = []
                    self._next = 0
                return
            if moment is not now and moment > now:
                # ManualClock.set's work when the moment is already an exact UTC datetime
                if manual and type(moment) is _DATETIME and moment.tzinfo is _UTC:
                    clock._now = moment
                    now = moment
                else:
                    now = clock.set(moment)
            if before is not None:
                before(now)
            action(arg)
