"""One contract for every store: what the engine, tick and the outbox rely on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from qaflow import (
    Actor,
    ConcurrencyError,
    Engine,
    ManualClock,
    MemoryStore,
    PostgresStore,
    SQLiteStore,
    StoreError,
    UnknownWorkflow,
    ValidationError,
)
from qaflow.records import WorkflowSnapshot
from qaflow.store import SCHEMA_VERSION
from qaflow.testing import store_content
from review_machine import review_spec

T0 = datetime(2025, 6, 2, 9, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "postgres":
        s: Any = PostgresStore(request.getfixturevalue("pg_dsn"))
    else:
        s = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "s.db")
    yield s
    if not isinstance(s, MemoryStore):
        s.close()


def _engine(store: Any) -> Engine:
    return Engine(store, [review_spec()], clock=ManualClock(T0))


def _start(engine: Engine, wid: str, at: datetime = T0) -> None:
    engine.start(
        "example.review", wid, "submit", Actor("P-1", "worker"), {"document_ref": "D"}, at=at
    )


def test_load_unknown_raises(store: Any) -> None:
    with pytest.raises(UnknownWorkflow, match="no workflow with id 'nope'"):
        store.load("nope")
    with pytest.raises(UnknownWorkflow):
        store.events("nope")


def test_snapshot_round_trips_through_the_store(store: Any) -> None:
    engine = _engine(store)
    _start(engine, "A")
    assert store.load("A") == engine.replay("A")
    assert list(store.workflow_ids()) == ["A"]
    assert [s.workflow_id for s in store.snapshots("example.review")] == ["A"]
    assert list(store.snapshots("other")) == []


def test_commit_at_stale_version_writes_nothing(store: Any) -> None:
    engine = _engine(store)
    _start(engine, "A")
    step = engine.fire("A", "comment", Actor("M-1", "manager"), {"text": "x"})
    before = store_content(store)
    with pytest.raises(ConcurrencyError, match="is at version 2, not 1"):
        store.commit(attrs.evolve(step), expected_version=1)
    assert store_content(store) == before


def test_due_deadlines_in_due_order_and_only_open(store: Any) -> None:
    engine = _engine(store)
    _start(engine, "A", T0)
    _start(engine, "B", T0 - timedelta(days=3))
    later = T0 + timedelta(days=30)
    assert [d.workflow_id for d in store.due_deadlines(later)] == ["B", "A"]
    assert store.due_deadlines(T0) == []
    engine.fire("B", "approve", Actor("M-1", "manager"), {"score": 7})
    assert [d.workflow_id for d in store.due_deadlines(later)] == ["A"]
    assert [d.workflow_id for d in store.open_deadlines()] == ["A"]
    assert store.open_deadlines("B") == []


def test_outbox_pending_then_sent_once(store: Any) -> None:
    engine = _engine(store)
    _start(engine, "A")
    _start(engine, "B")
    pending = store.pending_notifications()
    assert [n.workflow_id for n in pending] == ["A", "B"]
    assert store.pending_notifications(limit=1) == pending[:1]
    assert store.mark_sent([pending[0].id], T0) == 1
    assert store.mark_sent([pending[0].id], T0) == 0
    assert store.pending_notifications() == pending[1:]
    with pytest.raises(ValidationError):
        store.mark_sent([pending[1].id], datetime(2025, 1, 1))


def test_due_deadlines_refuses_naive_time(store: Any) -> None:
    with pytest.raises(ValidationError, match="'now' must be a timezone-aware datetime"):
        store.due_deadlines(datetime(2025, 1, 1))


def test_sqlite_store_reopens_with_everything(tmp_path: Path) -> None:
    path = tmp_path / "re.db"
    with SQLiteStore(path) as first:
        engine = _engine(first)
        _start(engine, "A")
        content = first.dump()
    with SQLiteStore(path) as second:
        assert second.dump() == content
        assert _engine(second).verify() == 1


def test_sqlite_durability_option_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="'synchronous' must be 'FULL' or 'NORMAL'"):
        SQLiteStore(tmp_path / "x.db", synchronous="OFF")  # type: ignore[arg-type]
    with SQLiteStore(tmp_path / "n.db", synchronous="NORMAL") as store:
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 1
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_anchor_logs_every_commit_in_commit_order(store: Any) -> None:
    """The store-wide anchor: one entry per event, positions 1..n, each head chained."""
    from qaflow.records import GENESIS_HASH, anchor_head

    engine = _engine(store)
    assert store.anchor_tip() is None and list(store.anchor()) == []
    _start(engine, "A")
    _start(engine, "B")
    engine.fire("A", "comment", Actor("M-1", "manager"), {"text": "x"})
    entries = list(store.anchor())
    assert [(e.position, e.workflow_id, e.seq) for e in entries] == [
        (1, "A", 1),
        (2, "B", 1),
        (3, "A", 2),
    ]
    head = GENESIS_HASH
    for entry in entries:
        head = anchor_head(head, entry.workflow_id, entry.seq, entry.hash)
        assert entry.head == head
    assert [e.hash for e in entries] == [
        store.events("A")[0].hash,
        store.events("B")[0].hash,
        store.events("A")[1].hash,
    ]
    assert store.anchor_tip() == entries[-1]
    before = list(store.anchor())
    with pytest.raises(ConcurrencyError):  # a refused commit appends nothing
        _start(engine, "A")
    assert list(store.anchor()) == before


def test_deadlines_lists_every_row_with_its_status(store: Any) -> None:
    engine = _engine(store)
    _start(engine, "A")
    _start(engine, "B")
    engine.fire("A", "approve", Actor("M-1", "manager"), {"score": 7})
    assert isinstance(engine.clock, ManualClock)
    engine.clock.advance(timedelta(days=30))
    engine.tick()
    rows = {d.id: status for d, status in store.deadlines()}
    assert rows["A:1:review"] == "closed" and rows["B:1:review"] == "breached"
    assert [status for _, status in store.deadlines("B")] == ["breached", "breached"]
    assert all(d.workflow_id == "A" for d, _ in store.deadlines("A"))


def test_a_migration_is_stored_with_its_policy_and_fingerprint(store: Any) -> None:
    from qaflow import MachineSpec

    engine = _engine(store)
    _start(engine, "A")
    v1 = engine.spec("example.review")
    assert store.load("A").fingerprint == v1.fingerprint
    v2 = MachineSpec(v1.name, v1.policy, "2", v1.initial, v1.states, v1.transitions)
    engine.migrate("A", v2, Actor("M-1", "manager"), reason="new rules")
    if hasattr(store, "forget_cached"):
        store.forget_cached()
    moved = store.load("A")
    assert (moved.policy_version, moved.fingerprint) == ("2", v2.fingerprint)
    assert engine.verify_report().ok


def test_ids_are_checked_as_text(store: Any) -> None:
    for bad in (5, ["A"], "\ud800"):
        with pytest.raises((ValidationError, UnknownWorkflow)):
            store.load(bad)
    with pytest.raises(ValidationError):
        store.mark_sent("A:1:n1", T0)


def test_find_workflows_filters_and_pages(store: Any) -> None:
    engine = _engine(store)
    _start(engine, "C", T0)
    _start(engine, "A", T0)
    _start(engine, "B", T0 - timedelta(days=3))
    engine.fire("B", "approve", Actor("M-1", "manager"), {"score": 7})
    ids = [s.workflow_id for s in store.find_workflows()]
    assert ids == ["A", "B", "C"]
    state_a = store.load("A").state
    assert [s.workflow_id for s in store.find_workflows(state=state_a)] == ["A", "C"]
    assert store.find_workflows(machine="other") == []
    assert store.find_workflows(policy="no-such-policy") == []
    assert [s.workflow_id for s in store.find_workflows(policy=store.load("A").policy)] == ids
    page = store.find_workflows(limit=2)
    assert [s.workflow_id for s in page] == ["A", "B"]
    rest = store.find_workflows(limit=2, after=page[-1].workflow_id)
    assert [s.workflow_id for s in rest] == ["C"]
    assert store.find_workflows(team="T-1") == []
    later = T0 + timedelta(days=30)
    assert [s.workflow_id for s in store.find_workflows(overdue_at=later)] == ["A", "C"]
    assert store.find_workflows(overdue_at=T0) == []
    assert store.find_workflows(overdue_at=later, after="A") == [store.load("C")]
    with pytest.raises(ValidationError):
        store.find_workflows(overdue_at=datetime(2025, 1, 1))


def test_find_workflows_by_team_reads_the_team_id_in_the_data(store: Any) -> None:
    engine = _engine(store)
    for wid, team in (("A", "T-1"), ("B", "T-2"), ("C", "T-1")):
        step = engine._compute(  # the review machine records no team: add one to the data
            engine.spec("example.review"),
            WorkflowSnapshot(
                workflow_id=wid,
                machine="example.review",
                policy=engine.spec("example.review").policy,
                policy_version=engine.spec("example.review").policy_version,
                state=engine.spec("example.review").initial,
            ),
            "submit",
            Actor("P-1", "worker"),
            {"document_ref": "D"},
            T0,
            None,
        )
        data = {**step.snapshot.data, "team_id": team}
        store.commit(
            attrs.evolve(step, snapshot=attrs.evolve(step.snapshot, data=data)), expected_version=0
        )
    assert [s.workflow_id for s in store.find_workflows(team="T-1")] == ["A", "C"]
    assert [s.workflow_id for s in store.find_workflows(team="T-2", limit=5)] == ["B"]
    assert store.find_workflows(team="T-3") == []


def _steps(store: Any, wid: str, n: int) -> list[Any]:
    """``n`` steps of one new workflow computed in a batch (nothing written yet)."""
    engine = _engine(store)
    with pytest.raises(RuntimeError, match="held back"), engine.batch():
        _start(engine, wid)
        for i in range(n - 1):
            engine.fire(wid, "comment", Actor("M-1", "manager"), {"text": str(i)})
        steps = list(engine.store.steps)  # type: ignore[attr-defined]
        raise RuntimeError("held back")
    return steps


def test_commit_many_writes_every_step_in_order(store: Any) -> None:
    steps = _steps(store, "A", 3) + _steps(store, "B", 2)
    store.commit_many(steps)
    assert [e.seq for e in store.events("A")] == [1, 2, 3]
    assert store.load("B").version == 2
    assert _engine(store).verify() == 2


def test_commit_many_is_all_or_nothing(store: Any) -> None:
    engine = _engine(store)
    _start(engine, "A")
    before = store_content(store)
    fresh = _steps(store, "B", 2)
    stale_step = _steps(MemoryStore(), "A", 2)[1]  # computed at version 1: A is at 1, fine
    duplicate = _steps(MemoryStore(), "A", 1)[0]  # creates A again: stale
    with pytest.raises(ConcurrencyError, match="already exists"):
        store.commit_many([*fresh, stale_step, duplicate])
    assert store_content(store) == before
    with pytest.raises(ConcurrencyError, match="is at version 1, not 2"):
        store.commit_many(
            [*fresh, attrs.evolve(stale_step, event=attrs.evolve(stale_step.event, seq=3))]
        )
    assert store_content(store) == before


def test_commit_many_refuses_a_key_used_twice_in_one_batch(store: Any) -> None:
    engine = _engine(store)
    _start(engine, "A")
    one = engine.fire("A", "comment", Actor("M-1", "manager"), {"text": "x"}, idempotency_key="k")
    before = store_content(store)
    reused = _steps(MemoryStore(), "A", 3)[2]
    reused = attrs.evolve(reused, event=attrs.evolve(reused.event, idempotency_key="k"))
    with pytest.raises(ConcurrencyError, match="idempotency key already used"):
        store.commit_many([reused])
    assert store_content(store) == before
    assert store.find_idempotent("A", "k") == one.event


def test_idempotency_keys_are_per_workflow(store: Any) -> None:
    engine = _engine(store)
    _start(engine, "A")
    _start(engine, "B")
    for wid in ("A", "B"):
        engine.fire(wid, "comment", Actor("M-1", "manager"), {"text": "x"}, idempotency_key="k")
    assert store.find_idempotent("A", "k").workflow_id == "A"
    assert store.find_idempotent("B", "k").workflow_id == "B"


def test_fire_due_claims_at_most_limit_in_due_order(store: Any) -> None:
    engine = _engine(store)
    for n in range(5):
        _start(engine, f"W{n}", T0 - timedelta(weeks=n))
    later = T0 + timedelta(days=30)
    engine.clock = ManualClock(later)
    seen: list[str] = []

    def breach(deadline: Any) -> Any:
        seen.append(deadline.workflow_id)
        return engine._breach_step(store.load(deadline.workflow_id), deadline, later)

    written = store.fire_due(later, breach, limit=2)
    assert seen == ["W4", "W3"] and [s.event.workflow_id for s in written] == seen
    assert {d.workflow_id for d in store.due_deadlines(later)} >= {"W0", "W1", "W2"}
    assert store.fire_due(later, lambda d: None, limit=10) == []


def test_fire_due_skips_a_stale_breach_and_keeps_the_rest(store: Any) -> None:
    engine = _engine(store)
    _start(engine, "A", T0 - timedelta(days=1))
    _start(engine, "B", T0)
    later = T0 + timedelta(days=30)
    engine.clock = ManualClock(later)

    def breach(deadline: Any) -> Any:
        step = engine._breach_step(store.load(deadline.workflow_id), deadline, later)
        if deadline.workflow_id == "A":  # pretend A moved on meanwhile
            return attrs.evolve(step, event=attrs.evolve(step.event, seq=7))
        return step

    written = store.fire_due(later, breach, limit=10)
    assert [s.event.workflow_id for s in written] == ["B"]
    assert [d.id for d in store.due_deadlines(later)] == ["A:1:review", "B:2:senior_review"]
    assert engine.tick(later) and engine.verify() == 2


def test_engine_batch_commits_all_at_the_end_or_nothing(store: Any) -> None:
    engine = _engine(store)
    with engine.batch():
        _start(engine, "A")
        step = engine.fire("A", "comment", Actor("M-1", "manager"), {"text": "x"})
        assert step.snapshot.version == 2
        assert engine.history("A")[-1] == step.event
        assert list(store.workflow_ids()) == []  # not yet written
    assert store.load("A").version == 2
    before = store_content(store)
    with pytest.raises(ValueError, match="stop"), engine.batch():
        engine.fire("A", "comment", Actor("M-1", "manager"), {"text": "y"})
        raise ValueError("stop")
    assert store_content(store) == before
    other = _engine(store)
    with pytest.raises(ConcurrencyError), engine.batch():
        engine.fire("A", "comment", Actor("M-1", "manager"), {"text": "y"})
        other.fire("A", "comment", Actor("M-1", "manager"), {"text": "z"})  # wins meanwhile
    assert store.load("A").version == 3
    assert engine.verify() == 1


def test_tick_inside_a_batch_is_refused(store: Any) -> None:
    engine = _engine(store)
    with pytest.raises(ValidationError, match="'tick' must be called outside"), engine.batch():
        engine.tick(T0)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_newer_schema_is_refused_by_name(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        with SQLiteStore(tmp_path / "new.db") as s:
            s.conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
        reopen: Any = lambda: SQLiteStore(tmp_path / "new.db")  # noqa: E731
    else:
        dsn = request.getfixturevalue("pg_dsn")
        with PostgresStore(dsn) as p, p.pool.connection() as conn:
            conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
        reopen = lambda: PostgresStore(dsn)  # noqa: E731
    with pytest.raises(StoreError, match="schema version 999"):
        reopen()


def test_postgres_store_reopens_with_everything(pg_dsn: str) -> None:
    with PostgresStore(pg_dsn) as first:
        engine = _engine(first)
        _start(engine, "A")
        content = first.dump()
    with PostgresStore(pg_dsn) as second:
        assert second.dump() == content
        assert _engine(second).verify() == 1
        assert "password" not in repr(second)


def test_postgres_store_unreachable_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="'dsn' must be a reachable PostgreSQL server"):
        PostgresStore(f"host={tmp_path} port=1 dbname=x user=u password=secret", timeout=1)


def test_schema_migrations_cover_every_version() -> None:
    """Both stores have a step for every version the shared runner knows."""
    import sqlite3

    from qaflow.store._schema import POSTGRES_MIGRATIONS
    from qaflow.store._sqlite_schema import _migrations

    assert set(POSTGRES_MIGRATIONS) == set(range(1, SCHEMA_VERSION + 1))
    assert set(_migrations(sqlite3.connect(":memory:"))) == set(range(1, SCHEMA_VERSION + 1))


def test_postgres_a_failing_row_undoes_its_whole_step(pg_dsn: str) -> None:
    """A row the server refuses mid-pipeline rolls back the step's transaction or savepoint."""
    with PostgresStore(pg_dsn) as store:
        engine = _engine(store)
        _start(engine, "A")
        step = engine.fire("A", "send_back", Actor("M-1", "manager"), {"reason": "r"})
        assert step.tasks
        clash = _steps(MemoryStore(), "B", 1)[0]
        clash = attrs.evolve(clash, tasks=step.tasks)  # a task id that already exists
        before = store_content(store)
        with pytest.raises(ConcurrencyError, match="a row of this step already exists"):
            store.commit(clash, expected_version=0)
        assert store_content(store) == before
        with pytest.raises(ConcurrencyError):
            store.commit_many([clash])
        assert store_content(store) == before
        engine.fire("A", "comment", Actor("M-1", "manager"), {"text": "still usable"})
        assert engine.verify() == 1


