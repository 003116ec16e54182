"""The PostgreSQL server failing under a command, on a real server: a lock or statement
timeout, a cancel request, a session the server ends (``pg_terminate_backend``) between and
during commands, a restart, and a server refusing connections. Each is a typed
:class:`QAFlowError` naming what happened (never the statement's values), nothing is
half-written, and the store's next command succeeds once the server is back. A connection
lost while the commit was in flight is settled by asking the server, or is an
:class:`OutcomeUnknown`, never a plain failure.

Timing: lock and statement timeouts are 100 ms; a blocked command is found by polling the
server's ``pg_stat_activity`` (the server needs real time to get there), never by sleeping.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from pg_support import PgServer
from qaflow import (
    Actor,
    Engine,
    ManualClock,
    OutcomeUnknown,
    PostgresStore,
    QAFlowError,
    StoreBusy,
    StoreError,
    StoreUnavailable,
)
from review_machine import review_spec

T0 = datetime(2025, 6, 2, 9, tzinfo=UTC)
WORKER, MANAGER = Actor("P-1", "worker"), Actor("M-1", "manager")
SECRET = "payload-text-never-shown"


def _store(dsn: str, size: int = 1, timeout: float = 3.0) -> tuple[PostgresStore, Engine]:
    store = PostgresStore(dsn, min_size=size, max_size=size, timeout=timeout)
    engine = Engine(store, [review_spec()], clock=ManualClock(T0))
    for n in range(3):
        engine.start("example.review", f"F{n}", "submit", WORKER, {"document_ref": "D"})
    return store, engine


def _comment(engine: Engine, wid: str = "F0") -> None:
    engine.fire(wid, "comment", MANAGER, {"text": SECRET})


def _pids(store: PostgresStore) -> list[int]:
    """The backends of the store's pooled connections."""
    conns = [store.pool.getconn() for _ in range(store.pool.max_size)]
    try:
        return [c.info.backend_pid for c in conns]
    finally:
        for c in conns:
            store.pool.putconn(c)


def _session_set(store: PostgresStore, setting: str) -> None:
    """``SET`` on every pooled connection (the pool holds ``max_size`` of them)."""
    conns = [store.pool.getconn() for _ in range(store.pool.max_size)]
    try:
        for c in conns:
            c.execute(f"SET {setting}")  # type: ignore[arg-type]
    finally:
        for c in conns:
            store.pool.putconn(c)


def _until(check: Callable[[], bool], what: str) -> None:
    """Poll the server until ``check`` holds (at most 10 s: a real server taking real time)."""
    until = time.monotonic() + 10
    while not check():
        assert time.monotonic() < until, f"the server never got to: {what}"
        time.sleep(0.005)


def _gone(admin: psycopg.Connection[Any], pids: list[int]) -> bool:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
    ).fetchone()
    return row is not None and row[0] == 0


def _terminate(admin: psycopg.Connection[Any], pids: list[int]) -> None:
    for pid in pids:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    _until(lambda: _gone(admin, pids), "the sessions ended")


def _waiting(admin: psycopg.Connection[Any], pid: int, query: str) -> bool:
    row = admin.execute(
        "SELECT query FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
        (pid,),
    ).fetchone()
    return row is not None and query in str(row[0])


@pytest.fixture
def admin(pg_server: PgServer) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        yield conn


def _assert_typed(error: QAFlowError) -> None:
    """The message names what happened, never the statement or the command's payload."""
    text = str(error)
    assert SECRET not in text and "SELECT" not in text and "INSERT" not in text


# --- lock timeout, statement timeout, cancel -----------------------------------------------


