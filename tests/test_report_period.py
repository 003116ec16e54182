"""The QA report's period reads (issue 14): the same report as reading every whole history,
on every store, with each SQL read searching an index by the period and not by the store.

The data is a Bexley programme with the practice played into the same store, so the report's
timescale compliance (supervision, the QA calendar: rolling deadlines that stay open while a
workflow is quiet) is counted too.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from qaflow import Actor, ManualClock, MemoryStore, PostgresStore, SQLiteStore
from qaflow._practice import run_practice
from qaflow.compliance import compliance, instances
from qaflow.engine import Engine
from qaflow.machines import supervision
from qaflow.machines._timescales import build_machine
from qaflow.machines.supervision import shipped_supervision
from qaflow.programme import generate_council, period_bounds, run_programme
from qaflow.registry import shipped_report_policies, shipped_specs
from qaflow.report import QAReport, build_report
from qaflow.spec import Field, MachineSpec

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
    "period_deadlines",
)


COUNCIL = generate_council(6, teams=3, practitioners_per_team=4)


def _fill(store: Any) -> Any:
    council = COUNCIL
    run_programme(council, months=6, start=START, seed=9, store=store, escalation_rate=0.1)
    start, end = period_bounds(START, 3)
    run_practice(store, council, policy="bexley", start=start, end=end, seed=5)
    return store


def _whole_histories(store: Any) -> Any:
    """The same store without its period reads: the report reads every whole history and
    compliance every snapshot."""

    class WholeHistories(type(store)):  # type: ignore[misc]
        period_workflows = quiet_workflows = tasks_created = notifications_created = None
        period_snapshots = period_deadlines = events_after = quiet_teams = None

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


def test_a_team_or_service_report_reads_the_period_too(filled: Any) -> None:
    """A report for one team or one service (``--team``, the service's scoped report) is
    the one read the long way, and the store's quiet workflows are counted by group (by the
    team the data records) rather than read history by history."""
    directory = COUNCIL.directory
    teams = sorted(t.id for t in directory.teams())
    services = sorted({t.service_id for t in directory.teams()})
    reads: list[str] = []
    for start, end in PERIODS:
        period = {"start": start, "end": end, "directory": directory}
        for scope in [{"team": t} for t in teams] + [{"service": s} for s in services]:
            if isinstance(filled, SQLiteStore):
                filled.conn.set_trace_callback(reads.append)
            report = build_report(filled, policies=KNOWN, **period, **scope)
            if isinstance(filled, SQLiteStore):
                filled.conn.set_trace_callback(None)
            assert report == _long_way(filled, **period, **scope), (start, scope)
    if isinstance(filled, SQLiteStore):
        one_by_one = [q for q in reads if "FROM events WHERE workflow_id = '" in q]
        assert reads and not one_by_one, one_by_one[:3]
    start, end = PERIODS[0]
    trend = build_report(
        filled, policies=KNOWN, start=start, end=end, team=teams[0], trend_months=3
    )
    assert trend == _long_way(filled, start=start, end=end, team=teams[0], trend_months=3)


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
        later = 0  # events after a period's end, of the workflows with deadline rows in it
        for start, end in PERIODS:
            since, until = _moment(start), _moment(end)
            for name in (*PERIOD_READS, "quiet_teams"):
                got = list(getattr(pg, name)(since, until))
                assert got == list(getattr(lite, name)(since, until)), (name, start)
            rolling = ["supervision", "qa_calendar"]
            assert pg.period_snapshots(since, until, rolling) == lite.period_snapshots(
                since, until, rolling
            )
            assert lite.period_snapshots(since, until, []) == []
            rows = lite.period_deadlines(since, until, rolling)
            assert rows == pg.period_deadlines(since, until, rolling)
            after = {r.workflow_id: r.opened_seq for r in rows}
            found = lite.events_after(after, until)
            assert pg.events_after(after, until) == found
            later += len(found)
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
        assert skipped > 0 and later > 0


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

    Compliance reads the deadline rows settled since the start or still open (one query,
    searching the ``closed_at`` index and the open rows, the closing events by key) and the
    events after the end of the workflows touched since, by key from a seq on; no workflow
    of the practice is replayed (no events read one workflow at a time)."""
    with SQLiteStore(tmp_path / "plan.db", synchronous="NORMAL") as store:
        _fill(store)
        for start, end in PERIODS:
            seen: list[str] = []
            store.conn.set_trace_callback(seen.append)
            try:
                build_report(store, policies=KNOWN, start=start, end=end, trend_months=3)
            finally:
                store.conn.set_trace_callback(None)
            selects = [q for q in seen if q.lstrip().upper().startswith(("SELECT", "WITH"))]
            tables = [
                "events" if sql.startswith("WITH") else sql.split(" FROM ")[1].split()[0]
                for sql in selects
            ]
            assert tables.count("tasks") == tables.count("notifications") == 1, tables
            # compliance: its deadline rows in one read
            assert sum("FROM deadlines d JOIN" in sql for sql in selects) == 1, selects
            for sql, table in dict(zip(selects, tables, strict=True)).items():
                plan = [r[-1] for r in store.conn.execute("EXPLAIN QUERY PLAN " + sql)]
                # the one walk allowed: the (workflow, seq) pairs bound in events_after
                walks = [s for s in plan if s.startswith("SCAN") and "CONSTANT ROWS" not in s]
                assert walks == (["SCAN w"] if sql.startswith("WITH") else []), (sql, plan)
                assert not any("idx_workflows_machine_state" in step for step in plan), plan
                wanted = {
                    "workflows": ("idx_workflows_updated_at", "(workflow_id=?)"),
                    "events": ("(workflow_id=?)", "(workflow_id=? AND seq>?)"),
                    "tasks": ("idx_tasks_created_at (created_at>? AND created_at<?)",),
                    "notifications": ("idx_notifications_created_at (created_at>? AND",),
                    "deadlines": ("idx_deadlines_status_due_at (status=?",),
                }[table]
                assert any(w in " ".join(plan) for w in wanted), (sql, plan)
                if "d.closed_at >=" in sql:  # the rows settled since the start, and their events
                    for step in (
                        "SEARCH d USING INDEX idx_deadlines_closed_at (closed_at>?)",
                        "SEARCH d USING INDEX idx_deadlines_status_due_at (status=?)",
                        "SEARCH e USING INDEX sqlite_autoindex_events_1 (workflow_id=? AND seq=?)",
                    ):
                        assert any(p.startswith(step) for p in plan), (step, plan)
                if sql.startswith("WITH"):  # events after the end, searched from a seq on
                    assert any("(workflow_id=? AND seq>?)" in p for p in plan), plan
                assert f"{store._EVENT_COLS} FROM events WHERE workflow_id =" not in sql, sql
                if "updated_at <" in sql and "GROUP BY" not in sql:
                    # quiet workflows are read only where they hold an open deadline
                    assert "idx_deadlines_status_due_at (status=?)" in " ".join(plan), plan


