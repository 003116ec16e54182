"""The embedded SQLite store: WAL, one transaction per step; the only sqlite-utils user."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import sqlite_utils

from qaflow.calendar import ensure_aware
from qaflow.errors import ConcurrencyError, UnknownWorkflow, ValidationError
from qaflow.records import (
    Actor,
    Deadline,
    Event,
    Notification,
    Step,
    Task,
    WorkflowSnapshot,
    converter,
)
from qaflow.store._protocol import stale
from qaflow.store._schema import Migration, migrate

__all__ = ["SQLiteStore"]

_RECENT_MAX = 1024


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


class SQLiteStore:
    """The embedded durable store: one SQLite file in WAL mode.

    ``synchronous="FULL"`` (the default) makes every acknowledged command survive power loss;
    ``"NORMAL"`` under WAL survives a crash of the process but may lose the last commits on
    power loss, for several times the write rate. Open one store per thread or process;
    several may share the file.
    """

    def __init__(
        self,
        path: str | Path = "qaflow.db",
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        timeout: float = 30.0,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValidationError(
                field="synchronous", value=synchronous, expected="'FULL' or 'NORMAL'"
            )
        self.path = str(path)
        self.conn = sqlite3.connect(
            self.path, isolation_level=None, timeout=timeout, check_same_thread=False
        )
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        self.conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        self.db = sqlite_utils.Database(self.conn)
        # The snapshots this store last wrote, with their deadlines' JSON: a load that finds
        # the row still at that version skips decoding (any other writer bumps the version).
        self._recent: dict[str, tuple[WorkflowSnapshot, str]] = {}
        self._create_schema()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _table(self, name: str) -> sqlite_utils.db.Table:
        return self.db.table(name)

    def _create_schema(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self._table("meta").create({"key": str, "value": str}, pk="key", if_not_exists=True)
            row = self.conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
            migrate(int(row[0]) if row else 0, self.migrations(), self._record, store="SQLite")
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def migrations(self) -> dict[int, Migration]:
        """This store's migration per schema version (see ``qaflow.store._schema``)."""
        return {1: self._schema_v1}

    def _record(self, version: int) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(version),)
        )

    def _schema_v1(self) -> None:
        """Version 1: workflows, events, deadlines, notifications, tasks and their indexes."""
        self._table("workflows").create(
            {
                "workflow_id": str,
                "machine": str,
                "policy": str,
                "policy_version": str,
                "state": str,
                "version": int,
                "created_at": str,
                "updated_at": str,
                "last_hash": str,
                "data": str,
                "deadlines": str,
            },
            pk="workflow_id",
            not_null={"machine", "state", "version"},
            if_not_exists=True,
        )
        self._table("events").create(
            {
                "workflow_id": str,
                "seq": int,
                "trigger": str,
                "source": str,
                "dest": str,
                "actor_id": str,
                "actor_role": str,
                "at": str,
                "payload": str,
                "prev_hash": str,
                "hash": str,
                "idempotency_key": str,
            },
            pk=("workflow_id", "seq"),
            if_not_exists=True,
        )
        self._table("deadlines").create(
            {
                "id": str,
                "workflow_id": str,
                "name": str,
                "state": str,
                "opened_at": str,
                "due_at": str,
                "rule": str,
                "breach_trigger": str,
                "clause": str,
                "notify": str,
                "opened_seq": int,
                "status": str,
                "closed_at": str,
                "closed_seq": int,
            },
            pk="id",
            if_not_exists=True,
        )
        self._table("notifications").create(
            {
                "id": str,
                "workflow_id": str,
                "seq": int,
                "recipient_role": str,
                "recipient_id": str,
                "reason": str,
                "clause": str,
                "created_at": str,
                "sent_at": str,
            },
            pk="id",
            if_not_exists=True,
        )
        self._table("tasks").create(
            {
                "id": str,
                "workflow_id": str,
                "seq": int,
                "kind": str,
                "owner_role": str,
                "owner_id": str,
                "due_at": str,
                "clause": str,
                "created_at": str,
                "done_at": str,
            },
            pk="id",
            if_not_exists=True,
        )
        self._table("events").create_index(
            ["workflow_id", "idempotency_key"],
            unique=True,
            if_not_exists=True,
            index_name="events_idempotency",
        )
        self._table("deadlines").create_index(["status", "due_at"], if_not_exists=True)
        self._table("deadlines").create_index(["workflow_id", "status"], if_not_exists=True)
        self._table("notifications").create_index(["sent_at", "id"], if_not_exists=True)
        self._table("tasks").create_index(["workflow_id"], if_not_exists=True)
        self._table("workflows").create_index(["machine", "state"], if_not_exists=True)

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
        ) = row
        return WorkflowSnapshot(
            workflow_id=wid,
            machine=machine,
            policy=policy,
            policy_version=pver,
            state=state,
            data=json.loads(data),
            version=version,
            created_at=_dt(created),
            updated_at=_dt(updated),
            last_hash=last_hash,
            deadlines=tuple(converter.structure(json.loads(deadlines), list[Deadline])),
        )

    _SNAP_COLS = (
        "workflow_id, machine, policy, policy_version, state, version, created_at, "
        "updated_at, last_hash, data, deadlines"
    )

    def load(self, workflow_id: str) -> WorkflowSnapshot:
        recent = self._recent.get(workflow_id)
        if recent is not None:
            row = self.conn.execute(
                "SELECT version FROM workflows WHERE workflow_id = ?", (workflow_id,)
            ).fetchone()
            if row is not None and row[0] == recent[0].version:
                return recent[0]
        row = self.conn.execute(
            f"SELECT {self._SNAP_COLS} FROM workflows WHERE workflow_id = ?", (workflow_id,)
        ).fetchone()
        if row is None:
            raise UnknownWorkflow(workflow_id=workflow_id)
        return self._snapshot(row)

    def snapshots(self, machine: str | None = None) -> Iterator[WorkflowSnapshot]:
        sql = f"SELECT {self._SNAP_COLS} FROM workflows"
        args: tuple[str, ...] = ()
        if machine is not None:
            sql += " WHERE machine = ?"
            args = (machine,)
        for row in self.conn.execute(sql + " ORDER BY workflow_id", args).fetchall():
            yield self._snapshot(row)

    def workflow_ids(self, machine: str | None = None) -> Iterator[str]:
        sql = "SELECT workflow_id FROM workflows"
        args: tuple[str, ...] = ()
        if machine is not None:
            sql += " WHERE machine = ?"
            args = (machine,)
        for (wid,) in self.conn.execute(sql + " ORDER BY workflow_id", args).fetchall():
            yield wid

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
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("machine", machine), ("policy", policy), ("state", state)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if team is not None:
            where.append("json_extract(data, '$.team_id') = ?")
            args.append(team)
        if overdue_at is not None:
            where.append(
                "EXISTS (SELECT 1 FROM deadlines d WHERE d.workflow_id = workflows.workflow_id "
                "AND d.status = 'open' AND d.due_at <= ?)"
            )
            args.append(_ts(ensure_aware(overdue_at, "overdue_at")))
        if after is not None:
            where.append("workflow_id > ?")
            args.append(after)
        sql = f"SELECT {self._SNAP_COLS} FROM workflows"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.conn.execute(
            sql + " ORDER BY workflow_id LIMIT ?", (*args, max(limit, 0))
        ).fetchall()
        return [self._snapshot(row) for row in rows]

    @staticmethod
    def _event(row: tuple[Any, ...]) -> Event:
        (wid, seq, trigger, source, dest, actor_id, role, at, payload, prev_hash, hash_, key) = row
        return Event(
            workflow_id=wid,
            seq=seq,
            trigger=trigger,
            source=source,
            dest=dest,
            actor=Actor(actor_id, role),
            at=_dt(at),
            payload=json.loads(payload),
            prev_hash=prev_hash,
            hash=hash_,
            idempotency_key=key,
        )

    _EVENT_COLS = (
        "workflow_id, seq, trigger, source, dest, actor_id, actor_role, at, payload, "
        "prev_hash, hash, idempotency_key"
    )

    def events(self, workflow_id: str) -> list[Event]:
        rows = self.conn.execute(
            f"SELECT {self._EVENT_COLS} FROM events WHERE workflow_id = ? ORDER BY seq",
            (workflow_id,),
        ).fetchall()
        if not rows:
            self.load(workflow_id)
        return [self._event(r) for r in rows]

    def find_idempotent(self, workflow_id: str, key: str) -> Event | None:
        row = self.conn.execute(
            f"SELECT {self._EVENT_COLS} FROM events WHERE workflow_id = ? AND idempotency_key = ?",
            (workflow_id, key),
        ).fetchone()
        return None if row is None else self._event(row)

    _DEADLINE_COLS = (
        "id, workflow_id, name, state, opened_at, due_at, rule, breach_trigger, "
        "clause, notify, opened_seq"
    )

    @staticmethod
    def _deadline(row: tuple[Any, ...]) -> Deadline:
        did, wid, name, state, opened, due, rule, breach, clause, notify, seq = row
        return Deadline(
            id=did,
            workflow_id=wid,
            name=name,
            state=state,
            opened_at=_dt(opened),
            due_at=_dt(due),
            rule=rule,
            breach_trigger=breach,
            clause=clause,
            notify=tuple(json.loads(notify)),
            opened_seq=seq,
        )

    def due_deadlines(self, now: datetime) -> list[Deadline]:
        rows = self.conn.execute(
            f"SELECT {self._DEADLINE_COLS} FROM deadlines WHERE status = 'open' AND due_at <= ? "
            "ORDER BY due_at, id",
            (_ts(ensure_aware(now, "now")),),
        ).fetchall()
        return [self._deadline(r) for r in rows]

    def open_deadlines(self, workflow_id: str | None = None) -> list[Deadline]:
        sql = f"SELECT {self._DEADLINE_COLS} FROM deadlines WHERE status = 'open'"
        args: tuple[str, ...] = ()
        if workflow_id is not None:
            sql += " AND workflow_id = ?"
            args = (workflow_id,)
        rows = self.conn.execute(sql + " ORDER BY due_at, id", args).fetchall()
        return [self._deadline(r) for r in rows]

    _NOTE_COLS = "id, workflow_id, seq, recipient_role, recipient_id, reason, clause, created_at"

    @staticmethod
    def _notification(row: tuple[Any, ...]) -> Notification:
        nid, wid, seq, role, rid, reason, clause, created = row
        return Notification(
            id=nid,
            workflow_id=wid,
            seq=seq,
            recipient_role=role,
            recipient_id=rid,
            reason=reason,
            clause=clause,
            created_at=_dt(created),
        )

    def pending_notifications(self, limit: int | None = None) -> list[Notification]:
        sql = (
            f"SELECT {self._NOTE_COLS} FROM notifications WHERE sent_at IS NULL "
            "ORDER BY created_at, id"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._notification(r) for r in self.conn.execute(sql).fetchall()]

    def notifications(self, workflow_id: str | None = None) -> list[Notification]:
        sql = f"SELECT {self._NOTE_COLS} FROM notifications"
        args: tuple[str, ...] = ()
        if workflow_id is not None:
            sql += " WHERE workflow_id = ?"
            args = (workflow_id,)
        return [
            self._notification(r)
            for r in self.conn.execute(sql + " ORDER BY created_at, id", args).fetchall()
        ]

    def mark_sent(self, ids: Iterable[str], at: datetime) -> int:
        """Mark outbox rows delivered (writes). Returns how many were pending."""
        stamp = _ts(ensure_aware(at, "at"))
        with self._transaction():
            cur = self.conn.executemany(
                "UPDATE notifications SET sent_at = ? WHERE id = ? AND sent_at IS NULL",
                [(stamp, i) for i in ids],
            )
            return cur.rowcount

    _TASK_COLS = "id, workflow_id, seq, kind, owner_role, owner_id, due_at, clause, created_at"

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
                    due_at=_dt(due) if due else None,
                    clause=clause,
                    created_at=_dt(created),
                )
            )
        return out

    def complete_tasks(self, ids: Iterable[str], at: datetime) -> int:
        """Mark tasks done (writes). Returns how many were open."""
        stamp = _ts(ensure_aware(at, "at"))
        with self._transaction():
            cur = self.conn.executemany(
                "UPDATE tasks SET done_at = ? WHERE id = ? AND done_at IS NULL",
                [(stamp, i) for i in ids],
            )
            return cur.rowcount

    def counts(self) -> dict[str, int]:
        """Row counts per table (for tests that check a refused command wrote nothing)."""
        out = {
            t: self.db[t].count
            for t in ("workflows", "events", "deadlines", "notifications", "tasks")
        }
        out["open_deadlines"] = self.conn.execute(
            "SELECT count(*) FROM deadlines WHERE status = 'open'"
        ).fetchone()[0]
        return out

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, sorted: the store's whole content, for comparisons."""
        return {
            t: sorted(self.conn.execute(f"SELECT * FROM [{t}]").fetchall(), key=repr)
            for t in ("workflows", "events", "deadlines", "notifications", "tasks")
        }

    # --- the write path -------------------------------------------------------------------

    def _transaction(self) -> _Tx:
        return _Tx(self.conn)

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
            deadlines = json.dumps(converter.unstructure(list(snap.deadlines)))
        with self._transaction():
            if expected_version == 0:
                try:
                    execute(
                        "INSERT INTO workflows (workflow_id, machine, policy, policy_version, "
                        "state, version, created_at, updated_at, last_hash, data, deadlines) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            wid,
                            snap.machine,
                            snap.policy,
                            snap.policy_version,
                            snap.state,
                            snap.version,
                            _ts(snap.created_at or event.at),
                            _ts(event.at),
                            snap.last_hash,
                            data,
                            deadlines,
                        ),
                    )
                except sqlite3.IntegrityError:
                    raise stale(wid, 0, self._version(wid), "the workflow already exists") from None
            else:
                cur = execute(
                    "UPDATE workflows SET state = ?, version = ?, updated_at = ?, last_hash = ?, "
                    "data = ?, deadlines = ? WHERE workflow_id = ? AND version = ?",
                    (
                        snap.state,
                        snap.version,
                        _ts(event.at),
                        snap.last_hash,
                        data,
                        deadlines,
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
                        _ts(event.at),
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
                            _ts(d.opened_at),
                            _ts(d.due_at),
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
                stamp = _ts(event.at)
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
                            _ts(n.created_at),
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
                            _ts(t.due_at) if t.due_at else None,
                            t.clause,
                            _ts(t.created_at),
                        )
                        for t in step.tasks
                    ],
                )
        if len(self._recent) >= _RECENT_MAX:
            del self._recent[next(iter(self._recent))]
        self._recent[wid] = (snap, deadlines)

    def commit_many(self, steps: Sequence[Step]) -> None:
        """Write ``steps`` in order in one transaction, all or nothing (each version-checked)."""
        with self._outer():
            for step in steps:
                self.commit(step, expected_version=step.event.seq - 1)

    def fire_due(
        self, now: datetime, breach: Callable[[Deadline], Step | None], *, limit: int
    ) -> list[Step]:
        """Claim due deadlines under the write lock and commit their breaches in one transaction."""
        stamp = _ts(ensure_aware(now, "now"))
        written: list[Step] = []
        with self._outer():
            rows = self.conn.execute(
                f"SELECT {self._DEADLINE_COLS} FROM deadlines "
                "WHERE status = 'open' AND due_at <= ? ORDER BY due_at, id LIMIT ?",
                (stamp, int(limit)),
            ).fetchall()
            for row in rows:
                step = breach(self._deadline(row))
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
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")
