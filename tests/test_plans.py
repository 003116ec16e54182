"""Compiled command plans (issue 14, c14): the same decision as the general interpreter.

A live command runs through its (spec, state, trigger) plan: routes with guards resolved to
direct callables and effects compiled into a flat tuple of steps (:mod:`qaflow._plans`,
:mod:`qaflow._program`). ``tests/reference_compute.py`` keeps the general interpreter (a
fresh context per guard, the effect dispatch table, :func:`qaflow._effects.collect`) as the
reference. Here every engine command of each test is checked against it (the engine's
``live_step`` swapped for :func:`checked_live_step`, which runs both and asserts the same
step or the same refusal, type and message), on every shipped machine through its
conformance suite, on Hypothesis-drawn escalation ladders, lean and full, and on the
simulation.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qaflow
import qaflow._command
from qaflow import Actor, Engine, ManualClock, MemoryStore
from qaflow._plans import plan_of
from qaflow._program import CALL, CLOSE_STATE, OPEN, UPDATE, compile_program
from qaflow.errors import QAFlowError
from qaflow.machines import qa_calendar, supervision, timescales
from qaflow.machines.escalation import escalation_machine, level_of
from qaflow.policies import (
    SHIPPED_AUDIT_FILES,
    shipped_audit_procedure,
    shipped_escalation_procedures,
)
from qaflow.policies.ladders import EscalationLadder
from qaflow.records import SYSTEM
from qaflow.simulate import simulate_escalations
from qaflow.spec import Guard, Notify, Update
from qaflow.store import SimulationStore
from qaflow.testing import (
    CONFORMANCE_POLICY,
    check_audit_procedure,
    check_ladder,
    check_timescales,
    clocks,
    command_sequences,
    ladders,
    run_commands,
)
from qaflow.testing._ladder_draw import LadderCommand
from reference_compute import checked_live_step, reference_live_step
from review_machine import review_spec

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
WORKER = Actor("P-001", "worker")
MANAGER = Actor("M-001", "manager")
SHIPPED = [
    (procedure.policy, ladder)
    for procedure in shipped_escalation_procedures()
    for ladder in procedure.ladders
]
TIMESCALE_SPECS = (
    *timescales.shipped_specs(),
    *supervision.shipped_specs(),
    *qa_calendar.shipped_specs(),
)

TIMESCALE_IDS = [f"{s.name}[{s.policy}]" for s in TIMESCALE_SPECS]


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every engine command in the test also decided by the reference; the triggers seen."""
    seen: list[str] = []

    def both(*args: Any, **kwargs: Any) -> Any:
        seen.append(args[2])
        return checked_live_step(*args, **kwargs)

    monkeypatch.setattr(qaflow._command, "_live_step", both)
    yield seen


# --- every shipped machine, through its conformance suite ---------------------------------


@pytest.mark.parametrize(("policy", "ladder"), SHIPPED, ids=[lad.name for _, lad in SHIPPED])
def test_every_shipped_ladder_decides_as_the_general_interpreter(
    checked: list[str], policy: Any, ladder: Any
) -> None:
    # A few short random runs; more only until they have raised and used several triggers
    # (four runs of twenty steps sometimes draw too few distinct commands to mean much).
    for _ in range(6):
        check_ladder(ladder, policy, max_examples=4, stateful_step_count=20)
        if "raise" in checked and len(set(checked)) > 3:
            break
    assert "raise" in checked and len(set(checked)) > 3


@pytest.mark.parametrize(
    "spec", TIMESCALE_SPECS, ids=[f"{s.name}[{s.policy}]" for s in TIMESCALE_SPECS]
)
def test_every_timescale_machine_decides_as_the_general_interpreter(
    checked: list[str], spec: Any
) -> None:
    check_timescales(spec, max_examples=4, stateful_step_count=15)
    assert checked


