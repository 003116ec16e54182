"""One contract for every shipped machine under every shipped policy.

Whatever the machine, random commands (any trigger, any role, payloads of every shape) are
either accepted, leaving the invariants intact, or refused with a typed error that writes
nothing (I1-I4, I6, I7, I14). The specific machines' own stateful tests go deeper; this one
guarantees no shipped machine escapes the common rules.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qaflow import Actor, Engine, ManualClock, MemoryStore, QAFlowError
from qaflow.diagram import mermaid
from qaflow.registry import shipped_specs
from qaflow.spec import MachineSpec
from qaflow.testing import check_tick, check_workflow, store_content

SPECS = shipped_specs()
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    st.text(max_size=8),
    st.sampled_from(["stage_1", "stage_2", "referred", "2 WD", "2025-06-02T09:00:00+00:00"]),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _commands(spec: MachineSpec) -> st.SearchStrategy[list[tuple[str, Actor, dict[str, Any]]]]:
    roles = sorted({r for t in spec.transitions for r in t.roles} | {"nobody"})
    names = sorted({f.name for t in spec.transitions for f in t.fields} | {"unexpected"})
    command = st.tuples(
        st.sampled_from([*spec.triggers, "no_such_trigger"]),
        st.builds(Actor, st.sampled_from(["A-1", "A-2"]), st.sampled_from(roles)),
        st.dictionaries(st.sampled_from(names), VALUES, max_size=4),
    )
    return st.lists(command, min_size=1, max_size=12)


@pytest.mark.parametrize("spec", SPECS, ids=[f"{s.name}[{s.policy}]" for s in SPECS])
def test_spec_is_valid_and_drawable(spec: MachineSpec) -> None:
    drawing = mermaid(spec)
    for state in spec.state_names:
        assert state in drawing
    assert spec.to_transitions() is not None


@pytest.mark.parametrize("spec", SPECS, ids=[f"{s.name}[{s.policy}]" for s in SPECS])
def test_random_commands_keep_invariants_or_write_nothing(spec: MachineSpec) -> None:
    @settings(max_examples=30)
    @given(commands=_commands(spec), hours=st.lists(st.integers(0, 400), min_size=12, max_size=12))
    def run(commands: list[tuple[str, Actor, dict[str, Any]]], hours: list[int]) -> None:
        clock = ManualClock(datetime(2025, 12, 15, 9, tzinfo=UTC))
        engine = Engine(MemoryStore(), [spec], clock=clock)
        started = False
        for (trigger, actor, payload), step in zip(commands, hours, strict=False):
            before = store_content(engine.store)
            try:
                if started:
                    engine.fire("W", trigger, actor, payload)
                else:
                    engine.start(spec, "W", trigger, actor, payload)
                    started = True
            except QAFlowError:
                assert store_content(engine.store) == before, "I3: a refusal wrote something"
            clock.advance(timedelta(hours=step))
            if started:
                check_tick(engine, clock.now())
                check_workflow(engine, "W")

    run()
