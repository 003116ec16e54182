"""Where steps are committed: an embedded SQLite store and an in-memory one.

Both implement :class:`Store` and pass one contract test suite. A commit writes a step's
event, snapshot, deadlines, notifications and tasks all at once or not at all, and only if
the workflow is still at the version the step was computed from (optimistic concurrency:
of two writers at the same version exactly one wins). Only ``_sqlite`` imports ``sqlite3``
and ``sqlite-utils``.
"""

from __future__ import annotations

from qaflow.store._memory import MemoryStore
from qaflow.store._protocol import Store
from qaflow.store._sqlite import SQLiteStore

__all__ = ["MemoryStore", "SQLiteStore", "Store"]