@pytest.mark.parametrize("name", sorted(SHIPPED_AUDIT_FILES))
def test_every_audit_procedure_decides_as_the_general_interpreter(
    checked: list[str], name: str
) -> None:
    check_audit_procedure(shipped_audit_procedure(name), max_examples=3, stateful_step_count=20)
    assert checked


def test_the_review_machine_with_deadlines_decides_as_the_general_interpreter(
    checked: list[str],
) -> None:
    clock = ManualClock(T0)
    engine = Engine(MemoryStore(), [review_spec()], clock=clock)
    engine.start("example.review", "W-1", "submit", WORKER, {"document_ref": "DOC-1"})
    mix: list[tuple[str, Actor, dict[str, Any]]] = [
        ("comment", WORKER, {"text": "uploaded"}),
        ("comment", MANAGER, {}),  # refused: the text is required
        ("approve", WORKER, {"score": 8}),  # refused: role
        ("approve", MANAGER, {"score": 2}),  # refused: guard
        ("send_back", MANAGER, {"reason": "section 3"}),
        ("submit", WORKER, {"document_ref": "DOC-2"}),
        ("nonsense", WORKER, {}),  # refused: not a trigger
    ]
    refused = 0
    for _ in range(3):
        for trigger, actor, payload in mix:
            clock.advance(timedelta(hours=5))
            try:
                engine.fire("W-1", trigger, actor, payload)
            except QAFlowError:
                refused += 1
        engine.tick(clock.advance(timedelta(days=8)))  # the review deadline breaches
    assert refused >= 12 and engine.get("W-1").version > 10 and engine.verify("W-1") == 1


# --- generated ladders, lean and full -------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(ladders(), clocks(), st.data(), st.booleans())
def test_generated_ladders_decide_as_the_general_interpreter(
    ladder: Any, clock: ManualClock, data: st.DataObject, lean: bool
) -> None:
    spec = escalation_machine(ladder, CONFORMANCE_POLICY)
    store = SimulationStore() if lean else MemoryStore()
    engine = Engine(store, [spec], clock=clock, simulation=lean)
    commands = data.draw(command_sequences(ladder, max_size=12))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(qaflow._command, "_live_step", checked_live_step)
        if lean:  # run_commands reads history: drive the lean engine command by command
            started = False
            for cmd in commands:
                if cmd.wait:
                    engine.tick(clock.advance(cmd.wait))
                by = _actor(ladder, engine, cmd)
                try:
                    if started:
                        engine.fire("W-1", cmd.trigger, by, cmd.payload)
                    else:
                        engine.start(spec, "W-1", cmd.trigger, by, cmd.payload)
                        started = True
                except QAFlowError:
                    pass
        else:
            run_commands(engine, ladder, "W-1", commands, clock=clock)


def _actor(ladder: EscalationLadder, engine: Engine, cmd: LadderCommand) -> Actor:
    """Who ``cmd`` is fired as, as :func:`qaflow.testing.run_commands` picks them."""
    try:
        snapshot = engine.get("W-1")
        data: dict[str, Any] = snapshot.data
        level = level_of(ladder, snapshot.state)
    except QAFlowError:
        data, level = {}, None
    if cmd.who == "system":
        return SYSTEM
    raisers = ladder.raisers
    if cmd.who == "raiser":
        role = data.get("raiser_role", raisers[cmd.pick % len(raisers)])
        return Actor(str(data.get("raiser_id", f"R-{cmd.pick % 3}")), str(role))
    if cmd.who == "other_raiser":
        return Actor("R-OTHER", raisers[cmd.pick % len(raisers)])
    roles = (ladder.holders(level) if cmd.who == "holder" and level is not None else None) or (
        ladder.all_roles
    )
    role = roles[cmd.pick % len(roles)]
    person = data.get(f"{role}_id")
    return Actor(person if isinstance(person, str) else f"P-{role}", role)


