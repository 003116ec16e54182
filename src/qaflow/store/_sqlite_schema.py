"""Opening a SQLite file for qaflow: checks first, then schema creation or upgrade.

A file is only ever changed when it is opened for writing *and* is either empty (a new
database) or already qaflow's (a ``meta`` table with a ``schema_version`` this code knows).
A foreign database, a damaged file, a folder, a newer schema version or a file missing
qaflow's tables or columns is refused with a :class:`~qaflow.errors.StoreError` before any
write: no table is created in it and its journal mode is left alone. Read-only opening
(``readonly=True``, what the read commands of the command line use) never writes at all.

Schema versions (run by the runner both stores share, ``_schema.migrate``): 1 is the
original layout; 2 adds ``workflows.fingerprint`` (the spec a workflow is pinned to) and the
``anchor`` table (the store-wide log ``verify`` checks), backfilled from the events in the
order they were inserted (trusting the record as it is then); 3 the ``schema_version``
history. An older file opened for writing is upgraded in one transaction; a new one is built
by the same steps from version 1.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast

from qaflow.errors import StoreBusy, StoreError
from qaflow.records import GENESIS_HASH, anchor_head
from qaflow.store._schema import HISTORY_TABLE, SCHEMA_VERSION, check_version, migrate

__all__ = ["SCHEMA_VERSION", "guarded", "open_connection", "store_error"]

_COLUMNS: dict[str, tuple[str, ...]] = {
    "meta": ("key", "value"),
    "workflows": (
        "workflow_id",
        "machine",
        "policy",
        "policy_version",
        "state",
        "version",
        "created_at",
        "updated_at",
        "last_hash",
        "data",
        "deadlines",
        "fingerprint",
    ),
    "events": (
        "workflow_id",
        "seq",
        "trigger",
        "source",
        "dest",
        "actor_id",
        "actor_role",
        "at",
        "payload",
        "prev_hash",
        "hash",
        "idempotency_key",
    ),
    "deadlines": (
        "id",
        "workflow_id",
        "name",
        "state",
        "opened_at",
        "due_at",
        "rule",
        "breach_trigger",
        "clause",
        "notify",
        "opened_seq",
        "status",
        "closed_at",
        "closed_seq",
    ),
    "notifications": (
        "id",
        "workflow_id",
        "seq",
        "recipient_role",
        "recipient_id",
        "reason",
        "clause",
        "created_at",
        "sent_at",
    ),
    "tasks": (
        "id",
        "workflow_id",
        "seq",
        "kind",
        "owner_role",
        "owner_id",
        "due_at",
        "clause",
        "created_at",
        "done_at",
    ),
    "anchor": ("position", "workflow_id", "seq", "hash", "head"),
    "schema_version": ("version", "applied_at"),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS workflows (
    workflow_id TEXT PRIMARY KEY, machine TEXT NOT NULL, policy TEXT, policy_version TEXT,
    state TEXT NOT NULL, version INTEGER NOT NULL, created_at TEXT, updated_at TEXT,
    last_hash TEXT, data TEXT, deadlines TEXT);
CREATE TABLE IF NOT EXISTS events (
    workflow_id TEXT, seq INTEGER, trigger TEXT, source TEXT, dest TEXT, actor_id TEXT,
    actor_role TEXT, at TEXT, payload TEXT, prev_hash TEXT, hash TEXT, idempotency_key TEXT,
    PRIMARY KEY (workflow_id, seq));
CREATE TABLE IF NOT EXISTS deadlines (
    id TEXT PRIMARY KEY, workflow_id TEXT, name TEXT, state TEXT, opened_at TEXT, due_at TEXT,
    rule TEXT, breach_trigger TEXT, clause TEXT, notify TEXT, opened_seq INTEGER, status TEXT,
    closed_at TEXT, closed_seq INTEGER);
CREATE TABLE IF NOT EXISTS notifications (
    id TEXT PRIMARY KEY, workflow_id TEXT, seq INTEGER, recipient_role TEXT, recipient_id TEXT,
    reason TEXT, clause TEXT, created_at TEXT, sent_at TEXT);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, workflow_id TEXT, seq INTEGER, kind TEXT, owner_role TEXT,
    owner_id TEXT, due_at TEXT, clause TEXT, created_at TEXT, done_at TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS events_idempotency ON events (workflow_id, idempotency_key);
CREATE INDEX IF NOT EXISTS idx_deadlines_status_due_at ON deadlines (status, due_at);
CREATE INDEX IF NOT EXISTS idx_deadlines_workflow_id_status ON deadlines (workflow_id, status);
CREATE INDEX IF NOT EXISTS idx_notifications_sent_at_id ON notifications (sent_at, id);
CREATE INDEX IF NOT EXISTS idx_tasks_workflow_id ON tasks (workflow_id);
CREATE INDEX IF NOT EXISTS idx_workflows_machine_state ON workflows (machine, state);
"""

_V2 = """
CREATE TABLE IF NOT EXISTS anchor (
    position INTEGER PRIMARY KEY, workflow_id TEXT NOT NULL, seq INTEGER NOT NULL,
    hash TEXT NOT NULL, head TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_notifications_workflow_id ON notifications (workflow_id);
"""


def store_error(path: str, error: sqlite3.Error) -> StoreError:
    """The typed error for a SQLite failure (the message is SQLite's, never row contents)."""
    text = str(error)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return StoreBusy(path=path, problem=f"busy: {text}; nothing was written, retry later")
    if "readonly" in lowered or "read-only" in lowered:
        return StoreError(path=path, problem=f"cannot be written ({text})")
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return StoreError(path=path, problem=f"is damaged or not a SQLite database ({text})")
    if "unable to open" in lowered:
        return StoreError(path=path, problem=f"cannot be opened ({text})")
    return StoreError(path=path, problem=text)


