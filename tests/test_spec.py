"""Machine specs are validated when built, and the compiled table agrees with `transitions`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from transitions import MachineError

from qaflow import (
    Actor,
    Engine,
    Field,
    MachineSpec,
    MemoryStore,
    PolicyError,
    QAFlowError,
    StateSpec,
    TransitionSpec,
)
from qaflow.spec import DEADLINE_MISSED, DeadlineRule
from qaflow.spec import TransitionSpec as T
from review_machine import review_spec

ANY = frozenset({"anyone"})


def _spec(
    states: tuple[StateSpec, ...], transitions: tuple[TransitionSpec, ...], initial: str = "a"
) -> MachineSpec:
    return MachineSpec("t", "p", "1", initial, states, transitions)


@pytest.mark.parametrize(
    ("states", "transitions", "initial", "message"),
    [
        (
            (StateSpec("a"), StateSpec("z", terminal=True)),
            (T("go", ("a",), "z", ANY),),
            "q",
            "initial state 'q' is not a state",
        ),
        ((StateSpec("a", terminal=True),), (), "a", "initial state 'a' is terminal"),
        ((StateSpec("a"), StateSpec("a")), (), "a", "names a state twice"),
        (
            (StateSpec("a"), StateSpec("z", terminal=True)),
            (T("go", ("a",), "nowhere", ANY),),
            "a",
            "names unknown state(s) 'nowhere'",
        ),
        (
            (StateSpec("a"), StateSpec("z", terminal=True)),
            (T("go", ("a",), "z", ANY), T("back", ("z",), "a", ANY)),
            "a",
            "terminal state 'z' has a way out ('back')",
        ),
        (
            (StateSpec("a"), StateSpec("b"), StateSpec("z", terminal=True)),
            (T("go", ("a",), "z", ANY),),
            "a",
            "state(s) 'b' cannot be reached from 'a'",
        ),
        (
            (StateSpec("a"), StateSpec("b"), StateSpec("z", terminal=True)),
            (T("go", ("a",), "z", ANY), T("loop", ("a",), "b", ANY), T("stay", ("b",), None, ANY)),
            "a",
            "state(s) 'b' can never reach a terminal state",
        ),
        (
            (StateSpec("a"), StateSpec("b")),
            (T("go", ("a",), "b", ANY),),
            "a",
            "has no terminal state",
        ),
        (
            (
                StateSpec("a", deadlines=(DeadlineRule("d", "5 WD", breach_trigger="missing"),)),
                StateSpec("z", terminal=True),
            ),
            (T("go", ("a",), "z", ANY),),
            "a",
            "breach trigger(s) 'missing' have no transition",
        ),
        (
            (StateSpec("a"), StateSpec("z", terminal=True)),
            (T(DEADLINE_MISSED, ("a",), "z", ANY),),
            "a",
            "'deadline_missed' is reserved",
        ),
    ],
)
def test_invalid_specs_are_refused_when_built(
    states: tuple[StateSpec, ...],
    transitions: tuple[TransitionSpec, ...],
    initial: str,
    message: str,
) -> None:
    with pytest.raises(PolicyError) as info:
        _spec(states, transitions, initial)
    assert message in str(info.value)


def test_bad_duration_text_is_refused() -> None:
    with pytest.raises(QAFlowError, match="'duration' must be a number and a unit"):
        DeadlineRule("d", "soon")


def test_allowed_triggers_are_what_the_structure_permits() -> None:
    spec = review_spec()
    assert spec.allowed_triggers("submitted") == (
        "approve",
        "comment",
        "escalate",
        "send_back",
        "withdraw",
    )
    assert spec.allowed_triggers("approved") == ()


ACTORS = [Actor("P-1", "worker"), Actor("M-1", "manager"), Actor("S-1", "service_manager")]
COMMANDS = st.tuples(
    st.sampled_from(["submit", "escalate", "approve", "send_back", "withdraw", "comment", "x"]),
    st.sampled_from(ACTORS),
    st.sampled_from(
        [
            {},
            {"score": 8},
            {"score": 3},
            {"score": 12},
            {"reason": "r"},
            {"text": "t"},
            {"document_ref": "D"},
        ]
    ),
)


@given(st.lists(COMMANDS, max_size=25))
def test_table_and_transitions_machine_accept_the_same_sequences(
    commands: list[tuple[str, Actor, dict[str, Any]]],
) -> None:
    """The engine's compiled table and the `transitions` machine built from the same spec
    accept and reject exactly the same command sequences (the hot path is a faithful copy)."""
    spec = review_spec()
    engine = Engine(MemoryStore(), [spec])
    at = datetime(2025, 6, 2, 9, tzinfo=UTC)

    def check(t: TransitionSpec, event: Any) -> bool:
        actor, payload = event.kwargs["actor"], event.kwargs["payload"]
        if actor.role not in t.roles:
            return False
        if t.actor_key and engine.get("W").data.get(t.actor_key) != actor.id:
            return False
        fields = {f.name: f for f in t.fields}
        if set(payload) - set(fields) or any(
            f.required and f.name not in payload for f in t.fields
        ):
            return False
        try:
            for name, value in payload.items():
                fields[name].check(value)
        except QAFlowError:
            return False
        return all(g.check(_ctx(engine, t, actor, payload)) for g in t.guards)

    machine = spec.to_transitions(check)

    class Model:
        state: str

    model = Model()
    machine.add_model(model)
    started = False
    for trigger, actor, payload in commands:
        try:
            if not started:
                engine.start(spec, "W", trigger, actor, payload, at=at)
                started = True
            else:
                engine.fire("W", trigger, actor, payload, at=at)
            accepted = True
        except QAFlowError:
            accepted = False
        try:
            moved = model.trigger(trigger, actor=actor, payload=payload)  # type: ignore[attr-defined]
        except (MachineError, AttributeError):
            moved = False
        assert accepted == bool(moved), (trigger, actor, payload)
        assert model.state == (engine.get("W").state if started else spec.initial)


def _ctx(engine: Engine, t: TransitionSpec, actor: Actor, payload: dict[str, Any]) -> Any:
    from qaflow.spec import Context

    snap = engine.get("W")
    return Context(
        engine.spec("example.review"),
        snap,
        t.trigger,
        snap.state,
        t.dest_from(snap.state),
        actor,
        datetime(2025, 6, 2, 9, tzinfo=UTC),
        payload,
        snap.data,
        snap.version + 1,
    )


def test_field_messages_name_field_and_range() -> None:
    with pytest.raises(QAFlowError, match=r"'score' must be a number in \(0..10\) \(got 11\)"):
        Field("score", "int", min=0, max=10).check(11)
    with pytest.raises(QAFlowError, match="'score' must be of type int"):
        Field("score", "int", min=0, max=10).check(True)
    with pytest.raises(QAFlowError, match="'kind' must be one of 'a', 'b'"):
        Field("kind", "choice", choices=("a", "b")).check("c")
    with pytest.raises(QAFlowError, match="'when' must be an aware ISO 8601 datetime"):
        Field("when", "datetime").check("2025-01-01T10:00:00")
