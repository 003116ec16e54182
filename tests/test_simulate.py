"""Escalation-path simulation: closed forms, reproducibility, integrity and the summary.

The simulation drives the real engine and machines, so these tests check it against what
can be worked out by hand (deadline arithmetic when nobody responds, a geometric ladder
when every stage accepts with the same probability) and against the store it wrote.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qaflow import Engine, MemoryStore, SQLiteStore, ValidationError
from qaflow.machines.escalation import (
    OVERDUE,
    REFERRED,
    RESOLVED,
    WITHDRAWN,
    escalation_machine,
    level_of,
    state_of,
)
from qaflow.policies import bexley
from qaflow.policies.base import Policy
from qaflow.policies.ladders import EscalationLadder, LadderStage
from qaflow.simulate import (
    SIMULATION_POLICY,
    Behaviour,
    EscalationSimulation,
    StageBehaviour,
    percentile,
    simulate_escalations,
)
from qaflow.testing import CONFORMANCE_POLICY, ladders

CP, IRO, FIRO = bexley.CP_CHAIR_LADDER, bexley.IRO_LADDER, bexley.FIRO_LADDER
POLICY = bexley.POLICY

#: Holders never respond, nobody asks for time, and the raiser always goes up a stage.
SILENT = StageBehaviour(
    respond_probability=0.0,
    extension_probability=0.0,
    bypass_probability=0.0,
    withdraw_probability=0.0,
)


def store_counts(store: MemoryStore, ladder: EscalationLadder) -> dict[str, Any]:
    """What the summary reports, counted directly from the store's workflows and events."""
    outcomes: Counter[str] = Counter()
    ended: Counter[tuple[str, str]] = Counter()
    triggers: Counter[str] = Counter()
    entries = 0
    events = 0
    for snapshot in store.snapshots():
        outcomes[snapshot.state] += 1
        ended[(state_of(ladder, snapshot.data["level"]), snapshot.state)] += 1
        for event in store.events(snapshot.workflow_id):
            events += 1
            triggers[event.trigger] += 1
            entered = event.dest != event.source and event.dest != REFERRED
            if entered and level_of(ladder, event.dest) is not None:
                entries += 1
    return {
        "outcomes": outcomes,
        "ended": ended,
        "triggers": triggers,
        "entries": entries,
        "events": events,
    }


# --- closed forms ---------------------------------------------------------------------------


def test_firo_nobody_responds_so_each_path_takes_exactly_5_5_5_8_working_days() -> None:
    """Raised straight at stage 1; every response deadline passes; the raiser escalates at
    the moment ``tick`` records each breach. The end is the terminal event: at the moment
    the director's 8 WD deadline (stage 4, the last stage, no external referral) is
    breached, the raiser closes the escalation as resolved. So every path ends at the end
    of the 23rd (5+5+5+8) working day after the local date it was raised on."""
    store = MemoryStore()
    sim = simulate_escalations(
        FIRO, POLICY, n=300, seed=3, behaviour=Behaviour(SILENT, raise_at=1), store=store
    )
    calendar = POLICY.calendar
    for path in sim.paths:
        assert (path.state, path.stage, path.level) == (RESOLVED, "stage_4", 4)
        assert path.working_days == 5 + 5 + 5 + 8
        assert path.closed_at == calendar.add_working_days(path.raised_at, 23)
        assert (path.breaches, path.commands, path.bypasses) == (4, 9, 0)
        assert path.extensions_requested == path.extensions_granted == 0
    wid = sim.paths[0].workflow_id
    assert [e.trigger for e in store.events(wid)] == [
        "raise",
        *[OVERDUE, "escalate"] * 3,
        OVERDUE,
        "accept",
    ]
    s = sim.summary
    assert (s.working_days.p50, s.working_days.p95, s.working_days.max) == (23, 23, 23)
    assert s.working_days_to_resolution is not None and s.working_days_to_resolution.p90 == 23
    assert s.breaches == 4 * 300 and s.paths_breached == 300
    assert s.breaches_by_stage == {f"stage_{k}": 300 for k in (1, 2, 3, 4)}
    assert s.ended_at == {"stage_4": {RESOLVED: 300}}


