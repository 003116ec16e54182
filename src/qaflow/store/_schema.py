"""The versioned schema both SQL stores share: one migration per version.

A database records the version of its schema in ``meta`` (key ``schema_version``). Opening a
store brings an older database up to :data:`SCHEMA_VERSION` by running, in order and inside
the caller's transaction, the migration of every version it lacks; a database of a newer,
unknown version is refused with :class:`~qaflow.errors.StoreError` naming the version, and
left untouched.

Each store keeps its own migration functions (SQLite's in ``_sqlite``, written with
sqlite-utils; PostgreSQL's DDL here, as text, so the PostgreSQL schema lives in one place).
A new table (or column) is a new version: add ``N: migration`` to both stores' maps and bump
:data:`SCHEMA_VERSION`; the contract tests check both maps cover every version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from qaflow.errors import StoreError

__all__ = ["POSTGRES_MIGRATIONS", "SCHEMA_VERSION", "Migration", "migrate"]

SCHEMA_VERSION = 2
"""The PostgreSQL schema version this qaflow writes and the newest it can open (SQLite's is
kept in step by ``_sqlite_schema``: 2 adds the spec fingerprint and the anchor)."""

Migration = Callable[[], None]
"""Brings a database from the previous version to its own (runs in the caller's transaction)."""


def migrate(
    found: int,
    migrations: Mapping[int, Migration],
    record: Callable[[int], None],
    *,
    store: str,
) -> int:
    """Run the migrations after version ``found`` (0: an empty database); return the new version.

    ``record(version)`` stores the version reached after each migration. Raises
    :class:`StoreError`, having run nothing, when ``found`` is newer than this qaflow.
    """
    if found > SCHEMA_VERSION:
        raise StoreError(
            path=store,
            problem=f"has schema version {found}; this qaflow knows versions up to "
            f"{SCHEMA_VERSION} (upgrade qaflow to open it)",
            version=found,
        )
    for version in range(found + 1, SCHEMA_VERSION + 1):
        migrations[version]()
        record(version)
    return max(found, SCHEMA_VERSION)


# PostgreSQL: every version's DDL, in order. Times are timestamptz (UTC), JSON is text so it
# round-trips byte for byte (jsonb would reorder keys and normalise numbers).
POSTGRES_MIGRATIONS: Mapping[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE workflows (
            workflow_id text PRIMARY KEY,
            machine text NOT NULL,
            policy text NOT NULL,
            policy_version text NOT NULL,
            state text NOT NULL,
            version integer NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            last_hash text NOT NULL,
            data text NOT NULL,
            deadlines text NOT NULL
        )""",
        "CREATE INDEX workflows_machine_state ON workflows (machine, state)",
        """CREATE TABLE events (
            workflow_id text NOT NULL,
            seq integer NOT NULL,
            trigger text NOT NULL,
            source text NOT NULL,
            dest text NOT NULL,
            actor_id text NOT NULL,
            actor_role text NOT NULL,
            at timestamptz NOT NULL,
            payload text NOT NULL,
            prev_hash text NOT NULL,
            hash text NOT NULL,
            idempotency_key text,
            PRIMARY KEY (workflow_id, seq),
            UNIQUE (workflow_id, idempotency_key)
        )""",
        """CREATE TABLE deadlines (
            id text PRIMARY KEY,
            workflow_id text NOT NULL,
            name text NOT NULL,
            state text,
            opened_at timestamptz NOT NULL,
            due_at timestamptz NOT NULL,
            rule text NOT NULL,
            breach_trigger text,
            clause text,
            notify text NOT NULL,
            opened_seq integer NOT NULL,
            status text NOT NULL,
            closed_at timestamptz,
            closed_seq integer
        )""",
        "CREATE INDEX deadlines_open_due ON deadlines (due_at, id) WHERE status = 'open'",
        "CREATE INDEX deadlines_workflow ON deadlines (workflow_id, status)",
        """CREATE TABLE notifications (
            id text PRIMARY KEY,
            workflow_id text NOT NULL,
            seq integer NOT NULL,
            recipient_role text NOT NULL,
            recipient_id text,
            reason text NOT NULL,
            clause text,
            created_at timestamptz NOT NULL,
            sent_at timestamptz
        )""",
        "CREATE INDEX notifications_pending ON notifications (created_at, id) "
        "WHERE sent_at IS NULL",
        "CREATE INDEX notifications_workflow ON notifications (workflow_id)",
        """CREATE TABLE tasks (
            id text PRIMARY KEY,
            workflow_id text NOT NULL,
            seq integer NOT NULL,
            kind text NOT NULL,
            owner_role text NOT NULL,
            owner_id text,
            due_at timestamptz,
            clause text,
            created_at timestamptz NOT NULL,
            done_at timestamptz
        )""",
        "CREATE INDEX tasks_workflow ON tasks (workflow_id)",
    ),
    # 2: the spec each workflow is pinned to, and the store-wide anchor ``verify`` checks.
    2: (
        "ALTER TABLE workflows ADD COLUMN fingerprint text NOT NULL DEFAULT ''",
        """CREATE TABLE anchor (
            position bigint PRIMARY KEY,
            workflow_id text NOT NULL,
            seq integer NOT NULL,
            hash text NOT NULL,
            head text NOT NULL
        )""",
        # Events written under version 1 join the anchor in (workflow, seq) order.
        """INSERT INTO anchor (position, workflow_id, seq, hash, head)
        WITH RECURSIVE ordered AS (
            SELECT row_number() OVER (ORDER BY workflow_id, seq) AS position,
                   workflow_id, seq, hash FROM events
        ), chain AS (
            SELECT position, workflow_id, seq, hash,
                   encode(sha256(convert_to(repeat('0', 64) || E'\\n' || workflow_id
                       || E'\\n' || seq::text || E'\\n' || hash, 'UTF8')), 'hex') AS head
            FROM ordered WHERE position = 1
            UNION ALL
            SELECT o.position, o.workflow_id, o.seq, o.hash,
                   encode(sha256(convert_to(c.head || E'\\n' || o.workflow_id
                       || E'\\n' || o.seq::text || E'\\n' || o.hash, 'UTF8')), 'hex')
            FROM ordered o JOIN chain c ON o.position = c.position + 1
        )
        SELECT position, workflow_id, seq, hash, head FROM chain""",
    ),
}
