"""The simulated audit programme: a generated council, a run of months on the real engine.

What is checked: the council is reproducible and made of ids only; the same seed writes
identical store content (memory and SQLite alike); every event passes ``Engine.verify`` and
the invariant checks of ``qaflow.testing``; the rules hold in what the run wrote (I9, the
role of every actor, one audit a month per manager, BX-AUD-13); slow auditors breach the
follow-up (BX-AUD-09) and completion (BK-AUD-02) deadlines through ``tick``; the grade
distribution is configurable (BX-AUD-12 when everything is Inadequate); escalations follow
their ladders (I5); bad arguments are refused before anything is written.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from qaflow import Engine, MemoryStore, SQLiteStore, ValidationError
from qaflow.demo import run_demo
from qaflow.machines import audit as A
from qaflow.machines.escalation import TERMINAL_STATES
from qaflow.policies import bexley, buckinghamshire
from qaflow.policies.forms import Grade
from qaflow.programme import (
    Council,
    ProgrammeResult,
    generate_council,
    period_bounds,
    run_programme,
)
from qaflow.records import SYSTEM
from qaflow.registry import shipped_specs
from qaflow.testing import check_escalation, check_tick, check_workflow, store_content

START = date(2026, 1, 1)
LADDERS = {lad.name: lad for lad in bexley.ESCALATION_LADDERS}


def _content(store: MemoryStore | SQLiteStore) -> object:
    """The whole store, task completion included (store_content leaves it out for memory)."""
    if isinstance(store, SQLiteStore):
        return store.dump()
    return (store_content(store), sorted(t.id for t in store.tasks(open_only=True)))


@pytest.fixture(scope="module")
def council() -> Council:
    return generate_council(11)


@pytest.fixture(scope="module")
def bexley_run(council: Council) -> tuple[MemoryStore, ProgrammeResult]:
    store = MemoryStore()
    result = run_programme(
        council,
        bexley.BEXLEY_AUDIT,
        months=3,
        start=START,
        seed=5,
        store=store,
        escalation_rate=0.08,
    )
    return store, result


@pytest.fixture(scope="module")
def buckinghamshire_run(council: Council) -> tuple[MemoryStore, ProgrammeResult]:
    store = MemoryStore()
    result = run_programme(
        council,
        buckinghamshire.BUCKINGHAMSHIRE_AUDIT,
        months=3,
        start=START,
        seed=5,
        store=store,
        slow_auditor_share=1.0,
        safeguarding_rate=0.3,
    )
    return store, result


# --- the council --------------------------------------------------------------------------


def test_the_council_is_reproducible_and_made_of_ids() -> None:
    one, again, other = generate_council(3), generate_council(3), generate_council(4)
    assert one == again
    assert [c.status for c in one.cases] != [c.status for c in other.cases]
    assert len(one.teams) == 6 and len(one.practitioners) == 36 and len(one.cases) == 144
    assert all(re.fullmatch(r"T\d\d", t) for t in one.teams)
    assert all(re.fullmatch(r"P\d{3}", p) for p in one.practitioners)
    assert all(re.fullmatch(r"C\d{4}", c.child_id) for c in one.cases)
    assert all(re.fullmatch(r"FC\d{3}", f) for f in one.foster_carers)
    every_id = [p.id for p in one.directory.people()]
    assert all(re.fullmatch(r"[A-Z]{1,3}\d{1,4}", pid) for pid in every_id), every_id


def test_the_councils_directory_gives_every_role_the_machines_need() -> None:
    council = generate_council(3, teams=4, practitioners_per_team=3, cases_per_practitioner=2)
    d = council.directory
    assert all(d.has_role(tm, "auditor") for tm in council.team_managers)
    assert all(d.has_role(sm, "auditor") for sm in council.service_managers)
    assert all(
        d.has_role(p, "worker") and d.has_role(p, "social_worker") for p in council.practitioners
    )
    for role in ("cp_chair", "iro", "firo", "psqa", "business_support", "director"):
        assert d.holders(role), role
    assert set(d.holders("moderator")) >= {*council.service_managers, *council.heads_of_service}
    for case in council.cases:
        assert d.team_of(case.worker_id) == case.team_id
        assert d.team_manager_of(case.worker_id) == council.team_managers[int(case.team_id[1:]) - 1]


@pytest.mark.parametrize(
    "changes",
    [{"teams": 0}, {"teams": 100}, {"practitioners_per_team": -1}, {"cases_per_practitioner": 1.5}],
)
def test_generate_council_refuses_bad_sizes(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        generate_council(1, **changes)  # type: ignore[arg-type]


# --- reproducibility ----------------------------------------------------------------------


def test_same_seed_gives_identical_store_content(council: Council) -> None:
    stores = [MemoryStore(), MemoryStore(), MemoryStore()]
    results = [
        run_programme(council, months=2, start=START, seed=seed, store=store)
        for seed, store in zip((9, 9, 10), stores, strict=True)
    ]
    assert _content(stores[0]) == _content(stores[1])
    assert results[0] == results[1]
    assert _content(stores[0]) != _content(stores[2])


def test_sqlite_and_memory_runs_write_the_same_events(council: Council, tmp_path: Path) -> None:
    """The programme works on both stores; on SQLite the same seed gives the same file
    content, and the same events as in memory."""
    dumps = []
    for name in ("a.db", "b.db"):
        with SQLiteStore(tmp_path / name, synchronous="NORMAL") as store:
            run_programme(council, months=2, start=START, seed=9, store=store)
            dumps.append(store.dump())
            sqlite_events = {w: store.events(w) for w in store.workflow_ids()}
            done = sorted(t.id for t in store.tasks(open_only=True))
    assert dumps[0] == dumps[1]
    memory = MemoryStore()
    run_programme(council, months=2, start=START, seed=9, store=memory)
    assert {w: memory.events(w) for w in memory.workflow_ids()} == sqlite_events
    assert sorted(t.id for t in memory.tasks(open_only=True)) == done


# --- what the run wrote -------------------------------------------------------------------


@pytest.mark.parametrize("run", ["bexley_run", "buckinghamshire_run"])
def test_every_event_verifies_and_holds_the_invariants(
    run: str, request: pytest.FixtureRequest
) -> None:
    """I1, I2, I6, I14 (check_workflow), I7 (check_tick) and Engine.verify on every workflow."""
    store, result = request.getfixturevalue(run)
    engine = Engine(store, shipped_specs())
    ids = list(store.workflow_ids())
    assert engine.verify() == len(ids) > 0
    for wid in ids:
        check_workflow(engine, wid)
    check_tick(engine, result.end)


def test_result_counts_are_the_stores(bexley_run: tuple[MemoryStore, ProgrammeResult]) -> None:
    store, result = bexley_run
    triggers = Counter(
        (s.machine.split(".")[0], e.trigger)
        for s in store.snapshots()
        for e in store.events(s.workflow_id)
    )
    assert result.audits_allocated == triggers[("audit", "allocate")] > 0
    assert result.audits_completed == triggers[("audit", "complete")] > 0
    assert result.audits_cancelled == triggers[("audit", "cancel")]
    assert result.audits_followed_up == triggers[("audit", "follow_up")]
    assert result.moderations_opened == triggers[("moderation", "sample")] > 0
    assert result.moderations_finalised == triggers[("moderation", "finalise")]
    assert result.escalations_raised == triggers[("escalation", "raise")] > 0
    assert result.events_written == store.counts()["events"]
    breaches = sum(
        1
        for s in store.snapshots()
        for e in store.events(s.workflow_id)
        if e.actor == SYSTEM and "deadline_id" in e.payload
    )
    assert result.deadline_breaches == breaches
    assert result.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert (result.months, result.policy, result.council.seed) == (3, "bexley", 11)
    assert result.to_dict()["council"]["cases"] == 144


def test_BX_AUD_01_BX_AUD_13_allocation_rules_hold_in_the_run(
    council: Council, bexley_run: tuple[MemoryStore, ProgrammeResult]
) -> None:
    """I9: no auditor audits their own team's case or own case; no moderator moderates their
    own audit; each manager gets one audit a month (BX-AUD-13); every command's actor holds
    the role they acted in (principle 7, checked by the engine through the directory)."""
    store, _ = bexley_run
    per_month: Counter[tuple[str, str]] = Counter()
    audits = {s.workflow_id: s for s in store.snapshots(A.MACHINE)}
    for snap in audits.values():
        data = snap.data
        assert data["auditor_team_id"] != data["team_id"]
        assert data["auditor_id"] != data["worker_id"]
        assert council.directory.team_of(data["auditor_id"]) != data["team_id"]
        per_month[(data["auditor_id"], data["allocated_at"][:7])] += 1
    assert set(per_month.values()) == {1}
    for snap in store.snapshots("moderation"):
        audit = audits[snap.data["audit_id"]]
        assert snap.data["moderator_id"] != audit.data["auditor_id"]
    for snap in store.snapshots():
        for event in store.events(snap.workflow_id):
            if event.actor != SYSTEM:
                assert council.directory.has_role(event.actor.id, event.actor.role), event


def test_no_free_text_but_the_placeholder(bexley_run: tuple[MemoryStore, ProgrammeResult]) -> None:
    """Principle 10: the programme writes ids and one placeholder, never invented notes."""
    store, _ = bexley_run
    texts: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            texts.add(value)

    for snap in store.snapshots():
        for event in store.events(snap.workflow_id):
            walk(event.payload)
    words = {t for t in texts if " " in t and not re.fullmatch(r"\d+ WD", t)}
    assert words == set(), words


def test_BX_AUD_09_slow_auditors_miss_the_follow_up_and_tick_records_it(council: Council) -> None:
    def misses(share: float) -> int:
        store = MemoryStore()
        run_programme(council, months=2, start=START, seed=3, store=store, slow_auditor_share=share)
        return sum(
            1
            for s in store.snapshots(A.MACHINE)
            for e in store.events(s.workflow_id)
            if e.trigger == "deadline_missed" and e.payload["deadline"] == "follow_up"
        )

    assert misses(0.0) == 0
    assert misses(1.0) > 0


def test_BK_AUD_02_and_BK_AUD_04_in_the_buckinghamshire_run(
    buckinghamshire_run: tuple[MemoryStore, ProgrammeResult],
) -> None:
    """Slow auditors miss the 3-week completion deadline (recorded by tick); serious
    safeguarding issues are escalated to senior managers at once; BK has no Inadequate."""
    store, result = buckinghamshire_run
    events = [e for s in store.snapshots(A.MACHINE) for e in store.events(s.workflow_id)]
    missed = [e for e in events if e.trigger == "deadline_missed"]
    assert missed and {e.payload["deadline"] for e in missed} == {"completion"}
    assert any(e.trigger == "escalate_safeguarding" for e in events)
    grades = {s.data.get("grade") for s in store.snapshots(A.MACHINE)} - {None}
    assert grades and "INADEQUATE" not in grades
    assert result.policy == "buckinghamshire" and result.id_prefix == "BK-"
    assert all(w.startswith("BK-") for w in store.workflow_ids())


def test_BX_AUD_12_grades_are_configurable(council: Council) -> None:
    store = MemoryStore()
    run_programme(
        council,
        months=1,
        start=START,
        seed=1,
        store=store,
        grades={Grade.INADEQUATE: 1.0},
        cancel_rate=0.0,
    )
    graded = [s for s in store.snapshots(A.MACHINE) if "grade" in s.data]
    assert graded and {s.data["original_grade"] for s in graded} == {"INADEQUATE"}
    tasks = [t for t in store.tasks() if t.clause == "BX-AUD-12"]
    urgent = [t for t in tasks if t.kind != "sufficiency_review"]
    assert len(urgent) == 2 * len(graded)
    with_actions = [s for s in graded if s.data["actions"]]
    assert len(tasks) - len(urgent) == len(with_actions)  # the service manager's review
    with pytest.raises(ValidationError):
        run_programme(
            council,
            buckinghamshire.BUCKINGHAMSHIRE_AUDIT,
            months=1,
            start=START,
            seed=1,
            grades={Grade.INADEQUATE: 1.0},
        )


def test_escalations_follow_their_ladders(council: Council) -> None:
    """I4, I5, extension bounds and the ladder's recipients for every escalation raised."""
    store = MemoryStore()
    run_programme(
        council, months=2, start=START, seed=2, store=store, escalation_rate=0.2, cancel_rate=0
    )
    engine = Engine(store, shipped_specs())
    escalations = [s for s in store.snapshots() if s.machine.startswith("escalation.")]
    assert {s.data["ladder"] for s in escalations} == set(LADDERS)
    for snap in escalations:
        check_escalation(engine, snap.workflow_id, LADDERS[snap.data["ladder"]])
    outcomes = Counter(s.state for s in escalations)
    assert sum(outcomes[s] for s in TERMINAL_STATES) > 0
    triggers = {e.trigger for s in escalations for e in store.events(s.workflow_id)}
    assert {"respond", "escalate", "accept", "response_overdue"} <= triggers