def test_a_per_stage_override_withdraws_at_the_top_at_the_same_moment() -> None:
    top = StageBehaviour(
        respond_probability=0.0,
        extension_probability=0.0,
        bypass_probability=0.0,
        withdraw_probability=1.0,
    )
    sim = simulate_escalations(
        FIRO, POLICY, n=50, seed=4, behaviour=Behaviour(SILENT, {4: top}, raise_at=1)
    )
    assert {(p.state, p.stage, p.working_days) for p in sim.paths} == {(WITHDRAWN, "stage_4", 23)}
    assert sim.summary.working_days_to_resolution is None  # nothing resolved


def test_iro_nobody_responds_so_each_path_is_referred_to_cafcass_after_25_working_days() -> None:
    """Informal 5 WD + four stages of 5 WD, then the IRO refers to Cafcass at the moment the
    director's deadline is breached (the end: the terminal ``refer_externally`` event)."""
    sim = simulate_escalations(IRO, POLICY, n=100, seed=5, behaviour=SILENT)
    assert {(p.state, p.stage, p.level, p.working_days, p.breaches) for p in sim.paths} == {
        (REFERRED, REFERRED, 5, 25, 5)
    }
    assert sim.summary.referrals == 100 and sim.summary.outcomes[REFERRED] == 100


def _within(count: int, n: int, q: float, sds: float = 4.0) -> bool:
    """``count`` is within ``sds`` binomial standard deviations of ``n * q`` (plus 1)."""
    return abs(count - n * q) <= sds * math.sqrt(n * q * (1 - q)) + 1


@pytest.mark.slow
@pytest.mark.parametrize("ladder", [IRO, CP], ids=["iro", "cp_chair"])
def test_fixed_acceptance_gives_a_geometric_ladder(ladder: EscalationLadder) -> None:
    """Holders always respond in time; the raiser accepts with p at every stage, else
    escalates. The share resolved at the k-th stage is (1-p)^(k-1) p; what is left at the
    last stage is referred (IRO, Cafcass) or resolved there (CP chair: no referral)."""
    p, n = 0.3, 2000
    behaviour = StageBehaviour(
        respond_probability=1.0,
        response_days=((2, 1.0),),
        accept_probability=p,
        extension_probability=0.0,
        bypass_probability=0.0,
        withdraw_probability=0.0,
    )
    store = MemoryStore()
    sim = simulate_escalations(ladder, POLICY, n=n, seed=11, behaviour=behaviour, store=store)
    s = sim.summary
    stages = [state_of(ladder, lv) for lv in ladder.levels]
    for k, stage in enumerate(stages, start=1):
        resolved = s.ended_at.get(stage, {}).get(RESOLVED, 0)
        q = (1 - p) ** (k - 1) * p
        if k == len(stages) and ladder.referral is None:
            q = (1 - p) ** (k - 1)  # the top stage resolves whatever reaches it
        assert _within(resolved, n, q), (stage, resolved, n * q)
    if ladder.referral is not None:
        assert _within(s.referrals, n, (1 - p) ** len(stages)), s.referrals
    assert s.breaches == 0 and s.outcomes.get(WITHDRAWN, 0) == 0
    assert sum(s.outcomes.values()) == n


# --- reproducibility, integrity and the summary ---------------------------------------------


def test_same_seed_same_result_and_different_seed_different_result() -> None:
    first = simulate_escalations(IRO, POLICY, n=150, seed=7)
    again = simulate_escalations(IRO, POLICY, n=150, seed=7)
    other = simulate_escalations(IRO, POLICY, n=150, seed=8)
    assert first == again and first.to_json() == again.to_json()
    assert other.paths != first.paths and other.summary != first.summary