def test_postgres_version_1_is_migrated_with_its_anchor_backfilled(pg_dsn: str) -> None:
    """A version-1 database (no fingerprint, no anchor) opens at version 2: the anchor holds
    every event in (workflow, seq) order with the heads ``anchor_head`` defines."""
    from qaflow.records import GENESIS_HASH, anchor_head

    with PostgresStore(pg_dsn) as store:
        engine = _engine(store)
        _start(engine, "B")
        _start(engine, "A")
        engine.fire("B", "comment", Actor("M-1", "manager"), {"text": "x"})
        with store.pool.connection() as conn:  # back to version 1's layout
            for statement in (
                "DROP TABLE anchor",
                "DROP TABLE anchor_pending",
                "DROP TABLE schema_version",
                "DROP FUNCTION qaflow_seal",
            ):
                conn.execute(statement)
            conn.execute("ALTER TABLE workflows DROP COLUMN fingerprint")
            conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with PostgresStore(pg_dsn) as store:
        with store.pool.connection() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert row == (str(SCHEMA_VERSION),)
        events = sorted(
            (e for w in store.workflow_ids() for e in store.events(w)),
            key=lambda e: (e.workflow_id, e.seq),
        )
        head, expected = GENESIS_HASH, []
        for n, e in enumerate(events, start=1):
            head = anchor_head(head, e.workflow_id, e.seq, e.hash)
            expected.append((n, e.workflow_id, e.seq, e.hash, head))
        assert [tuple(attrs.astuple(a)) for a in store.anchor()] == expected
        engine = _engine(store)
        engine.fire("A", "comment", Actor("M-1", "manager"), {"text": "after"})
        tip = store.anchor_tip()
        assert tip is not None and tip.position == len(events) + 1
        assert tip.head == anchor_head(head, "A", 2, store.events("A")[-1].hash)
        assert engine.verify() == 2


