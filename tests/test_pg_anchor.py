"""The PostgreSQL anchor off the commit path (issue 13), against a real server.

A commit only records its event in ``anchor_pending``; a seal chains the rows of finished
transactions into ``anchor`` in (xid, id) order. These tests check what that must keep:
concurrent writers on different workflows all land in one contiguous chained anchor; a row
of a transaction still running is not sealed before an older one can still commit; verify
still names each kind of edit (I14, I16) whether the rows are sealed or pending; and an
older database (version 2) is upgraded by the shared migration runner.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from qaflow import Actor, Engine, ManualClock, PostgresStore, make_checkpoint
from qaflow.records import GENESIS_HASH, anchor_head
from qaflow.store import SCHEMA_VERSION
from review_machine import review_spec

T0 = datetime(2025, 12, 19, 10, tzinfo=UTC)
WORKER, MANAGER = Actor("P-1", "worker"), Actor("M-1", "manager")


def _engine(store: PostgresStore) -> Engine:
    return Engine(store, [review_spec()], clock=ManualClock(T0))


def _start(engine: Engine, wid: str) -> None:
    engine.start("example.review", wid, "submit", WORKER, {"document_ref": "D"})


def _raw(store: PostgresStore, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with store.pool.connection() as conn:
        return conn.execute(sql, args).fetchall()  # type: ignore[call-overload,no-any-return]


def _chained(entries: list[Any]) -> bool:
    head = GENESIS_HASH
    for n, entry in enumerate(entries, start=1):
        head = anchor_head(head, entry.workflow_id, entry.seq, entry.hash)
        if entry.position != n or entry.head != head:
            return False
    return True


def test_concurrent_writers_build_one_contiguous_chained_anchor(pg_dsn: str) -> None:
    """Four threads commit on their own workflows at once: every event is in the anchor
    once, positions 1..n, heads chained; after ``anchor_tip`` nothing is left pending."""
    with PostgresStore(pg_dsn, max_size=4) as store:
        engine = _engine(store)
        errors: list[BaseException] = []

        def writer(k: int) -> None:
            try:
                for i in range(6):
                    wid = f"T{k}-{i}"
                    _start(engine, wid)
                    engine.fire(wid, "comment", MANAGER, {"text": "x"})
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        tip = store.anchor_tip()
        entries = list(store.anchor())
        assert tip is not None and tip == entries[-1] and tip.position == 48
        assert _raw(store, "SELECT count(*) FROM anchor_pending") == [(0,)]
        assert _chained(entries)
        logged = sorted((e.workflow_id, e.seq) for e in entries)
        assert logged == sorted(
            (f"T{k}-{i}", s) for k in range(4) for i in range(6) for s in (1, 2)
        )
        assert engine.verify_report().ok


def test_a_running_older_transaction_holds_later_rows_pending(pg_dsn: str) -> None:
    """A row is sealed only once no older transaction can still commit before it: until
    then it is in the anchor as pending (verify sees it), and the checkpoint's tip is the
    sealed one, which later seals extend without changing it."""
    with PostgresStore(pg_dsn) as store:
        engine = _engine(store)
        _start(engine, "A")
        with psycopg.connect(pg_dsn, autocommit=False) as older:
            older.execute("SELECT pg_current_xact_id()")  # holds an xid, still running
            _start(engine, "B")
            pending = _raw(store, "SELECT workflow_id FROM anchor_pending")
            assert pending == [("B",)]
            checkpoint = make_checkpoint(store)
            assert checkpoint["position"] == 1
            entries = list(store.anchor())
            assert [(e.position, e.workflow_id) for e in entries] == [(1, "A"), (2, "B")]
            assert _chained(entries) and engine.verify_report().ok
            older.rollback()
        assert store.seal() == 1
        assert _raw(store, "SELECT count(*) FROM anchor_pending") == [(0,)]
        assert _chained(list(store.anchor()))
        report = engine.verify_report(checkpoint=checkpoint)
        assert report.ok and report.checkpoint == "matched"


@pytest.mark.parametrize("sealed", [True, False], ids=["sealed", "pending"])
def test_verify_names_edits_whether_sealed_or_pending(pg_dsn: str, sealed: bool) -> None:
    with PostgresStore(pg_dsn) as store:
        engine = _engine(store)
        older = None
        if not sealed:  # an open transaction keeps everything after it pending
            older = psycopg.connect(pg_dsn, autocommit=False)
            older.execute("SELECT pg_current_xact_id()")
        try:
            for wid in ("A", "B", "C"):
                _start(engine, wid)
            engine.fire("A", "comment", MANAGER, {"text": "x"})
            pending = _raw(store, "SELECT count(*) FROM anchor_pending")[0][0]
            assert pending == (0 if sealed else 4)
            assert engine.verify_report().ok
            with store.pool.connection() as conn:
                conn.execute('UPDATE events SET payload = \'{"text": "y"}\' WHERE seq = 2')
                conn.execute("DELETE FROM workflows WHERE workflow_id = 'C'")
                conn.execute("DELETE FROM events WHERE workflow_id = 'C'")
                conn.execute("DELETE FROM deadlines WHERE workflow_id = 'C'")
                table = "anchor" if sealed else "anchor_pending"
                conn.execute(f"DELETE FROM {table} WHERE workflow_id = 'B'")  # type: ignore[arg-type]
            problems = engine.verify_report().problems
        finally:
            if older is not None:
                older.close()

    def named(wid: str, text: str) -> bool:
        return any(p.workflow_id == wid and text in p.what for p in problems)

    assert named("A", "hash does not match the event's content")
    assert named("C", "in the anchor (1 event(s)) but missing from the store")
    assert named("B", "workflow is not in the anchor")


def test_postgres_version_2_is_upgraded_by_the_shared_runner(pg_dsn: str) -> None:
    """A version-2 database (anchor appended under a lock, no pending table, no history)
    opens at the current version: its anchor is kept, new commits chain onto it, and the
    runner records the step it ran."""
    with PostgresStore(pg_dsn) as store:
        engine = _engine(store)
        _start(engine, "A")
        _start(engine, "B")
        before = list(store.anchor())
        with store.pool.connection() as conn:  # back to version 2's layout
            for statement in (
                "DROP TABLE anchor_pending",
                "DROP TABLE schema_version",
                "DROP FUNCTION qaflow_seal",
                "ALTER TABLE anchor DROP COLUMN upto",
                "UPDATE meta SET value = '2' WHERE key = 'schema_version'",
            ):
                conn.execute(statement)  # type: ignore[call-overload]
    with PostgresStore(pg_dsn) as store:
        assert _raw(store, "SELECT value FROM meta WHERE key = 'schema_version'") == [
            (str(SCHEMA_VERSION),)
        ]
        assert _raw(store, "SELECT version FROM schema_version") == [(3,)]
        engine = _engine(store)
        engine.fire("A", "comment", MANAGER, {"text": "after"})
        entries = list(store.anchor())
        assert entries[:2] == before and len(entries) == 3 and _chained(entries)
        assert engine.verify_report().ok


def test_a_new_postgres_database_records_every_version(pg_dsn: str) -> None:
    with PostgresStore(pg_dsn) as store:
        rows = _raw(store, "SELECT version FROM schema_version ORDER BY version")
    assert rows == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
