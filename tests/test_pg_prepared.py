"""A PostgreSQL store heals when psycopg's cache of prepared statements and the server's
disagree (psycopg counts a statement as prepared that the server no longer has, as after a
pipeline that failed under concurrent writers): the command is written exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from qaflow import Actor, Engine, ManualClock, PostgresStore
from review_machine import review_spec

T0 = datetime(2025, 6, 2, 9, tzinfo=UTC)


def _forget_on_server_only(store: PostgresStore) -> None:
    """Drop every prepared statement of the pool's one connection behind psycopg's back
    (libpq directly, so psycopg's cache still names them)."""
    with store.pool.connection() as conn:
        assert conn._prepared._names, "nothing was prepared: the test would prove nothing"
        conn.pgconn.exec_(b"DEALLOCATE ALL")


def test_a_command_after_the_caches_disagree_is_written_once(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn, min_size=1, max_size=1)
    try:
        clock = ManualClock(T0)
        engine = Engine(store, [review_spec()], clock=clock)
        worker, manager = Actor("P-1", "worker"), Actor("M-1", "manager")
        for n in range(8):  # past psycopg's threshold (5): the write statements get prepared
            engine.start("example.review", f"PR{n}", "submit", worker, {"document_ref": "D"})
        _forget_on_server_only(store)
        clock.advance(timedelta(minutes=1))
        step = engine.fire("PR0", "comment", manager, {"text": "t"})
        events = store.events("PR0")
        assert [e.seq for e in events] == [1, 2] and events[-1].hash == step.event.hash
        assert store.load("PR0").version == 2
        assert engine.verify() == 8
        # and later commands go on as usual on the same connection
        engine.fire("PR1", "comment", manager, {"text": "t"})
        assert store.load("PR1").version == 2
    finally:
        store.close()