def test_the_simulation_decides_as_the_general_interpreter(checked: list[str]) -> None:
    policy, ladder = SHIPPED[0]
    lean = simulate_escalations(ladder, policy, n=60, seed=3)
    full = simulate_escalations(ladder, policy, n=60, seed=3, lean=False)
    assert lean == full and len(checked) > 200


# --- the checker can fail, and the compiled tables are what they claim ----------------------


def test_the_checker_catches_a_compiled_program_that_writes_otherwise() -> None:
    """A route whose compiled effects drop a step is caught (the check is not vacuous)."""
    spec = review_spec()
    clock = ManualClock(T0)
    engine = Engine(MemoryStore(), [spec], clock=clock)
    engine.start(spec, "W-1", "submit", WORKER, {"document_ref": "DOC-1"})
    snapshot = engine.get("W-1")
    plan = plan_of(spec, "submitted", "send_back")
    assert plan is not None and plan.single is not None
    route = plan.single
    saved = route.full
    assert [op[0] for op in saved] == [CLOSE_STATE, CALL]  # leave 'submitted', add a task
    route.full = saved[:1]  # the task dropped
    try:
        args = (spec, snapshot, "send_back", MANAGER, T0 + timedelta(hours=1))
        with pytest.raises(AssertionError):
            checked_live_step(*args, {"reason": "missing page"})
        reference_live_step(*args, {"reason": "missing page"})  # the reference still runs
    finally:
        route.full = saved


def test_vocabulary_guards_and_updates_compile_to_their_functions() -> None:
    policy, ladder = SHIPPED[0]
    spec = escalation_machine(ladder, policy)
    plan = plan_of(spec, "new", "raise")
    assert plan is not None and plan.single is None and len(plan.routes) > 1
    route = plan.routes[0]
    for fn, arg, guard in route.guards:
        assert guard.use is not None and fn.__name__ != "<lambda>" and arg == dict(guard.args)
    ops = [op for op in route.full if op[0] == UPDATE]
    assert ops and all(fn.__name__ != "<lambda>" for _, fn, _ in ops)
    # Without rows a notice or a task writes nothing: the lean program has none.
    assert any(op[0] == CALL for op in route.full)
    assert not any(op[0] == CALL for op in route.lean)
    assert [op[::2] for op in route.full if op[0] != CALL] == [op[::2] for op in route.lean]
    assert any(op[0] == OPEN for op in route.lean)


def test_closure_guards_and_updates_still_run_through_their_callables() -> None:
    spec = review_spec()
    comment = next(t for t in spec.transitions if t.trigger == "comment")
    assert compile_program(spec, comment, "submitted", rows=False) == tuple(
        op for op in compile_program(spec, comment, "submitted", rows=True) if op[0] != CALL
    )
    guard = Guard("always", fn=lambda ctx: True)
    fn, arg = guard.parts()
    assert fn(None, arg) is True  # type: ignore[arg-type]
    expr = Guard("big", expr="payload.score > 5")
    assert expr.parts()[0] is not None
    bare = attrs.evolve(comment, effects=(), dest=None)
    assert compile_program(spec, bare, "submitted", rows=True) == ()
    noted = attrs.evolve(comment, effects=(Notify(("manager",), "said"), Update(lambda c: {})))
    kinds = [op[0] for op in compile_program(spec, noted, "submitted", rows=False)]
    assert kinds == [UPDATE]


@pytest.mark.parametrize("name", ["_plans.py", "_program.py"])
def test_the_plan_modules_are_pure_and_small(name: str) -> None:
    """Like the interpreter: no store, no clock; under 600 lines, each class under 300."""
    text = (Path(qaflow.__file__).parent / name).read_text(encoding="utf-8")
    tree = ast.parse(text)
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {m for m in imported if m.startswith(("qaflow.store", "qaflow.clock"))}
    assert len(text.splitlines()) <= 600
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno is not None and node.end_lineno - node.lineno < 300
