"""The embedded SQLite store: WAL, one transaction per step; the only sqlite-utils user."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import sqlite_utils

from qaflow._checks import to_utc
from qaflow.errors import UnknownWorkflow, ValidationError
from qaflow.records import (
    GENESIS_HASH,
    Actor,
    Deadline,
    Event,
    Step,
    WorkflowSnapshot,
    anchor_head,
)
from qaflow.store._codec import deadlines_json
from qaflow.store._find import Filters, FindWorkflows, find_query
from qaflow.store._protocol import breach_each, commit_each, stale
from qaflow.store._rows import (
    CLOSE_DEADLINE,
    DEADLINE_COLS,
    EVENT_COLS,
    NOTE_COLS,
    SNAP_COLS,
    TASK_COLS,
    advance_sql,
    advance_values,
    closing_rows,
    deadline_rows,
    event_values,
    insert_sql,
    note_rows,
    snapshot_from,
    snapshot_values,
    sorted_json,
    task_rows,
)
from qaflow.store._sqlite_period import PeriodReads
from qaflow.store._sqlite_reads import RowReads
from qaflow.store._sqlite_rows import (
    Inspection,
    dt,
    event_row,
    text_id,
    ts,
)
from qaflow.store._sqlite_schema import SCHEMA_VERSION, guarded, open_connection

__all__ = ["SQLiteStore"]

_RECENT_MAX = 1024
_INSERT_WORKFLOW = insert_sql("workflows", SNAP_COLS, "?")
_ADVANCE = advance_sql("?")
_INSERT_EVENT = insert_sql("events", EVENT_COLS, "?")
_INSERT_DEADLINE = insert_sql("deadlines", DEADLINE_COLS, "?", status="open")
_INSERT_NOTE = insert_sql("notifications", NOTE_COLS, "?")
_INSERT_TASK = insert_sql("tasks", TASK_COLS, "?")


class SQLiteStore(FindWorkflows, RowReads, Inspection, PeriodReads):
    """The embedded durable store: one SQLite file in WAL mode.

    ``synchronous="FULL"`` (the default) makes every acknowledged command survive power loss;
    ``"NORMAL"`` under WAL survives a crash of the process but may lose the last commits on
    power loss, for several times the write rate. Several stores (threads, processes) may
    share the file; one store object may also be shared by threads: its methods take a lock.

    ``readonly=True`` opens an existing qaflow database without ever writing to it (no
    schema, no journal-mode change); a file that is not qaflow's, damaged, or of a newer
    schema version is refused with :class:`~qaflow.errors.StoreError` either way, before
    anything is written. SQLite errors surface as :class:`~qaflow.errors.StoreBusy`
    (locked past ``timeout``: retry) or :class:`~qaflow.errors.StoreError`.
    """

    schema_version = SCHEMA_VERSION

    def __init__(
        self,
        path: str | Path = "qaflow.db",
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        timeout: float = 30.0,
        readonly: bool = False,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValidationError(
                field="synchronous", value=synchronous, expected="'FULL' or 'NORMAL'", quote=True
            )
        if not isinstance(path, (str, Path)):
            raise ValidationError(field="path", value=path, expected="a file path")
        self.path = str(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        self.conn = open_connection(
            self.path, readonly=readonly, synchronous=synchronous, timeout=timeout
        )
        self.db = sqlite_utils.Database(self.conn)
        # The snapshots this store last wrote, with their deadlines' JSON: a load that finds
        # the row still at that version skips decoding (any other writer bumps the version).
        self._recent: dict[str, tuple[WorkflowSnapshot, str]] = {}

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    def forget_cached(self) -> None:
        """Drop the snapshots this store remembers writing (``verify`` reads the file)."""
        with self._lock:
            self._recent.clear()

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reads ----------------------------------------------------------------------------

    def _snapshot(self, row: tuple[Any, ...]) -> WorkflowSnapshot:
        return snapshot_from(row, dt)

    _SNAP_COLS = SNAP_COLS

    @guarded
    def load(self, workflow_id: str) -> WorkflowSnapshot:
        wid = text_id(workflow_id)
        row = self.conn.execute(
            f"SELECT {self._SNAP_COLS} FROM workflows WHERE workflow_id = ?", (wid,)
        ).fetchone()
        if row is None:
            raise UnknownWorkflow(workflow_id=workflow_id)
        # One read (issue 14): a snapshot this store wrote at that version skips decoding.
        recent = self._recent.get(wid)
        if recent is not None and row[5] == recent[0].version:
            return recent[0]
        return self._snapshot(row)

    def snapshots(self, machine: str | None = None) -> Iterator[WorkflowSnapshot]:
        sql = f"SELECT {self._SNAP_COLS} FROM workflows"
        args: tuple[str, ...] = ()
        if machine is not None:
            sql += " WHERE machine = ?"
            args = (machine,)
        for row in self._fetch(sql + " ORDER BY workflow_id", args):
            yield self._snapshot(row)

    def workflow_ids(self, machine: str | None = None) -> Iterator[str]:
        sql = "SELECT workflow_id FROM workflows"
        args: tuple[str, ...] = ()
        if machine is not None:
            sql += " WHERE machine = ?"
            args = (machine,)
        for (wid,) in self._fetch(sql + " ORDER BY workflow_id", args):
            yield wid

    @guarded
    def _find(self, filters: Filters) -> list[WorkflowSnapshot]:
        when = filters.overdue_at
        sql, args = find_query(
            filters,
            columns=self._SNAP_COLS,
            placeholder="?",
            team_expr="json_extract(data, '$.team_id')",
            overdue_at=None if when is None else ts(to_utc(when, "overdue_at")),
        )
        return [self._snapshot(row) for row in self.conn.execute(sql, args).fetchall()]

    _event = staticmethod(event_row)
    _EVENT_COLS = EVENT_COLS

    @guarded
    def events(self, workflow_id: str) -> list[Event]:
        rows = self.conn.execute(
            f"SELECT {self._EVENT_COLS} FROM events WHERE workflow_id = ? ORDER BY seq",
            (text_id(workflow_id),),
        ).fetchall()
        if not rows:
            self.load(workflow_id)
        actors: dict[tuple[str, str], Actor] = {}
        event = self._event
        return [event(r, actors) for r in rows]

    @guarded
    def event_rows(self, workflow_id: str) -> list[tuple[Any, ...]]:
        """The workflow's event rows as stored, undecoded (columns as ``EVENT_COLS``; ``at``
        and ``payload`` are text): replay decodes what it needs (:mod:`qaflow._fold`)."""
        return self.conn.execute(
            f"SELECT {self._EVENT_COLS} FROM events WHERE workflow_id = ? ORDER BY seq",
            (text_id(workflow_id),),
        ).fetchall()

    @guarded
    def find_idempotent(self, workflow_id: str, key: str) -> Event | None:
        row = self.conn.execute(
            f"SELECT {self._EVENT_COLS} FROM events WHERE workflow_id = ? AND idempotency_key = ?",
            (text_id(workflow_id), text_id(key, "idempotency_key")),
        ).fetchone()
        return None if row is None else self._event(row)

    # --- the write path -------------------------------------------------------------------

    def _transaction(self) -> _Tx:
        return _Tx(self.conn)

    @guarded
    def commit(self, step: Step, *, expected_version: int) -> None:
        """Write ``step`` in one transaction if the workflow is at ``expected_version``."""
        event = step.event
        snap = step.snapshot
        wid = event.workflow_id
        execute = self.conn.execute
        data = sorted_json(snap.data)
        recent = self._recent.pop(wid, None)
        if recent is not None and recent[0].deadlines == snap.deadlines:
            deadlines = recent[1]
        else:
            deadlines = deadlines_json(snap.deadlines)
        stamp = ts(event.at)
        with self._transaction():
            if expected_version == 0:
                created = stamp if snap.created_at is None else ts(snap.created_at)
                try:
                    execute(
                        _INSERT_WORKFLOW, snapshot_values(snap, created, stamp, data, deadlines)
                    )
                except sqlite3.IntegrityError:
                    raise stale(wid, 0, self._version(wid), "the workflow already exists") from None
            else:
                values = advance_values(snap, stamp, data, deadlines, expected_version)
                if execute(_ADVANCE, values).rowcount != 1:
                    raise stale(wid, expected_version, self._version(wid))
            try:
                execute(_INSERT_EVENT, event_values(event, stamp))
            except sqlite3.IntegrityError:
                raise stale(
                    wid, expected_version, self._version(wid), "idempotency key already used"
                ) from None
            tip = execute("SELECT position, head FROM anchor ORDER BY position DESC LIMIT 1")
            position, head = tip.fetchone() or (0, GENESIS_HASH)
            execute(
                "INSERT INTO anchor (position, workflow_id, seq, hash, head) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    position + 1,
                    wid,
                    event.seq,
                    event.hash,
                    anchor_head(head, wid, event.seq, event.hash),
                ),
            )
            many = self.conn.executemany
            if step.opened:
                many(_INSERT_DEADLINE, deadline_rows(step, ts))
            if step.closed or step.breached:
                many(CLOSE_DEADLINE.replace("%s", "?"), closing_rows(step, stamp))
            if step.notifications:
                many(_INSERT_NOTE, note_rows(step, ts))
            if step.tasks:
                many(_INSERT_TASK, task_rows(step, ts))
        if len(self._recent) >= _RECENT_MAX:
            del self._recent[next(iter(self._recent))]
        self._recent[wid] = (snap, deadlines)

    @guarded
    def commit_many(self, steps: Sequence[Step]) -> None:
        """Write ``steps`` in order in one transaction, all or nothing (each version-checked)."""
        with self._outer():
            commit_each(self, steps)

    @guarded
    def fire_due(
        self, now: datetime, breach: Callable[[Deadline], Step | None], *, limit: int
    ) -> list[Step]:
        """Claim due deadlines under the write lock and commit their breaches in one transaction."""
        with self._outer():  # the write lock from here: no other ticker sees these rows
            return breach_each(
                self.due_deadlines(now)[:limit],
                breach,
                lambda step: self.commit(step, expected_version=step.event.seq - 1),
            )

    @contextmanager
    def _outer(self) -> Iterator[None]:
        """One transaction around several commits; a rollback forgets the cached snapshots."""
        try:
            with self._transaction():
                yield
        except BaseException:
            self._recent.clear()
            raise

    def _version(self, workflow_id: str) -> int:
        row = self.conn.execute(
            "SELECT version FROM workflows WHERE workflow_id = ?", (workflow_id,)
        ).fetchone()
        return 0 if row is None else int(row[0])


class _Tx:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on any exception.

    Inside a transaction already open (a batch or a tick claim) it is a savepoint instead,
    so one step's refusal undoes that step alone.
    """

    __slots__ = ("conn", "nested")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.nested = False

    def __enter__(self) -> None:
        self.nested = self.conn.in_transaction
        self.conn.execute("SAVEPOINT step" if self.nested else "BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self.nested:
            if exc_type is not None:
                self.conn.execute("ROLLBACK TO step")
            self.conn.execute("RELEASE step")
        elif exc_type is None:
            try:
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
