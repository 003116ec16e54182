"""The :class:`Store` protocol every store implements, and what stores share."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Protocol

from qaflow.errors import ConcurrencyError
from qaflow.records import (
    AnchorEntry,
    Deadline,
    Event,
    Notification,
    Step,
    Task,
    WorkflowSnapshot,
)

__all__ = ["Store", "breach_each", "check_next", "commit_each", "stale"]


class Store(Protocol):
    """What the engine, ``tick``, reports, the outbox and ``verify`` need of a store.

    Every method is safe to call from several threads on one store object, or the store
    says clearly that it is not. Ids passed in are text (a ``list`` of ids, never one text).
    Errors are :class:`~qaflow.errors.QAFlowError` subclasses: :class:`UnknownWorkflow`,
    :class:`ConcurrencyError` from ``commit``, :class:`StoreBusy` (retryable) when another
    writer holds the database too long, :class:`StoreError` when it cannot be used at all.

    **The anchor** (for ``verify``): ``commit`` also appends, in the same
    transaction, one :class:`~qaflow.records.AnchorEntry` per event to a store-wide,
    append-only log in commit order, whose ``head`` chains the previous head with
    (workflow id, seq, event hash) as :func:`~qaflow.records.anchor_head` defines. Two
    commits never share a position. SQLite appends under its write lock (``BEGIN
    IMMEDIATE``). PostgreSQL does not serialise commits on the log: a commit records its
    event as *pending* with its transaction id, and a short seal after it (or any later one)
    chains the rows of finished transactions in (xid, id) order; ``anchor`` returns the
    sealed rows then the pending ones with the heads a seal would give them, and
    ``anchor_tip`` seals first and returns the sealed tip (a position that never moves).
    """

    def load(self, workflow_id: str) -> WorkflowSnapshot: ...

    def commit(self, step: Step, *, expected_version: int) -> None: ...

    def commit_many(self, steps: Sequence[Step]) -> None:
        """Commit ``steps`` in order in one transaction, all or nothing.

        Each step is checked as :meth:`commit` checks it, at the version before its event
        (``step.event.seq - 1``), counting the batch's earlier steps: a stale one raises
        :class:`~qaflow.errors.ConcurrencyError` and nothing of the batch is written.
        """
        ...

    def fire_due(
        self, now: datetime, breach: Callable[[Deadline], Step | None], *, limit: int
    ) -> list[Step]:
        """Claim up to ``limit`` open deadlines due by ``now`` and commit their breach steps.

        In one transaction: claim deadlines no other ticker holds (PostgreSQL: ``FOR UPDATE
        SKIP LOCKED``; SQLite: the write lock; memory: one process), call ``breach`` for each
        (``None``: nothing to write; its loads see the claim's earlier writes) and commit the
        step it returns. A step refused as stale is skipped alone and its deadline stays open
        for the next round. Returns the steps written. A ticker that dies releases its claims
        when its transaction ends, so every breach fires exactly once.
        """
        ...

    def find_idempotent(self, workflow_id: str, key: str) -> Event | None: ...

    def events(self, workflow_id: str) -> list[Event]: ...

    def workflow_ids(self, machine: str | None = None) -> Iterator[str]: ...

    def snapshots(self, machine: str | None = None) -> Iterator[WorkflowSnapshot]: ...

    def find_workflows(
        self,
        *,
        machine: str | None = None,
        policy: str | None = None,
        state: str | None = None,
        team: str | None = None,
        overdue_at: datetime | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[WorkflowSnapshot]:
        """Snapshots matching every filter given, by workflow id, at most ``limit`` of them.

        ``team`` matches ``data["team_id"]`` (audits record it); ``overdue_at`` keeps the
        workflows with an open deadline due at or before it; ``after`` pages on: only ids
        sorting after it (keyset paging, stable while workflows are added). Reads only.
        """
        ...

    def due_deadlines(self, now: datetime) -> list[Deadline]: ...

    def open_deadlines(self, workflow_id: str | None = None) -> list[Deadline]: ...

    def pending_notifications(self, limit: int | None = None) -> list[Notification]: ...

    def notifications(self, workflow_id: str | None = None) -> list[Notification]: ...

    def mark_sent(self, ids: Iterable[str], at: datetime) -> int: ...

    def tasks(self, workflow_id: str | None = None, *, open_only: bool = False) -> list[Task]: ...

    def complete_tasks(self, ids: Iterable[str], at: datetime) -> int: ...

    def deadlines(self, workflow_id: str | None = None) -> list[tuple[Deadline, str]]:
        """Every deadline row ever opened, with its status: open, closed or breached."""
        ...

    def anchor(self) -> Iterator[AnchorEntry]:
        """The whole anchor log, in position order (1, 2, 3, ...)."""
        ...

    def anchor_tip(self) -> AnchorEntry | None:
        """The anchor's last entry (``None`` for an empty store): what a checkpoint records."""
        ...

    # --- period reads (the QA report; issue 14): cost follows the period, not the store ---

    def period_workflows(
        self, start: datetime, end: datetime, machines: Iterable[str] | None = None
    ) -> Iterator[tuple[WorkflowSnapshot, list[Event]]]:
        """Workflows created before ``end`` and last updated at or after ``start`` (of
        ``machines``, if given), in ``snapshots()`` order, each with its events before
        ``end`` in sequence order."""
        ...

    def quiet_workflows(
        self, start: datetime, end: datetime
    ) -> Iterator[tuple[str, str, str, int]]:
        """How many workflows created before ``end`` and last updated before ``start``
        there are, as ``(machine, policy, state, count)`` groups (their histories unread)."""
        ...

    def tasks_created(self, start: datetime, end: datetime) -> list[tuple[Task, datetime | None]]:
        """Tasks created in ``[start, end)``, each with when it was done (``None``: open)."""
        ...

    def notifications_created(self, start: datetime, end: datetime) -> list[Notification]:
        """Outbox rows created in ``[start, end)``."""
        ...


def stale(workflow_id: str, expected: int, actual: int, detail: str = "") -> ConcurrencyError:
    return ConcurrencyError(
        workflow_id=workflow_id, expected_version=expected, actual_version=actual, detail=detail
    )


def check_next(workflow_id: str, expected: int, actual: int, seq: int, *, key_taken: bool) -> None:
    """Refuse a step unless the workflow is at ``expected`` (its event ``expected + 1``) and
    its idempotency key is unused: the check of every store that checks before writing."""
    if actual != expected or seq != expected + 1:
        detail = "the workflow already exists" if expected == 0 and actual else ""
        raise stale(workflow_id, expected, actual, detail)
    if key_taken:
        raise stale(workflow_id, expected, actual, "idempotency key already used")


def commit_each(store: Store, steps: Iterable[Step]) -> None:
    """Commit ``steps`` one by one, each at the version before its event."""
    for step in steps:
        store.commit(step, expected_version=step.event.seq - 1)


def breach_each(
    deadlines: Iterable[Deadline],
    breach: Callable[[Deadline], Step | None],
    commit: Callable[[Step], None],
) -> list[Step]:
    """The body of every ``fire_due``: commit each claimed deadline's breach step; a step
    refused as stale is skipped alone (its deadline stays open for the next round)."""
    written: list[Step] = []
    for deadline in deadlines:
        step = breach(deadline)
        if step is None:
            continue
        try:
            commit(step)
        except ConcurrencyError:
            continue
        written.append(step)
    return written
