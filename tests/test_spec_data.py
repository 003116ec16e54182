"""Guards and effects as data: CEL expressions, vocabulary references, a content fingerprint."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from qaflow import (
    Actor,
    DeadlineRule,
    Engine,
    Field,
    Guard,
    GuardFailed,
    MachineSpec,
    ManualClock,
    MemoryStore,
    Notify,
    PolicyError,
    StateSpec,
    TransitionSpec,
    UnknownWorkflow,
    Update,
    vocabulary,
)
from qaflow.calendar import Duration
from qaflow.procedure.expr import compile_expression
from qaflow.spec import Context, DurationRef

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
WORKER = Actor("P-1", "worker")
MANAGER = Actor("M-1", "manager")


@vocabulary.guard("test.score_at_least")
def _score_at_least(ctx: Context, args: Mapping[str, Any]) -> bool:
    return int(ctx.payload.get("score", -1)) >= int(args["min"])


@vocabulary.update("test.record")
def _record(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    return {key: ctx.payload[key] for key in args["keys"]}


@vocabulary.duration("test.agreed")
def _agreed(ctx: Context, args: Mapping[str, Any]) -> Duration:
    return Duration.parse(str(ctx.data.get("agreed", args["default"])))


def _spec(minimum: int = 6, *, when: str = 'reason == "risk"') -> MachineSpec:
    return MachineSpec(
        name="example.data",
        policy="example",
        policy_version="1",
        initial="new",
        states=(
            StateSpec("new"),
            StateSpec(
                "open",
                deadlines=(
                    DeadlineRule(
                        "review", DurationRef("test.agreed", {"default": "5 WD"}), clause="EX-1"
                    ),
                ),
            ),
            StateSpec("done", terminal=True),
        ),
        transitions=(
            TransitionSpec(
                "submit",
                ("new",),
                "open",
                frozenset({"worker"}),
                fields=(Field("reason"), Field("agreed", required=False)),
                guards=(Guard("a known reason", "EX-2", expr='reason in ["risk", "drift"]'),),
                effects=(
                    Update(use="test.record", args={"keys": ["reason"]}),
                    Notify(("head",), "told only of risk", "EX-3", when=when),
                    Notify(("manager",), "always told", "EX-3"),
                ),
            ),
            TransitionSpec(
                "approve",
                ("open",),
                "done",
                frozenset({"manager"}),
                fields=(Field("score", "int", min=0, max=10),),
                guards=(
                    Guard(
                        "a score high enough",
                        "EX-4",
                        use="test.score_at_least",
                        args={"min": minimum},
                    ),
                    Guard("a manager", expr='actor.role == "manager"'),
                ),
            ),
        ),
    )


def test_an_expression_guard_returns_a_verdict_and_the_engine_raises() -> None:
    engine = Engine(MemoryStore(), [_spec()], clock=ManualClock(T0))
    with pytest.raises(GuardFailed) as caught:
        engine.start("example.data", "W1", "submit", WORKER, {"reason": "other"})
    assert caught.value.clause == "EX-2"
    with pytest.raises(UnknownWorkflow):  # a refused start writes nothing
        engine.store.load("W1")
    engine.start("example.data", "W1", "submit", WORKER, {"reason": "risk"})
    with pytest.raises(GuardFailed, match="a score high enough"):
        engine.fire("W1", "approve", MANAGER, {"score": 5})
    assert engine.fire("W1", "approve", MANAGER, {"score": 6}).snapshot.state == "done"


def test_a_guard_itself_never_raises_it_answers() -> None:
    guard = Guard("a known reason", "EX-2", expr="payload.missing == 1")
    spec = _spec()
    ctx = Context(spec, None, "submit", "new", "open", WORKER, T0, {}, {}, 1)  # type: ignore[arg-type]
    assert guard.check(ctx) is False  # a failed evaluation is "not met", never an exception


def test_a_conditional_notice_goes_only_when_its_condition_holds() -> None:
    engine = Engine(MemoryStore(), [_spec()], clock=ManualClock(T0))
    engine.start("example.data", "W1", "submit", WORKER, {"reason": "risk"})
    engine.start("example.data", "W2", "submit", WORKER, {"reason": "drift"})
    roles = {
        wid: sorted(n.recipient_role for n in engine.store.notifications(wid))
        for wid in ("W1", "W2")
    }
    assert roles == {"W1": ["head", "manager"], "W2": ["manager"]}


def test_a_duration_reference_is_worked_out_per_command() -> None:
    engine = Engine(MemoryStore(), [_spec()], clock=ManualClock(T0))
    engine.start("example.data", "W1", "submit", WORKER, {"reason": "risk"})
    (deadline,) = engine.store.load("W1").deadlines
    assert deadline.rule == "5 WD"


def test_the_fingerprint_is_stable_and_follows_content() -> None:
    a, b = _spec(), _spec()
    assert a.serialisable and a.fingerprint == b.fingerprint
    assert len(a.fingerprint) == 64  # hex SHA-256
    assert _spec(7).fingerprint != a.fingerprint  # an argument is content
    assert _spec(when='reason == "drift"').fingerprint != a.fingerprint
    text = json.dumps(a.to_data())
    assert "test.score_at_least" in text and 'reason == \\"risk\\"' in text


def test_a_closure_still_works_but_is_not_serialisable() -> None:
    guard = Guard("legacy", lambda c: True, "EX-9")
    assert guard.clause == "EX-9" and guard.fn is not None
    spec = MachineSpec(
        name="example.legacy",
        policy="example",
        policy_version="1",
        initial="a",
        states=(StateSpec("a"), StateSpec("b", terminal=True)),
        transitions=(TransitionSpec("go", ("a",), "b", frozenset({"worker"}), guards=(guard,)),),
    )
    assert spec.serialisable is False


def test_bad_guards_are_refused_when_built() -> None:
    with pytest.raises(PolicyError, match="did you mean 'payload'"):
        Guard("typo", expr="paylod.x == 1")
    with pytest.raises(
        PolicyError, match=r"registered guard name.*did you mean 'test\.score_at_least'"
    ):
        Guard("typo", use="test.score_at_lest")
    with pytest.raises(PolicyError, match="exactly one"):
        Guard("both", expr="true", use="test.score_at_least")
    with pytest.raises(PolicyError, match="exactly one"):
        Guard("neither")


def test_an_expression_error_names_its_key_path() -> None:
    with pytest.raises(PolicyError) as caught:
        compile_expression("a && && b", ["a", "b"], path="stages[1].when", where="f.toml")
    assert caught.value.path == "stages[1].when"
    assert "column 7" in str(caught.value)
    assert str(caught.value).startswith("f.toml: stages[1].when: ")


def test_a_vocabulary_name_cannot_be_taken_twice() -> None:
    with pytest.raises(PolicyError):
        vocabulary.guard("test.score_at_least")(lambda ctx, args: True)
    assert "test.score_at_least" in vocabulary.names("guard")
