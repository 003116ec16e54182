"""Steps held back for one batch commit: what :meth:`Engine.batch` puts in front of a store."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime

from qaflow.errors import ValidationError
from qaflow.records import AnchorEntry, Deadline, Event, Notification, Step, Task, WorkflowSnapshot
from qaflow.store._find import Filters, FindWorkflows
from qaflow.store._protocol import Store, check_next, commit_each

__all__ = ["StagedStore"]


class StagedStore(FindWorkflows):
    """Collects steps in memory and writes them with one ``commit_many`` (all or nothing).

    Loads, histories and idempotency look-ups see the batch's own steps, so commands in a
    batch build on each other; the other queries see only what is committed. Each staged
    step is version-checked twice: here against the batch, and by the store at the end.
    """

    def __init__(self, base: Store) -> None:
        self.base = base
        self.steps: list[Step] = []
        self._heads: dict[str, WorkflowSnapshot] = {}
        self._events: dict[str, list[Event]] = {}
        self._keys: dict[tuple[str, str], Event] = {}

    def flush(self) -> None:
        """Commit every staged step in one transaction; raises, having written nothing."""
        steps, self.steps = self.steps, []
        self._heads.clear()
        self._events.clear()
        self._keys.clear()
        self.base.commit_many(steps)

    def load(self, workflow_id: str) -> WorkflowSnapshot:
        head = self._heads.get(workflow_id)
        return head if head is not None else self.base.load(workflow_id)

    def commit(self, step: Step, *, expected_version: int) -> None:
        event = step.event
        wid = event.workflow_id
        head = self._heads.get(wid)
        if head is not None:
            actual = head.version
        else:
            try:
                actual = self.base.load(wid).version
            except LookupError:
                actual = 0
        key = event.idempotency_key
        taken = key is not None and (wid, key) in self._keys
        check_next(wid, expected_version, actual, event.seq, key_taken=taken)
        self.steps.append(step)
        self._heads[wid] = step.snapshot
        self._events.setdefault(wid, []).append(event)
        if key is not None:
            self._keys[(wid, key)] = event

    def commit_many(self, steps: Sequence[Step]) -> None:
        commit_each(self, steps)

    def fire_due(
        self, now: datetime, breach: Callable[[Deadline], Step | None], *, limit: int
    ) -> list[Step]:
        raise ValidationError(
            field="tick", value=None, expected="called outside Engine.batch() (it commits itself)"
        )

    def find_idempotent(self, workflow_id: str, key: str) -> Event | None:
        staged = self._keys.get((workflow_id, key))
        return staged if staged is not None else self.base.find_idempotent(workflow_id, key)

    def events(self, workflow_id: str) -> list[Event]:
        staged = self._events.get(workflow_id, [])
        if staged and staged[0].seq == 1:
            return list(staged)
        return self.base.events(workflow_id) + staged

    def workflow_ids(self, machine: str | None = None) -> Iterator[str]:
        return self.base.workflow_ids(machine)

    def snapshots(self, machine: str | None = None) -> Iterator[WorkflowSnapshot]:
        return self.base.snapshots(machine)

    def _find(self, filters: Filters) -> list[WorkflowSnapshot]:
        return self.base.find_workflows(**filters._asdict())

    def due_deadlines(self, now: datetime) -> list[Deadline]:
        return self.base.due_deadlines(now)

    def open_deadlines(self, workflow_id: str | None = None) -> list[Deadline]:
        return self.base.open_deadlines(workflow_id)

    def pending_notifications(self, limit: int | None = None) -> list[Notification]:
        return self.base.pending_notifications(limit)

    def notifications(self, workflow_id: str | None = None) -> list[Notification]:
        return self.base.notifications(workflow_id)

    def mark_sent(self, ids: Iterable[str], at: datetime) -> int:
        return self.base.mark_sent(ids, at)

    def tasks(self, workflow_id: str | None = None, *, open_only: bool = False) -> list[Task]:
        return self.base.tasks(workflow_id, open_only=open_only)

    def complete_tasks(self, ids: Iterable[str], at: datetime) -> int:
        return self.base.complete_tasks(ids, at)

    def deadlines(self, workflow_id: str | None = None) -> list[tuple[Deadline, str]]:
        return self.base.deadlines(workflow_id)

    def anchor(self) -> Iterator[AnchorEntry]:
        return self.base.anchor()

    def anchor_tip(self) -> AnchorEntry | None:
        return self.base.anchor_tip()

    def period_workflows(
        self, start: datetime, end: datetime, machines: Iterable[str] | None = None
    ) -> Iterator[tuple[WorkflowSnapshot, list[Event]]]:
        return self.base.period_workflows(start, end, machines)

    def quiet_workflows(
        self, start: datetime, end: datetime
    ) -> Iterator[tuple[str, str, str, int]]:
        return self.base.quiet_workflows(start, end)

    def tasks_created(self, start: datetime, end: datetime) -> list[tuple[Task, datetime | None]]:
        return self.base.tasks_created(start, end)

    def notifications_created(self, start: datetime, end: datetime) -> list[Notification]:
        return self.base.notifications_created(start, end)
