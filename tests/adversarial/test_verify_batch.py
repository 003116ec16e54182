"""Verify of the whole store reads derived rows a batch of workflows at a time (issue 14).

``verify`` reads the deadline, notification and task rows of a batch of workflows with one
query a table (:meth:`SQLiteStore.derived_rows_of`) and hands each workflow its own to the
fast check. An edit to one workflow's rows in the middle of a batch must still be named for
that workflow, exactly as the per-workflow reads name it (invariant I16). The batch size is
set small here so that the store spans several batches.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import MANAGER, T0, WORKER
from qaflow import Engine, ManualClock, SQLiteStore, _integrity
from qaflow._integrity import Problem
from review_machine import review_spec

IDS = [f"W-{i:02d}" for i in range(11)]


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setattr(_integrity, "_BATCH", 4)  # 11 workflows: three batches
    store = SQLiteStore(tmp_path / "batch.db")
    engine = Engine(store, [review_spec()], clock=ManualClock(T0))
    for wid in IDS:
        engine.start("example.review", wid, "submit", WORKER, {"document_ref": "D"})
        if wid != "W-03":
            engine.fire(wid, "send_back", MANAGER, {"reason": "r"})  # a task and a deadline
    yield engine
    store.close()


def _conn(engine: Engine) -> sqlite3.Connection:
    store = engine.store
    assert isinstance(store, SQLiteStore)
    return store.conn


def _problems(engine: Engine, batched: bool, monkeypatch: pytest.MonkeyPatch) -> list[Problem]:
    with monkeypatch.context() as m:
        if not batched:  # every workflow reads its own rows, as before batching
            m.setattr(_integrity, "_derived_batch", lambda store, ids: None)
            m.setattr(_integrity, "_events_batch", lambda store, ids: None)
            m.setattr(_integrity, "_heads_batch", lambda store, ids: {})
        return engine.verify_report().problems


def _same_either_way(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[Problem]:
    batched = _problems(engine, True, monkeypatch)
    assert batched == _problems(engine, False, monkeypatch)
    return batched


def test_the_batched_read_is_the_per_workflow_read(engine: Engine) -> None:
    store = engine.store
    assert isinstance(store, SQLiteStore)
    found = store.derived_rows_of([*IDS, "absent"])
    assert found is not None and set(found) == set(IDS)
    for wid in IDS:
        assert [sorted(rows) for rows in found[wid]] == [
            sorted(rows) for rows in store.derived_rows(wid)
        ]
    events = store.event_rows_of([*IDS, "absent"])
    assert events is not None and set(events) == set(IDS)
    assert all(events[wid] == store.event_rows(wid) for wid in IDS)
    assert store.event_rows_of(IDS, max_rows=len(IDS) * 2 - 2) is None
    store.forget_cached()
    heads = store.snapshots_of([*IDS, "absent"])
    assert heads == {wid: store.load(wid) for wid in IDS}
    assert engine.verify_report().ok


def test_a_batch_with_too_many_rows_is_not_kept(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory stays bounded: past ``max_rows`` the batch is dropped and each workflow reads
    its own rows; verify still names a tampered one."""
    store = engine.store
    assert isinstance(store, SQLiteStore)
    every = store.derived_rows_of(IDS)
    assert every is not None
    total = sum(len(rows) for found in every.values() for rows in found)
    assert store.derived_rows_of(IDS, max_rows=total) is not None
    assert store.derived_rows_of(IDS, max_rows=total - 1) is None
    monkeypatch.setattr(
        store, "derived_rows_of", lambda ids: SQLiteStore.derived_rows_of(store, ids, 1)
    )
    _conn(engine).execute("UPDATE tasks SET kind = 'x' WHERE workflow_id = 'W-07'")
    problems = engine.verify_report().problems
    assert problems and {p.workflow_id for p in problems} == {"W-07"}


def test_a_tampered_row_in_the_middle_of_a_batch_is_named_for_its_workflow(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _conn(engine).execute("UPDATE notifications SET reason = 'x' WHERE workflow_id = 'W-05'")
    problems = _same_either_way(engine, monkeypatch)
    assert problems and {p.workflow_id for p in problems} == {"W-05"}
    assert all("notification row" in p.what and "differs" in p.what for p in problems)


def test_a_missing_row_and_a_row_moved_to_another_workflow_are_named(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = _conn(engine)
    conn.execute("DELETE FROM tasks WHERE workflow_id = 'W-09'")
    conn.execute("UPDATE deadlines SET workflow_id = 'W-03' WHERE id LIKE 'W-06:%'")
    problems = _same_either_way(engine, monkeypatch)
    named = {(p.workflow_id, p.what.split(" ")[0], p.what.split(" ")[-1]) for p in problems}
    assert ("W-09", "task", "missing") in named
    assert ("W-06", "deadline", "missing") in named
    assert ("W-03", "deadline", "event") in named  # "... was not produced by any event"


def test_an_edited_or_removed_event_in_the_middle_of_a_batch_is_named(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = _conn(engine)
    conn.execute("UPDATE events SET payload = '{\"reason\":\"z\"}' WHERE workflow_id = 'W-06'")
    conn.execute("DELETE FROM events WHERE workflow_id = 'W-01' AND seq = 2")
    problems = _same_either_way(engine, monkeypatch)
    assert {p.workflow_id for p in problems} == {"W-01", "W-06"}
    assert any(p.workflow_id == "W-06" and p.seq == 2 and "hash" in p.what for p in problems)


def test_an_edited_or_undecodable_snapshot_in_the_middle_of_a_batch_is_named(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = _conn(engine)
    conn.execute("UPDATE workflows SET state = 'approved' WHERE workflow_id = 'W-05'")
    conn.execute("UPDATE workflows SET data = 'not json' WHERE workflow_id = 'W-06'")
    problems = _same_either_way(engine, monkeypatch)
    assert {p.workflow_id for p in problems} == {"W-05", "W-06"}
    assert any(p.workflow_id == "W-05" and "snapshot (state" in p.what for p in problems)
    assert any(p.workflow_id == "W-06" and "snapshot cannot be read" in p.what for p in problems)


def test_rows_of_a_workflow_with_no_events_or_no_workflow_are_named(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = _conn(engine)
    conn.execute("DELETE FROM events WHERE workflow_id = 'W-02'")
    conn.execute(
        "INSERT INTO notifications SELECT 'ghost:1', 'GHOST', seq, recipient_role, "
        "recipient_id, reason, clause, created_at, sent_at FROM notifications "
        "WHERE workflow_id = 'W-01'"
    )
    problems = _same_either_way(engine, monkeypatch)
    assert any(p.workflow_id == "W-02" and p.what == "no events" for p in problems)
    assert any(p.workflow_id == "GHOST" and "belongs to no workflow" in p.what for p in problems)
    assert {p.workflow_id for p in problems} <= {"W-02", "GHOST", None}


def test_the_batched_reads_search_by_workflow(engine: Engine) -> None:
    """Each SELECT of the batched read uses its table's per-workflow index (no scan)."""
    store = engine.store
    assert isinstance(store, SQLiteStore)
    seen: list[str] = []
    store.conn.set_trace_callback(seen.append)
    try:
        store.derived_rows_of(IDS)
        store.event_rows_of(IDS)
        store.snapshots_of(IDS)
    finally:
        store.conn.set_trace_callback(None)
    selects = [q for q in dict.fromkeys(seen) if q.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 5
    for sql in selects:
        plan = " ".join(r[-1] for r in store.conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "(workflow_id=?" in plan, (sql, plan)
        assert not plan.startswith("SCAN"), (sql, plan)
