"""qaflow.sim: the one scheduler, the shared escalation actors and their knobs.

What is checked: the scheduler plays actions in time order with ties in planning order,
clamps the past to now and drops what falls after its end; every knob record refuses a bad
value naming the field; the garbage collector is left alone unless ``gc="pause"`` is asked
for; the audit programme plays its escalations with the same actors and the knobs of its
:class:`ProgrammeBehaviour` (a silent holder never responds there either); the streamed
tally equals a recount of the kept paths; the same seed gives the same totals whatever the
number of worker processes.
"""

from __future__ import annotations

import gc
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qaflow import MemoryStore, ValidationError
from qaflow.calendar import LONDON
from qaflow.clock import ManualClock
from qaflow.machines.escalation import RESOLVED
from qaflow.policies import bexley, shipped_escalation_procedures
from qaflow.programme import generate_council, run_programme
from qaflow.sim import (
    Behaviour,
    EscalationSimulation,
    ProgrammeBehaviour,
    Scheduler,
    StageBehaviour,
    percentile,
    simulate_escalations,
)

FIRO, IRO = bexley.FIRO_LADDER, bexley.IRO_LADDER
T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)

#: Holders never respond, nobody asks for time, and the raiser always goes up a stage.
SILENT = StageBehaviour(
    respond_probability=0.0,
    extension_probability=0.0,
    bypass_probability=0.0,
    withdraw_probability=0.0,
)


# --- the scheduler --------------------------------------------------------------------------


def test_scheduler_plays_in_time_order_ties_in_planning_order_and_drops_after_its_end() -> None:
    clock = ManualClock(T0)
    scheduler = Scheduler(clock, until=T0 + timedelta(hours=5))
    played: list[tuple[str, datetime]] = []

    def note(name: str) -> None:
        played.append((name, clock.now()))
        if name == "b":
            scheduler.at(T0 - timedelta(days=1), note, "past")  # runs now, after the ties
            scheduler.at(T0 + timedelta(hours=5), note, "too late")

    scheduler.at(T0 + timedelta(hours=2), note, "c")
    scheduler.at(T0 + timedelta(hours=1), note, "a")
    scheduler.at(T0 + timedelta(hours=1), note, "b")
    scheduler.at(T0 + timedelta(hours=1), note, "a2")
    ticks: list[datetime] = []
    scheduler.run(ticks.append)
    hour = timedelta(hours=1)
    assert played == [
        ("a", T0 + hour),
        ("b", T0 + hour),
        ("a2", T0 + hour),
        ("past", T0 + hour),
        ("c", T0 + 2 * hour),
    ]
    assert ticks == [T0 + hour] * 4 + [T0 + 2 * hour]
    assert len(scheduler) == 0


