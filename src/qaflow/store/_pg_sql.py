"""PostgreSQL statements and row codecs for :class:`PostgresStore` (no connection handling)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from qaflow.calendar import ensure_aware
from qaflow.errors import ConcurrencyError, StoreError
from qaflow.records import (
    Deadline,
    Event,
    Step,
    Task,
    WorkflowSnapshot,
)
from qaflow.store import _rows as rows
from qaflow.store._codec import deadlines_json
from qaflow.store._find import Filters, find_query
from qaflow.store._protocol import stale
from qaflow.store._rows import (
    DEADLINE_COLS,
    EVENT_COLS,
    NOTE_COLS,
    SNAP_COLS,
    TASK_COLS,
    text_id,
)
from qaflow.store._schema import (
    POSTGRES_MIGRATIONS,
    POSTGRES_PERIOD_INDEXES,
    check_version,
    migrate,
)

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
ANCHOR_COLS = "position, workflow_id, seq, hash, head"
# A commit only records its event for the anchor; ``qaflow_seal`` (in ``_schema``) chains it.
PEND = "INSERT INTO anchor_pending (workflow_id, seq, hash) VALUES (%s, %s, %s)"
SEAL = "SELECT qaflow_seal(%s)"
# The anchor as it stands: the sealed rows, then the pending ones in the order a seal takes.
PENDING = "SELECT workflow_id, seq, hash FROM anchor_pending ORDER BY xid, id"
INSERT_DEADLINE = rows.insert_sql("deadlines", DEADLINE_COLS, "%s", status="open")
INSERT_NOTE = rows.insert_sql("notifications", NOTE_COLS, "%s")
INSERT_TASK = rows.insert_sql("tasks", TASK_COLS, "%s")
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
    f"WITH moved AS ({rows.advance_sql('%s')} RETURNING 1), "
    f"added AS (INSERT INTO events ({EVENT_COLS}) "
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
        for statement in POSTGRES_PERIOD_INDEXES:
            conn.execute(statement)


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


def find_sql(filters: Filters) -> tuple[str, list[Any]]:
    """The query behind :meth:`PostgresStore.find_workflows` and its arguments."""
    when = filters.overdue_at
    return find_query(
        filters,
        columns=SNAP_COLS,
        placeholder="%s",
        team_expr="(data::jsonb) ->> 'team_id'",
        overdue_at=None if when is None else ensure_aware(when, "overdue_at"),
    )


def same(value: Any) -> Any:
    """PostgreSQL's times come back as datetimes: the identity for ``_rows``' ``back``."""
    return value


def snapshot_from(row: tuple[Any, ...]) -> WorkflowSnapshot:
    return rows.snapshot_from(row, same)


def event_from(row: tuple[Any, ...]) -> Event:
    return rows.event_from(row, same)


def deadline_from(row: tuple[Any, ...]) -> Deadline:
    return rows.deadline_from(row, same)


def task_from(row: tuple[Any, ...]) -> Task:
    return rows.task_from(row, same)


def write_step(conn: psycopg.Connection[Any], step: Step, expected: int) -> None:
    """Queue ``step``'s statements on ``conn`` (in pipeline mode) and check them: raises
    :class:`Refused` when the version moved or the key was used (the caller rolls back)."""
    event, snap = step.event, step.snapshot
    wid = event.workflow_id
    data = rows.sorted_json(snap.data)
    deadlines = deadlines_json(snap.deadlines)
    head, cur = conn.cursor(), conn.cursor()
    if expected == 0:
        created = snap.created_at or event.at
        row = rows.snapshot_values(snap, created, event.at, data, deadlines)
        head.execute(CREATE, (*row, *rows.event_values(event, event.at)))
    else:
        row = rows.advance_values(snap, event.at, data, deadlines, expected)
        head.execute(ADVANCE, (*row, *rows.event_values(event, event.at)))
    for sql, values in (
        (INSERT_DEADLINE, rows.deadline_rows(step, same)),
        (rows.CLOSE_DEADLINE, rows.closing_rows(step, event.at)),
        (INSERT_NOTE, rows.note_rows(step, same)),
        (INSERT_TASK, rows.task_rows(step, same)),
    ):
        for value in values:  # queued one by one: executemany would wait for the server
            cur.execute(sql, value)
    cur.execute(PEND, (wid, event.seq, event.hash))
    # Everything above is queued in one pipeline; this fetch sends it and reads the check.
    moved, added = head.fetchone() or (0, 0)
    if not moved or not added:
        raise Refused(key_used=bool(moved))


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
