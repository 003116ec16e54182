"""Verify of a whole PostgreSQL store reads its rows a batch of workflows at a time (issue 14).

PostgresStore hands out its rows undecoded (``event_rows``, ``derived_rows``) and many
workflows' at once (``event_rows_of``, ``derived_rows_of``, ``snapshots_of``), as SQLite
does: verify of the whole store then runs the fast check (:mod:`qaflow._fold`) with one
query per table for each batch of workflows. An edit to one workflow's rows in the middle of
a batch must still be named for that workflow, exactly as the plain per-workflow check names
it (I16). The batch size is set small here so that the store spans several batches.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from qaflow import Actor, Engine, ManualClock, PostgresStore, _integrity
from qaflow._integrity import Problem, VerifyReport
from review_machine import review_spec

T0 = datetime(2025, 12, 19, 10, tzinfo=UTC)
WORKER, MANAGER = Actor("P-1", "worker"), Actor("M-1", "manager")
IDS = [f"W-{i:02d}" for i in range(11)]


@pytest.fixture
def engine(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setattr(_integrity, "_BATCH", 4)  # 11 workflows: three batches
    store = PostgresStore(pg_dsn)
    engine = Engine(store, [review_spec()], clock=ManualClock(T0))
    for wid in IDS:
        engine.start("example.review", wid, "submit", WORKER, {"document_ref": "D"})
        if wid != "W-03":
            engine.fire(wid, "send_back", MANAGER, {"reason": "r"})  # a task and a deadline
    yield engine
    store.close()


def _sql(engine: Engine, statement: str) -> None:
    """Edit the stored rows behind the store's back, as a tamperer would."""
    store = engine.store
    assert isinstance(store, PostgresStore)
    with psycopg.connect(store.dsn, autocommit=True) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


def _problems(engine: Engine, batched: bool, monkeypatch: pytest.MonkeyPatch) -> list[Problem]:
    with monkeypatch.context() as m:
        if not batched:  # every workflow reads and decodes its own rows: the plain check
            m.setattr(_integrity, "_intact", lambda *args, **kwargs: None)
        return engine.verify_report().problems