def test_a_lock_timeout_is_a_retryable_store_busy_and_writes_nothing(
    pg_dsn: str, admin: psycopg.Connection[Any]
) -> None:
    store, engine = _store(pg_dsn)
    try:
        _session_set(store, "lock_timeout = '100ms'")
        before = store.dump()
        with psycopg.connect(pg_dsn) as holder:
            holder.execute("SELECT 1 FROM workflows WHERE workflow_id = 'F0' FOR UPDATE")
            with pytest.raises(StoreBusy) as info:
                _comment(engine)
            assert info.value.retryable and isinstance(info.value, TimeoutError)
            assert "lock_timeout" in str(info.value)
            _assert_typed(info.value)
            with pytest.raises(StoreBusy), engine.batch():  # a batch locks the same row
                _comment(engine)
                _comment(engine, "F1")
            assert store.dump() == before
        _comment(engine)  # the lock is gone: the same command goes through
        _comment(engine, "F1")
        assert [store.load(w).version for w in ("F0", "F1", "F2")] == [2, 2, 1]
        assert engine.verify() == 3
    finally:
        store.close()


def test_a_statement_timeout_is_a_retryable_store_busy_for_writes_and_reads(
    pg_dsn: str,
) -> None:
    store, engine = _store(pg_dsn)
    try:
        _session_set(store, "statement_timeout = '100ms'")
        before = store.dump()
        with psycopg.connect(pg_dsn) as holder:
            holder.execute("LOCK TABLE workflows IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(StoreBusy) as info:
                _comment(engine)
            assert "statement_timeout" in str(info.value) and info.value.retryable
            _assert_typed(info.value)
            with pytest.raises(StoreBusy):
                store.load("F0")
            with pytest.raises(StoreBusy):
                list(store.snapshots())
        assert store.dump() == before
        _comment(engine)
        assert store.load("F0").version == 2
    finally:
        store.close()


def test_a_cancel_request_mid_command_is_a_store_busy_and_writes_nothing(
    pg_dsn: str, admin: psycopg.Connection[Any]
) -> None:
    store, engine = _store(pg_dsn)
    try:
        (pid,) = _pids(store)
        before = store.dump()
        raised: list[BaseException] = []
        with psycopg.connect(pg_dsn) as holder:
            holder.execute("SELECT 1 FROM workflows WHERE workflow_id = 'F0' FOR UPDATE")
            worker = threading.Thread(target=_catching(lambda: _comment(engine), raised))
            worker.start()
            _until(lambda: _waiting(admin, pid, "UPDATE workflows"), "the command waiting")
            admin.execute("SELECT pg_cancel_backend(%s)", (pid,))
            worker.join(10)
        assert len(raised) == 1 and isinstance(raised[0], StoreBusy), raised
        assert "cancel" in str(raised[0])
        assert store.dump() == before
        _comment(engine)
        assert store.load("F0").version == 2
    finally:
        store.close()


def _catching(fn: Callable[[], object], into: list[BaseException]) -> Callable[[], None]:
    def run() -> None:
        try:
            fn()
        except BaseException as error:  # handed to the test's thread
            into.append(error)

    return run


# --- sessions the server ends ---------------------------------------------------------------


def _tick_due(engine: Engine) -> list[Any]:
    return engine.tick(T0 + timedelta(days=30))


OPERATIONS: dict[str, Callable[[PostgresStore, Engine], object]] = {
    "fire": lambda store, engine: _comment(engine),
    "batch": lambda store, engine: _batch(engine),
    "tick": lambda store, engine: _tick_due(engine),
    "load": lambda store, engine: store.load("F0"),
    "mark_sent": lambda store, engine: store.mark_sent(["none"], T0),
    "verify": lambda store, engine: engine.verify(),
    "anchor": lambda store, engine: list(store.anchor()),
}


def _batch(engine: Engine) -> None:
    with engine.batch():
        _comment(engine)
        _comment(engine, "F1")


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_session_ended_between_commands_is_replaced_and_the_next_one_succeeds(
    pg_dsn: str, admin: psycopg.Connection[Any], operation: str
) -> None:
    store, engine = _store(pg_dsn, size=2)
    try:
        engine.clock.advance(timedelta(days=30))  # type: ignore[attr-defined]
        ended = _pids(store)
        _terminate(admin, ended)
        OPERATIONS[operation](store, engine)
        OPERATIONS[operation](store, engine)  # and again, on the replaced connections
        assert engine.verify() == 3
        assert not set(_pids(store)) & set(ended)  # the pool is whole again, all new
    finally:
        store.close()


@contextmanager
def _gate(admin: psycopg.Connection[Any], pg_dsn: str, timing: str) -> Iterator[int]:
    """A server-side gate on event inserts: ``before`` blocks the statement (the command's
    first round trip), ``commit`` blocks its COMMIT (a deferred trigger), ``seal`` blocks
    the anchor seal that follows the COMMIT in the same round trip. Opened on leaving."""
    key = uuid.uuid4().int % 2**31
    admin.execute("SELECT pg_advisory_lock(%s)", (key,))
    with psycopg.connect(pg_dsn, autocommit=True) as ddl:
        ddl.execute(
            "CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$BEGIN PERFORM pg_advisory_xact_lock({key}); RETURN NULL; END$$"
        )  # fmt: skip
        if timing == "before":
            ddl.execute(
                "CREATE TRIGGER gate AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION gate()"
            )
        elif timing == "commit":
            ddl.execute(
                "CREATE CONSTRAINT TRIGGER gate AFTER INSERT ON events DEFERRABLE INITIALLY "
                "DEFERRED FOR EACH ROW EXECUTE FUNCTION gate()"
            )
    try:
        yield key
    finally:
        admin.execute("SELECT pg_advisory_unlock_all()")
        with psycopg.connect(pg_dsn, autocommit=True) as ddl:
            ddl.execute("DROP FUNCTION gate() CASCADE")


def _seal_blocked(admin: psycopg.Connection[Any], pg_dsn: str) -> psycopg.Connection[Any]:
    """A session holding the anchor table, so a seal (after a COMMIT) waits on it."""
    holder = psycopg.connect(pg_dsn)
    holder.execute("LOCK TABLE anchor IN ACCESS EXCLUSIVE MODE")
    return holder


def _run_and_end_it(
    store: PostgresStore,
    engine: Engine,
    admin: psycopg.Connection[Any],
    query: str,
    release: Callable[[], None],
    times: int = 1,
    run: Callable[[], object] | None = None,
) -> list[BaseException]:
    """Fire a comment on F0 (or ``run``) in a thread; each time its session waits at
    ``query``, end the session; then ``release`` the gate and let the command finish."""
    raised: list[BaseException] = []
    worker = threading.Thread(target=_catching(run or (lambda: _comment(engine)), raised))
    worker.start()
    for _ in range(times):
        (pid,) = _pids_busy(store, admin, query)
        _terminate(admin, [pid])
    release()
    worker.join(15)
    assert not worker.is_alive()
    return raised


def _end_at_gate(
    store: PostgresStore,
    engine: Engine,
    admin: psycopg.Connection[Any],
    pg_dsn: str,
    timing: str,
    times: int = 1,
    run: Callable[[], object] | None = None,
) -> list[BaseException]:
    """:func:`_run_and_end_it` behind a :func:`_gate` of ``timing`` (``before``: the session
    is ended at its event insert; ``commit``: at its COMMIT), the gate opened to finish."""
    query = {"before": "INSERT INTO events", "commit": "COMMIT"}[timing]
    with _gate(admin, pg_dsn, timing) as key:
        return _run_and_end_it(
            store,
            engine,
            admin,
            query,
            lambda: admin.execute("SELECT pg_advisory_unlock(%s)", (key,)),
            times=times,
            run=run,
        )


def _pids_busy(store: PostgresStore, admin: psycopg.Connection[Any], query: str) -> list[int]:
    """The one store session waiting on a lock at ``query`` (found by polling)."""
    found: list[int] = []

    def check() -> bool:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s "
            "AND pid <> pg_backend_pid()",
            (f"%{query}%",),
        ).fetchall()
        found[:] = [r[0] for r in rows]
        return len(found) == 1

    _until(check, f"a session waiting at {query}")
    return found