@pytest.mark.parametrize("ladder", [CP, IRO, FIRO], ids=["cp_chair", "iro", "firo"])
def test_every_event_verifies_and_the_summary_matches_the_store(ladder: EscalationLadder) -> None:
    store = MemoryStore()
    behaviour = StageBehaviour(bypass_probability=0.15, withdraw_probability=0.1)
    sim = simulate_escalations(ladder, POLICY, n=400, seed=2, behaviour=behaviour, store=store)
    engine = Engine(store, [escalation_machine(ladder, POLICY)])
    assert engine.verify() == 400  # hash chains, replay == snapshot, deadline rows
    counted = store_counts(store, ladder)
    s = sim.summary
    assert s.outcomes == {o: counted["outcomes"][o] for o in s.outcomes}
    assert sum(s.outcomes.values()) == 400
    assert {(stage, o): c for stage, per in s.ended_at.items() for o, c in per.items()} == dict(
        counted["ended"]
    )
    triggers = counted["triggers"]
    assert s.commands == counted["events"] == sum(p.commands for p in sim.paths)
    assert s.breaches == triggers[OVERDUE]
    assert s.extensions_requested == triggers["request_extension"]
    assert s.extensions_granted == triggers["grant_extension"]
    assert s.bypasses == triggers["bypass"]
    assert s.referrals == counted["outcomes"][REFERRED]
    assert sum(sum(per.values()) for per in s.load.values()) == counted["entries"]
    assert not store.open_deadlines()  # every path ended, so every deadline closed
    for path in sim.paths:
        snapshot = store.load(path.workflow_id)
        assert (path.state, path.level) == (snapshot.state, snapshot.data["level"])
        assert path.working_days == snapshot.data["working_days_open"]


def test_extensions_bought_time_and_a_response_arrived_within_it() -> None:
    """Informal IRO stage (5 WD): the holder will answer on day 8, asks for the most the
    ladder allows (5 WD) at 09:00 on day 5, is granted it, answers on day 8 and the IRO
    accepts the next working day (day 9)."""
    behaviour = StageBehaviour(
        respond_probability=1.0,
        response_days=((8, 1.0),),
        accept_probability=1.0,
        extension_probability=1.0,
        grant_probability=1.0,
        bypass_probability=0.0,
        withdraw_probability=0.0,
    )
    store = MemoryStore()
    sim = simulate_escalations(IRO, POLICY, n=40, seed=1, behaviour=behaviour, store=store)
    for path in sim.paths:
        assert (path.state, path.stage, path.breaches, path.working_days) == (
            RESOLVED,
            "informal",
            0,
            9,
        )
        assert path.extensions_requested == path.extensions_granted == 1
        triggers = [e.trigger for e in store.events(path.workflow_id)]
        assert triggers == ["raise", "request_extension", "grant_extension", "respond", "accept"]


def test_refused_extension_leads_to_the_breach() -> None:
    behaviour = StageBehaviour(
        respond_probability=1.0,
        response_days=((8, 1.0),),
        extension_probability=1.0,
        grant_probability=0.0,
        bypass_probability=0.0,
        withdraw_probability=1.0,  # on the breach the raiser withdraws
    )
    sim = simulate_escalations(IRO, POLICY, n=20, seed=1, behaviour=behaviour)
    assert {(p.state, p.breaches, p.working_days) for p in sim.paths} == {(WITHDRAWN, 1, 5)}
    assert sim.summary.extensions_requested == 20 and sim.summary.extensions_granted == 0


def test_any_store_works_and_verifies() -> None:
    store = SQLiteStore(":memory:")
    sim = simulate_escalations(CP, POLICY, n=30, seed=9, store=store)
    assert Engine(store, [escalation_machine(CP, POLICY)]).verify() == 30
    assert sim == simulate_escalations(CP, POLICY, n=30, seed=9)  # same as on MemoryStore
    store.close()


