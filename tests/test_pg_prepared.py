"""A PostgreSQL store heals when psycopg's cache of prepared statements and the server's
disagree (psycopg counts a statement as prepared that the server no longer has, as after a
pipeline that failed under concurrent writers): the command is written exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qaflow import Actor, ConcurrencyError, Engine, ManualClock, PostgresStore, Step
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


# --- the root cause: a server error in a pipeline cut short a Parse psycopg had counted ----
#
# psycopg names a statement prepared when it queues the Parse of its first prepared use
# (after ``prepare_threshold`` plain runs) and never checks that Parse's result. A stale
# writer's step fails mid-pipeline on the server exactly as a losing node's does in the
# four-node test: its version check moves nothing, then its notification row collides with
# the winner's (``notifications_pkey``), and the server skips the rest of the pipeline.
# Each round below fails one pipeline; over the rounds every statement after the failing one
# passes its threshold in a failing pipeline at least once.

ROUNDS = 9


def _psycopg_agrees_with_the_server(store: PostgresStore) -> None:
    """Every statement psycopg would run as prepared exists on the server."""
    with store.pool.connection() as conn:
        named = {n.decode() for n in conn._prepared._names.values()}
        held = conn.execute("SELECT name FROM pg_prepared_statements", prepare=False).fetchall()
    missing = named - {name for (name,) in held}
    assert not missing, f"psycopg names statements the server lacks: {sorted(missing)}"


def _started(engine: Engine, wid: str) -> Step:
    worker = Actor("P-1", "worker")
    return engine.start("example.review", wid, "submit", worker, {"document_ref": "D"})


def test_a_commit_failing_mid_pipeline_leaves_psycopg_and_the_server_agreeing(
    pg_dsn: str,
) -> None:
    store = PostgresStore(pg_dsn, min_size=1, max_size=1)
    try:
        engine = Engine(store, [review_spec()], clock=ManualClock(T0))
        manager = Actor("M-1", "manager")
        for n in range(ROUNDS):
            first = _started(engine, f"A{n}")
            engine.fire(f"A{n}", "comment", manager, {"text": "t"})
            with pytest.raises(ConcurrencyError):  # the losing node's resend
                store.commit(first, expected_version=0)
            _psycopg_agrees_with_the_server(store)
            with engine.batch():  # a batch has no redo of its own to fall back on
                _started(engine, f"A{n}b")
        for n in range(ROUNDS):  # every later command runs, on the same connection
            engine.fire(f"A{n}", "comment", manager, {"text": "u"})
        assert engine.verify() == 2 * ROUNDS
    finally:
        store.close()


def test_a_tick_claim_whose_breach_fails_mid_pipeline_goes_on(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn, min_size=1, max_size=1)
    try:
        clock = ManualClock(T0)
        engine = Engine(store, [review_spec()], clock=clock)
        firsts = [_started(engine, f"B{n}") for n in range(ROUNDS)]
        manager = Actor("M-1", "manager")
        for n in range(ROUNDS):
            engine.fire(f"B{n}", "comment", manager, {"text": "t"})
        due = T0 + timedelta(days=30)
        for n, first in enumerate(firsts):
            # each claim's first breach is a stale step that fails inside its savepoint
            # (skipped as a conflict); the claim's other breaches are real ones
            stale = iter([first])
            store.fire_due(due, lambda d, stale=stale: next(stale, None), limit=2)
            _psycopg_agrees_with_the_server(store)
            engine.fire(f"B{n}", "comment", manager, {"text": "u"})
        clock.set(due)
        fired = engine.tick(due)  # the review deadline, then the senior review's: once each
        assert len(fired) == len({s.event.payload["deadline_id"] for s in fired}) == 2 * ROUNDS
        assert engine.verify() == ROUNDS
    finally:
        store.close()


def test_a_batch_failing_mid_pipeline_leaves_psycopg_and_the_server_agreeing(
    pg_dsn: str,
) -> None:
    store = PostgresStore(pg_dsn, min_size=1, max_size=1)
    try:
        engine = Engine(store, [review_spec()], clock=ManualClock(T0))
        manager = Actor("M-1", "manager")
        for n in range(ROUNDS):
            first = _started(engine, f"C{n}")
            engine.fire(f"C{n}", "comment", manager, {"text": "t"})
            with pytest.raises(ConcurrencyError):
                store.commit_many([first])
            _psycopg_agrees_with_the_server(store)
            with engine.batch():
                engine.fire(f"C{n}", "comment", manager, {"text": "u"})
        assert engine.verify() == ROUNDS
    finally:
        store.close()


# --- statements deallocated outside qaflow: healed or typed on every path ------------------


def _warm(engine: Engine, prefix: str, n: int = 8) -> None:
    for k in range(n):  # past psycopg's threshold (5): the statements get prepared
        _started(engine, f"{prefix}{k}")


def test_a_batch_after_the_caches_disagree_is_written_once(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn, min_size=1, max_size=1)
    try:
        engine = Engine(store, [review_spec()], clock=ManualClock(T0))
        manager = Actor("M-1", "manager")
        _warm(engine, "D")
        for round_ in range(2):  # twice on one connection: the cure must not wear off
            for k in range(6):  # the batch's own statements get prepared too
                with engine.batch():
                    engine.fire(f"D{k}", "comment", manager, {"text": f"{round_}"})
            _forget_on_server_only(store)
            with engine.batch():
                engine.fire("D7", "comment", manager, {"text": f"{round_}"})
        assert [e.seq for e in store.events("D7")] == [1, 2, 3]
        assert engine.verify() == 8
    finally:
        store.close()


def test_a_tick_after_the_caches_disagree_breaches_every_deadline_once(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn, min_size=1, max_size=1)
    try:
        clock = ManualClock(T0)
        engine = Engine(store, [review_spec()], clock=clock)
        _warm(engine, "E")
        due = T0 + timedelta(days=30)
        clock.set(due)
        for _ in range(6):  # the claim statement gets prepared (breaching nothing)
            store.fire_due(due, lambda d: None, limit=1)
        _forget_on_server_only(store)
        fired = engine.tick(due)
        assert len(fired) == len({s.event.payload["deadline_id"] for s in fired}) == 16
        assert store.due_deadlines(due) == []
        assert engine.verify() == 8
    finally:
        store.close()


def test_reads_and_commands_after_the_caches_disagree_twice(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn, min_size=1, max_size=1)
    try:
        clock = ManualClock(T0)
        engine = Engine(store, [review_spec()], clock=clock)
        manager = Actor("M-1", "manager")
        _warm(engine, "F")
        for round_ in range(2):  # the second time on one connection too
            for _ in range(6):
                store.load("F0")
            _forget_on_server_only(store)
            assert store.load("F0").version == 1 + round_
            for k in range(1, 7):  # the write statements get prepared again
                engine.fire(f"F{k}", "comment", manager, {"text": f"{round_}"})
            _forget_on_server_only(store)
            engine.fire("F0", "comment", manager, {"text": f"{round_}"})
        assert store.load("F0").version == 3
        assert engine.verify() == 8
    finally:
        store.close()


def test_a_seal_after_the_caches_disagree_seals(pg_dsn: str) -> None:
    """The seal that follows a committed batch or claim: a lost statement there is healed,
    not raised (the batch is written; an error would invite a resend)."""
    store = PostgresStore(pg_dsn, min_size=1, max_size=1)
    try:
        engine = Engine(store, [review_spec()], clock=ManualClock(T0))
        _warm(engine, "G")
        for _ in range(6):
            store.seal()
        _forget_on_server_only(store)
        assert store.seal() >= 0
        assert [e.position for e in store.anchor()] == list(range(1, 9))
    finally:
        store.close()
