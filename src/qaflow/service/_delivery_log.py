"""Where the webhook deliverer keeps its retry state: attempts, next attempt, given up.

The state lives in the store's own database, in one table of its own, so a deliverer that
is killed and restarted (or runs on another node) carries on where the last one stopped: a
failed notification is not retried before its next attempt is due, one given up on stays
given up, and nothing pending is forgotten (the pending set itself is the store's outbox).

The table is a separate, additive migration step, outside the store's ``schema_version``
(the stores' own tables and their migrations are untouched)::

    webhook-1: CREATE TABLE IF NOT EXISTS webhook_deliveries (
                   notification_id TEXT PRIMARY KEY, attempts INTEGER NOT NULL,
                   next_at TEXT NOT NULL, given_up INTEGER NOT NULL, updated_at TEXT NOT NULL)

It runs when a deliverer first opens the log, on SQLite and PostgreSQL alike (times are UTC
ISO 8601 text on both). A store of another kind (the in-memory one) keeps the state in
memory: it does not survive a restart, and neither does that store.

``qaflow copy`` carries the table over with the workflows (:func:`delivery_rows` reads it
without creating it, :func:`restore_delivery_rows` writes it), so a deliverer pointed at the
copy carries on where the one on the original stopped.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from qaflow.calendar import ensure_aware
from qaflow.store import Store

__all__ = ["DeliveryLog", "DeliveryRow", "RetryState", "delivery_rows", "restore_delivery_rows"]

_DDL = (
    "CREATE TABLE IF NOT EXISTS webhook_deliveries ("
    " notification_id TEXT PRIMARY KEY,"
    " attempts INTEGER NOT NULL,"
    " next_at TEXT NOT NULL,"
    " given_up INTEGER NOT NULL,"
    " updated_at TEXT NOT NULL)"
)


#: One row of the table: notification id, attempts, next attempt, given up (0/1), updated at.
DeliveryRow = tuple[str, int, str, int, str]

_COLUMNS = "notification_id, attempts, next_at, given_up, updated_at"


@attrs.frozen
class RetryState:
    """One notification's failed attempts so far and when the next one is due."""

    attempts: int
    next_at: datetime
    given_up: bool = False


class DeliveryLog:
    """The retry state of every notification that has failed at least once."""

    def __init__(self, store: Store) -> None:
        from qaflow.store import PostgresStore, SQLiteStore

        self._memory: dict[str, RetryState] | None = None
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None
        self._mark = "?"
        if isinstance(store, SQLiteStore):
            conn = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(_DDL)
            self._sqlite = conn
        elif isinstance(store, PostgresStore):
            import psycopg

            from qaflow.store._pg_sql import session_options

            self._pg = psycopg.connect(
                store.dsn, autocommit=True, options=session_options(store.dsn)
            )
            self._pg.execute(_DDL)
            self._mark = "%s"
        else:
            self._memory = {}

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        sql = sql.replace("?", self._mark)
        if self._sqlite is not None:
            return self._sqlite.execute(sql, args).fetchall()
        cursor = self._pg.execute(sql, args)
        return list(cursor.fetchall()) if cursor.description else []

    def states(self) -> dict[str, RetryState]:
        """Every recorded notification's state, by notification id."""
        if self._memory is not None:
            return dict(self._memory)
        rows = self._run(
            "SELECT notification_id, attempts, next_at, given_up FROM webhook_deliveries"
        )
        return {
            nid: RetryState(int(n), datetime.fromisoformat(at), bool(up)) for nid, n, at, up in rows
        }

    def failed(self, notification_id: str, state: RetryState, now: datetime) -> None:
        """Record a failed attempt (durably, before the next round looks)."""
        if self._memory is not None:
            self._memory[notification_id] = state
            return
        next_at = ensure_aware(state.next_at, "next_at").isoformat()
        self._run(
            "INSERT INTO webhook_deliveries VALUES (?, ?, ?, ?, ?) ON CONFLICT (notification_id)"
            " DO UPDATE SET attempts = excluded.attempts, next_at = excluded.next_at,"
            " given_up = excluded.given_up, updated_at = excluded.updated_at",
            (notification_id, state.attempts, next_at, int(state.given_up), now.isoformat()),
        )

    def forget(self, notification_ids: list[str]) -> None:
        """Drop the state of notifications that are no longer pending (delivered, acked)."""
        if self._memory is not None:
            for nid in notification_ids:
                self._memory.pop(nid, None)
            return
        for nid in notification_ids:
            self._run("DELETE FROM webhook_deliveries WHERE notification_id = ?", (nid,))

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()


def delivery_rows(store: Store) -> list[DeliveryRow]:
    """Every row of ``store``'s ``webhook_deliveries``, by notification id; none when no
    deliverer ever opened the store (or it is in memory). Reads only: creates nothing."""
    from qaflow.store import PostgresStore, SQLiteStore

    query = f"SELECT {_COLUMNS} FROM webhook_deliveries ORDER BY notification_id"
    if isinstance(store, SQLiteStore) and store.path != ":memory:":
        uri = Path(store.path).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True)
        try:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'webhook_deliveries'"
            ).fetchone()
            rows = conn.execute(query).fetchall() if exists else []
        finally:
            conn.close()
    elif isinstance(store, PostgresStore):
        import psycopg

        from qaflow.store._pg_sql import session_options

        options = session_options(store.dsn, readonly=True)
        with psycopg.connect(store.dsn, options=options) as pg:
            found = pg.execute("SELECT to_regclass('webhook_deliveries')").fetchone()
            rows = pg.execute(query).fetchall() if found and found[0] is not None else []
    else:
        return []
    return [(str(n), int(a), str(at), int(up), str(upd)) for n, a, at, up, upd in rows]


def restore_delivery_rows(store: Store, rows: list[DeliveryRow]) -> None:
    """Write ``rows`` into ``store``'s ``webhook_deliveries`` (created if need be) in one
    transaction: all of them or, on any error, none."""
    from qaflow.store import PostgresStore, SQLiteStore

    insert = "INSERT INTO webhook_deliveries VALUES (?, ?, ?, ?, ?)"
    if isinstance(store, SQLiteStore):
        conn = sqlite3.connect(store.path, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(_DDL)
                conn.executemany(insert, rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()
    elif isinstance(store, PostgresStore):
        import psycopg

        from qaflow.store._pg_sql import session_options

        with (
            psycopg.connect(store.dsn, options=session_options(store.dsn)) as pg,
            pg.transaction(),
            pg.cursor() as cursor,
        ):
            cursor.execute(_DDL)
            cursor.executemany(insert.replace("?", "%s"), rows)
