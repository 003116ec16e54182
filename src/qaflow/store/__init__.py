"""Where steps are committed: SQLite (embedded), PostgreSQL (shared server) and in-memory.

These three implement :class:`Store` and pass one contract test suite. A commit writes a step's
event, snapshot, deadlines, notifications and tasks all at once or not at all, and only if
the workflow is still at the version the step was computed from (optimistic concurrency:
of two writers at the same version exactly one wins); ``commit_many`` writes several steps
that way in one transaction. Only ``_sqlite`` imports ``sqlite3`` and ``sqlite-utils``; only
``_postgres`` and its ``_pg_sql`` import psycopg. :func:`open_store` opens a store from a
URL; the SQL stores share a versioned schema. :class:`SimulationStore` keeps only
snapshots and open deadlines, for an engine in simulation mode (no event log, hash chain,
outbox or tasks: reading those raises).
"""

from __future__ import annotations

from qaflow.store._memory import MemoryStore
from qaflow.store._postgres import PostgresStore
from qaflow.store._protocol import Store
from qaflow.store._schema import SCHEMA_VERSION
from qaflow.store._simulation import SimulationStore
from qaflow.store._sqlite import SQLiteStore
from qaflow.store._url import open_store

__all__ = [
    "SCHEMA_VERSION",
    "MemoryStore",
    "PostgresStore",
    "SQLiteStore",
    "SimulationStore",
    "Store",
    "open_store",
]
