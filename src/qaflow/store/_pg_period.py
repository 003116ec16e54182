"""PostgresStore's period reads (the QA report): one query per table, as SQLite's."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from qaflow.calendar import ensure_aware
from qaflow.records import Event, Notification, Task, WorkflowSnapshot
from qaflow.store._pg_sql import event_from, same, snapshot_from, task_from
from qaflow.store._rows import EVENT_COLS, NOTE_COLS, SNAP_COLS, TASK_COLS, notification_from

__all__ = ["PeriodReads"]

_PERIOD = "created_at < %(end)s AND updated_at >= %(start)s"


class PeriodReads:
    """Reads of one period: workflows touched in it, the others counted, its tasks and outbox."""

    def _select(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def period_workflows(
        self, start: datetime, end: datetime
    ) -> Iterator[tuple[WorkflowSnapshot, list[Event]]]:
        """Reads the workflows touched since ``start`` and their events before ``end``."""
        args = {"start": ensure_aware(start, "start"), "end": ensure_aware(end, "end")}
        snaps = self._select(
            f"SELECT {SNAP_COLS} FROM workflows WHERE {_PERIOD} ORDER BY workflow_id", args
        )
        rows = self._select(
            f"SELECT {EVENT_COLS} FROM events WHERE at < %(end)s AND workflow_id IN "
            f"(SELECT workflow_id FROM workflows WHERE {_PERIOD}) ORDER BY workflow_id, seq",
            args,
        )
        by_workflow: dict[str, list[Event]] = {}
        for row in rows:
            by_workflow.setdefault(row[0], []).append(event_from(row))
        for row in snaps:
            yield snapshot_from(row), by_workflow.get(row[0], [])

    def quiet_workflows(
        self, start: datetime, end: datetime
    ) -> Iterator[tuple[str, str, str, int]]:
        yield from self._select(
            "SELECT machine, policy, state, count(*) FROM workflows "
            "WHERE updated_at < %s AND created_at < %s GROUP BY machine, policy, state "
            "ORDER BY machine, policy, state",
            (ensure_aware(start, "start"), ensure_aware(end, "end")),
        )

    def tasks_created(self, start: datetime, end: datetime) -> list[tuple[Task, datetime | None]]:
        rows = self._select(
            f"SELECT {TASK_COLS}, done_at FROM tasks "
            "WHERE created_at >= %s AND created_at < %s ORDER BY created_at, id",
            (ensure_aware(start, "start"), ensure_aware(end, "end")),
        )
        return [(task_from(r[:-1]), r[-1]) for r in rows]

    def notifications_created(self, start: datetime, end: datetime) -> list[Notification]:
        rows = self._select(
            f"SELECT {NOTE_COLS} FROM notifications "
            "WHERE created_at >= %s AND created_at < %s ORDER BY created_at, id",
            (ensure_aware(start, "start"), ensure_aware(end, "end")),
        )
        return [notification_from(r, same) for r in rows]