def test_results_survive_json_and_render_as_a_table() -> None:
    sim = simulate_escalations(IRO, n=120, seed=3, start=datetime(2026, 4, 1, tzinfo=UTC))
    assert sim.policy == SIMULATION_POLICY.name
    assert EscalationSimulation.from_json(sim.to_json()) == sim
    assert "paths" not in sim.to_dict(paths=False)
    tuned = Behaviour(stages={2: StageBehaviour(response_days={3: 1})}, raise_at=1)
    other = simulate_escalations(IRO, n=20, seed=3, behaviour=tuned)
    assert EscalationSimulation.from_json(other.to_json()) == other
    text = sim.to_text()
    for stage in ("informal", "stage_1", "stage_4", "referred", "working days to resolution"):
        assert stage in text
    assert all(month >= "2026-04" for per in sim.summary.load.values() for month in per)
    assert all(p.raised_at >= datetime(2026, 4, 1, tzinfo=UTC) for p in sim.paths)


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 21))
    assert [percentile(values, q) for q in (50, 90, 95, 100)] == [10, 18, 19, 20]
    assert percentile([7], 95) == 7
    with pytest.raises(ValidationError):
        percentile([], 50)


# --- arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n": 0}, "n"),
        ({"n": True}, "n"),
        ({"n": "10"}, "n"),
        ({"seed": 1.5}, "seed"),
        ({"start": datetime(2026, 1, 5)}, "start"),
        ({"start": datetime(1980, 1, 5, tzinfo=UTC)}, "start"),
        ({"period_days": 0}, "period_days"),
        ({"behaviour": "fast"}, "behaviour"),
        ({"behaviour": Behaviour(stages={9: StageBehaviour()})}, "stages"),
        ({"id_prefix": ""}, "id_prefix"),
        ({"policy": "bexley"}, "policy"),
    ],
)
def test_arguments_are_checked(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        simulate_escalations(IRO, **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"respond_probability": 1.5}, "respond_probability"),
        ({"accept_probability": -0.1}, "accept_probability"),
        ({"grant_probability": float("nan")}, "grant_probability"),
        ({"response_days": ()}, "response_days"),
        ({"response_days": ((0, 1.0),)}, "response_days"),
        ({"response_days": ((2, 0.0),)}, "response_days"),
        ({"response_days": "5"}, "response_days"),
        ({"decision_days": -1}, "decision_days"),
        ({"bypass_probability": 0.6, "withdraw_probability": 0.5}, "bypass_probability"),
    ],
)
def test_stage_behaviour_is_checked(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        StageBehaviour(**kwargs)
    assert info.value.field == field


def test_raise_at_must_be_a_level_the_ladder_lets_a_raise_reach() -> None:
    plain = EscalationLadder(
        name="plain",
        kind="custom",
        raiser="quality_lead",
        stages=(LadderStage(("team_manager",), "5 WD"), LadderStage(("director",), "5 WD")),
    )
    with pytest.raises(ValidationError) as info:
        simulate_escalations(plain, n=5, behaviour=Behaviour(raise_at=2))
    assert info.value.field == "raise_at"
    always = StageBehaviour(bypass_probability=1.0, withdraw_probability=0.0)
    sim = simulate_escalations(plain, n=20, seed=1, behaviour=always)
    assert sim.summary.bypasses == 0  # no bypass on this ladder: the raiser escalates instead


def test_response_days_accept_a_mapping() -> None:
    assert StageBehaviour(response_days={3: 1, 5: 2}).response_days == ((3, 1.0), (5, 2.0))


# --- any ladder -----------------------------------------------------------------------------


@settings(max_examples=25)
@given(ladders(), st.integers(0, 2**32), st.sampled_from([None, 1]))
def test_every_generated_ladder_simulates_to_the_end_and_verifies(
    ladder: EscalationLadder, seed: int, raise_at: int | None
) -> None:
    allowed = (ladder.first_level, *ladder.bypass_targets(None))
    behaviour = Behaviour(
        StageBehaviour(bypass_probability=0.2, withdraw_probability=0.1, wait_days=3),
        raise_at=raise_at if raise_at in allowed else None,
    )
    store = MemoryStore()
    policy = Policy(CONFORMANCE_POLICY.name, CONFORMANCE_POLICY.version)
    sim = simulate_escalations(ladder, policy, n=6, seed=seed, behaviour=behaviour, store=store)
    assert Engine(store, [escalation_machine(ladder, policy)]).verify() == 6
    assert {p.state for p in sim.paths} <= {RESOLVED, WITHDRAWN, REFERRED}
    assert sim.summary.commands == store.counts()["events"]
    assert not store.open_deadlines()