def test_sqlite_per_workflow_reads_search_by_workflow(tmp_path: Path) -> None:
    """Issue 14: verify of one workflow must not scan the store's other rows.

    Without statistics SQLite's planner chose the (status, due_at) index for a workflow's
    open deadlines and scanned every open deadline of the store, so verify of all was
    quadratic. The plan of each SQL the store really runs must search by workflow id.
    """
    with SQLiteStore(tmp_path / "plan.db") as store:
        engine = _engine(store)
        for i in range(30):
            _start(engine, f"W-{i}")
        engine.fire("W-3", "send_back", Actor("M-1", "manager"), {"reason": "r"})
        seen: list[str] = []
        store.conn.set_trace_callback(seen.append)
        try:
            store.open_deadlines("W-3")
            store.notifications("W-3")
            store.tasks("W-3", open_only=True)
            store.events("W-3")
            engine.verify("W-3")
        finally:
            store.conn.set_trace_callback(None)
        selects = [q for q in dict.fromkeys(seen) if q.lstrip().upper().startswith("SELECT")]
        by_table = {}
        for sql in selects:
            plan = " ".join(r[-1] for r in store.conn.execute("EXPLAIN QUERY PLAN " + sql))
            assert "(workflow_id=?" in plan, (sql, plan)
            assert not plan.startswith("SCAN"), (sql, plan)
            by_table[sql.split(" FROM ")[1].split()[0]] = plan
        assert set(by_table) >= {"deadlines", "notifications", "tasks", "events", "workflows"}
        assert "idx_deadlines_workflow_id_status" in by_table["deadlines"]


