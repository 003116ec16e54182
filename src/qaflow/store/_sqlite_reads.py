"""SQLiteStore's reads of deadlines, the outbox, tasks and the anchor, and the two small
writes the outbox and task lists make (a mixin, so the store module stays readable)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from qaflow._checks import check_ids, to_utc
from qaflow.errors import ValidationError
from qaflow.records import AnchorEntry, Deadline, Notification, Task, WorkflowSnapshot
from qaflow.store._rows import (
    DEADLINE_COLS,
    EVENT_COLS,
    NOTE_COLS,
    SNAP_COLS,
    TASK_COLS,
    DerivedRows,
    derived_by_workflow,
    tasks_sql,
)
from qaflow.store._sqlite_rows import deadline_row, notification_row, task_row, text_id, ts
from qaflow.store._sqlite_schema import guarded

__all__ = ["RowReads"]

_DEADLINES_BY_WORKFLOW = "idx_deadlines_workflow_id_status"
_BATCH_MAX = 500
"""At most this many workflow ids in one ``IN (...)`` list (and never more than SQLite's
parameter limit)."""

"""A workflow's deadline (status last), notification and task rows as stored, undecoded."""


class RowReads:
    """Deadlines, notifications, tasks and the anchor of a :class:`SQLiteStore`."""

    conn: sqlite3.Connection
    path: str
    _lock: threading.RLock

    def _transaction(self) -> Any:
        raise NotImplementedError

    def _snapshot(self, row: tuple[Any, ...]) -> WorkflowSnapshot:
        raise NotImplementedError

    @guarded
    def _fetch(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, tuple(args)).fetchall()

    _DEADLINE_COLS = DEADLINE_COLS

    _deadline = staticmethod(deadline_row)

    @guarded
    def due_deadlines(self, now: datetime) -> list[Deadline]:
        """Open deadlines due by ``now``; a row that cannot be decoded still comes back
        (id, workflow and due time only), so ``tick`` reaches its workflow's snapshot."""
        moment = to_utc(now, "now")
        rows = self.conn.execute(
            f"SELECT {self._DEADLINE_COLS} FROM deadlines WHERE status = 'open' AND due_at <= ? "
            "ORDER BY due_at, id",
            (ts(moment),),
        ).fetchall()
        out = []
        for row in rows:
            try:
                out.append(self._deadline(row))
            except Exception:  # a damaged row: verify names it; tick must not stop on it
                out.append(Deadline(str(row[0]), str(row[1]), "?", None, moment, moment, "?"))
        return out

    @guarded
    def open_deadlines(self, workflow_id: str | None = None) -> list[Deadline]:
        if workflow_id is None:
            sql = f"SELECT {self._DEADLINE_COLS} FROM deadlines WHERE status = 'open'"
            args: tuple[str, ...] = ()
        else:
            # Named: without statistics the planner prefers (status, due_at) for the ORDER BY
            # and scans every open deadline of the store, making verify quadratic (issue 14).
            sql = (
                f"SELECT {self._DEADLINE_COLS} FROM deadlines "
                f"INDEXED BY {_DEADLINES_BY_WORKFLOW} WHERE workflow_id = ? AND status = 'open'"
            )
            args = (text_id(workflow_id),)
        rows = self.conn.execute(sql + " ORDER BY due_at, id", args).fetchall()
        return [self._deadline(r) for r in rows]

    _NOTE_COLS = NOTE_COLS

    _notification = staticmethod(notification_row)

    @guarded
    def pending_notifications(self, limit: int | None = None) -> list[Notification]:
        sql = (
            f"SELECT {self._NOTE_COLS} FROM notifications WHERE sent_at IS NULL "
            "ORDER BY created_at, id"
        )
        if limit is not None:
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
                raise ValidationError(field="limit", value=limit, expected="a whole number >= 0")
            sql += f" LIMIT {limit}"
        return [self._notification(r) for r in self.conn.execute(sql).fetchall()]

    @guarded
    def notifications(self, workflow_id: str | None = None) -> list[Notification]:
        sql = f"SELECT {self._NOTE_COLS} FROM notifications"
        args: tuple[str, ...] = ()
        if workflow_id is not None:
            sql += " WHERE workflow_id = ?"
            args = (text_id(workflow_id),)
        return [
            self._notification(r)
            for r in self.conn.execute(sql + " ORDER BY created_at, id", args).fetchall()
        ]

    @guarded
    def mark_sent(self, ids: Iterable[str], at: datetime) -> int:
        """Mark outbox rows delivered (writes). Returns how many were pending."""
        stamp = ts(to_utc(at, "at"))
        rows = [(stamp, i) for i in check_ids("ids", ids)]
        with self._transaction():
            cur = self.conn.executemany(
                "UPDATE notifications SET sent_at = ? WHERE id = ? AND sent_at IS NULL", rows
            )
            return cur.rowcount

    _TASK_COLS = TASK_COLS

    @guarded
    def tasks(self, workflow_id: str | None = None, *, open_only: bool = False) -> list[Task]:
        sql, args = tasks_sql("?", workflow_id, open_only)
        rows = self.conn.execute(sql, args).fetchall()
        return [task_row(row) for row in rows]

    @guarded
    def complete_tasks(self, ids: Iterable[str], at: datetime) -> int:
        """Mark tasks done (writes). Returns how many were open."""
        stamp = ts(to_utc(at, "at"))
        rows = [(stamp, i) for i in check_ids("ids", ids)]
        with self._transaction():
            cur = self.conn.executemany(
                "UPDATE tasks SET done_at = ? WHERE id = ? AND done_at IS NULL", rows
            )
            return cur.rowcount

    @guarded
    def deadlines(self, workflow_id: str | None = None) -> list[tuple[Deadline, str]]:
        sql = f"SELECT {self._DEADLINE_COLS}, status FROM deadlines"
        args: tuple[str, ...] = ()
        if workflow_id is not None:
            sql += " WHERE workflow_id = ?"
            args = (text_id(workflow_id),)
        return [(self._deadline(r[:-1]), r[-1]) for r in self.conn.execute(sql, args).fetchall()]

    @guarded
    def derived_rows(self, workflow_id: str) -> DerivedRows:
        """The workflow's deadline (status last), notification and task rows as stored,
        undecoded: ``verify`` compares them with the replay's (:mod:`qaflow._fold`)."""
        wid = (text_id(workflow_id),)
        execute = self.conn.execute
        return (
            execute(
                f"SELECT {self._DEADLINE_COLS}, status FROM deadlines WHERE workflow_id = ?", wid
            ).fetchall(),
            execute(
                f"SELECT {self._NOTE_COLS} FROM notifications WHERE workflow_id = ?", wid
            ).fetchall(),
            execute(f"SELECT {self._TASK_COLS} FROM tasks WHERE workflow_id = ?", wid).fetchall(),
        )

    def _in_batches(
        self, workflow_ids: Sequence[str], queries: Callable[[str], tuple[str, ...]], max_rows: int
    ) -> list[list[tuple[Any, ...]]] | None:
        """The rows of each of ``queries(marks)`` for ``workflow_ids``, a batch of ids at a
        time within SQLite's parameter limit (``marks``: the batch's ``?`` list), in the
        order each query gives them. ``None`` once more than ``max_rows`` rows come back."""
        wids = [text_id(w) for w in workflow_ids]
        limit = min(_BATCH_MAX, self.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
        found: list[list[tuple[Any, ...]]] = []
        left = max_rows
        for start in range(0, len(wids), limit):
            chunk = wids[start : start + limit]
            for k, sql in enumerate(queries(",".join("?" * len(chunk)))):
                if k == len(found):
                    found.append([])
                cursor = self.conn.execute(sql, chunk)
                while rows := cursor.fetchmany(1000):
                    left -= len(rows)
                    if left < 0:
                        cursor.close()
                        return None
                    found[k].extend(rows)
        return found

    @guarded
    def derived_rows_of(
        self, workflow_ids: Sequence[str], max_rows: int = 20_000
    ) -> dict[str, DerivedRows] | None:
        """:meth:`derived_rows` of many workflows at once, by workflow id (one with no rows
        is absent): one query per table for each batch of ids within SQLite's parameter
        limit, each searching the per-workflow index (``verify`` of the whole store).
        ``None`` once more than ``max_rows`` rows come back (memory stays bounded; the
        caller then reads each workflow's own)."""
        tables = self._in_batches(
            workflow_ids,
            lambda marks: (
                f"SELECT {self._DEADLINE_COLS}, status FROM deadlines "
                f"INDEXED BY {_DEADLINES_BY_WORKFLOW} WHERE workflow_id IN ({marks})",
                f"SELECT {self._NOTE_COLS} FROM notifications WHERE workflow_id IN ({marks})",
                f"SELECT {self._TASK_COLS} FROM tasks WHERE workflow_id IN ({marks})",
            ),
            max_rows,
        )
        if tables is None:
            return None
        return derived_by_workflow(tables)

    @guarded
    def snapshots_of(self, workflow_ids: Sequence[str]) -> dict[str, WorkflowSnapshot]:
        """The stored snapshots of many workflows at once, by workflow id, decoded from the
        file (no cache): one query for each batch of ids within SQLite's parameter limit.
        A workflow that has none, or whose row does not decode, is absent (``load`` then
        says what is wrong with it)."""
        wids = [text_id(w) for w in workflow_ids]
        limit = min(_BATCH_MAX, self.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
        out: dict[str, WorkflowSnapshot] = {}
        for start in range(0, len(wids), limit):
            chunk = wids[start : start + limit]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {SNAP_COLS} FROM workflows WHERE workflow_id IN ({marks})"
            for row in self.conn.execute(sql, chunk).fetchall():
                try:
                    out[row[0]] = self._snapshot(row)
                except Exception:  # left to load, which names the problem
                    continue
        return out

    @guarded
    def event_rows_of(
        self, workflow_ids: Sequence[str], max_rows: int = 20_000
    ) -> dict[str, list[tuple[Any, ...]]] | None:
        """``event_rows`` of many workflows at once, by workflow id (one with no events is
        absent), in ``seq`` order: one query for each batch of ids within SQLite's parameter
        limit, searching the (workflow_id, seq) key. ``None`` once more than ``max_rows``
        rows come back, as :meth:`derived_rows_of`."""
        found = self._in_batches(
            workflow_ids,
            lambda marks: (
                f"SELECT {EVENT_COLS} FROM events WHERE workflow_id IN ({marks}) "
                "ORDER BY workflow_id, seq",
            ),
            max_rows,
        )
        if found is None:
            return None
        out: dict[str, list[tuple[Any, ...]]] = {}
        for row in found[0] if found else ():
            mine = out.get(row[0])
            if mine is None:
                mine = out[row[0]] = []
            mine.append(row)
        return out

    def anchor(self) -> Iterator[AnchorEntry]:
        last = 0
        while True:
            rows = self._fetch(
                "SELECT position, workflow_id, seq, hash, head FROM anchor WHERE position > ? "
                "ORDER BY position LIMIT 10000",
                (last,),
            )
            if not rows:
                return
            for row in rows:
                yield AnchorEntry(*row)
            last = rows[-1][0]

    @guarded
    def anchor_tip(self) -> AnchorEntry | None:
        row = self.conn.execute(
            "SELECT position, workflow_id, seq, hash, head FROM anchor "
            "ORDER BY position DESC LIMIT 1"
        ).fetchone()
        return None if row is None else AnchorEntry(*row)
