"""The PostgreSQL store: one shared server, several nodes; the only psycopg user.

Every step commits in one transaction on a pooled connection. Optimistic concurrency is the
``WHERE version = …`` of the snapshot update (under READ COMMITTED a second writer waits for
the first and then finds the version moved); idempotency keys are a unique constraint per
workflow. ``tick`` claims due deadlines with ``FOR UPDATE SKIP LOCKED`` together with their
workflows' rows, so several nodes can tick at once and each breach fires exactly once; a
node that dies mid-claim releases its rows when the server ends its transaction.

psycopg is imported when a store is opened, so ``import qaflow`` stays fast for SQLite users.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

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
from qaflow.store._schema import POSTGRES_MIGRATIONS, migrate

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = ["PostgresStore"]

_TABLES = ("workflows", "events", "deadlines", "notifications", "tasks")
_SCHEMA_LOCK = 0x51A_F10  # the advisory lock that serialises schema migrations
_SNAP_COLS = (
    "workflow_id, machine, policy, policy_version, state, version, created_at, updated_at, "
    "last_hash, data, deadlines"
)
_EVENT_COLS = (
    "workflow_id, seq, trigger, source, dest, actor_id, actor_role, at, payload, prev_hash, "
    "hash, idempotency_key"
)
_DEADLINE_COLS = (
    "id, workflow_id, name, state, opened_at, due_at, rule, breach_trigger, clause, notify, "
    "opened_seq"
)
_NOTE_COLS = "id, workflow_id, seq, recipient_role, recipient_id, reason, clause, created_at"
_TASK_COLS = "id, workflow_id, seq, kind, owner_role, owner_id, due_at, clause, created_at"
# One statement checks the version, moves the snapshot and appends the event: no row comes
# back when the version is stale or the idempotency key was used (then nothing is kept).
_CREATE = (
    f"WITH moved AS (INSERT INTO workflows ({_SNAP_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, "
    "%s, %s, %s, %s) ON CONFLICT (workflow_id) DO NOTHING RETURNING 1), "
    f"added AS (INSERT INTO events ({_EVENT_COLS}) "
    "SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM moved ON CONFLICT DO NOTHING "
    "RETURNING 1) SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM added)"
)
_ADVANCE = (
    "WITH moved AS (UPDATE workflows SET state = %s, version = %s, updated_at = %s, "
    "last_hash = %s, data = %s, deadlines = %s WHERE workflow_id = %s AND version = %s "
    f"RETURNING 1), added AS (INSERT INTO events ({_EVENT_COLS}) "
    "SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM moved ON CONFLICT DO NOTHING "
    "RETURNING 1) SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM added)"
)


def _where(dsn: str) -> str:
    """The DSN's host, port and database, never its password (for messages and repr)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except Exception:  # any malformed DSN: say nothing of its content
        return "an unparsable DSN"
    return " ".join(f"{k}={parts[k]}" for k in ("host", "port", "dbname") if parts.get(k))


