"""The simulation store and the engine's simulation mode (issue 14): what they skip, and
that skipping it changes nothing a simulation reads.

``simulate_escalations`` plays in a :class:`SimulationStore` on an engine with
``simulation=True`` by default; these tests prove that its result equals the fully recorded
one (``lean=False``: a MemoryStore, hash chain, outbox and tasks) for every shipped ladder
and for generated ones, that the lean engine makes the same decisions as the full one
command by command (the same refusals, states, data and deadlines), and that what the store
does not keep is refused by name rather than answered from an empty log.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qaflow import (
    SYSTEM,
    Actor,
    ConcurrencyError,
    Engine,
    ManualClock,
    MemoryStore,
    PermissionDenied,
    QAFlowError,
    Step,
    ValidationError,
)
from qaflow.machines.escalation import escalation_machine, level_of, machine_name
from qaflow.policies import shipped_escalation_procedures
from qaflow.policies.base import Policy
from qaflow.policies.ladders import EscalationLadder
from qaflow.simulate import Behaviour, StageBehaviour, simulate_escalations
from qaflow.store import SimulationStore
from qaflow.testing import CONFORMANCE_POLICY, clocks, command_sequences, ladders
from qaflow.testing._ladder_draw import LadderCommand

SHIPPED = [
    (procedure.policy, ladder)
    for procedure in shipped_escalation_procedures()
    for ladder in procedure.ladders
]

#: Every move a path can make: responses, acceptances, extensions asked, granted and
#: refused, breaches, bypasses (with consultation), withdrawals, escalations, referrals.
BUSY = StageBehaviour(
    extension_probability=0.5,
    grant_probability=0.6,
    bypass_probability=0.15,
    withdraw_probability=0.1,
)


@pytest.mark.parametrize(("policy", "ladder"), SHIPPED, ids=[ladder.name for _, ladder in SHIPPED])
@pytest.mark.parametrize("behaviour", [None, BUSY], ids=["default", "busy"])
def test_lean_simulation_equals_the_fully_recorded_one_for_every_shipped_ladder(
    policy: Policy, ladder: EscalationLadder, behaviour: StageBehaviour | None
) -> None:
    lean = simulate_escalations(ladder, policy, n=400, seed=5, behaviour=behaviour, chunk=150)
    full = simulate_escalations(
        ladder, policy, n=400, seed=5, behaviour=behaviour, chunk=150, lean=False
    )
    assert lean.summary.commands > 400 and lean.summary.breaches > 0
    assert lean == full  # summary and every path
    assert lean.to_json() == full.to_json()


@settings(max_examples=15, deadline=None)
@given(ladders(), st.integers(0, 2**32))
def test_lean_simulation_equals_the_fully_recorded_one_for_generated_ladders(
    ladder: EscalationLadder, seed: int
) -> None:
    behaviour = Behaviour(StageBehaviour(bypass_probability=0.2, withdraw_probability=0.1))
    policy = Policy(CONFORMANCE_POLICY.name, CONFORMANCE_POLICY.version)
    lean = simulate_escalations(ladder, policy, n=8, seed=seed, behaviour=behaviour)
    full = simulate_escalations(ladder, policy, n=8, seed=seed, behaviour=behaviour, lean=False)
    assert lean == full


def _actor(ladder: EscalationLadder, engine: Engine, wid: str, cmd: LadderCommand) -> Actor:
    """Who ``cmd`` is fired as (as :func:`qaflow.testing.run_commands` picks them)."""
    try:
        data: dict[str, Any] = engine.get(wid).data
        level = level_of(ladder, engine.get(wid).state)
    except QAFlowError:
        data, level = {}, None
    if cmd.who == "system":
        return SYSTEM
    if cmd.who == "raiser":
        role = data.get("raiser_role", ladder.raisers[cmd.pick % len(ladder.raisers)])
        return Actor(str(data.get("raiser_id", f"R-{cmd.pick % 3}")), str(role))
    if cmd.who == "other_raiser":
        return Actor("R-OTHER", ladder.raisers[cmd.pick % len(ladder.raisers)])
    roles = ladder.holders(level) if cmd.who == "holder" and level is not None else None
    role = (roles or ladder.all_roles)[cmd.pick % len(roles or ladder.all_roles)]
    person = data.get(f"{role}_id")
    return Actor(person if isinstance(person, str) else f"P-{role}", role)


def _apply(
    ladder: EscalationLadder, engine: Engine, cmd: LadderCommand, started: bool
) -> Step | str:
    actor = _actor(ladder, engine, "W-1", cmd)
    try:
        if not started:
            return engine.start(machine_name(ladder), "W-1", cmd.trigger, actor, cmd.payload)
        return engine.fire("W-1", cmd.trigger, actor, cmd.payload)
    except QAFlowError as error:
        return f"{type(error).__name__}: {error}"


def _same_step(lean: Step, full: Step) -> None:
    """Everything but the hash chain and the outbox and task rows is the same."""
    assert (lean.event.hash, lean.event.prev_hash, lean.snapshot.last_hash) == ("", "", "")
    assert full.event.hash and full.snapshot.last_hash == full.event.hash
    assert attrs.evolve(lean.event, hash=full.event.hash, prev_hash=full.event.prev_hash) == (
        full.event
    )
    assert attrs.evolve(lean.snapshot, last_hash=full.snapshot.last_hash) == full.snapshot
    assert lean.snapshot.data == full.snapshot.data
    assert (lean.opened, lean.closed, lean.breached) == (full.opened, full.closed, full.breached)
    assert lean.notifications == () and lean.tasks == ()


@settings(max_examples=40, deadline=None)
@given(st.data(), st.sampled_from([ladder for _, ladder in SHIPPED]), clocks())
def test_the_lean_engine_decides_every_command_as_the_full_engine(
    data: st.DataObject, ladder: EscalationLadder, clock: ManualClock
) -> None:
    """Same refusals (roles, guards, payloads), states, data and deadlines, tick included."""
    policy = next(p for p, lad in SHIPPED if lad is ladder)
    spec = escalation_machine(ladder, policy)
    commands = data.draw(command_sequences(ladder, max_size=15))
    lean = Engine(SimulationStore(), [spec], clock=clock, simulation=True)
    full = Engine(MemoryStore(), [spec], clock=clock)
    started = False
    for cmd in commands:
        if cmd.wait:
            now = clock.advance(cmd.wait)
            ticked = lean.tick(now), full.tick(now)
            assert len(ticked[0]) == len(ticked[1])
            for a, b in zip(*ticked, strict=True):
                _same_step(a, b)
        results = _apply(ladder, lean, cmd, started), _apply(ladder, full, cmd, started)
        if isinstance(results[0], str) or isinstance(results[1], str):
            assert results[0] == results[1]  # refused alike, with the same message
        else:
            _same_step(results[0], results[1])
            started = True
    if started:
        assert lean.store.open_deadlines() == full.store.open_deadlines()


# --- the option is explicit, and the store says what it does not keep ------------------------


def _lean_engine() -> tuple[Engine, ManualClock]:
    procedure = shipped_escalation_procedures()[0]
    ladder = procedure.ladders[0]
    clock = ManualClock(datetime(2026, 1, 5, 10, tzinfo=UTC))
    spec = escalation_machine(ladder, procedure.policy)
    engine = Engine(SimulationStore(), [spec], clock=clock, simulation=True)
    raiser = Actor("R-1", ladder.raiser)
    engine.start(spec, "W-1", "raise", raiser, {"subject_id": "S-1", "reason": ladder.reasons[0]})
    return engine, clock


def test_simulation_mode_only_with_a_simulation_store() -> None:
    with pytest.raises(ValidationError, match="SimulationStore when simulation=True"):
        Engine(MemoryStore(), simulation=True)
    with pytest.raises(ValidationError, match="'simulation' must be True or False"):
        Engine(SimulationStore(), simulation="yes")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="'lean' must be True or False"):
        simulate_escalations(SHIPPED[0][1], n=1, lean=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("read", "what"),
    [
        (lambda e: e.verify(), "the event log"),
        (lambda e: e.history("W-1"), "the event log"),
        (lambda e: e.replay("W-1"), "the event log"),
        (lambda e: e.store.events("W-1"), "the event log"),
        (lambda e: e.store.anchor_tip(), "the anchor"),
        (lambda e: list(e.store.anchor()), "the anchor"),
        (lambda e: e.store.deadlines(), "closed and breached deadline rows"),
        (lambda e: e.store.notifications(), "notification"),
        (lambda e: e.store.pending_notifications(), "notification"),
        (lambda e: e.store.mark_sent(["x"], e.clock.now()), "notification"),
        (lambda e: e.store.tasks(), "task rows"),
        (lambda e: e.store.complete_tasks(["x"], e.clock.now()), "task rows"),
        (lambda e: e.store.find_idempotent("W-1", "k"), "events"),
        (
            lambda e: list(e.store.period_workflows(e.clock.now(), e.clock.now())),
            "the event log",
        ),
    ],
)
def test_what_the_simulation_store_does_not_keep_is_refused_by_name(read: Any, what: str) -> None:
    engine, _ = _lean_engine()
    with pytest.raises(ValidationError, match=f"'store' must be a store that keeps {what}"):
        read(engine)


def test_the_simulation_store_keeps_snapshots_and_open_deadlines_and_checks_versions() -> None:
    engine, clock = _lean_engine()
    store = engine.store
    assert isinstance(store, SimulationStore)
    snapshot = engine.get("W-1")
    assert snapshot.version == 1 and snapshot.deadlines
    assert store.open_deadlines("W-1") == sorted(snapshot.deadlines, key=lambda d: d.due_at)
    assert store.counts() == {"workflows": 1, "open_deadlines": len(snapshot.deadlines)}
    with pytest.raises(PermissionDenied):  # role checks stay
        engine.fire("W-1", "accept", Actor("X-1", "nobody"))
    assert engine.get("W-1") == snapshot
    # tick fires the due deadline; the breached row is forgotten, the snapshot moves on
    breaches = engine.tick(clock.advance(max(d.due_at for d in snapshot.deadlines) - clock.now()))
    assert breaches and all(s.breached for s in breaches)
    assert store.counts()["open_deadlines"] == len(engine.get("W-1").deadlines)
    assert not set(store._deadlines) - {d.id for d in store.open_deadlines()}
    # commit_many: all or nothing, checked against the batch
    step = breaches[-1]
    with pytest.raises(ConcurrencyError):
        store.commit_many([step])  # stale: that version is already there
    with pytest.raises(ConcurrencyError):
        store.commit(step, expected_version=step.event.seq - 1)
    with pytest.raises(ConcurrencyError, match="idempotency key already used"):
        store.commit(
            attrs.evolve(step, event=attrs.evolve(step.event, seq=step.event.seq + 1)),
            expected_version=step.event.seq,
        )  # the breach's key again
    assert engine.get("W-1") == step.snapshot


def test_a_given_store_is_written_in_full_and_verifies() -> None:
    policy, ladder = SHIPPED[0]
    store = MemoryStore()
    sim = simulate_escalations(ladder, policy, n=20, seed=3, store=store)
    assert Engine(store, [escalation_machine(ladder, policy)]).verify() == 20
    assert sim == simulate_escalations(ladder, policy, n=20, seed=3)


def test_a_batch_on_the_simulation_store_commits_all_or_nothing() -> None:
    engine, _ = _lean_engine()
    before = engine.get("W-1")
    ladder = shipped_escalation_procedures()[0].ladders[0]
    raiser = Actor("R-1", ladder.raiser)
    payload = {"subject_id": "S-2", "reason": ladder.reasons[0]}
    with engine.batch():
        engine.start(machine_name(ladder), "W-2", "raise", raiser, payload)
        engine.start(machine_name(ladder), "W-3", "raise", raiser, payload)
    assert [engine.get(w).version for w in ("W-1", "W-2", "W-3")] == [1, 1, 1]
    other, _ = _lean_engine()  # W-1 again, and a W-4, computed on another store
    fresh = other.start(machine_name(ladder), "W-4", "raise", raiser, payload)
    stale = other.fire("W-1", "withdraw", raiser)  # from version 1, as W-1 is here
    store = engine.store
    assert isinstance(store, SimulationStore)
    store.commit_many([stale])  # W-1 is at version 1 here too: accepted
    with pytest.raises(ConcurrencyError):
        store.commit_many([fresh, stale])  # the second is stale now: neither is written
    with pytest.raises(QAFlowError):
        engine.get("W-4")
    assert engine.get("W-1") == stale.snapshot != before


@pytest.mark.parametrize(("policy", "ladder"), SHIPPED, ids=[ladder.name for _, ladder in SHIPPED])
def test_every_recorded_command_gives_the_same_step_on_the_lean_engine(
    policy: Policy, ladder: EscalationLadder
) -> None:
    """Each command of a fully recorded simulation, fired again on a lean and a full engine
    in step (breaches through ``tick``): the same step but for the hash and the outbox."""
    store = MemoryStore()
    simulate_escalations(ladder, policy, n=40, seed=11, behaviour=BUSY, store=store)
    spec = escalation_machine(ladder, policy)
    compared = breaches = 0
    for wid in store.workflow_ids():
        events = store.events(wid)
        clock = ManualClock(events[0].at)
        lean = Engine(SimulationStore(), [spec], clock=clock, simulation=True)
        full = Engine(MemoryStore(), [spec], clock=clock)
        ticked: list[tuple[Step, Step]] = []
        for event in events:
            clock.set(event.at)
            if event.actor == SYSTEM:
                if not ticked:
                    ticked = list(zip(lean.tick(event.at), full.tick(event.at), strict=True))
                pair = ticked.pop(0)
                breaches += 1
            elif event.seq == 1:
                pair = tuple(  # type: ignore[assignment]
                    e.start(spec, wid, event.trigger, event.actor, event.payload)
                    for e in (lean, full)
                )
            else:
                pair = tuple(  # type: ignore[assignment]
                    e.fire(wid, event.trigger, event.actor, event.payload) for e in (lean, full)
                )
            assert pair[1].event == event  # the full engine wrote the recorded event again
            _same_step(*pair)
            compared += 1
        assert not ticked
    assert compared == store.counts()["events"] and breaches > 0


def _raised(store: MemoryStore) -> tuple[Engine, ManualClock]:
    """``_lean_engine``'s workflow, on ``store`` (lean on a SimulationStore, full otherwise)."""
    procedure = shipped_escalation_procedures()[0]
    ladder = procedure.ladders[0]
    clock = ManualClock(datetime(2026, 1, 5, 10, tzinfo=UTC))
    spec = escalation_machine(ladder, procedure.policy)
    lean = isinstance(store, SimulationStore)
    engine = Engine(store, [spec], clock=clock, simulation=lean)
    raiser = Actor("R-1", ladder.raiser)
    engine.start(spec, "W-1", "raise", raiser, {"subject_id": "S-1", "reason": ladder.reasons[0]})
    return engine, clock


