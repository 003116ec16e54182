"""The versioned schema both SQL stores share, and the one migration runner they both use.

A database records its schema version in ``meta`` (key ``schema_version``: what every qaflow,
old or new, reads first) and, from version 3, every version applied with when, in a
``schema_version`` table. Opening a store for writing brings an older database up to
:data:`SCHEMA_VERSION` with :func:`migrate`: the steps of every version it lacks, in order, in
the caller's one transaction (all or nothing), each recorded as it completes. A database of a
newer, unknown version is refused with :class:`~qaflow.errors.StoreError` naming the version
and left untouched (:func:`check_version`); so is an older one opened read-only.

Each store keeps its own step per version (SQLite's in ``_sqlite_schema``, PostgreSQL's DDL
here, as text, so the PostgreSQL schema lives in one place). A new table or column is a new
version: add ``N`` to both stores' maps and bump :data:`SCHEMA_VERSION`; a contract test
checks both maps cover every version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from qaflow.errors import StoreError

__all__ = [
    "HISTORY_TABLE",
    "POSTGRES_MIGRATIONS",
    "POSTGRES_PERIOD_INDEXES",
    "SCHEMA_VERSION",
    "SEAL_LOCK",
    "Migration",
    "check_version",
    "migrate",
]

SCHEMA_VERSION = 3
"""The schema version this qaflow writes and the newest it can open, on either store: 2 adds
the spec fingerprint and the anchor; 3 the ``schema_version`` history (and, on PostgreSQL,
the anchor sealed off the commit path)."""

Migration = Callable[[], None]
"""Brings a database from the previous version to its own (runs in the caller's transaction)."""

HISTORY_TABLE = (
    "CREATE TABLE schema_version (version integer PRIMARY KEY, applied_at text NOT NULL)"
)
"""Version 3's table on both stores: one row per version applied since it exists."""
_HISTORY_FROM = 3


def check_version(found: int, *, store: str, writable: bool) -> None:
    """Refuse a schema this qaflow cannot use: newer (always), or older when read-only."""
    if found > SCHEMA_VERSION:
        raise StoreError(
            path=store,
            problem=f"has schema version {found}, newer than {SCHEMA_VERSION} which this "
            "version of qaflow reads: upgrade qaflow",
            version=found,
        )
    if 0 < found < SCHEMA_VERSION and not writable:
        raise StoreError(
            path=store,
            problem=f"has schema version {found}, older than {SCHEMA_VERSION}: open it "
            "once for writing (e.g. qaflow tick) to upgrade it",
            version=found,
        )


def migrate(
    found: int,
    migrations: Mapping[int, Migration],
    execute: Callable[[str, Sequence[Any]], object],
    *,
    placeholder: str,
    store: str,
) -> list[int]:
    """Run the steps after version ``found`` (0: an empty database); return the versions run.

    ``execute(sql, args)`` runs a statement in the caller's transaction (``placeholder`` is
    the driver's parameter mark): after each step the runner moves ``meta``'s
    ``schema_version`` on and, once the history table exists, adds the step's row there.
    Raises :class:`StoreError`, having run nothing, when ``found`` is newer than this qaflow.
    """
    check_version(found, store=store, writable=True)
    p = placeholder
    ran: list[int] = []
    for version in range(found + 1, SCHEMA_VERSION + 1):
        migrations[version]()
        execute(
            f"INSERT INTO meta (key, value) VALUES ('schema_version', {p}) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(version),),
        )
        ran.append(version)
        if version >= _HISTORY_FROM:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            for done in ran if version == _HISTORY_FROM else [version]:
                execute(
                    f"INSERT INTO schema_version (version, applied_at) VALUES ({p}, {p})",
                    (done, stamp),
                )
    return ran


SEAL_LOCK = 0x51A_F11
"""The advisory lock one sealer holds while it moves pending rows into the anchor (with the
schema's hash as its second key: stores in different schemas of one database never wait on,
or skip a seal for, each other)."""

SEAL_FUNCTION = f"""CREATE OR REPLACE FUNCTION qaflow_seal(wait boolean) RETURNS bigint
LANGUAGE plpgsql AS $seal$
DECLARE
    pos bigint;
    hd text;
    mark xid8;
    horizon xid8;
    r record;
    n bigint := 0;
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock({SEAL_LOCK}, hashtext(current_schema()));
    ELSIF NOT pg_try_advisory_xact_lock({SEAL_LOCK}, hashtext(current_schema())) THEN
        RETURN -1;
    ELSE
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    PERFORM set_config('enable_seqscan', 'off', true);
    SELECT position, head, upto INTO pos, hd, mark FROM anchor ORDER BY position DESC LIMIT 1;
    pos := coalesce(pos, 0);
    hd := coalesce(hd, repeat('0', 64));
    mark := coalesce(mark, '0'::xid8);
    horizon := pg_snapshot_xmin(pg_current_snapshot());
    FOR r IN
        WITH gone AS (
            DELETE FROM anchor_pending WHERE xid >= mark AND xid < horizon
            RETURNING id, xid, workflow_id, seq, hash
        ) SELECT * FROM gone ORDER BY xid, id
    LOOP
        pos := pos + 1;
        hd := encode(sha256(convert_to(hd || E'\\n' || r.workflow_id || E'\\n' || r.seq::text
            || E'\\n' || r.hash, 'UTF8')), 'hex');
        INSERT INTO anchor (position, workflow_id, seq, hash, head, upto)
            VALUES (pos, r.workflow_id, r.seq, r.hash, hd, horizon);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$seal$"""
"""Seal the anchor: move the pending rows of every finished transaction into ``anchor``.

Rows whose transaction id is below the oldest running one (the snapshot's ``xmin``) can no
longer change: their transactions committed (rows visible) or rolled back (rows gone). They
are sealed in (xid, id) order, so the order never depends on when a seal ran, and the tip
keeps the horizon (``upto``) below which nothing is pending any more. ``wait=false`` (after a
commit) gives up at once if another sealer holds the lock and commits without waiting for
its WAL flush: a lost seal is redone from the same rows in the same order.
"""

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
    # 3: every version applied, with when (``schema_version``), and the anchor sealed off the
    # commit path: a commit only adds its (workflow, seq, hash) to ``anchor_pending`` with its
    # transaction id, and ``qaflow_seal`` (see ``_pg_sql``) moves the rows of finished
    # transactions into ``anchor`` in (xid, id) order, chaining heads, under a short lock.
    3: (
        HISTORY_TABLE,
        """CREATE TABLE anchor_pending (
            id bigserial PRIMARY KEY,
            xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
            workflow_id text NOT NULL,
            seq integer NOT NULL,
            hash text NOT NULL
        )""",
        "CREATE INDEX anchor_pending_xid ON anchor_pending (xid, id)",
        "ALTER TABLE anchor ADD COLUMN upto xid8",
        SEAL_FUNCTION,
    ),
}

POSTGRES_PERIOD_INDEXES: tuple[str, ...] = (
    "CREATE INDEX IF NOT EXISTS workflows_updated_at ON workflows (updated_at)",
    "CREATE INDEX IF NOT EXISTS tasks_created_at ON tasks (created_at)",
    "CREATE INDEX IF NOT EXISTS notifications_created_at ON notifications (created_at)",
    "CREATE INDEX IF NOT EXISTS deadlines_closed_at ON deadlines (closed_at) "
    "WHERE closed_at IS NOT NULL",
)
"""The period reads' indexes, SQLite's too (issue 14): made on every writable open, so an
older database gains them (no query names them: without them the reads are correct, only
slower)."""
