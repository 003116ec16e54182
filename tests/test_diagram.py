"""Mermaid diagrams through ``transitions``' GraphMachine: every state and trigger is drawn."""

from __future__ import annotations

import re

import pytest
from hypothesis import given

from qaflow.diagram import ladder_mermaid, mermaid
from qaflow.machines.escalation import escalation_machine
from qaflow.policies import bexley
from qaflow.policies.ladders import EscalationLadder
from qaflow.spec import DEADLINE_MISSED, MachineSpec
from qaflow.testing import CONFORMANCE_POLICY, ladders
from review_machine import review_spec

LADDERS = {
    "cp_chair": bexley.CP_CHAIR_LADDER,
    "iro": bexley.IRO_LADDER,
    "firo": bexley.FIRO_LADDER,
}


def drawn_states(text: str) -> set[str]:
    return set(re.findall(r'^\s*state "[^"]*" as (\w+)$', text, flags=re.MULTILINE))


def drawn_edges(text: str) -> set[tuple[str, str, str]]:
    """(source, dest, trigger) for every labelled edge."""
    edges = set()
    for source, dest, labels in re.findall(r"^\s*(\w+) --> (\w+): (.*)$", text, re.MULTILINE):
        for label in labels.split(" | "):
            edges.add((source, dest, label.removesuffix(" [internal]")))
    return edges


def spec_edges(spec: MachineSpec) -> set[tuple[str, str, str]]:
    return {
        (source, t.dest_from(source), t.trigger) for t in spec.transitions for source in t.sources
    }


@pytest.mark.parametrize("name", sorted(LADDERS))
def test_every_state_and_transition_of_each_ladder_appears(name: str) -> None:
    spec = escalation_machine(LADDERS[name], bexley.POLICY)
    text = ladder_mermaid(LADDERS[name], bexley.POLICY)
    assert text.startswith("---\n" + spec.name + "\n---\nstateDiagram-v2")
    assert drawn_states(text) == set(spec.state_names)
    assert drawn_edges(text) == spec_edges(spec)
    assert f"[*] --> {spec.initial}" in text


def test_states_are_labelled_with_their_description_and_terminals_marked() -> None:
    text = ladder_mermaid(bexley.FIRO_LADDER, bexley.POLICY)
    assert 'state "stage_4: stage 4 (Director)" as stage_4' in text
    assert 'state "resolved: the raiser accepted the response, the end" as resolved' in text
    bare = ladder_mermaid(bexley.FIRO_LADDER, bexley.POLICY, describe_states=False)
    assert 'state "stage_4" as stage_4' in bare
    assert 'state "resolved: the end" as resolved' in bare


def test_internal_transitions_are_self_loops() -> None:
    text = ladder_mermaid(bexley.CP_CHAIR_LADDER, bexley.POLICY)
    assert re.search(r"stage_2 --> stage_2: .*respond \[internal\]", text)


def test_missed_deadline_loops_are_optional() -> None:
    spec = review_spec()
    plain = mermaid(spec)
    assert DEADLINE_MISSED not in plain
    shown = mermaid(spec, show_missed=True, title="review")
    assert shown.startswith("---\nreview\n---")
    for state in spec.states:
        loop = (state.name, state.name, DEADLINE_MISSED)
        assert (loop in drawn_edges(shown)) == (not state.terminal)


def test_any_machine_can_be_drawn() -> None:
    spec = review_spec()
    text = mermaid(spec)
    assert drawn_states(text) == set(spec.state_names)
    assert drawn_edges(text) == spec_edges(spec)


@pytest.mark.slow
@given(ladders())
def test_generated_ladders_draw_every_state(ladder: EscalationLadder) -> None:
    spec = escalation_machine(ladder, CONFORMANCE_POLICY)
    assert drawn_states(mermaid(spec)) == set(spec.state_names)
