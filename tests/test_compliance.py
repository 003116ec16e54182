"""The compliance view: met, missed and open per team and timescale, and ``as_of``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qaflow import Engine, ManualClock, MemoryStore, ValidationError
from qaflow.compliance import as_of, compliance, instances
from qaflow.machines.timescales import case_spec, shipped_case_timescales
from timescale_support import MANAGER, WORKER

T0 = datetime(2025, 3, 3, 9, tzinfo=UTC)  # a Monday


def _engine() -> tuple[Engine, ManualClock]:
    clock = ManualClock(T0)
    spec = case_spec(shipped_case_timescales("buckinghamshire"))
    return Engine(MemoryStore(), [spec], clock=clock), clock


def _case(engine: Engine, wid: str, team: str, status: str = "cin") -> None:
    engine.start(
        "case_timescales",
        wid,
        "referral_received",
        WORKER,
        {"team_id": team, "social_worker_id": WORKER.id, "status": status},
    )


def test_met_missed_and_open_per_team_and_timescale() -> None:
    engine, clock = _engine()
    _case(engine, "C1", "north")
    _case(engine, "C2", "south")
    clock.advance(timedelta(days=2))
    engine.fire("C1", "contact_decision", WORKER, {"decision": "s17"})  # met (72 h)
    clock.advance(timedelta(days=10))
    engine.fire("C1", "visit", WORKER)  # visit met; assessment visit (5 WD from referral) late
    end = T0 + timedelta(weeks=5)  # C1's next visit falls due after it
    engine.tick(clock.set(end))  # C2: contact decision missed, first visit missed
    rows = {(r.team, r.name): r for r in compliance(engine, T0, end)}
    assert (rows["north", "contact_decision"].met, rows["north", "contact_decision"].missed) == (
        1,
        0,
    )
    assert rows["south", "contact_decision"].missed == 1
    assert rows["north", "assessment_visit"].missed == 1  # met only after its due time
    north_visit = rows["north", "visit"]
    assert (north_visit.met, north_visit.missed) == (1, 0)
    assert rows["south", "visit"].missed == 1
    assert rows["south", "visit"].open == 1  # the next one, opened from the missed due time
    assert rows["south", "visit"].share("missed") == 0.5
    only_north = compliance(engine, T0, end, team="north")
    assert {r.team for r in only_north} == {"north"}


def test_an_instance_counts_where_it_was_settled_or_as_open_at_the_end() -> None:
    engine, clock = _engine()
    _case(engine, "C1", "north")
    clock.advance(timedelta(days=1))
    engine.fire("C1", "contact_decision", WORKER, {"decision": "no_further_action"})
    engine.tick(clock.set(T0 + timedelta(weeks=5)))  # the first visit (due in 4 weeks) missed
    early = {r.name: r for r in compliance(engine, T0, T0 + timedelta(weeks=2))}
    assert (early["visit"].open, early["visit"].missed) == (1, 0)
    assert early["visit"].share("open") == 1.0
    assert early["contact_decision"].met == 1
    later = {
        r.name: r for r in compliance(engine, T0 + timedelta(weeks=2), T0 + timedelta(weeks=5))
    }
    assert (later["visit"].open, later["visit"].missed) == (1, 1)  # missed, and the next open
    assert "contact_decision" not in later  # settled before the range


def test_a_restart_is_superseded_not_met() -> None:
    """A cadence change (CIN -> CP plan) closes the CIN instance without meeting it."""
    engine, clock = _engine()
    _case(engine, "C1", "north")
    clock.advance(timedelta(days=3))
    engine.fire("C1", "icpc_held", WORKER, {"outcome": "cp_plan"})
    outcomes = sorted(i.outcome for i in instances(engine) if i.name == "visit")
    assert outcomes == ["open", "superseded"]


def test_as_of_lists_what_was_open_and_overdue_that_day() -> None:
    """``as_of``: on a given day, which deadlines were open, and which were overdue; a missed
    visit stays overdue until the next visit is made."""
    engine, clock = _engine()
    _case(engine, "C1", "north")
    engine.fire("C1", "concern_identified", WORKER)
    clock.advance(timedelta(hours=2))
    engine.fire("C1", "strategy_discussion", MANAGER)
    engine.tick(clock.set(T0 + timedelta(weeks=5)))  # the first visit (4 weeks) was missed
    clock.set(T0 + timedelta(weeks=6))
    engine.fire("C1", "visit", WORKER)
    day = T0 + timedelta(days=2)
    open_then = {i.name for i in as_of(engine, day)}
    assert {"contact_decision", "visit", "icpc_held", "s47_completed"} <= open_then
    assert "strategy_discussion" not in open_then  # met before that day
    overdue = {i.name for i in as_of(engine, T0 + timedelta(days=4), overdue_only=True)}
    assert overdue == {"contact_decision"}
    after_miss = {i.name for i in as_of(engine, T0 + timedelta(weeks=5, days=1), overdue_only=True)}
    assert "visit" in after_miss
    after_visit = as_of(engine, T0 + timedelta(weeks=6, hours=1), overdue_only=True)
    assert "visit" not in {i.name for i in after_visit}


def test_a_bad_range_is_refused() -> None:
    engine, _ = _engine()
    with pytest.raises(ValidationError):
        compliance(engine, T0, T0)
    with pytest.raises(ValidationError):
        as_of(engine, datetime(2025, 3, 3))  # naive


def test_the_report_shows_timescale_compliance_per_team() -> None:
    """The QA report's timescale section (issue 11): a generated council's practice under
    Bexley's files, per team, in JSON, Markdown and HTML."""
    from datetime import date

    from qaflow._practice import run_practice
    from qaflow.programme import generate_council, period_bounds
    from qaflow.registry import shipped_report_policies
    from qaflow.report import build_report, from_json, to_html, to_json, to_markdown

    KNOWN = shipped_report_policies()

    store = MemoryStore()
    council = generate_council(5)
    start, end = period_bounds(date(2026, 1, 1), 2)
    played = run_practice(store, council, policy="bexley", start=start, end=end, seed=5)
    assert played.events > played.cases
    report = build_report(store, policies=KNOWN, start=start, end=end)
    teams = {t.team for t in report.timescales}
    assert teams >= set(council.teams)
    names = {(t.name, t.clause) for t in report.timescales}
    assert {("supervision", "BX-SUP-01"), ("monthly_audit", "BX-QA-01")} <= names
    assert all(t.met + t.missed + t.open + t.superseded > 0 for t in report.timescales)
    assert from_json(to_json(report)) == report
    assert "## Timescale compliance, by team" in to_markdown(report, policies=KNOWN)
    assert "<h2>Timescale compliance, by team</h2>" in to_html(report, policies=KNOWN)
    assert (
        build_report(
            store, policies=KNOWN, start=start, end=end, policy="buckinghamshire"
        ).timescales
        == ()
    )