# --- compliance from the deadline rows ------------------------------------------------------

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)  # a Monday
LEAD = Actor("TM-1", "team_manager")
GROUP_ONLY_WITH_CASES = 'has(payload.kind) && payload.kind == "group" && data.case_holding'


def _supervision_versions() -> tuple[MachineSpec, MachineSpec]:
    """Bexley's supervision with what the deadline rows cannot tell: ``role_changed`` may
    move a practitioner to another team, group supervision is met only while holding cases
    (``met_when`` reads the data before the event), and a version 2 to migrate to."""
    shipped = shipped_supervision("bexley")
    events = tuple(
        attrs.evolve(
            e,
            fields=(*e.fields, Field("team_id", required=False)),
            copy=(*e.copy, ("team_id", "team_id")),
        )
        if e.trigger == "role_changed"
        else e
        for e in supervision.EVENTS
    )
    rules = tuple(
        attrs.evolve(r, met_when=GROUP_ONLY_WITH_CASES) if r.name == "group_supervision" else r
        for r in shipped.rules
    )
    v1 = build_machine(supervision.MACHINE, events, attrs.evolve(shipped, rules=rules))
    v1 = attrs.evolve(v1, migration_roles={"team_manager"})
    longer = tuple(  # version 2 wants longer sessions: a 90-minute one no longer meets it
        attrs.evolve(r, met_when="payload.minutes >= 100") if r.name == "supervision" else r
        for r in rules
    )
    return v1, attrs.evolve(v1, policy_version="2", rolling=longer)


