"""PostgresStore's reads of deadlines, the outbox and tasks, and the two small writes the
outbox and task lists make (a mixin, so the store module stays readable)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from qaflow._checks import check_ids
from qaflow.calendar import ensure_aware
from qaflow.records import Deadline, Notification, Task
from qaflow.store._pg_sql import TABLES, deadline_from, same, task_from, text_id
from qaflow.store._rows import DEADLINE_COLS, NOTE_COLS, notification_from, tasks_sql

if TYPE_CHECKING:
    import psycopg

__all__ = ["RowReads"]

R = TypeVar("R")


class RowReads:
    """Deadlines, notifications and tasks of a :class:`PostgresStore`."""

    def _select(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _conn(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        raise NotImplementedError

    def _writable(self, what: str) -> None:
        raise NotImplementedError

    def _retrying(self, run: Callable[[], R]) -> R:
        raise NotImplementedError

    def due_deadlines(self, now: datetime) -> list[Deadline]:
        rows = self._select(
            f"SELECT {DEADLINE_COLS} FROM deadlines WHERE status = 'open' AND due_at <= %s "
            "ORDER BY due_at, id",
            (ensure_aware(now, "now"),),
        )
        return [deadline_from(r) for r in rows]

    def open_deadlines(self, workflow_id: str | None = None) -> list[Deadline]:
        where, args = (
            ("AND workflow_id = %s", (text_id(workflow_id),))
            if workflow_id is not None
            else ("", ())
        )
        rows = self._select(
            f"SELECT {DEADLINE_COLS} FROM deadlines WHERE status = 'open' {where} "
            "ORDER BY due_at, id",
            args,
        )
        return [deadline_from(r) for r in rows]

    @staticmethod
    def _notification(row: tuple[Any, ...]) -> Notification:
        return notification_from(row, same)

    def pending_notifications(self, limit: int | None = None) -> list[Notification]:
        sql = f"SELECT {NOTE_COLS} FROM notifications WHERE sent_at IS NULL ORDER BY created_at, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._notification(r) for r in self._select(sql)]

    def notifications(self, workflow_id: str | None = None) -> list[Notification]:
        where, args = (
            ("WHERE workflow_id = %s", (text_id(workflow_id),))
            if workflow_id is not None
            else ("", ())
        )
        rows = self._select(
            f"SELECT {NOTE_COLS} FROM notifications {where} ORDER BY created_at, id", args
        )
        return [self._notification(r) for r in rows]

    def mark_sent(self, ids: Iterable[str], at: datetime) -> int:
        """Mark outbox rows delivered (writes). Returns how many were pending."""
        return self._stamp("notifications", "sent_at", ids, at, "marking outbox rows sent")

    def tasks(self, workflow_id: str | None = None, *, open_only: bool = False) -> list[Task]:
        sql, args = tasks_sql("%s", workflow_id, open_only)
        return [task_from(row) for row in self._select(sql, args)]

    def complete_tasks(self, ids: Iterable[str], at: datetime) -> int:
        """Mark tasks done (writes). Returns how many were open."""
        return self._stamp("tasks", "done_at", ids, at, "completing tasks")

    def _stamp(self, table: str, column: str, ids: Iterable[str], at: datetime, what: str) -> int:
        """Set ``column`` to ``at`` on the rows ``ids`` where it is unset; how many changed."""
        self._writable(what)
        stamp = ensure_aware(at, "at")
        wanted = check_ids("ids", ids)

        def run() -> int:  # idempotent, so run again on a dropped connection
            with self._conn() as conn:
                cur = conn.execute(
                    f"UPDATE {table} SET {column} = %s WHERE id = ANY(%s) AND {column} IS NULL",
                    (stamp, wanted),
                )
                return cur.rowcount

        return self._retrying(run)

    def counts(self) -> dict[str, int]:
        """Row counts per table (for tests that check a refused command wrote nothing)."""
        out = {t: self._select(f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}
        out["open_deadlines"] = self._select(
            "SELECT count(*) FROM deadlines WHERE status = 'open'"
        )[0][0]
        return out

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, sorted: the store's whole content, for comparisons."""
        return {t: sorted(self._select(f"SELECT * FROM {t}"), key=repr) for t in TABLES}

    def deadlines(self, workflow_id: str | None = None) -> list[tuple[Deadline, str]]:
        where, args = ("WHERE workflow_id = %s", (workflow_id,)) if workflow_id else ("", ())
        rows = self._select(f"SELECT {DEADLINE_COLS}, status FROM deadlines {where}", args)
        return [(deadline_from(r[:-1]), r[-1]) for r in rows]