def test_sqlite_deadline_json_is_the_converter_form() -> None:
    """The hand-written deadline JSON of the snapshot row is cattrs' text, both ways."""
    import json

    from qaflow.records import Deadline, converter
    from qaflow.store._codec import deadlines_from_json, deadlines_json

    deadlines = (
        Deadline("W:1:review", "W", "review", "submitted", T0, T0 + timedelta(days=7), "5 WD"),
        Deadline(
            "W:2:x",
            "W",
            "x",
            None,
            T0 + timedelta(microseconds=7),
            datetime(2025, 6, 9, 23, 59, 59, 999999, tzinfo=UTC),
            "24 h",
            breach_trigger="escalate",
            clause="EX-01",
            notify=("manager", "service_manager"),
            opened_seq=2,
        ),
    )
    for ds in ((), deadlines[:1], deadlines):
        text = json.dumps(converter.unstructure(list(ds)))
        assert deadlines_json(ds) == text
        assert deadlines_from_json(text) == tuple(
            converter.structure(json.loads(text), list[Deadline])
        )
        assert deadlines_from_json(text) == ds


def test_sqlite_events_page_is_a_slice_of_the_history(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "page.db") as store:
        engine = _engine(store)
        _start(engine, "A")
        for _ in range(5):
            engine.fire("A", "comment", Actor("P-1", "worker"), {"text": "t"})
        events = store.events("A")
        for after in range(0, 8):
            for limit in (None, 1, 2, 10):
                end = None if limit is None else after + limit
                assert store.events_page("A", after, limit) == events[after:end]
        assert store.events_page("nobody") == []
