"""PostgresStore's undecoded reads for ``verify`` and replay (a mixin, as ``_pg_reads``).

The same reads as SQLite's (:mod:`qaflow.store._sqlite_reads`): a workflow's event rows and
derived rows as stored, and many workflows' at once for ``verify`` of the whole store (one
query per table for each batch of workflow ids, each searching its per-workflow index).
Times in derived rows come back as ISO text, the form the fold parses; event times stay
datetimes, which the fold takes as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qaflow.records import WorkflowSnapshot
from qaflow.store._pg_sql import snapshot_from, text_id
from qaflow.store._rows import (
    DEADLINE_COLS,
    EVENT_COLS,
    NOTE_COLS,
    SNAP_COLS,
    TASK_COLS,
    DerivedRows,
    derived_by_workflow,
)

__all__ = ["VerifyReads"]


_BATCH = 500
"""Workflow ids per query of a batched read."""


def _as_text(cols: str, *times: str) -> str:
    """``cols`` with each column of ``times`` read as ISO 8601 text in UTC."""
    iso = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
    return ", ".join(
        iso.format(c) if c in times else c for c in (c.strip() for c in cols.split(","))
    )


DERIVED = (
    f"SELECT {_as_text(DEADLINE_COLS, 'opened_at', 'due_at')}, status FROM deadlines",
    f"SELECT {_as_text(NOTE_COLS, 'created_at')} FROM notifications",
    f"SELECT {_as_text(TASK_COLS, 'due_at', 'created_at')} FROM tasks",
)
EVENTS = f"SELECT {EVENT_COLS} FROM events"
DERIVED_IDS = (
    "SELECT 'deadline', workflow_id, id FROM deadlines",
    "SELECT 'notification', workflow_id, id FROM notifications ORDER BY created_at, id",
    "SELECT 'task', workflow_id, id FROM tasks ORDER BY created_at, id",
)
"""Each derived row's kind, workflow and id, in the order ``deadlines()``,
``notifications()`` and ``tasks()`` list them."""


class VerifyReads:
    """Undecoded rows of a :class:`PostgresStore`, one workflow's or many's."""

    def _select(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def event_rows(self, workflow_id: str) -> list[tuple[Any, ...]]:
        """The workflow's event rows as stored, undecoded (columns as ``EVENT_COLS``)."""
        return self._select(
            f"{EVENTS} WHERE workflow_id = %s ORDER BY seq", (text_id(workflow_id),)
        )

    def derived_rows(self, workflow_id: str) -> DerivedRows:
        """The workflow's deadline (status last), notification and task rows as stored."""
        wid = (text_id(workflow_id),)
        deadlines, notes, tasks = (
            self._select(f"{sql} WHERE workflow_id = %s", wid) for sql in DERIVED
        )
        return deadlines, notes, tasks

    def derived_ids(self) -> list[tuple[str, str, str]]:
        """``(kind, workflow_id, id)`` of every deadline, notification and task row, nothing
        decoded: all that verify's check for rows of no workflow needs (it read and decoded
        every row, payloads included, only to take these two columns)."""
        found: list[tuple[str, str, str]] = []
        for sql in DERIVED_IDS:
            found += self._select(sql)  # text columns: three str each
        return found

    def _in_batches(
        self, workflow_ids: Sequence[str], queries: Sequence[str], max_rows: int
    ) -> list[list[tuple[Any, ...]]] | None:
        """The rows of each query (``… WHERE workflow_id = ANY(%s)`` appended) for
        ``workflow_ids``, a batch of ids at a time; ``None`` past ``max_rows`` rows."""
        wids = [text_id(w) for w in workflow_ids]
        found: list[list[tuple[Any, ...]]] = [[] for _ in queries]
        left = max_rows
        for start in range(0, len(wids), _BATCH):
            chunk = wids[start : start + _BATCH]
            for k, sql in enumerate(queries):
                rows = self._select(sql, (chunk,))
                left -= len(rows)
                if left < 0:
                    return None
                found[k].extend(rows)
        return found

    def derived_rows_of(
        self, workflow_ids: Sequence[str], max_rows: int = 20_000
    ) -> dict[str, DerivedRows] | None:
        """:meth:`derived_rows` of many workflows at once, by workflow id (one with no rows
        is absent): one query per table for each batch of ids. ``None`` past ``max_rows``
        rows (the caller then reads each workflow's own)."""
        tables = self._in_batches(
            workflow_ids, [f"{sql} WHERE workflow_id = ANY(%s)" for sql in DERIVED], max_rows
        )
        if tables is None:
            return None
        return derived_by_workflow(tables)

    def event_rows_of(
        self, workflow_ids: Sequence[str], max_rows: int = 20_000
    ) -> dict[str, list[tuple[Any, ...]]] | None:
        """:meth:`event_rows` of many workflows at once, by workflow id (one with no events
        is absent), in ``seq`` order; ``None`` past ``max_rows`` rows."""
        found = self._in_batches(
            workflow_ids,
            [f"{EVENTS} WHERE workflow_id = ANY(%s) ORDER BY workflow_id, seq"],
            max_rows,
        )
        if found is None:
            return None
        out: dict[str, list[tuple[Any, ...]]] = {}
        for row in found[0]:
            mine = out.get(row[0])
            if mine is None:
                mine = out[row[0]] = []
            mine.append(row)
        return out

    def snapshots_of(self, workflow_ids: Sequence[str]) -> dict[str, WorkflowSnapshot]:
        """The stored snapshots of many workflows at once, by workflow id; one whose row
        does not decode is absent (``load`` then says what is wrong with it)."""
        wids = [text_id(w) for w in workflow_ids]
        out: dict[str, WorkflowSnapshot] = {}
        for start in range(0, len(wids), _BATCH):
            sql = f"SELECT {SNAP_COLS} FROM workflows WHERE workflow_id = ANY(%s)"
            for row in self._select(sql, (wids[start : start + _BATCH],)):
                try:
                    out[row[0]] = snapshot_from(row)
                except Exception:  # left to load, which names the problem
                    continue
        return out