def _play_supervision(store: Any) -> tuple[Engine, list[MachineSpec]]:
    """Five practitioners over 16 weeks, each week's end ticked: A has group sessions (its
    group rows need the replay), B only individual ones, C moves team after week 12, D is
    migrated after week 12, E moves team in week 6."""
    v1, v2 = _supervision_versions()
    clock = ManualClock(T0)
    engine = Engine(store, [v1], clock=clock)  # v2 joins when D moves to it
    for wid in "ABCDE":
        engine.start(
            supervision.MACHINE,
            wid,
            "practitioner_joined",
            LEAD,
            {
                "team_id": "north",
                "practitioner_id": f"P-{wid}",
                "experience": "experienced",
                "case_holding": True,
            },
        )
    for week in range(16):
        monday = T0 + timedelta(weeks=week)
        clock.set(monday + timedelta(hours=1))
        if week % 2 == 0:
            engine.fire("A", "session_recorded", LEAD, {"minutes": 60, "kind": "group"})
        for wid in "BCDE" if week % 5 else "BC":  # D and E miss one week in five
            engine.fire(wid, "session_recorded", LEAD, {"minutes": 90})
        if week == 6:
            engine.fire("E", "role_changed", LEAD, {"team_id": "south"})
        if week == 12:
            engine.fire("C", "role_changed", LEAD, {"team_id": "south"})
            engine.migrate("D", v2, LEAD, reason="version 2")
        engine.tick(clock.set(monday + timedelta(days=6, hours=12)))
    return engine, [v1, v2]


def _events_read(store: SQLiteStore, run: Any) -> set[str]:
    """The workflows whose events ``run`` read one by one (a replay's read)."""
    seen: list[str] = []
    store.conn.set_trace_callback(seen.append)
    try:
        run()
    finally:
        store.conn.set_trace_callback(None)
    wanted = " FROM events WHERE workflow_id = '"
    return {q.split(wanted)[1].split("'")[0] for q in seen if wanted in q}


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_compliance_from_the_deadline_rows_is_the_replay(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Counted from the deadline rows, compliance is the replay's for every period, team
    and policy filter; only the workflows whose rows cannot tell are replayed: A (its group
    duty's ``met_when`` reads the data), and, for a period ending before week 12, C (moved
    team after it) and D (migrated after it). B and E are never replayed, E's team being
    the one it had at each period's end."""
    if kind == "sqlite":
        store: Any = SQLiteStore(tmp_path / "rows.db", synchronous="NORMAL")
    else:
        store = PostgresStore(request.getfixturevalue("pg_dsn"))
    request.addfinalizer(store.close)
    engine, specs = _play_supervision(store)
    whole = Engine(_whole_histories(store), specs)
    periods = [
        (T0 + timedelta(weeks=a), T0 + timedelta(weeks=b))
        for a, b in [(0, 4), (0, 12), (4, 8), (5, 7), (8, 12), (10, 16), (12, 16), (2, 3), (15, 20)]
    ]
    periods.append((T0 + timedelta(days=3), T0 + timedelta(weeks=6, days=6, hours=12)))
    counted = 0
    for start, end in periods:
        for team, policy in [(None, None), ("north", None), ("south", None), (None, "bexley")]:
            fast = compliance(engine, start, end, team=team, policy=policy)
            assert fast == compliance(whole, start, end, team=team, policy=policy), (start, end)
            counted += sum(r.counted + r.superseded for r in fast)
    assert counted > 0
    north = {r.name: r for r in compliance(engine, T0, T0 + timedelta(weeks=12), team="north")}
    assert north["supervision"].met > 0 and north["supervision"].missed > 0
    if isinstance(store, SQLiteStore):
        assert _events_read(
            store, lambda: compliance(engine, T0 + timedelta(weeks=8), T0 + timedelta(weeks=12))
        ) == {"A", "C", "D"}
        assert _events_read(
            store, lambda: compliance(engine, T0 + timedelta(weeks=12), T0 + timedelta(weeks=16))
        ) == {"A"}


def test_postgres_period_reads_can_search_by_the_period(pg_dsn: str) -> None:
    """Each period read a PostgreSQL report runs has an index on the period's columns (or a
    key) to search: with sequential scans priced out, no table is walked. (On a store this
    small the planner may still prefer a walk; priced out, the plan shows the index serves.)
    Statistics are taken first, and the machine index, which on so few rows may or may not
    be preferred to the period's depending on when autovacuum last ran, is dropped inside the
    transaction, which is rolled back, so that the plans do not depend on timing."""

    class Recorded(PostgresStore):
        def _select(self, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
            seen.append((sql, args))
            return super()._select(sql, args)

    seen: list[tuple[str, Any]] = []
    with Recorded(pg_dsn) as store:
        _fill(store)
        for start, end in PERIODS[1:3]:
            build_report(store, policies=KNOWN, start=start, end=end, trend_months=2)
        period = [
            (sql, args)
            for sql, args in seen
            if any(k in sql for k in ("%(start)s", "%(end)s", "created_at >= %s"))
        ]
        walked: set[str] = set()
        used: set[str] = set()
        with store._conn() as conn, conn.transaction(force_rollback=True):
            conn.execute("ANALYZE")
            conn.execute("SET LOCAL enable_seqscan = off")
            conn.execute("DROP INDEX workflows_machine_state")
            for sql, args in period:
                plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, args))
                walked |= {
                    line.split(" on ")[1].split()[0]
                    for line in plan.splitlines()
                    if "Seq Scan on " in line
                }
                used |= set(re.findall(r"(?:Index Scan on|Index Only Scan on| using) (\w+)", plan))
    assert walked == set(), walked
    assert {
        "workflows_updated_at",
        "tasks_created_at",
        "notifications_created_at",
        "deadlines_closed_at",
        "deadlines_open_due",
        "events_pkey",
    } <= used, used