def test_a_session_ended_mid_command_before_its_commit_is_written_once_on_a_new_one(
    pg_dsn: str, admin: psycopg.Connection[Any]
) -> None:
    store, engine = _store(pg_dsn)
    try:
        raised = _end_at_gate(store, engine, admin, pg_dsn, "before")
        assert not raised, raised
        events = store.events("F0")
        assert [e.seq for e in events] == [1, 2] and store.load("F0").version == 2
        assert engine.verify() == 3
    finally:
        store.close()


@pytest.mark.parametrize("which", ["batch", "tick"])
def test_a_session_ended_mid_batch_or_mid_tick_claim_is_retried_and_written_once(
    pg_dsn: str, admin: psycopg.Connection[Any], which: str
) -> None:
    """The batch's or the claim's one transaction is lost with its session before its
    COMMIT: nothing of it was written, so it runs again on a new connection (the claim
    claims the same deadlines again) and each step is written once."""
    store, engine = _store(pg_dsn)
    try:
        engine.clock.advance(timedelta(days=30))  # type: ignore[attr-defined]
        fired: list[Any] = []
        run = (
            (lambda: _batch(engine))
            if which == "batch"
            else (lambda: fired.extend(_tick_due(engine)))
        )
        raised = _end_at_gate(store, engine, admin, pg_dsn, "before", run=run)
        assert not raised, raised
        if which == "batch":
            assert [store.load(w).version for w in ("F0", "F1", "F2")] == [2, 2, 1]
        else:  # each due deadline breached once, and the tick returns exactly those steps
            written = [e for w in ("F0", "F1", "F2") for e in store.events(w) if e.seq > 1]
            assert sorted((s.event.workflow_id, s.event.seq) for s in fired) == sorted(
                (e.workflow_id, e.seq) for e in written
            )
            for wid in ("F0", "F1", "F2"):
                assert [e.trigger for e in store.events(wid)].count("escalate") == 1
        assert engine.verify() == 3
    finally:
        store.close()


