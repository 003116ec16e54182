"""An in-memory store: the same contract as SQLite, for simulation and tests."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime

from qaflow._checks import check_ids, to_utc
from qaflow.errors import UnknownWorkflow, ValidationError
from qaflow.records import (
    GENESIS_HASH,
    AnchorEntry,
    Deadline,
    Event,
    Notification,
    Step,
    Task,
    WorkflowSnapshot,
    anchor_head,
)
from qaflow.store._due import due_by
from qaflow.store._find import Filters, FindWorkflows
from qaflow.store._protocol import breach_each, check_next, commit_each
from qaflow.store._staged import StagedStore

__all__ = ["MemoryStore"]


def _wid(workflow_id: object) -> str:
    if not isinstance(workflow_id, str):
        raise ValidationError(field="workflow_id", value=workflow_id, expected="text")
    return workflow_id


class MemoryStore(FindWorkflows):
    """An in-process store for simulation and tests: same contract, no durability.

    Commits are serialised by a lock, so one store may be shared by threads. The anchor's
    heads are computed when asked for: a commit only appends the event to the log.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log: list[Event] = []
        self._heads: list[str] = []
        self._breached: set[str] = set()
        self._snapshots: dict[str, WorkflowSnapshot] = {}
        self._events: dict[str, list[Event]] = {}
        self._keys: dict[tuple[str, str], int] = {}
        self._deadlines: dict[str, Deadline] = {}
        self._open: set[str] = set()
        self._heap: list[tuple[datetime, str]] = []
        self._notifications: dict[str, Notification] = {}
        self._unsent: dict[str, None] = {}
        self._tasks: dict[str, Task] = {}
        self._done: dict[str, datetime] = {}

    def load(self, workflow_id: str) -> WorkflowSnapshot:
        try:
            return self._snapshots[workflow_id]
        except KeyError:
            raise UnknownWorkflow(workflow_id=workflow_id) from None
        except TypeError:
            raise UnknownWorkflow(workflow_id=_wid(workflow_id)) from None

    def commit(self, step: Step, *, expected_version: int) -> None:
        with self._lock:
            self._commit(step, expected_version)

    def _commit(self, step: Step, expected_version: int) -> None:
        event = step.event
        wid = event.workflow_id
        current = self._snapshots.get(wid)
        actual = current.version if current is not None else 0
        key = event.idempotency_key
        taken = key is not None and (wid, key) in self._keys
        check_next(wid, expected_version, actual, event.seq, key_taken=taken)
        # Nothing below can fail: the commit is all or nothing. (Simulation commits millions
        # of steps, most with no rows of some kinds: each kind is skipped when empty.)
        self._snapshots[wid] = step.snapshot
        if current is None:
            self._events[wid] = [event]
        else:
            self._events[wid].append(event)
        if key is not None:
            self._keys[(wid, key)] = event.seq
        self._log.append(event)
        if step.closed or step.breached:
            discard = self._open.discard
            for did in step.closed:
                discard(did)
            for did in step.breached:
                discard(did)
                self._breached.add(did)
        if step.opened:
            deadlines, open_ids, heap = self._deadlines, self._open, self._heap
            for d in step.opened:
                deadlines[d.id] = d
                open_ids.add(d.id)
                heapq.heappush(heap, (d.due_at, d.id))
        if step.notifications:
            notifications, unsent = self._notifications, self._unsent
            for n in step.notifications:
                notifications[n.id] = n
                unsent[n.id] = None
        if step.tasks:
            tasks = self._tasks
            for t in step.tasks:
                tasks[t.id] = t

    def commit_many(self, steps: Sequence[Step]) -> None:
        """Commit ``steps`` all or nothing: every check runs before anything is written."""
        StagedStore(self).commit_many(steps)  # checks each against the store and the batch
        commit_each(self, steps)

    def fire_due(
        self, now: datetime, breach: Callable[[Deadline], Step | None], *, limit: int
    ) -> list[Step]:
        """Breach up to ``limit`` due deadlines (one process: nothing else can claim them)."""
        due = self.due_deadlines(now)[:limit]
        # A deadline closed by an earlier breach of this round is passed over.
        return breach_each(
            (d for d in due if d.id in self._open),
            breach,
            lambda step: self.commit(step, expected_version=step.event.seq - 1),
        )

    def find_idempotent(self, workflow_id: str, key: str) -> Event | None:
        seq = self._keys.get((_wid(workflow_id), key))
        return None if seq is None else self._events[workflow_id][seq - 1]

    def events(self, workflow_id: str) -> list[Event]:
        if _wid(workflow_id) not in self._snapshots:
            raise UnknownWorkflow(workflow_id=workflow_id)
        return list(self._events[workflow_id])

    def workflow_ids(self, machine: str | None = None) -> Iterator[str]:
        for wid, snap in list(self._snapshots.items()):
            if machine is None or snap.machine == machine:
                yield wid

    def snapshots(self, machine: str | None = None) -> Iterator[WorkflowSnapshot]:
        for snap in list(self._snapshots.values()):
            if machine is None or snap.machine == machine:
                yield snap

    def _find(self, filters: Filters) -> list[WorkflowSnapshot]:
        machine, policy, state, team, overdue_at, after, limit = filters
        if overdue_at is not None:
            overdue_at = to_utc(overdue_at, "overdue_at")
        found = [
            snap
            for wid, snap in self._snapshots.items()
            if (machine is None or snap.machine == machine)
            and (policy is None or snap.policy == policy)
            and (state is None or snap.state == state)
            and (team is None or snap.data.get("team_id") == team)
            and (after is None or wid > after)
            and (overdue_at is None or any(d.due_at <= overdue_at for d in snap.deadlines))
        ]
        found.sort(key=lambda snap: snap.workflow_id)
        return found[: max(limit, 0)]

    def due_deadlines(self, now: datetime) -> list[Deadline]:
        return due_by(self._heap, self._open, self._deadlines, to_utc(now, "now"))

    def open_deadlines(self, workflow_id: str | None = None) -> list[Deadline]:
        found = [self._deadlines[d] for d in self._open]
        if workflow_id is not None:
            found = [d for d in found if d.workflow_id == workflow_id]
        return sorted(found, key=lambda d: (d.due_at, d.id))

    def pending_notifications(self, limit: int | None = None) -> list[Notification]:
        ids = list(self._unsent)[:limit] if limit is not None else list(self._unsent)
        return [self._notifications[i] for i in ids]

    def notifications(self, workflow_id: str | None = None) -> list[Notification]:
        return [
            n
            for n in self._notifications.values()
            if workflow_id is None or n.workflow_id == workflow_id
        ]

    def mark_sent(self, ids: Iterable[str], at: datetime) -> int:
        to_utc(at, "at")
        count = 0
        for i in check_ids("ids", ids):
            if i in self._unsent:
                del self._unsent[i]
                count += 1
        return count

    def tasks(self, workflow_id: str | None = None, *, open_only: bool = False) -> list[Task]:
        return [
            t
            for t in self._tasks.values()
            if (workflow_id is None or t.workflow_id == workflow_id)
            and not (open_only and t.id in self._done)
        ]

    def complete_tasks(self, ids: Iterable[str], at: datetime) -> int:
        at = to_utc(at, "at")
        count = 0
        for i in check_ids("ids", ids):
            if i in self._tasks and i not in self._done:
                self._done[i] = at
                count += 1
        return count

    def deadlines(self, workflow_id: str | None = None) -> list[tuple[Deadline, str]]:
        out = []
        for did, d in list(self._deadlines.items()):
            if workflow_id is None or d.workflow_id == workflow_id:
                status = (
                    "open"
                    if did in self._open
                    else "breached"
                    if did in self._breached
                    else "closed"
                )
                out.append((d, status))
        return out

    def anchor(self) -> Iterator[AnchorEntry]:
        with self._lock:
            log = list(self._log)
            heads = self._heads
            head = heads[-1] if heads else GENESIS_HASH
            for event in log[len(heads) :]:
                head = anchor_head(head, event.workflow_id, event.seq, event.hash)
                heads.append(head)
        for n, event in enumerate(log):
            yield AnchorEntry(n + 1, event.workflow_id, event.seq, event.hash, heads[n])

    def anchor_tip(self) -> AnchorEntry | None:
        entries = list(self.anchor())
        return entries[-1] if entries else None

    def period_workflows(
        self, start: datetime, end: datetime, machines: Iterable[str] | None = None
    ) -> Iterator[tuple[WorkflowSnapshot, list[Event]]]:
        only = None if machines is None else set(machines)
        for snap in list(self._snapshots.values()):
            created, updated = snap.created_at, snap.updated_at
            if created is None or updated is None or created >= end or updated < start:
                continue
            if only is not None and snap.machine not in only:
                continue
            yield snap, [e for e in self._events[snap.workflow_id] if e.at < end]

    def quiet_workflows(
        self, start: datetime, end: datetime
    ) -> Iterator[tuple[str, str, str, int]]:
        groups: dict[tuple[str, str, str], int] = {}
        for snap in list(self._snapshots.values()):
            created, updated = snap.created_at, snap.updated_at
            if created is None or updated is None or created >= end or updated >= start:
                continue
            key = (snap.machine, snap.policy, snap.state)
            groups[key] = groups.get(key, 0) + 1
        for (machine, policy, state), count in sorted(groups.items()):
            yield machine, policy, state, count

    def tasks_created(self, start: datetime, end: datetime) -> list[tuple[Task, datetime | None]]:
        return [
            (t, self._done.get(t.id)) for t in self._tasks.values() if start <= t.created_at < end
        ]

    def notifications_created(self, start: datetime, end: datetime) -> list[Notification]:
        return [n for n in self._notifications.values() if start <= n.created_at < end]

    def counts(self) -> dict[str, int]:
        """Row counts per table (for tests that check a refused command wrote nothing)."""
        return {
            "workflows": len(self._snapshots),
            "events": sum(len(e) for e in self._events.values()),
            "deadlines": len(self._deadlines),
            "open_deadlines": len(self._open),
            "notifications": len(self._notifications),
            "tasks": len(self._tasks),
        }
