"""The embedded SQLite store: WAL, one transaction per step; the only sqlite-utils user."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import sqlite_utils

from qaflow._checks import check_ids, to_utc
from qaflow.errors import ConcurrencyError, UnknownWorkflow, ValidationError
from qaflow.records import (
    GENESIS_HASH,
    Actor,
    AnchorEntry,
    Deadline,
    Event,
    Notification,
    Step,
    Task,
    WorkflowSnapshot,
    anchor_head,
)
from qaflow.store._codec import deadlines_from_json, deadlines_json
from qaflow.store._find import find_query
from qaflow.store._protocol import stale
from qaflow.store._sqlite_period import PeriodReads
from qaflow.store._sqlite_rows import (
    Inspection,
    deadline_row,
    dt,
    event_row,
    notification_row,
    text_id,
    ts,
)
from qaflow.store._sqlite_schema import SCHEMA_VERSION, guarded, open_connection

__all__ = ["SQLiteStore"]

_RECENT_MAX = 1024
_DEADLINES_BY_WORKFLOW = "idx_deadlines_workflow_id_status"


class SQLiteStore(Inspection, PeriodReads):
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
        (
            wid,
            machine,
            policy,
            pver,
            state,
            version,
            created,
            updated,
            last_hash,
            data,
            deadlines,
            fingerprint,
        ) = row
        return WorkflowSnapshot(
            workflow_id=wid,
            machine=machine,
            policy=policy,
            policy_version=pver,
            state=state,
            data=json.loads(data),
            version=version,
            created_at=dt(created),
            updated_at=dt(updated),
            last_hash=last_hash,
            deadlines=deadlines_from_json(deadlines),
            fingerprint=fingerprint or "",
        )

    _SNAP_COLS = (
        "workflow_id, machine, policy, policy_version, state, version, created_at, "
        "updated_at, last_hash, data, deadlines, fingerprint"
    )

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
    def _fetch(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, tuple(args)).fetchall()

    @guarded
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
        sql, args = find_query(
            columns=self._SNAP_COLS,
            placeholder="?",
            team_expr="json_extract(data, '$.team_id')",
            machine=machine,
            policy=policy,
            state=state,
            team=team,
            overdue_at=None if overdue_at is None else ts(to_utc(overdue_at, "overdue_at")),
            after=after,
            limit=limit,
        )
        rows = self.conn.execute(sql, args).fetchall()
        return [self._snapshot(row) for row in rows]

    _event = staticmethod(event_row)
    _EVENT_COLS = (
        "workflow_id, seq, trigger, source, dest, actor_id, actor_role, at, payload, "
        "prev_hash, hash, idempotency_key"
    )

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
    def find_idempotent(self, workflow_id: str, key: str) -> Event | None:
        row = self.conn.execute(
            f"SELECT {self._EVENT_COLS} FROM events WHERE workflow_id = ? AND idempotency_key = ?",
            (text_id(workflow_id), text_id(key, "idempotency_key")),
        ).fetchone()
        return None if row is None else self._event(row)

    _DEADLINE_COLS = (
        "id, workflow_id, name, state, opened_at, due_at, rule, breach_trigger, "
        "clause, notify, opened_seq"
    )

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

    _NOTE_COLS = "id, workflow_id, seq, recipient_role, recipient_id, reason, clause, created_at"

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

    _TASK_COLS = "id, workflow_id, seq, kind, owner_role, owner_id, due_at, clause, created_at"

    @guarded
    def tasks(self, workflow_id: str | None = None, *, open_only: bool = False) -> list[Task]:
        sql = f"SELECT {self._TASK_COLS} FROM tasks WHERE 1=1"
        args: list[str] = []
        if workflow_id is not None:
            sql += " AND workflow_id = ?"
            args.append(workflow_id)
        if open_only:
            sql += " AND done_at IS NULL"
        out = []
        for tid, wid, seq, kind, role, owner, due, clause, created in self.conn.execute(
            sql + " ORDER BY created_at, id", args
        ).fetchall():
            out.append(
                Task(
                    id=tid,
                    workflow_id=wid,
                    seq=seq,
                    kind=kind,
                    owner_role=role,
                    owner_id=owner,
                    due_at=dt(due) if due else None,
                    clause=clause,
                    created_at=dt(created),
                )
            )
        return out

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
        data = json.dumps(snap.data, sort_keys=True)
        recent = self._recent.pop(wid, None)
        if recent is not None and recent[0].deadlines == snap.deadlines:
            deadlines = recent[1]
        else:
            deadlines = deadlines_json(snap.deadlines)
        stamp = ts(event.at)
        with self._transaction():
            if expected_version == 0:
                try:
                    execute(
                        "INSERT INTO workflows (workflow_id, machine, policy, policy_version, "
                        "state, version, created_at, updated_at, last_hash, data, deadlines, "
                        "fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            wid,
                            snap.machine,
                            snap.policy,
                            snap.policy_version,
                            snap.state,
                            snap.version,
                            stamp if snap.created_at is None else ts(snap.created_at),
                            stamp,
                            snap.last_hash,
                            data,
                            deadlines,
                            snap.fingerprint,
                        ),
                    )
                except sqlite3.IntegrityError:
                    raise stale(wid, 0, self._version(wid), "the workflow already exists") from None
            else:
                cur = execute(
                    "UPDATE workflows SET state = ?, version = ?, updated_at = ?, last_hash = ?, "
                    "data = ?, deadlines = ?, policy = ?, policy_version = ?, fingerprint = ? "
                    "WHERE workflow_id = ? AND version = ?",
                    (
                        snap.state,
                        snap.version,
                        stamp,
                        snap.last_hash,
                        data,
                        deadlines,
                        snap.policy,
                        snap.policy_version,
                        snap.fingerprint,
                        wid,
                        expected_version,
                    ),
                )
                if cur.rowcount != 1:
                    raise stale(wid, expected_version, self._version(wid))
            try:
                execute(
                    f"INSERT INTO events ({self._EVENT_COLS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        wid,
                        event.seq,
                        event.trigger,
                        event.source,
                        event.dest,
                        event.actor.id,
                        event.actor.role,
                        stamp,
                        json.dumps(event.payload, sort_keys=True),
                        event.prev_hash,
                        event.hash,
                        event.idempotency_key,
                    ),
                )
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
            if step.opened:
                self.conn.executemany(
                    "INSERT INTO deadlines (id, workflow_id, name, state, opened_at, due_at, rule, "
                    "breach_trigger, clause, notify, opened_seq, status) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open')",
                    [
                        (
                            d.id,
                            d.workflow_id,
                            d.name,
                            d.state,
                            ts(d.opened_at),
                            ts(d.due_at),
                            d.rule,
                            d.breach_trigger,
                            d.clause,
                            json.dumps(list(d.notify)),
                            d.opened_seq,
                        )
                        for d in step.opened
                    ],
                )
            closing = [("closed", i) for i in step.closed] + [
                ("breached", i) for i in step.breached
            ]
            if closing:
                self.conn.executemany(
                    "UPDATE deadlines SET status = ?, closed_at = ?, closed_seq = ? "
                    "WHERE id = ? AND status = 'open'",
                    [(status, stamp, event.seq, i) for status, i in closing],
                )
            if step.notifications:
                self.conn.executemany(
                    f"INSERT INTO notifications ({self._NOTE_COLS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            n.id,
                            n.workflow_id,
                            n.seq,
                            n.recipient_role,
                            n.recipient_id,
                            n.reason,
                            n.clause,
                            ts(n.created_at),
                        )
                        for n in step.notifications
                    ],
                )
            if step.tasks:
                self.conn.executemany(
                    f"INSERT INTO tasks ({self._TASK_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            t.id,
                            t.workflow_id,
                            t.seq,
                            t.kind,
                            t.owner_role,
                            t.owner_id,
                            ts(t.due_at) if t.due_at else None,
                            t.clause,
                            ts(t.created_at),
                        )
                        for t in step.tasks
                    ],
                )
        if len(self._recent) >= _RECENT_MAX:
            del self._recent[next(iter(self._recent))]
        self._recent[wid] = (snap, deadlines)

    @guarded
    def commit_many(self, steps: Sequence[Step]) -> None:
        """Write ``steps`` in order in one transaction, all or nothing (each version-checked)."""
        with self._outer():
            for step in steps:
                self.commit(step, expected_version=step.event.seq - 1)

    @guarded
    def fire_due(
        self, now: datetime, breach: Callable[[Deadline], Step | None], *, limit: int
    ) -> list[Step]:
        """Claim due deadlines under the write lock and commit their breaches in one transaction."""
        written: list[Step] = []
        with self._outer():  # the write lock from here: no other ticker sees these rows
            for deadline in self.due_deadlines(now)[:limit]:
                step = breach(deadline)
                if step is None:
                    continue
                try:
                    self.commit(step, expected_version=step.event.seq - 1)
                except ConcurrencyError:
                    continue
                written.append(step)
        return written

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