def test_a_session_ended_twice_mid_command_is_store_unavailable_and_writes_nothing(
    pg_dsn: str, admin: psycopg.Connection[Any]
) -> None:
    store, engine = _store(pg_dsn)
    try:
        before = store.dump()
        raised = _end_at_gate(store, engine, admin, pg_dsn, "before", times=2)
        assert len(raised) == 1 and isinstance(raised[0], StoreUnavailable), raised
        error = raised[0]
        assert error.retryable and isinstance(error, ConnectionError)
        assert "administrator" in str(error) and "nothing was written" in str(error)
        _assert_typed(error)
        assert store.dump() == before
        _comment(engine)  # the server is there: the next command goes through
        assert store.load("F0").version == 2
    finally:
        store.close()


def test_a_session_ended_during_its_commit_is_settled_by_asking_the_server(
    pg_dsn: str, admin: psycopg.Connection[Any]
) -> None:
    """The COMMIT is cut short (a deferred trigger holds it): the server rolled it back, the
    store finds the event absent once the session is over, and writes it once more."""
    store, engine = _store(pg_dsn)
    try:
        raised = _end_at_gate(store, engine, admin, pg_dsn, "commit")
        assert not raised, raised
        assert [e.seq for e in store.events("F0")] == [1, 2]
        assert engine.verify() == 3
    finally:
        store.close()