def _options(dsn: str) -> str:
    """The DSN's own server options (e.g. a ``search_path``) with the session in UTC."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        given = str(conninfo_to_dict(dsn).get("options") or "")
    except Exception:  # malformed: connecting reports it
        given = ""
    return f"{given} -c TimeZone=UTC".strip()


class PostgresStore:
    """A store on a PostgreSQL server, safe to share between threads, processes and nodes.

    ``dsn`` is a libpq connection string or ``postgresql://`` URL. ``max_size`` bounds the
    connection pool (one connection per concurrently committing thread is enough). Opening
    creates or migrates the schema (serialised across nodes by an advisory lock); a database
    of a newer schema version raises :class:`~qaflow.errors.SchemaError`.
    """

    def __init__(
        self, dsn: str, *, min_size: int = 1, max_size: int = 4, timeout: float = 30.0
    ) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        if not isinstance(dsn, str) or not dsn:
            raise ValidationError(field="dsn", value=dsn, expected="a PostgreSQL URL or DSN")
        self.dsn = dsn
        self.where = _where(dsn)
        kwargs: dict[str, Any] = {"autocommit": True, "options": _options(dsn)}
        try:
            with psycopg.connect(dsn, connect_timeout=max(1, int(timeout)), **kwargs) as conn:
                self._create_schema(conn)
        except psycopg.OperationalError:
            raise ValidationError(
                field="dsn", value=self.where, expected="a reachable PostgreSQL server"
            ) from None
        self.pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            dsn, min_size=min_size, max_size=max_size, kwargs=kwargs, timeout=timeout, open=True
        )
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r})"

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _create_schema(conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text)")
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()

            def step(version: int) -> Callable[[], None]:
                def run() -> None:
                    for statement in POSTGRES_MIGRATIONS[version]:
                        conn.execute(statement)

                return run

            def record(version: int) -> None:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    (str(version),),
                )

            migrations = {v: step(v) for v in POSTGRES_MIGRATIONS}
            migrate(int(row[0]) if row else 0, migrations, record, store="PostgreSQL")

    # --- connections ------------------------------------------------------------------------

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection of the batch or claim this thread is in, else one from the pool."""
        held = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        with self.pool.connection() as conn:
            yield conn

    @contextmanager
    def _hold(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction that this thread's reads and commits join until it ends."""
        if getattr(self._local, "conn", None) is not None:
            with self._conn() as conn, conn.transaction():
                yield conn
            return
        with self.pool.connection() as conn:
            self._local.conn = conn
            try:
                with _conflicts_typed(), conn.transaction():
                    yield conn
            finally:
                self._local.conn = None

    # --- reads ------------------------------------------------------------------------------

    @staticmethod
    def _snapshot(row: tuple[Any, ...]) -> WorkflowSnapshot:
        wid, machine, policy, pver, state, version, created, updated, last, data, dls = row
        return WorkflowSnapshot(
            workflow_id=wid,
            machine=machine,
            policy=policy,
            policy_version=pver,
            state=state,
            data=json.loads(data),
            version=version,
            created_at=created,
            updated_at=updated,
            last_hash=last,
            deadlines=tuple(converter.structure(json.loads(dls), list[Deadline])),
        )

    def load(self, workflow_id: str) -> WorkflowSnapshot:
        with self._conn() as conn:
            row = conn.execute(
                f"SELECT {_SNAP_COLS} FROM workflows WHERE workflow_id = %s", (workflow_id,)
            ).fetchone()
        if row is None:
            raise UnknownWorkflow(workflow_id=workflow_id)
        return self._snapshot(row)

    def _select(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._conn() as conn:
            return conn.execute(sql, args).fetchall()

    def snapshots(self, machine: str | None = None) -> Iterator[WorkflowSnapshot]:
        where, args = ("WHERE machine = %s", (machine,)) if machine is not None else ("", ())
        sql = f"SELECT {_SNAP_COLS} FROM workflows {where} ORDER BY workflow_id"
        for row in self._select(sql, args):
            yield self._snapshot(row)

    def workflow_ids(self, machine: str | None = None) -> Iterator[str]:
        where, args = ("WHERE machine = %s", (machine,)) if machine is not None else ("", ())
        for (wid,) in self._select(f"SELECT workflow_id FROM workflows {where} ORDER BY 1", args):
            yield wid

    @staticmethod
    def _event(row: tuple[Any, ...]) -> Event:
        wid, seq, trigger, source, dest, actor_id, role, at, payload, prev, hash_, key = row
        return Event(
            workflow_id=wid,
            seq=seq,
            trigger=trigger,
            source=source,
            dest=dest,
            actor=Actor(actor_id, role),
            at=at,
            payload=json.loads(payload),
            prev_hash=prev,
            hash=hash_,
            idempotency_key=key,
        )

    def events(self, workflow_id: str) -> list[Event]:
        rows = self._select(
            f"SELECT {_EVENT_COLS} FROM events WHERE workflow_id = %s ORDER BY seq", (workflow_id,)
        )
        if not rows:
            self.load(workflow_id)
        return [self._event(r) for r in rows]

    def find_idempotent(self, workflow_id: str, key: str) -> Event | None:
        rows = self._select(
            f"SELECT {_EVENT_COLS} FROM events WHERE workflow_id = %s AND idempotency_key = %s",
            (workflow_id, key),
        )
        return self._event(rows[0]) if rows else None

    @staticmethod
    def _deadline(row: tuple[Any, ...]) -> Deadline:
        did, wid, name, state, opened, due, rule, breach, clause, notify, seq = row
        return Deadline(
            id=did,
            workflow_id=wid,
            name=name,
            state=state,
            opened_at=opened,
            due_at=due,
            rule=rule,
            breach_trigger=breach,
            clause=clause,
            notify=tuple(json.loads(notify)),
            opened_seq=seq,
        )

    def due_deadlines(self, now: datetime) -> list[Deadline]:
        rows = self._select(
            f"SELECT {_DEADLINE_COLS} FROM deadlines WHERE status = 'open' AND due_at <= %s "
            "ORDER BY due_at, id",
            (ensure_aware(now, "now"),),
        )
        return [self._deadline(r) for r in rows]

    def open_deadlines(self, workflow_id: str | None = None) -> list[Deadline]:
        where, args = (
            ("AND workflow_id = %s", (workflow_id,)) if workflow_id is not None else ("", ())
        )
        rows = self._select(
            f"SELECT {_DEADLINE_COLS} FROM deadlines WHERE status = 'open' {where} "
            "ORDER BY due_at, id",
            args,
        )
        return [self._deadline(r) for r in rows]

    @staticmethod
    def _notification(row: tuple[Any, ...]) -> Notification:
        return Notification(*row)

    def pending_notifications(self, limit: int | None = None) -> list[Notification]:
        sql = (
            f"SELECT {_NOTE_COLS} FROM notifications WHERE sent_at IS NULL ORDER BY created_at, id"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._notification(r) for r in self._select(sql)]

    def notifications(self, workflow_id: str | None = None) -> list[Notification]:
        where, args = (
            ("WHERE workflow_id = %s", (workflow_id,)) if workflow_id is not None else ("", ())
        )
        rows = self._select(
            f"SELECT {_NOTE_COLS} FROM notifications {where} ORDER BY created_at, id", args
        )
        return [self._notification(r) for r in rows]

    def mark_sent(self, ids: Iterable[str], at: datetime) -> int:
        """Mark outbox rows delivered (writes). Returns how many were pending."""
        stamp = ensure_aware(at, "at")
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE notifications SET sent_at = %s WHERE id = ANY(%s) AND sent_at IS NULL",
                (stamp, list(ids)),
            )
            return cur.rowcount

    def tasks(self, workflow_id: str | None = None, *, open_only: bool = False) -> list[Task]:
        sql = f"SELECT {_TASK_COLS} FROM tasks WHERE true"
        args: list[str] = []
        if workflow_id is not None:
            sql += " AND workflow_id = %s"
            args.append(workflow_id)
        if open_only:
            sql += " AND done_at IS NULL"
        return [Task(*row) for row in self._select(sql + " ORDER BY created_at, id", args)]

    def complete_tasks(self, ids: Iterable[str], at: datetime) -> int:
        """Mark tasks done (writes). Returns how many were open."""
        stamp = ensure_aware(at, "at")
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE tasks SET done_at = %s WHERE id = ANY(%s) AND done_at IS NULL",
                (stamp, list(ids)),
            )
            return cur.rowcount

    def counts(self) -> dict[str, int]:
        """Row counts per table (for tests that check a refused command wrote nothing)."""
        out = {t: self._select(f"SELECT count(*) FROM {t}")[0][0] for t in _TABLES}
        out["open_deadlines"] = self._select(
            "SELECT count(*) FROM deadlines WHERE status = 'open'"
        )[0][0]
        return out

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, sorted: the store's whole content, for comparisons."""
        return {t: sorted(self._select(f"SELECT * FROM {t}"), key=repr) for t in _TABLES}

    # --- the write path ---------------------------------------------------------------------

    def commit(self, step: Step, *, expected_version: int) -> None:
        """Write ``step`` in one transaction if the workflow is at ``expected_version``.

        Two round trips: the transaction's statements go in one pipeline flush, then the
        commit. Inside a batch or a tick claim the step is a savepoint of that transaction.
        """
        from psycopg import errors
        from psycopg.pq import TransactionStatus

        wid = step.event.workflow_id
        with _conflicts_typed(wid), self._conn() as conn:
            nested = conn.info.transaction_status != TransactionStatus.IDLE
            begin, done, undo = _NESTED if nested else _TOP
            try:
                with conn.pipeline():
                    conn.execute(begin)
                    self._write(conn, step, expected_version)
                    conn.execute(done)
            except BaseException as error:
                if conn.info.transaction_status in _open_states():
                    for statement in undo:
                        conn.execute(statement)
                if isinstance(error, _Refused):
                    raise self._refusal(conn, wid, expected_version, error.key_used) from None
                if isinstance(error, errors.IntegrityError):
                    raise self._refusal(conn, wid, expected_version, False) from None
                raise

    def commit_many(self, steps: Sequence[Step]) -> None:
        """Write ``steps`` in order in one transaction, all or nothing (each version-checked).

        The batch first locks its workflows' rows in id order, so two batches never deadlock.
        """
        from psycopg import errors

        if not steps:
            return
        current = steps[0]
        try:
            with self._hold() as conn, conn.pipeline():
                ids = sorted({s.event.workflow_id for s in steps})
                conn.execute(
                    "SELECT 1 FROM workflows WHERE workflow_id = ANY(%s) ORDER BY workflow_id "
                    "FOR UPDATE",
                    (ids,),
                )
                for current in steps:
                    self._write(conn, current, current.event.seq - 1)
        except (_Refused, errors.IntegrityError) as error:
            key_used = isinstance(error, _Refused) and error.key_used
            wid, expected = current.event.workflow_id, current.event.seq - 1
            with self._conn() as conn:
                raise self._refusal(conn, wid, expected, key_used) from None

    def _refusal(
        self, conn: psycopg.Connection[Any], wid: str, expected: int, key_used: bool
    ) -> ConcurrencyError:
        """Why a step was refused, asked after its transaction was rolled back."""
        actual = self._version(conn, wid)
        if expected == 0 and actual:
            return stale(wid, 0, actual, "the workflow already exists")
        if actual == expected and key_used:
            return stale(wid, expected, actual, "idempotency key already used")
        if actual == expected:
            return stale(wid, expected, actual, "a row of this step already exists")
        return stale(wid, expected, actual)

    def fire_due(
        self, now: datetime, breach: Callable[[Deadline], Step | None], *, limit: int
    ) -> list[Step]:
        """Claim due deadlines (``SKIP LOCKED``) with their workflows; commit their breaches."""
        moment = ensure_aware(now, "now")
        written: list[Step] = []
        with self._hold() as conn:
            rows = conn.execute(
                "SELECT "
                + ", ".join(f"d.{c.strip()}" for c in _DEADLINE_COLS.split(","))
                + " FROM deadlines d JOIN workflows w ON w.workflow_id = d.workflow_id "
                "WHERE d.status = 'open' AND d.due_at <= %s ORDER BY d.due_at, d.id LIMIT %s "
                "FOR UPDATE OF d, w SKIP LOCKED",
                (moment, int(limit)),
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

    def _write(self, conn: psycopg.Connection[Any], step: Step, expected: int) -> None:
        event, snap = step.event, step.snapshot
        wid = event.workflow_id
        data = json.dumps(snap.data, sort_keys=True)
        deadlines = json.dumps(converter.unstructure(list(snap.deadlines)))
        payload = json.dumps(event.payload, sort_keys=True)
        head, cur = conn.cursor(), conn.cursor()
        if expected == 0:
            head.execute(
                _CREATE,
                (
                    wid,
                    snap.machine,
                    snap.policy,
                    snap.policy_version,
                    snap.state,
                    snap.version,
                    snap.created_at or event.at,
                    event.at,
                    snap.last_hash,
                    data,
                    deadlines,
                    *_event_row(event, payload),
                ),
            )
        else:
            head.execute(
                _ADVANCE,
                (
                    snap.state,
                    snap.version,
                    event.at,
                    snap.last_hash,
                    data,
                    deadlines,
                    wid,
                    expected,
                    *_event_row(event, payload),
                ),
            )
        if step.opened:
            _queue(
                cur,
                f"INSERT INTO deadlines ({_DEADLINE_COLS}, status) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'open')",
                [
                    (
                        d.id,
                        d.workflow_id,
                        d.name,
                        d.state,
                        d.opened_at,
                        d.due_at,
                        d.rule,
                        d.breach_trigger,
                        d.clause,
                        json.dumps(list(d.notify)),
                        d.opened_seq,
                    )
                    for d in step.opened
                ],
            )
        closing = [("closed", i) for i in step.closed] + [("breached", i) for i in step.breached]
        if closing:
            _queue(
                cur,
                "UPDATE deadlines SET status = %s, closed_at = %s, closed_seq = %s "
                "WHERE id = %s AND status = 'open'",
                [(status, event.at, event.seq, i) for status, i in closing],
            )
        if step.notifications:
            _queue(
                cur,
                f"INSERT INTO notifications ({_NOTE_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        n.id,
                        n.workflow_id,
                        n.seq,
                        n.recipient_role,
                        n.recipient_id,
                        n.reason,
                        n.clause,
                        n.created_at,
                    )
                    for n in step.notifications
                ],
            )
        if step.tasks:
            _queue(
                cur,
                f"INSERT INTO tasks ({_TASK_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        t.id,
                        t.workflow_id,
                        t.seq,
                        t.kind,
                        t.owner_role,
                        t.owner_id,
                        t.due_at,
                        t.clause,
                        t.created_at,
                    )
                    for t in step.tasks
                ],
            )
        # Everything above is queued in one pipeline; this fetch sends it and reads the check.
        moved, added = head.fetchone() or (0, 0)
        if not moved or not added:
            raise _Refused(key_used=bool(moved))

    @staticmethod
    def _version(conn: psycopg.Connection[Any], workflow_id: str) -> int:
        row = conn.execute(
            "SELECT version FROM workflows WHERE workflow_id = %s", (workflow_id,)
        ).fetchone()
        return 0 if row is None else int(row[0])