# --- knobs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ask_at": "9:00"}, "ask_at"),
        ({"reply_at": "24:00"}, "reply_at"),
        ({"decide_at": 11}, "decide_at"),
        ({"answer_after_minutes": 0}, "answer_after_minutes"),
        ({"raise_window_minutes": True}, "raise_window_minutes"),
        ({"raisers": 0}, "raisers"),
        ({"default": "quick"}, "default"),
        ({"stages": {1: "quick"}}, "stages[1]"),
    ],
)
def test_behaviour_knobs_are_checked(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Behaviour(**kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"feedback_rate": 1.5}, "feedback_rate"),
        ({"regrade_kept": -0.1}, "regrade_kept"),
        ({"moderator_actions_done": float("nan")}, "moderator_actions_done"),
        ({"practice_week_rate": "often"}, "practice_week_rate"),
        ({"grades": {"GOOD": 1.0}}, "grades"),
        ({"grades": [1, 2]}, "grades"),
        ({"escalation": StageBehaviour()}, "escalation"),
        ({"meeting_days": (5, 2)}, "meeting_days"),
        ({"slow_follow_up_days": (1, 2, 3)}, "slow_follow_up_days"),
        ({"follow_up_days": [1, 2]}, "follow_up_days"),
    ],
)
def test_programme_knobs_are_checked(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ProgrammeBehaviour(**kwargs)
    assert info.value.field == field


def test_a_programme_knob_given_as_an_argument_is_checked_by_the_record() -> None:
    store = MemoryStore()
    with pytest.raises(ValidationError) as info:
        run_programme(
            generate_council(1), months=1, start=date(2026, 1, 1), seed=1, store=store,
            moderation_agreement=2.0,
        )  # fmt: skip
    assert info.value.field == "moderation_agreement"
    assert store.counts()["events"] == 0


def test_the_times_people_act_at_are_knobs() -> None:
    """Raises come at ``raise_from`` (a one-minute window); FIRO's informal stage has no
    deadline, so a silent holder's raiser moves on at ``decide_at`` after ``wait_days``."""
    late = Behaviour(SILENT, decide_at="16:30", raise_from="12:00", raise_window_minutes=1)
    store = MemoryStore()
    sim = simulate_escalations(FIRO, bexley.POLICY, n=5, seed=3, behaviour=late, store=store)
    assert {p.raised_at.astimezone(LONDON).time() for p in sim.paths} == {time(12, 0)}
    for path in sim.paths:
        escalate = next(e for e in store.events(path.workflow_id) if e.trigger == "escalate")
        assert escalate.at.astimezone(LONDON).time() == time(16, 30)


# --- the collector ---------------------------------------------------------------------------


def test_the_collector_is_left_alone_unless_paused_is_asked_for() -> None:
    seen: list[bool] = []

    def progress(done: int, total: int) -> None:
        seen.append(gc.isenabled())

    assert gc.isenabled()
    simulate_escalations(IRO, n=20, seed=1, progress=progress)
    assert seen and all(seen)
    seen.clear()
    simulate_escalations(IRO, n=20, seed=1, progress=progress, gc="pause")
    assert seen and not any(seen)
    assert gc.isenabled()  # restored
    with pytest.raises(ValidationError) as info:
        simulate_escalations(IRO, n=20, gc="off")  # type: ignore[arg-type]
    assert info.value.field == "gc"


# --- the programme plays escalations with the same actors -----------------------------------


def test_the_programme_escalations_follow_its_behaviour_knobs() -> None:
    council = generate_council(11)
    knobs = ProgrammeBehaviour(escalation_rate=0.3, escalation=Behaviour(SILENT))
    store = MemoryStore()
    result = run_programme(
        council, months=2, start=date(2026, 1, 1), seed=2, store=store, behaviour=knobs
    )
    escalations = [s for s in store.snapshots() if s.machine.startswith("escalation.")]
    assert escalations and result.escalations_raised == len(escalations)
    triggers = Counter(e.trigger for s in escalations for e in store.events(s.workflow_id))
    assert triggers["respond"] == 0 and triggers["request_extension"] == 0
    assert triggers["withdraw"] == 0 and triggers["bypass"] == 0
    assert triggers["response_overdue"] > 0 and triggers["escalate"] > 0


def test_the_programme_escalates_on_the_ladders_it_is_given() -> None:
    shipped = shipped_escalation_procedures()[0]
    only_firo = attrs.evolve(
        shipped, ladders=tuple(lad for lad in shipped.ladders if lad.kind == "firo")
    )
    store = MemoryStore()
    run_programme(
        generate_council(11), months=1, start=date(2026, 1, 1), seed=4, store=store,
        escalation_rate=0.5, escalations=only_firo,
    )  # fmt: skip
    machines = {s.machine for s in store.snapshots() if s.machine.startswith("escalation.")}
    assert machines == {"escalation.bexley_firo"}
    with pytest.raises(ValidationError) as info:
        run_programme(
            generate_council(11), months=1, start=date(2026, 1, 1), seed=4,
            escalations="firo",  # type: ignore[arg-type]
        )  # fmt: skip
    assert info.value.field == "escalations"


# --- streaming and workers ------------------------------------------------------------------


def _recount(sim: EscalationSimulation) -> dict[str, Any]:
    """The summary's path-level figures counted from the kept paths, unstreamed."""
    paths = sim.paths
    days = sorted(p.working_days for p in paths)
    resolved = sorted(p.working_days for p in paths if p.state == RESOLVED)
    return {
        "paths": len(paths),
        "outcomes": Counter(p.state for p in paths),
        "ended": Counter((p.stage, p.state) for p in paths),
        "p": [percentile(days, q) for q in (50, 90, 95)] + [days[-1]],
        "mean": round(sum(days) / len(days), 3),
        "resolved_p": [percentile(resolved, q) for q in (50, 90, 95)] if resolved else None,
        "breaches": sum(p.breaches for p in paths),
        "paths_breached": sum(1 for p in paths if p.breaches),
        "commands": sum(p.commands for p in paths),
        "bypasses": sum(p.bypasses for p in paths),
        "asked": sum(p.extensions_requested for p in paths),
        "granted": sum(p.extensions_granted for p in paths),
    }


def _figures(sim: EscalationSimulation) -> dict[str, Any]:
    s = sim.summary
    wd, res = s.working_days, s.working_days_to_resolution
    return {
        "paths": s.paths,
        "outcomes": Counter({k: v for k, v in s.outcomes.items() if v}),
        "ended": Counter({(st, o): c for st, at in s.ended_at.items() for o, c in at.items()}),
        "p": [wd.p50, wd.p90, wd.p95, wd.max],
        "mean": wd.mean,
        "resolved_p": None if res is None else [res.p50, res.p90, res.p95],
        "breaches": s.breaches,
        "paths_breached": s.paths_breached,
        "commands": s.commands,
        "bypasses": s.bypasses,
        "asked": s.extensions_requested,
        "granted": s.extensions_granted,
    }


def test_the_streamed_tally_equals_the_unstreamed_count_and_paths_can_be_left_out() -> None:
    sim = simulate_escalations(IRO, bexley.POLICY, n=300, seed=5, chunk=70)
    assert _figures(sim) == _recount(sim)
    lean = simulate_escalations(IRO, bexley.POLICY, n=300, seed=5, chunk=70, keep_paths=False)
    assert lean.paths == () and lean.summary == sim.summary


@pytest.mark.slow
def test_same_seed_same_totals_whatever_the_number_of_workers() -> None:
    runs = [
        simulate_escalations(FIRO, bexley.POLICY, n=240, seed=9, chunk=40, workers=w)
        for w in (1, 2, 3)
    ]
    assert runs[0].summary == runs[1].summary == runs[2].summary
    assert runs[0].paths == runs[1].paths == runs[2].paths
    with pytest.raises(ValidationError) as info:
        simulate_escalations(FIRO, n=10, workers=2, store=MemoryStore())
    assert info.value.field == "workers"


@settings(max_examples=15, deadline=None)
@given(
    respond=st.floats(0, 1),
    accept=st.floats(0, 1),
    extension=st.floats(0, 1),
    grant=st.floats(0, 1),
    withdraw=st.floats(0, 0.5),
    bypass=st.floats(0, 0.5),
    decision=st.integers(0, 5),
    seed=st.integers(0, 2**16),
)
def test_any_knobs_end_every_path_and_the_tally_matches_the_paths(
    respond: float,
    accept: float,
    extension: float,
    grant: float,
    withdraw: float,
    bypass: float,
    decision: int,
    seed: int,
) -> None:
    knobs = StageBehaviour(
        respond_probability=respond,
        accept_probability=accept,
        extension_probability=extension,
        grant_probability=grant,
        withdraw_probability=withdraw,
        bypass_probability=bypass,
        decision_days=decision,
    )
    store = MemoryStore()
    sim = simulate_escalations(
        FIRO, bexley.POLICY, n=12, seed=seed, behaviour=knobs, store=store, chunk=5
    )
    assert _figures(sim) == _recount(sim)
    assert sim.summary.commands == store.counts()["events"]
    assert not store.open_deadlines()
    triggers = {e.trigger for w in store.workflow_ids() for e in store.events(w)}
    if respond == 0:
        assert "respond" not in triggers
    if extension == 0:
        assert "request_extension" not in triggers


def test_the_cli_takes_workers_and_prints_the_same_result() -> None:
    from click.testing import CliRunner

    from qaflow.cli import main

    def run(*extra: str) -> str:
        args = ["simulate", "escalations", "--ladder", "iro", "-n", "30", "--json", *extra]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        return result.output

    assert run("--workers", "2") == run("--workers", "1") == run()
    assert CliRunner().invoke(main, ["simulate", "escalations", "--workers", "0"]).exit_code == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"status_weights": (("cin", 1.0), ("cpp", 1.0))}, "status_weights"),
        ({"status_weights": (("cin", -1.0),)}, "status_weights"),
        ({"status_weights": (("cin", 0.0),)}, "status_weights"),
        ({"status_weights": "cin"}, "status_weights"),
        ({"moderator_roles": "psqa"}, "moderator_roles"),
        ({"moderator_roles": ("psqa", "")}, "moderator_roles"),
    ],
)
def test_council_knobs_are_checked(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        generate_council(1, **kwargs)
    assert info.value.field == field


def test_council_knobs_shape_the_council() -> None:
    council = generate_council(2, status_weights=(("cla", 1.0),), moderator_roles=("iro",))
    assert {c.status for c in council.cases} == {"cla"}
    assert set(council.directory.holders("moderator")) == set(council.iros)


def test_a_paused_run_leaves_no_garbage_cycles_behind() -> None:
    """With the collector paused, what a chunk held must go by reference counting alone:
    a cycle would keep every chunk's store alive (memory would grow with the paths)."""
    gc.collect()
    gc.disable()
    try:
        simulate_escalations(IRO, n=60, seed=2, chunk=20, keep_paths=False)
        assert gc.isenabled() is False  # gc="keep": left as the caller set it
        assert gc.collect() < 50
    finally:
        gc.enable()


def test_BX_AUD_09_the_follow_up_pace_is_a_knob() -> None:
    """Slow auditors miss the 5 WD follow-up with the default pace, not with a quick one."""

    def misses(pace: tuple[int, int]) -> int:
        store = MemoryStore()
        knobs = ProgrammeBehaviour(slow_auditor_share=1.0, slow_follow_up_days=pace)
        run_programme(
            generate_council(11), months=2, start=date(2026, 1, 1), seed=3, store=store,
            behaviour=knobs,
        )  # fmt: skip
        return sum(
            1
            for s in store.snapshots("audit")
            for e in store.events(s.workflow_id)
            if e.trigger == "deadline_missed" and e.payload["deadline"] == "follow_up"
        )

    assert misses((1, 1)) == 0
    assert misses((8, 9)) > 0