def test_quiet_workflows_are_counted_from_the_index_alone(tmp_path: Path) -> None:
    """``quiet_workflows`` reads ``idx_workflows_updated_at`` alone (it holds what the count
    groups by), and a file an older qaflow made with the narrower index gains the wider one
    when it is next opened for writing; the groups are those of every row."""
    path = tmp_path / "older.db"
    with SQLiteStore(path, synchronous="NORMAL") as store:
        _fill(store)
        store.conn.execute("DROP INDEX idx_workflows_updated_at")
        store.conn.execute("CREATE INDEX idx_workflows_updated_at ON workflows (updated_at)")
    with SQLiteStore(path, synchronous="NORMAL") as store:
        sql: list[str] = []
        for start, end in PERIODS:
            since, until = _moment(start), _moment(end)
            store.conn.set_trace_callback(sql.append)
            groups = list(store.quiet_workflows(since, until))
            store.conn.set_trace_callback(None)
            every: dict[tuple[str, str, str], int] = {}
            for s in store.snapshots():
                assert s.updated_at is not None and s.created_at is not None
                if s.updated_at < since and s.created_at < until:
                    key = (s.machine, s.policy, s.state)
                    every[key] = every.get(key, 0) + 1
            assert groups == [(*k, n) for k, n in sorted(every.items())], start
        plan = [r[-1] for r in store.conn.execute("EXPLAIN QUERY PLAN " + sql[-1])]
        assert plan[0].startswith("SEARCH workflows USING COVERING INDEX idx_workflows_updated_at")
        assert groups  # the last period: everything quiet


def test_events_after_binds_no_more_than_the_build_allows(tmp_path: Path) -> None:
    """``events_after`` splits its (workflow, seq) pairs to fit SQLite's parameter limit: with
    room for three pairs a query, five workflows give the same events as one query."""
    with SQLiteStore(tmp_path / "limit.db", synchronous="NORMAL") as store:
        _play_supervision(store)
        after = {wid: 3 for wid in "ABCDE"}
        end = T0 + timedelta(weeks=8)
        whole = store.events_after(after, end)
        store.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 7)
        assert store.events_after(after, end) == whole
        assert {wid for wid, _ in whole} == set("ABCDE")