def test_the_simulation_store_loads_and_finds_due_deadlines_as_the_memory_store() -> None:
    """SimulationStore restates load, and both stores walk their heap with one compiled
    ``due_by``: the same answers and the same refusals, for good and bad input."""
    (lean, clock), (full, _) = _raised(SimulationStore()), _raised(MemoryStore())
    stores = (lean.store, full.store)
    assert lean.store.load("W-1").deadlines == full.store.load("W-1").deadlines
    for bad in ("W-2", 5, ["W-1"], None):
        refusals = []
        for store in stores:
            with pytest.raises(QAFlowError) as refused:
                store.load(bad)  # type: ignore[arg-type]
            refusals.append((type(refused.value), str(refused.value)))
        assert refusals[0] == refusals[1]
    due = max(d.due_at for d in lean.get("W-1").deadlines)
    for moment in (clock.now(), due - timedelta(seconds=1), due, due + timedelta(days=400)):
        assert lean.store.due_deadlines(moment) == full.store.due_deadlines(moment)
    assert lean.store.due_deadlines(due)  # the comparison above compared something
    for bad_now in ("2026-01-05", datetime(2026, 1, 5), None):
        messages = []
        for store in stores:
            with pytest.raises(ValidationError) as refused:
                store.due_deadlines(bad_now)  # type: ignore[arg-type]
            messages.append(str(refused.value))
            with pytest.raises(ValidationError) as refused:
                store.fire_due(bad_now, lambda d: None, limit=1)  # type: ignore[arg-type]
            messages.append(str(refused.value))
        assert messages[:2] == messages[2:]
    assert lean.store.fire_due(due, lambda d: None, limit=5) == []  # nothing to breach
    assert lean.store.due_deadlines(due) == full.store.due_deadlines(due)  # still open
