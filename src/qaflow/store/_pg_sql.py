"""PostgreSQL statements and row codecs for :class:`PostgresStore` (no connection handling)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from qaflow.calendar import ensure_aware
from qaflow.errors import ConcurrencyError, StoreError, ValidationError
from qaflow.records import (
    Actor,
    Deadline,
    Event,
    Step,
    WorkflowSnapshot,
    converter,
)
from qaflow.store._find import find_query
from qaflow.store._protocol import stale
from qaflow.store._schema import POSTGRES_MIGRATIONS, check_version, migrate

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "Refused",
    "conflicts_typed",
    "create_schema",
    "deadline_from",
    "event_from",
    "find_sql",
    "refusal",
    "snapshot_from",
    "text_id",
    "write_step",
]

TABLES = ("workflows", "events", "deadlines", "notifications", "tasks")
SCHEMA_LOCK = 0x51A_F10  # the advisory lock that serialises schema migrations
SNAP_COLS = (
    "workflow_id, machine, policy, policy_version, state, version, created_at, updated_at, "
    "last_hash, data, deadlines, fingerprint"
)
ANCHOR_COLS = "position, workflow_id, seq, hash, head"
# A commit only records its event for the anchor; ``qaflow_seal`` (in ``_schema``) chains it.
PEND = "INSERT INTO anchor_pending (workflow_id, seq, hash) VALUES (%s, %s, %s)"
SEAL = "SELECT qaflow_seal(%s)"
# The anchor as it stands: the sealed rows, then the pending ones in the order a seal takes.
PENDING = "SELECT workflow_id, seq, hash FROM anchor_pending ORDER BY xid, id"
EVENT_COLS = (
    "workflow_id, seq, trigger, source, dest, actor_id, actor_role, at, payload, prev_hash, "
    "hash, idempotency_key"
)
DEADLINE_COLS = (
    "id, workflow_id, name, state, opened_at, due_at, rule, breach_trigger, clause, notify, "
    "opened_seq"
)
NOTE_COLS = "id, workflow_id, seq, recipient_role, recipient_id, reason, clause, created_at"
TASK_COLS = "id, workflow_id, seq, kind, owner_role, owner_id, due_at, clause, created_at"
# One statement checks the version, moves the snapshot and appends the event: no row comes
# back when the version is stale or the idempotency key was used (then nothing is kept).
CREATE = (
    f"WITH moved AS (INSERT INTO workflows ({SNAP_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, "
    "%s, %s, %s, %s, %s) ON CONFLICT (workflow_id) DO NOTHING RETURNING 1), "
    f"added AS (INSERT INTO events ({EVENT_COLS}) "
    "SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM moved ON CONFLICT DO NOTHING "
    "RETURNING 1) SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM added)"
)
ADVANCE = (
    "WITH moved AS (UPDATE workflows SET state = %s, version = %s, updated_at = %s, "
    "last_hash = %s, data = %s, deadlines = %s, policy = %s, policy_version = %s, "
    "fingerprint = %s WHERE workflow_id = %s AND version = %s "
    f"RETURNING 1), added AS (INSERT INTO events ({EVENT_COLS}) "
    "SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM moved ON CONFLICT DO NOTHING "
    "RETURNING 1) SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM added)"
)


# Due deadlines no other ticker holds, locked with their workflows until the claim ends.
CLAIM = (
    "SELECT "
    + ", ".join(f"d.{c.strip()}" for c in DEADLINE_COLS.split(","))
    + " FROM deadlines d JOIN workflows w ON w.workflow_id = d.workflow_id "
    "WHERE d.status = 'open' AND d.due_at <= %s ORDER BY d.due_at, d.id LIMIT %s "
    "FOR UPDATE OF d, w SKIP LOCKED"
)


def refusal(
    conn: psycopg.Connection[Any], wid: str, expected: int, key_used: bool
) -> ConcurrencyError:
    """Why a step was refused, asked after its transaction was rolled back."""
    row = conn.execute("SELECT version FROM workflows WHERE workflow_id = %s", (wid,)).fetchone()
    actual = 0 if row is None else int(row[0])
    if expected == 0 and actual:
        return stale(wid, 0, actual, "the workflow already exists")
    if actual == expected and key_used:
        return stale(wid, expected, actual, "idempotency key already used")
    if actual == expected:
        return stale(wid, expected, actual, "a row of this step already exists")
    return stale(wid, expected, actual)


def where_of(dsn: str) -> str:
    """The DSN's host, port and database, never its password (for messages and repr)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except Exception:  # any malformed DSN: say nothing of its content
        return "an unparsable DSN"
    return " ".join(f"{k}={parts[k]}" for k in ("host", "port", "dbname") if parts.get(k))


