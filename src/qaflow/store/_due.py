"""The memory stores' walk of their deadline heap: which open deadlines are due by a moment.

One function for :class:`~qaflow.store.MemoryStore` and the
:class:`~qaflow.store.SimulationStore` that inherits from it, in a module of its own so that a
compiled build compiles it (it is in ``qaflow._compiled.HOT_MODULES``; the memory store, a
class users subclass, stays Python).
"""

from __future__ import annotations

import heapq
from collections.abc import Container, Mapping
from datetime import datetime

from qaflow.records import Deadline

__all__ = ["due_by"]


def due_by(
    heap: list[tuple[datetime, str]],
    open_ids: Container[str],
    deadlines: Mapping[str, Deadline],
    moment: datetime,
) -> list[Deadline]:
    """The open deadlines due by ``moment`` (UTC), earliest first; the heap keeps them.

    Entries of deadlines no longer open are dropped from the top of the heap as they come
    (closed deadlines are not removed when they close: the heap is lazily cleaned).
    """
    while heap and heap[0][1] not in open_ids:
        heapq.heappop(heap)
    if not heap or heap[0][0] > moment:
        return []
    due: list[Deadline] = []
    taken: list[tuple[datetime, str]] = []
    while heap and heap[0][0] <= moment:
        item = heapq.heappop(heap)
        if item[1] in open_ids:
            taken.append(item)
            due.append(deadlines[item[1]])
    for item in taken:
        heapq.heappush(heap, item)
    return due