F = TypeVar("F", bound=Callable[..., Any])


def guarded(method: F) -> F:
    """Run a store method under the store's lock, with SQLite errors typed (thread safety)."""

    @wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        lock: threading.RLock = self._lock
        with lock:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.Error as error:
                raise store_error(self.path, error) from None

    return cast(F, wrapper)


def _tables(conn: sqlite3.Connection) -> dict[str, set[str]]:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {n: {r[1] for r in conn.execute(f"PRAGMA table_info([{n}])")} for n in names}


def _version(conn: sqlite3.Connection, path: str) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise StoreError(path=path, problem="its meta table has no schema_version") from None


def _check_layout(tables: dict[str, set[str]], path: str) -> None:
    for table, columns in _COLUMNS.items():
        missing = [c for c in columns if c not in tables.get(table, set())]
        if missing:
            raise StoreError(
                path=path,
                problem=f"table {table!r} lacks column(s) {', '.join(missing)}: an older or "
                "foreign table layout, not one this version of qaflow reads",
            )


def _check_known(conn: sqlite3.Connection, path: str, *, writable: bool) -> int | None:
    """The file's schema version, or ``None`` if it is empty; refuse anything else."""
    tables = _tables(conn)
    if not tables:
        if writable:
            return None
        raise StoreError(path=path, problem="is empty: not a qaflow database")
    if "meta" not in tables:
        raise StoreError(path=path, problem="is not a qaflow database (it has no meta table)")
    version = _version(conn, path)
    check_version(version, store=path, writable=writable)
    if version == SCHEMA_VERSION:
        _check_layout(tables, path)
    return version


def _upgrade_1_to_2(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE workflows ADD COLUMN fingerprint TEXT")
    _script(conn, _V2)
    head = GENESIS_HASH
    rows = conn.execute("SELECT workflow_id, seq, hash FROM events ORDER BY rowid").fetchall()
    entries = []
    for position, (wid, seq, hash_) in enumerate(rows, start=1):
        head = anchor_head(head, wid, seq, hash_)
        entries.append((position, wid, seq, hash_, head))
    conn.executemany("INSERT INTO anchor VALUES (?, ?, ?, ?, ?)", entries)


_PERIOD_INDEXES = """
CREATE INDEX IF NOT EXISTS idx_workflows_updated_at
    ON workflows (updated_at, created_at, machine, policy, state);
CREATE INDEX IF NOT EXISTS idx_tasks_created_at ON tasks (created_at);
CREATE INDEX IF NOT EXISTS idx_notifications_created_at ON notifications (created_at);
CREATE INDEX IF NOT EXISTS idx_deadlines_closed_at ON deadlines (closed_at)
    WHERE closed_at IS NOT NULL;
"""
"""The QA report's period reads (issue 14); made on every writable open, so an older file
gains them too (no query names them: without them the reads are correct, only slower).

``idx_workflows_updated_at`` also holds what ``quiet_workflows`` groups by, so counting the
quiet workflows reads the index alone, never their rows (4-5x faster at 100,000 workflows).
Every command already rewrites its entry (``updated_at`` changes), so the wider entry costs
about 7k instructions on a command's snapshot update (about 1% of a durable command), not an
extra index write (benchmarks/README.md, round 4 (rq14))."""


def _period_indexes(conn: sqlite3.Connection) -> None:
    """Make the period indexes, replacing a narrower ``idx_workflows_updated_at`` an older
    qaflow made (``updated_at`` alone)."""
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'idx_workflows_updated_at'"
    ).fetchone()
    if row is not None and "created_at" not in str(row[0]):
        conn.execute("DROP INDEX idx_workflows_updated_at")
    _script(conn, _PERIOD_INDEXES)


def _script(conn: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _migrations(conn: sqlite3.Connection) -> dict[int, Callable[[], None]]:
    """SQLite's step for every schema version (see ``_schema``)."""
    return {
        1: lambda: _script(conn, _SCHEMA),
        2: lambda: _upgrade_1_to_2(conn),
        3: lambda: _script(conn, HISTORY_TABLE),
    }


def open_connection(
    path: str, *, readonly: bool, synchronous: str, timeout: float
) -> sqlite3.Connection:
    """A checked connection to ``path`` (created or upgraded only when writable)."""
    target = Path(path)
    if target.is_dir():
        raise StoreError(path=path, problem="is a folder, not a database file")
    if readonly and not target.is_file():
        raise StoreError(path=path, problem="does not exist")
    try:
        if readonly:
            conn = sqlite3.connect(
                f"{target.resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                timeout=timeout,
                check_same_thread=False,
            )
        else:
            conn = sqlite3.connect(
                path, isolation_level=None, timeout=timeout, check_same_thread=False
            )
    except sqlite3.Error as error:
        raise store_error(path, error) from None
    try:
        conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        if readonly:
            _check_known(conn, path, writable=False)
            return conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = _check_known(conn, path, writable=True)
            if migrate(version or 0, _migrations(conn), conn.execute, placeholder="?", store=path):
                _check_layout(_tables(conn), path)
            _period_indexes(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
    except sqlite3.Error as error:
        conn.close()
        raise store_error(path, error) from None
    except BaseException:
        conn.close()
        raise
    return conn