def _same_either_way(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[Problem]:
    batched = _problems(engine, True, monkeypatch)
    assert batched == _problems(engine, False, monkeypatch)
    return batched


def _recording(store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every read the store sends from now on (the real server answers each)."""
    seen: list[tuple[str, Any]] = []
    select = store._select

    def record(sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
        seen.append((sql, args))
        return select(sql, args)

    monkeypatch.setattr(store, "_select", record)
    return seen


def test_the_batched_reads_are_the_per_workflow_reads(engine: Engine) -> None:
    store = engine.store
    assert isinstance(store, PostgresStore)
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
    every = store.derived_rows_of(IDS)
    assert every is not None
    total = sum(len(rows) for rows_of in every.values() for rows in rows_of)
    assert store.derived_rows_of(IDS, max_rows=total) is not None
    assert store.derived_rows_of(IDS, max_rows=total - 1) is None
    assert store.snapshots_of([*IDS, "absent"]) == {wid: store.load(wid) for wid in IDS}


def test_every_workflow_passes_the_fast_check(engine: Engine) -> None:
    """The rows as PostgreSQL returns them fold: verify does not fall back to decoding."""
    for wid in IDS:
        report = VerifyReport()
        assert _integrity._intact(engine, report, wid) is not None, wid
        assert report.events == (1 if wid == "W-03" else 2)
    assert engine.verify() == len(IDS)


def test_verify_of_all_reads_a_batch_of_workflows_per_query(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five reads per batch (events, snapshots, three derived tables), none per workflow."""
    store = engine.store
    assert isinstance(store, PostgresStore)
    seen = _recording(store, monkeypatch)
    assert engine.verify_report().ok
    per_workflow = [sql for sql, args in seen if "workflow_id = %s" in sql]
    assert per_workflow == [], per_workflow
    batched = [sql for sql, _ in seen if "workflow_id = ANY(%s)" in sql]
    assert len(batched) == 5 * 3, batched  # 11 workflows in batches of 4


def test_a_tampered_row_in_the_middle_of_a_batch_is_named_for_its_workflow(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sql(engine, "UPDATE notifications SET reason = 'x' WHERE workflow_id = 'W-05'")
    _sql(
        engine, "UPDATE tasks SET due_at = due_at + interval '1 second' WHERE workflow_id = 'W-07'"
    )
    problems = _same_either_way(engine, monkeypatch)
    assert problems and {p.workflow_id for p in problems} == {"W-05", "W-07"}
    assert any(p.workflow_id == "W-05" and "notification row" in p.what for p in problems)
    assert any(p.workflow_id == "W-07" and "task row" in p.what for p in problems)


def test_a_moved_deadline_time_and_a_missing_row_are_named(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sql(
        engine, "UPDATE deadlines SET due_at = due_at + interval '1 day' WHERE workflow_id = 'W-02'"
    )
    _sql(engine, "DELETE FROM tasks WHERE workflow_id = 'W-09'")
    _sql(engine, "UPDATE deadlines SET workflow_id = 'W-03' WHERE id LIKE 'W-06:%'")
    problems = _same_either_way(engine, monkeypatch)
    assert {p.workflow_id for p in problems} == {"W-02", "W-03", "W-06", "W-09"}
    named = {(p.workflow_id, p.what.split(" ")[0], p.what.split(" ")[-1]) for p in problems}
    assert ("W-09", "task", "missing") in named
    assert ("W-06", "deadline", "missing") in named


def test_an_edited_or_removed_event_or_snapshot_in_the_middle_of_a_batch_is_named(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sql(engine, "UPDATE events SET payload = '{\"reason\":\"z\"}' WHERE workflow_id = 'W-06'")
    _sql(engine, "UPDATE events SET at = at + interval '1 second' WHERE workflow_id = 'W-08'")
    _sql(engine, "DELETE FROM events WHERE workflow_id = 'W-01' AND seq = 2")
    _sql(engine, "UPDATE workflows SET state = 'approved' WHERE workflow_id = 'W-05'")
    problems = _same_either_way(engine, monkeypatch)
    assert {p.workflow_id for p in problems} == {"W-01", "W-05", "W-06", "W-08"}
    assert any(p.workflow_id == "W-06" and p.seq == 2 and "hash" in p.what for p in problems)
    assert any(p.workflow_id == "W-05" and "snapshot (state" in p.what for p in problems)


def test_the_batched_reads_search_by_workflow(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batched SELECT can use only its table's per-workflow index, never a walk."""
    store = engine.store
    assert isinstance(store, PostgresStore)
    seen = _recording(store, monkeypatch)
    store.derived_rows_of(IDS)
    store.event_rows_of(IDS)
    store.snapshots_of(IDS)
    assert len(seen) == 5
    used: set[str] = set()
    with store.pool.connection() as conn, conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        for sql, args in seen:
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, args))  # type: ignore[operator]
            assert "Seq Scan" not in plan, (sql, plan)
            used |= set(re.findall(r"(?:Index Scan on|Index Only Scan on| using) (\w+)", plan))
        leading = {
            name: table
            for name, table in conn.execute(
                "SELECT indexname, tablename FROM pg_indexes "
                "WHERE schemaname = current_schema() AND indexdef LIKE '%(workflow_id%'"
            )
        }
    assert used <= set(leading), used  # indexes led by the workflow id, and only those
    assert {leading[name] for name in used} == {
        "events",
        "workflows",
        "deadlines",
        "notifications",
        "tasks",
    }, used


def test_the_listed_derived_ids_are_those_of_the_decoded_rows(engine: Engine) -> None:
    """Verify's check for rows of no workflow reads three columns, not every row decoded:
    the same rows in the same order as ``deadlines()``, ``notifications()``, ``tasks()``."""
    store = engine.store
    assert isinstance(store, PostgresStore)
    decoded = [("deadline", d.workflow_id, d.id) for d, _ in store.deadlines()]
    decoded += [("notification", n.workflow_id, n.id) for n in store.notifications()]
    decoded += [("task", t.workflow_id, t.id) for t in store.tasks()]
    assert {kind for kind, _, _ in decoded} == {"deadline", "notification", "task"}
    assert store.derived_ids() == decoded


def test_rows_of_no_workflow_are_named_even_when_they_do_not_decode(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    for table in ("deadlines", "notifications", "tasks"):  # a copy of W-04's, moved away
        _sql(
            engine,
            f"CREATE TEMP TABLE copied AS SELECT * FROM {table} WHERE workflow_id = 'W-04' "
            "LIMIT 1; UPDATE copied SET workflow_id = 'ghost', id = 'ghost-' || id; "
            f"INSERT INTO {table} SELECT * FROM copied",
        )
    _sql(engine, "UPDATE deadlines SET notify = '{not json' WHERE workflow_id = 'ghost'")
    problems = _same_either_way(engine, monkeypatch)
    orphans = sorted(p.what.split(" ")[0] for p in problems if p.workflow_id == "ghost")
    assert orphans == ["deadline", "notification", "task"], problems
    assert all("belongs to no workflow" in p.what for p in problems if p.workflow_id == "ghost")


def test_a_derived_row_that_does_not_decode_is_named_for_its_workflow(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing decodes every row for the orphan check any more: a row of a known workflow
    that does not decode is still found, by its workflow's own check."""
    _sql(engine, "UPDATE deadlines SET notify = '{not json' WHERE workflow_id = 'W-04'")
    problems = _same_either_way(engine, monkeypatch)
    assert problems and {p.workflow_id for p in problems} == {"W-04"}, problems
