"""The QA report's period reads (issue 14): the same report as reading every whole history,
on every store, with each SQL read searching an index by the period and not by the store.

The data is a Bexley programme with the practice played into the same store, so the report's
timescale compliance (supervision, the QA calendar: rolling deadlines that stay open while a
workflow is quiet) is counted too.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from qaflow import MemoryStore, PostgresStore, SQLiteStore
from qaflow._practice import run_practice
from qaflow.compliance import compliance, instances
from qaflow.engine import Engine
from qaflow.programme import generate_council, period_bounds, run_programme
from qaflow.registry import shipped_report_policies, shipped_specs
from qaflow.report import QAReport, build_report

KNOWN = shipped_report_policies()
START = date(2026, 1, 1)
PERIODS = [
    (date(2026, 1, 1), date(2026, 4, 1)),  # the practice's quarter
    (date(2026, 2, 1), date(2026, 3, 1)),
    (date(2026, 3, 20), date(2026, 3, 27)),
    (date(2026, 4, 1), date(2026, 7, 1)),  # the practice quiet, its deadlines still open
    (date(2026, 9, 1), date(2026, 10, 1)),  # everything quiet
]
PERIOD_READS = (
    "period_workflows",
    "quiet_workflows",
    "tasks_created",
    "notifications_created",
    "period_snapshots",
)


def _fill(store: Any) -> Any:
    council = generate_council(6, teams=3, practitioners_per_team=4)
    run_programme(council, months=6, start=START, seed=9, store=store, escalation_rate=0.1)
    start, end = period_bounds(START, 3)
    run_practice(store, council, policy="bexley", start=start, end=end, seed=5)
    return store


def _whole_histories(store: Any) -> Any:
    """The same store without its period reads: the report reads every whole history and
    compliance every snapshot."""

    class WholeHistories(type(store)):  # type: ignore[misc]
        period_workflows = quiet_workflows = tasks_created = notifications_created = None
        period_snapshots = None

    copy = object.__new__(WholeHistories)
    copy.__dict__.update(store.__dict__)
    return copy


def _moment(day: date) -> datetime:
    from qaflow.report._read import moment

    return moment(day, "day")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        return _fill(MemoryStore())
    if request.param == "sqlite":
        store: Any = SQLiteStore(tmp_path / "period.db", synchronous="NORMAL")
    else:
        store = PostgresStore(request.getfixturevalue("pg_dsn"))
    request.addfinalizer(store.close)
    return _fill(store)


def _long_way(store: Any, **period: Any) -> QAReport:
    """The report read the long way. A PostgreSQL store without period reads cannot say
    when tasks were done (``task_done_times``), so there the 24 h task figure is only
    checked for its count; the SQLite comparison below checks it in full."""
    whole = build_report(_whole_histories(store), policies=KNOWN, **period)
    if not isinstance(store, PostgresStore):
        return whole
    fast = build_report(store, policies=KNOWN, **period)
    assert fast.urgent_tasks.total == whole.urgent_tasks.total
    return attrs.evolve(whole, urgent_tasks=fast.urgent_tasks, notes=fast.notes)


def test_the_period_report_is_the_whole_history_report(filled: Any) -> None:
    """Every figure, timescale compliance included, equals the report read the long way."""
    open_while_quiet = 0
    for start, end in PERIODS:
        report = build_report(filled, policies=KNOWN, start=start, end=end)
        assert report == _long_way(filled, start=start, end=end), (start, end)
        assert report.workflows_read > 0
        if start == date(2026, 4, 1):
            open_while_quiet = sum(t.open for t in report.timescales)
    assert open_while_quiet > 0  # quiet rolling workflows' open deadlines were counted
    start, end = PERIODS[0]
    trend = build_report(filled, policies=KNOWN, start=start, end=end, trend_months=4)
    assert trend == _long_way(filled, start=start, end=end, trend_months=4)
    assert trend.timescales and trend.trends


def test_compliance_instances_are_those_of_every_snapshot(filled: Any) -> None:
    """``instances(since=…)`` through ``period_snapshots`` lists what it listed when it was
    handed every snapshot (the skipped ones had nothing open and nothing in the period)."""
    engine = Engine(filled, shipped_specs())
    whole = Engine(_whole_histories(filled), shipped_specs())
    rolling = {s.name for s in shipped_specs() if s.rolling}
    for start, end in PERIODS:
        since, until = _moment(start), _moment(end)
        fast = instances(engine, since=since, until=until, machines=rolling, known_only=True)
        slow = instances(whole, since=since, until=until, machines=rolling, known_only=True)
        assert fast == slow, (start, end)
        assert compliance(engine, since, until, machines=rolling, known_only=True) == compliance(
            whole, since, until, machines=rolling, known_only=True
        )


def test_postgres_period_reads_equal_sqlite(tmp_path: Path, pg_dsn: str) -> None:
    """The same programme in both SQL stores: each period read returns the same rows, and
    the reports are the same."""
    with (
        SQLiteStore(tmp_path / "same.db", synchronous="NORMAL") as lite,
        PostgresStore(pg_dsn) as pg,
    ):
        _fill(lite)
        _fill(pg)
        skipped = 0  # the practice's workflows touched in a period, which the report skips
        for start, end in PERIODS:
            since, until = _moment(start), _moment(end)
            for name in PERIOD_READS:
                got = list(getattr(pg, name)(since, until))
                assert got == list(getattr(lite, name)(since, until)), (name, start)
            rolling = ["supervision", "qa_calendar"]
            assert pg.period_snapshots(since, until, rolling) == lite.period_snapshots(
                since, until, rolling
            )
            assert lite.period_snapshots(since, until, []) == []
            counted = KNOWN.machines()
            every = list(lite.period_workflows(since, until))
            only = [(s, e) for s, e in every if s.machine in counted]
            skipped += len(every) - len(only)
            assert list(lite.period_workflows(since, until, counted)) == only
            assert list(pg.period_workflows(since, until, counted)) == only
            assert pg.period_snapshots(since, until, []) == []
            report = build_report(pg, policies=KNOWN, start=start, end=end, trend_months=2)
            assert report == build_report(
                lite, policies=KNOWN, start=start, end=end, trend_months=2
            )
        assert skipped > 0


def test_period_snapshots_are_the_snapshots_compliance_needs(tmp_path: Path) -> None:
    """Of every snapshot: those touched since the start (created by the end) and the quiet
    ones holding an open deadline, in ``snapshots()`` order."""
    with SQLiteStore(tmp_path / "snaps.db", synchronous="NORMAL") as store:
        _fill(store)
        for start, end in PERIODS:
            since, until = _moment(start), _moment(end)
            expected = [
                s
                for s in store.snapshots()
                if s.created_at is not None
                and s.created_at <= until
                and (s.updated_at is None or s.updated_at >= since or s.deadlines)
            ]
            assert store.period_snapshots(since, until) == expected
            supervision = [s for s in expected if s.machine == "supervision"]
            assert store.period_snapshots(since, until, ["supervision"]) == supervision


def test_sqlite_report_reads_search_by_the_period(tmp_path: Path) -> None:
    """Each SELECT a report with trends runs on SQLite searches an index on the period's
    columns or a key, never walks a table nor a machine's every workflow; the outbox and
    the tasks are read by one query each.

    (Workflows and events are also read by key: compliance replays each rolling workflow
    touched in the period, ``Engine.replay_steps``.)"""
    with SQLiteStore(tmp_path / "plan.db", synchronous="NORMAL") as store:
        _fill(store)
        for start, end in PERIODS:
            seen: list[str] = []
            store.conn.set_trace_callback(seen.append)
            try:
                build_report(store, policies=KNOWN, start=start, end=end, trend_months=3)
            finally:
                store.conn.set_trace_callback(None)
            selects = [q for q in seen if q.lstrip().upper().startswith("SELECT")]
            tables = [sql.split(" FROM ")[1].split()[0] for sql in selects]
            assert tables.count("tasks") == tables.count("notifications") == 1, tables
            for sql, table in dict(zip(selects, tables, strict=True)).items():
                plan = [r[-1] for r in store.conn.execute("EXPLAIN QUERY PLAN " + sql)]
                assert not any(step.startswith("SCAN") for step in plan), (sql, plan)
                assert not any("idx_workflows_machine_state" in step for step in plan), plan
                wanted = {
                    "workflows": ("idx_workflows_updated_at", "(workflow_id=?)"),
                    "events": ("(workflow_id=?)",),
                    "tasks": ("idx_tasks_created_at (created_at>? AND created_at<?)",),
                    "notifications": ("idx_notifications_created_at (created_at>? AND",),
                    "deadlines": ("idx_deadlines_status_due_at (status=?",),
                }[table]
                assert any(w in " ".join(plan) for w in wanted), (sql, plan)
                if "updated_at <" in sql and "GROUP BY" not in sql:
                    # quiet workflows are read only where they hold an open deadline
                    assert "idx_deadlines_status_due_at (status=?)" in " ".join(plan), plan
