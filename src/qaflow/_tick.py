"""``tick``'s rounds: due deadlines claimed from the store and fired as breaches.

Each round the store claims up to ``limit`` due deadlines that no other ticker holds and
commits their breaches in one transaction (:meth:`qaflow.store.Store.fire_due`). A workflow
that cannot be ticked (pinned to an unregistered spec, a damaged row) is skipped and reported
as a :class:`~qaflow.records.TickFailure`; the others go on. A busy store stops the tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from qaflow.errors import StoreBusy
from qaflow.records import Deadline, Step, TickFailure, WorkflowSnapshot
from qaflow.store import Store

__all__ = ["MAX_TICK_ROUNDS", "run_tick"]

log = logging.getLogger("qaflow.engine")

MAX_TICK_ROUNDS = 10_000
"""A bound on rounds: a breach may open a deadline already due, so ticks go round."""

BreachStep = Callable[[WorkflowSnapshot, Deadline, datetime], Step]


def run_tick(
    store: Store, now: datetime, limit: int, breach_step: BreachStep
) -> tuple[list[Step], list[TickFailure]]:
    """Fire every deadline due by ``now``; return the steps written and what failed."""
    steps: list[Step] = []
    failures: dict[str, TickFailure] = {}

    def breach(deadline: Deadline) -> Step | None:
        if deadline.workflow_id in failures:
            return None
        try:
            snapshot = store.load(deadline.workflow_id)
            # The snapshot's copy is the one replay vouches for (not the row's).
            wanted = deadline.id
            pinned = None
            for open_one in snapshot.deadlines:
                if open_one.id == wanted:
                    pinned = open_one
                    break
            if pinned is None:
                return None  # already closed by an earlier step
            return breach_step(snapshot, pinned, now)
        except Exception as error:  # one unusable workflow must not stop the others
            if isinstance(error, StoreBusy) or getattr(error, "retryable", False):
                raise  # the database, not the workflow: busy, or a statement to prepare again
            log.warning("tick skipped workflow %s: %s", deadline.workflow_id, type(error).__name__)
            failures[deadline.workflow_id] = TickFailure(
                deadline.workflow_id, deadline.id, f"{type(error).__name__}: {error}"
            )
            return None

    for _ in range(MAX_TICK_ROUNDS):
        written = store.fire_due(now, breach, limit=limit)
        if not written:
            break
        steps.extend(written)
    return steps, list(failures.values())