def test_a_session_ended_after_its_commit_is_not_written_twice(
    pg_dsn: str, admin: psycopg.Connection[Any]
) -> None:
    """The COMMIT went through and the seal after it (same round trip) is cut short: the
    reply is lost, the store finds the event stored and does not write it again."""
    store, engine = _store(pg_dsn)
    try:
        holder = _seal_blocked(admin, pg_dsn)
        try:
            raised = _run_and_end_it(store, engine, admin, "qaflow_seal", lambda: holder.rollback())
        finally:
            holder.close()
        assert not raised, raised
        events = store.events("F0")
        assert [e.seq for e in events] == [1, 2] and store.load("F0").version == 2
        assert engine.verify() == 3
        assert [a.seq for a in store.anchor() if a.workflow_id == "F0"] == [1, 2]
    finally:
        store.close()


def test_a_batch_whose_session_ends_during_its_commit_is_written_once(
    pg_dsn: str, admin: psycopg.Connection[Any]
) -> None:
    store, engine = _store(pg_dsn)
    try:
        with _gate(admin, pg_dsn, "commit") as key:
            raised: list[BaseException] = []
            worker = threading.Thread(target=_catching(lambda: _batch(engine), raised))
            worker.start()
            (pid,) = _pids_busy(store, admin, "COMMIT")
            _terminate(admin, [pid])
            admin.execute("SELECT pg_advisory_unlock(%s)", (key,))
            worker.join(15)
        assert not raised, raised
        assert [store.load(w).version for w in ("F0", "F1")] == [2, 2]
        assert engine.verify() == 3
    finally:
        store.close()


# --- a server that goes away: restart, refusing connections ---------------------------------


def test_a_server_restart_is_store_unavailable_while_down_and_recovered_after(
    own_server: PgServer,
) -> None:
    dsn, _ = own_server.fresh_dsn()
    store, engine = _store(dsn, size=2, timeout=0.5)
    try:
        own_server.pg_ctl("stop", "-m", "fast")
        before = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            _comment(engine)
        assert info.value.retryable and time.monotonic() - before < 5
        assert "not reachable" in str(info.value)
        _assert_typed(info.value)
        with pytest.raises(StoreUnavailable):
            store.load("F0")
        # The pool's own reconnection fails twice while the server is down (it then backs
        # off, 1 s, then 2 s, past the store's 0.5 s timeout): the store must not wait it out.
        stalled = store.pool
        _until(lambda: stalled.get_stats().get("connections_errors", 0) >= 2, "a back-off")
        own_server.restart()
        back = time.monotonic()
        _comment(engine)  # the same store, every connection new
        assert time.monotonic() - back < 3
        assert store.load("F0").version == 2
        assert engine.verify() == 3
    finally:
        store.close()


def test_a_commit_in_doubt_while_the_server_is_down_is_outcome_unknown(
    own_server: PgServer,
) -> None:
    """The session ends during the COMMIT and the server is not back in time to ask: the
    store says the outcome is unknown, not that the command failed."""
    dsn, _ = own_server.fresh_dsn()
    store, engine = _store(dsn, timeout=0.5)
    try:
        with psycopg.connect(own_server.dsn, autocommit=True) as admin:
            holder = _seal_blocked(admin, dsn)
            raised: list[BaseException] = []
            worker = threading.Thread(target=_catching(lambda: _comment(engine), raised))
            worker.start()
            _pids_busy(store, admin, "qaflow_seal")
        own_server.pg_ctl("stop", "-m", "immediate")
        worker.join(15)
        holder.close()
        assert len(raised) == 1 and isinstance(raised[0], OutcomeUnknown), raised
        error = raised[0]
        assert not error.retryable and isinstance(error, ConnectionError)
        assert "could not find out whether it was written" in str(error)
        _assert_typed(error)
        own_server.restart()
        assert store.load("F0").version == 2  # it had been committed: reading tells
        _comment(engine)
        assert engine.verify() == 3
    finally:
        store.close()