def _whole_history(engine: Engine, start: datetime, end: datetime) -> dict[tuple[object, ...], int]:
    """Compliance counted the long way: every workflow replayed up to ``end``."""
    counts: dict[tuple[object, ...], int] = {}
    for inst in instances(engine, until=end):
        if inst.closed_at is None and inst.opened_at >= end:
            continue
        if inst.closed_at is not None and not start <= inst.closed_at < end:
            continue
        key = (inst.team, inst.name, inst.outcome)
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.mark.parametrize("weeks", [1, 3, 8, 20])
def test_a_period_reads_only_its_workflows_and_counts_the_same(weeks: int) -> None:
    """A workflow quiet since before the period is not replayed (its open deadlines are its
    snapshot's), and one that starts after it is skipped: the counts are those of replaying
    everything."""
    engine, clock = _engine()
    _case(engine, "OLD", "north")  # quiet from the start: only its open deadlines count
    clock.advance(timedelta(weeks=2))
    _case(engine, "MID", "south")
    engine.fire("MID", "contact_decision", WORKER, {"decision": "s17"})
    clock.advance(timedelta(weeks=2))
    engine.tick(clock.now())
    engine.fire("MID", "visit", WORKER)
    clock.advance(timedelta(weeks=10))
    _case(engine, "NEW", "north")
    engine.tick(clock.advance(timedelta(weeks=1)))
    start = T0 + timedelta(weeks=weeks)
    end = start + timedelta(weeks=4)
    fast = {
        (r.team, r.name, outcome): getattr(r, outcome)
        for r in compliance(engine, start, end)
        for outcome in ("met", "missed", "open", "superseded")
        if getattr(r, outcome)
    }
    assert fast == _whole_history(engine, start, end)
    old = [i for i in instances(engine, since=clock.now()) if i.workflow_id == "OLD"]
    assert {i.outcome for i in old} <= {"open"}