def test_period_bounds_are_calendar_months_in_london() -> None:
    begin, end = period_bounds(date(2026, 1, 1), 3)
    assert begin == datetime(2026, 1, 1, tzinfo=UTC)
    assert end == datetime(2026, 3, 31, 23, tzinfo=UTC)  # 1 April 00:00 BST
    assert period_bounds(date(2025, 11, 1), 3)[1] == datetime(2026, 2, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "changes",
    [
        {"months": 0},
        {"feedback_rate": 1.5},
        {"escalation_rate": -0.1},
        {"start": datetime(2026, 1, 1)},
        {"grades": {Grade.GOOD: -1}},
        {"seed": "x"},
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    council: Council, changes: dict[str, object]
) -> None:
    store = MemoryStore()
    args: dict[str, object] = {"months": 1, "start": START, "seed": 1, "store": store}
    args.update(changes)
    with pytest.raises(ValidationError):
        run_programme(council, **args)  # type: ignore[arg-type]
    assert store.counts()["events"] == 0


def test_a_year_moderates_within_six_months_and_closes_audits_after_it(council: Council) -> None:
    """BX-MOD-01: the sample comes from audits completed in the last 6 months; an audit
    closes (fired by tick) when its moderation window has passed."""
    store = MemoryStore()
    result = run_programme(council, months=12, start=START, seed=6, store=store)
    audits = {s.workflow_id: s for s in store.snapshots(A.MACHINE)}
    closed = [s for s in audits.values() if s.state == A.CLOSED]
    assert closed and result.audits_allocated == len(audits) == 12 * 8
    for snap in closed:
        completed = datetime.fromisoformat(snap.data["completed_at"])
        assert snap.updated_at is not None and snap.updated_at >= completed
    for snap in store.snapshots("moderation"):
        sampled = store.events(snap.workflow_id)[0].at
        completed = datetime.fromisoformat(snap.data["audit_completed_at"])
        assert completed <= sampled <= completed + timedelta(days=184)


@pytest.mark.slow
def test_the_demo_writes_a_quarter_and_its_report(tmp_path: Path) -> None:
    """run_demo: a Bexley quarter in SQLite, verified, reported as HTML, Markdown and JSON;
    the same seed writes the same database content and the same reports."""
    first = run_demo(tmp_path / "one", seed=7)
    again = run_demo(tmp_path / "two", seed=7)
    assert first.database.name == "qaflow-demo.db"
    for path in (first.database, first.html, first.markdown, first.json):
        assert path.exists() and path.stat().st_size > 0
    with SQLiteStore(first.database) as a, SQLiteStore(again.database) as b:
        assert a.dump() == b.dump()
        assert Engine(a, shipped_specs()).verify() == first.summary.workflows
    for name in ("html", "markdown", "json"):
        assert getattr(first, name).read_text() == getattr(again, name).read_text()
    s = first.summary
    assert s.verified == s.workflows > 0 and s.audits_allocated == 24
    assert s.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert any("qa-report.html" in line for line in first.lines())
    rerun = run_demo(tmp_path / "one", seed=7)  # replaces the earlier demo database
    assert rerun.summary == first.summary