def test_a_server_refusing_connections_at_open_is_store_unavailable(
    own_server: PgServer,
) -> None:
    with psycopg.connect(own_server.dsn, autocommit=True) as admin:
        admin.execute("CREATE ROLE capped LOGIN CONNECTION LIMIT 0")
    dsn = own_server.dsn.replace("user=qaflow", "user=capped")
    with pytest.raises(StoreUnavailable) as info:
        PostgresStore(dsn, timeout=1)
    assert info.value.retryable and "too many connections" in str(info.value)
    # a server shutting down (it waits for the open session) refuses new ones for now
    with psycopg.connect(own_server.dsn, autocommit=True) as held:
        own_server.pg_ctl("stop", "-m", "smart", "-W")
        _until(lambda: _refuses(own_server.dsn), "the server refusing new sessions")
        with pytest.raises(StoreUnavailable) as info:
            PostgresStore(own_server.dsn, timeout=1)
        assert "shutting down" in str(info.value) or "refused" in str(info.value)
        held.execute("SELECT 1")
    _restart_when_stopped(own_server)


def _refuses(dsn: str) -> bool:
    try:
        psycopg.connect(dsn).close()
    except psycopg.OperationalError as error:
        return "shutting down" in str(error)
    return False


def _restart_when_stopped(server: PgServer) -> None:
    _until(lambda: not (server.data / "postmaster.pid").exists(), "the server stopped")
    server.restart()


def test_a_schema_lock_held_past_lock_timeout_at_open_is_store_busy(
    pg_dsn: str, admin: psycopg.Connection[Any]
) -> None:
    """Another node migrating the schema holds its advisory lock: opening waits for it, and
    past the session's lock_timeout it is a retryable StoreBusy, not a raw psycopg error."""
    from qaflow.store._pg_sql import SCHEMA_LOCK

    impatient = pg_dsn.replace("options='", "options='-c lock_timeout=100ms ")
    with psycopg.connect(pg_dsn) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        with pytest.raises(StoreBusy) as info:
            PostgresStore(impatient, timeout=2)
        assert info.value.retryable and "lock_timeout" in str(info.value)
    PostgresStore(impatient, timeout=2).close()  # the lock is gone: it opens


def test_a_closed_store_says_so(pg_dsn: str) -> None:
    store, _ = _store(pg_dsn)
    store.close()
    with pytest.raises(StoreError) as info:
        store.load("F0")
    assert "closed" in str(info.value)


def test_a_command_that_succeeds_pays_for_no_recovery(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settling machinery runs only on failure: a command reads its workflow once and
    commits (its seal rides in the commit's round trip); no separate seal, no hash check."""
    store, engine = _store(pg_dsn)
    try:
        seen: list[str] = []
        select = store._select

        def record(sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
            seen.append(sql)
            return select(sql, args)

        monkeypatch.setattr(store, "_select", record)
        _comment(engine)
        assert len(seen) == 1 and seen[0].startswith("SELECT") and "workflows" in seen[0], seen
    finally:
        store.close()


def test_a_store_whose_pool_backs_off_for_long_recovers_as_soon_as_the_server_is_back(
    own_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a long outage psycopg_pool's reconnection waits out a back-off that has grown
    to a minute or two before it tries again. Waiting minutes here is not an option, so the
    pool's first back-off is set to 60 s (psycopg_pool's own constant, as a long outage
    leaves it): the store must not wait it out once the server answers again."""
    import psycopg_pool.base

    monkeypatch.setattr(psycopg_pool.base.AttemptWithBackoff, "INITIAL_DELAY", 60.0)
    dsn, _ = own_server.fresh_dsn()
    store, engine = _store(dsn, size=2, timeout=0.5)
    try:
        own_server.pg_ctl("stop", "-m", "fast")
        with pytest.raises(StoreUnavailable):
            _comment(engine)
        stalled = store.pool
        _until(lambda: stalled.get_stats().get("connections_errors", 0) >= 2, "a back-off")
        own_server.restart()
        back = time.monotonic()
        _comment(engine)
        assert time.monotonic() - back < 5
        assert store.load("F0").version == 2
        assert engine.verify() == 3
    finally:
        store.close()
