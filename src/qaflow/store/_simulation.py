"""The simulation store: what a simulated run reads back, and nothing else.

A :class:`SimulationStore` keeps each workflow's current snapshot (state, data, version,
open deadlines), the open deadlines ``tick`` fires, and the idempotency keys a commit checks.
It does **not** keep what has no meaning for a run played in memory and thrown away: the
event log and its hash chain (events carry no hash: ``hash`` and ``prev_hash`` are empty),
the store-wide anchor, closed and breached deadline rows, notification (outbox) and task
rows. Every read of those raises :class:`~qaflow.errors.ValidationError` naming what the
store does not keep, so ``verify``, ``replay``, ``history`` and reports refuse it plainly
rather than answer from an empty log.

It is written to only by an engine in simulation mode (``Engine(store, simulation=True)``,
which refuses any other store), whose commands run every check of a live command and compute
state, data and deadlines the same way, skipping only the hash and the outbox and task rows
(:func:`qaflow._compute.compute`, ``lean``). :func:`qaflow.simulate.simulate_escalations`
plays each chunk in one when no store is given; its summary is the same as with a
:class:`~qaflow.store.MemoryStore` (tested for every shipped ladder).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Final, NoReturn

from qaflow.errors import UnknownWorkflow, ValidationError
from qaflow.records import (
    AnchorEntry,
    Deadline,
    Event,
    Notification,
    Step,
    Task,
    WorkflowSnapshot,
)
from qaflow.store._memory import MemoryStore
from qaflow.store._protocol import check_next, commit_each

__all__ = ["SimulationStore", "commit_to", "load_from"]

_HEAPPUSH: Final = heapq.heappush


class SimulationStore(MemoryStore):
    """Snapshots and open deadlines only, for simulation (see the module docstring).

    Not for threads: commits take no lock (one simulated run, one thread, writes it).
    """

    # ``load`` is the memory store's, restated here so that a compiled build compiles it (it
    # runs once a command; this module is in ``qaflow._compiled.HOT_MODULES``, the memory
    # store is not): the same answers and the same errors.

    def load(self, workflow_id: object) -> WorkflowSnapshot:
        """The workflow's snapshot; :class:`UnknownWorkflow` if there is none (as the memory
        store: an id that is not text is handed to it, for its own answer)."""
        return load_from(self, workflow_id)

    def _commit(self, step: Step, expected_version: int) -> None:
        """What the memory store's own paths (``tick``'s breaches) call: :meth:`commit`."""
        self.commit(step, expected_version=expected_version)

    def commit(self, step: Step, *, expected_version: int) -> None:
        """Commit ``step``: its snapshot and open deadlines replace the workflow's (see
        :func:`commit_to`, which the engine calls directly for an exact SimulationStore)."""
        commit_to(self, step, expected_version)

    def commit_many(self, steps: Sequence[Step]) -> None:
        """Commit ``steps`` all or nothing: each is checked against the batch first."""
        versions: dict[str, int] = {}
        keys: set[tuple[str, str]] = set()
        for step in steps:
            event = step.event
            wid = event.workflow_id
            if wid not in versions:
                current = self._snapshots.get(wid)
                versions[wid] = current.version if current is not None else 0
            key = event.idempotency_key
            taken = key is not None and ((wid, key) in self._keys or (wid, key) in keys)
            check_next(wid, event.seq - 1, versions[wid], event.seq, key_taken=taken)
            versions[wid] = event.seq
            if key is not None:
                keys.add((wid, key))
        commit_each(self, steps)

    # --- what it does not keep -----------------------------------------------------------

    def _not_kept(self, what: str) -> NoReturn:
        raise ValidationError(
            field="store",
            value=self,
            expected=f"a store that keeps {what} (a SimulationStore keeps only snapshots "
            "and open deadlines: use a MemoryStore, SQLiteStore or PostgresStore)",
        )

    def find_idempotent(self, workflow_id: str, key: str) -> Event | None:
        self._not_kept("events (an idempotent resend returns the first event)")

    def events(self, workflow_id: str) -> list[Event]:
        self._not_kept("the event log")

    def anchor(self) -> Iterator[AnchorEntry]:
        self._not_kept("the anchor (hash chain)")

    def anchor_tip(self) -> AnchorEntry | None:
        self._not_kept("the anchor (hash chain)")

    def deadlines(self, workflow_id: str | None = None) -> list[tuple[Deadline, str]]:
        self._not_kept("closed and breached deadline rows")

    def pending_notifications(self, limit: int | None = None) -> list[Notification]:
        self._not_kept("notification (outbox) rows")

    def notifications(self, workflow_id: str | None = None) -> list[Notification]:
        self._not_kept("notification (outbox) rows")

    def mark_sent(self, ids: Iterable[str], at: datetime) -> int:
        self._not_kept("notification (outbox) rows")

    def notifications_created(self, start: datetime, end: datetime) -> list[Notification]:
        self._not_kept("notification (outbox) rows")

    def tasks(self, workflow_id: str | None = None, *, open_only: bool = False) -> list[Task]:
        self._not_kept("task rows")

    def complete_tasks(self, ids: Iterable[str], at: datetime) -> int:
        self._not_kept("task rows")

    def tasks_created(self, start: datetime, end: datetime) -> list[tuple[Task, datetime | None]]:
        self._not_kept("task rows")

    def period_workflows(
        self, start: datetime, end: datetime, machines: Iterable[str] | None = None
    ) -> Iterator[tuple[WorkflowSnapshot, list[Event]]]:
        self._not_kept("the event log")

    def counts(self) -> dict[str, int]:
        """Row counts of what it keeps: workflows and open deadlines."""
        return {"workflows": len(self._snapshots), "open_deadlines": len(self._open)}


def commit_to(store: SimulationStore, step: Step, expected_version: int) -> None:
    """:meth:`SimulationStore.commit`: ``step``'s snapshot and open deadlines replace the
    workflow's, or nothing is written and :func:`~qaflow.store._protocol.check_next` raises.

    A function of its own so that the engine's command path calls it without a method
    look-up or a keyword to parse (one call, no lock: see :class:`SimulationStore`).
    """
    event = step.event
    wid = event.workflow_id
    seq = event.seq
    key = event.idempotency_key
    snapshots = store._snapshots
    current = snapshots.get(wid)
    actual = current.version if current is not None else 0
    keys = store._keys if key is not None else None
    if (
        actual != expected_version or seq != actual + 1 or (keys is not None and (wid, key) in keys)
    ):  # refused: check_next raises, naming why
        taken = keys is not None and (wid, key) in keys
        check_next(wid, expected_version, actual, seq, key_taken=taken)
    snapshots[wid] = step.snapshot
    if keys is not None and key is not None:
        keys[(wid, key)] = seq
    closed, breached = step.closed, step.breached
    if closed or breached:
        open_ids, deadlines = store._open, store._deadlines
        for did in (*closed, *breached):
            open_ids.discard(did)
            deadlines.pop(did, None)
    opened = step.opened
    if opened:
        deadlines, open_ids, heap = store._deadlines, store._open, store._heap
        for d in opened:
            did = d.id
            deadlines[did] = d
            open_ids.add(did)
            _HEAPPUSH(heap, (d.due_at, did))


def load_from(store: SimulationStore, workflow_id: object) -> WorkflowSnapshot:
    """:meth:`SimulationStore.load`, a function of its own so that the engine's command path
    calls it without a method look-up (see :func:`commit_to`)."""
    if type(workflow_id) is str:
        snapshot = store._snapshots.get(workflow_id)
        if snapshot is not None:
            return snapshot
        raise UnknownWorkflow(workflow_id=workflow_id)
    return MemoryStore.load(store, workflow_id)  # type: ignore[arg-type]