def _queue(cur: psycopg.Cursor[Any], sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """One ``execute`` per row: in pipeline mode each is only queued (``executemany`` would
    open a nested pipeline and wait for the server each time)."""
    for row in rows:
        cur.execute(sql, row)


def _event_row(event: Event, payload: str) -> tuple[Any, ...]:
    return (
        event.workflow_id,
        event.seq,
        event.trigger,
        event.source,
        event.dest,
        event.actor.id,
        event.actor.role,
        event.at,
        payload,
        event.prev_hash,
        event.hash,
        event.idempotency_key,
    )


# How a step begins, ends and is undone: its own transaction, or a savepoint of one.
_TOP = ("BEGIN", "COMMIT", ("ROLLBACK",))
_NESTED = (
    "SAVEPOINT qaflow_step",
    "RELEASE SAVEPOINT qaflow_step",
    ("ROLLBACK TO SAVEPOINT qaflow_step", "RELEASE SAVEPOINT qaflow_step"),
)


def _open_states() -> tuple[Any, ...]:
    from psycopg.pq import TransactionStatus

    return (TransactionStatus.INTRANS, TransactionStatus.INERROR)


class _Refused(Exception):
    """A step found the version moved (or its key used): roll back, then say which."""

    def __init__(self, *, key_used: bool) -> None:
        super().__init__("refused")
        self.key_used = key_used


@contextmanager
def _conflicts_typed(workflow_id: str = "") -> Iterator[None]:
    """A deadlock or serialisation failure the server reports is a retryable conflict."""
    from psycopg import errors

    try:
        yield
    except (errors.DeadlockDetected, errors.SerializationFailure):
        raise ConcurrencyError(
            workflow_id=workflow_id or "(batch)",
            expected_version=None,
            actual_version=-1,
            detail="the server aborted the transaction on a conflict; retry",
        ) from None