def session_options(dsn: str, *, readonly: bool = False) -> str:
    """The DSN's own server options (e.g. a ``search_path``) with the session in UTC (and
    read-only on the server when ``readonly``)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        given = str(conninfo_to_dict(dsn).get("options") or "")
    except Exception:  # malformed: connecting reports it
        given = ""
    extra = " -c default_transaction_read_only=on" if readonly else ""
    return f"{given} -c TimeZone=UTC{extra}".strip()


def create_schema(conn: psycopg.Connection[Any], *, writable: bool = True) -> None:
    """Create or migrate the schema (see ``_schema``), one node at a time; read-only: check."""
    if not writable:
        with conn.transaction():
            found = _found_version(conn)
            if found == 0:
                raise StoreError(path=where_of_conn(conn), problem="has no qaflow schema")
            check_version(found, store=where_of_conn(conn), writable=False)
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text)")

        def step(version: int) -> Callable[[], None]:
            def run() -> None:
                for statement in POSTGRES_MIGRATIONS[version]:
                    conn.execute(statement)

            return run

        migrations = {v: step(v) for v in POSTGRES_MIGRATIONS}
        migrate(
            _found_version(conn),
            migrations,
            conn.execute,
            placeholder="%s",
            store=f"PostgreSQL {where_of_conn(conn)}",
        )


def _found_version(conn: psycopg.Connection[Any]) -> int:
    """``meta``'s schema version (0: no qaflow tables yet)."""
    if conn.execute("SELECT to_regclass('meta')").fetchone() in (None, (None,)):
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def where_of_conn(conn: psycopg.Connection[Any]) -> str:
    """Where ``conn`` is connected (host, port, database; never a password)."""
    info = conn.info
    return f"host={info.host} port={info.port} dbname={info.dbname}"


def text_id(value: object, field: str = "workflow_id") -> str:
    """An id to bind in SQL: text the server can store (UTF-8, no lone surrogates)."""
    if not isinstance(value, str):
        raise ValidationError(field=field, value=value, expected="text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            field=field, value=value, expected="text encodable as UTF-8"
        ) from None
    return value


def find_sql(
    machine: str | None,
    policy: str | None,
    state: str | None,
    team: str | None,
    overdue_at: datetime | None,
    after: str | None,
    limit: int,
) -> tuple[str, list[Any]]:
    """The query behind :meth:`PostgresStore.find_workflows` and its arguments."""
    return find_query(
        columns=SNAP_COLS,
        placeholder="%s",
        team_expr="(data::jsonb) ->> 'team_id'",
        machine=machine,
        policy=policy,
        state=state,
        team=team,
        overdue_at=None if overdue_at is None else ensure_aware(overdue_at, "overdue_at"),
        after=after,
        limit=limit,
    )


def snapshot_from(row: tuple[Any, ...]) -> WorkflowSnapshot:
    wid, machine, policy, pver, state, version, created, updated, last, data, dls, spec = row
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
        fingerprint=spec or "",
    )


def event_from(row: tuple[Any, ...]) -> Event:
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


def deadline_from(row: tuple[Any, ...]) -> Deadline:
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


def write_step(conn: psycopg.Connection[Any], step: Step, expected: int) -> None:
    """Queue ``step``'s statements on ``conn`` (in pipeline mode) and check them: raises
    :class:`Refused` when the version moved or the key was used (the caller rolls back)."""
    event, snap = step.event, step.snapshot
    wid = event.workflow_id
    data = json.dumps(snap.data, sort_keys=True)
    deadlines = json.dumps(converter.unstructure(list(snap.deadlines)))
    payload = json.dumps(event.payload, sort_keys=True)
    head, cur = conn.cursor(), conn.cursor()
    if expected == 0:
        head.execute(
            CREATE,
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
                snap.fingerprint,
                *_event_row(event, payload),
            ),
        )
    else:
        head.execute(
            ADVANCE,
            (
                snap.state,
                snap.version,
                event.at,
                snap.last_hash,
                data,
                deadlines,
                snap.policy,
                snap.policy_version,
                snap.fingerprint,
                wid,
                expected,
                *_event_row(event, payload),
            ),
        )
    if step.opened:
        _queue(
            cur,
            f"INSERT INTO deadlines ({DEADLINE_COLS}, status) "
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
            f"INSERT INTO notifications ({NOTE_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
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
            f"INSERT INTO tasks ({TASK_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
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
    cur.execute(PEND, (wid, event.seq, event.hash))
    # Everything above is queued in one pipeline; this fetch sends it and reads the check.
    moved, added = head.fetchone() or (0, 0)
    if not moved or not added:
        raise Refused(key_used=bool(moved))


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
TOP = ("BEGIN", "COMMIT", ("ROLLBACK",))
NESTED = (
    "SAVEPOINT qaflow_step",
    "RELEASE SAVEPOINT qaflow_step",
    ("ROLLBACK TO SAVEPOINT qaflow_step", "RELEASE SAVEPOINT qaflow_step"),
)


def open_states() -> tuple[Any, ...]:
    from psycopg.pq import TransactionStatus

    return (TransactionStatus.INTRANS, TransactionStatus.INERROR)


class Refused(Exception):
    """A step found the version moved (or its key used): roll back, then say which."""

    def __init__(self, *, key_used: bool) -> None:
        super().__init__("refused")
        self.key_used = key_used


@contextmanager
def read_only_typed(where: str) -> Iterator[None]:
    """The server refusing a write in a read-only session is a :class:`StoreError`."""
    from psycopg import errors

    try:
        yield
    except errors.ReadOnlySqlTransaction:
        raise StoreError(path=where, problem="is open read-only: it cannot be written") from None


@contextmanager
def conflicts_typed(workflow_id: str = "") -> Iterator[None]:
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
