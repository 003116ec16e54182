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


def full(spec: MachineSpec, **options: object) -> str:
    return mermaid(spec, style="full", **options)  # type: ignore[arg-type]


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
    text = ladder_mermaid(LADDERS[name], bexley.POLICY, style="full")
    assert text.startswith("---\n" + spec.name + "\n---\nstateDiagram-v2")
    assert drawn_states(text) == set(spec.state_names)
    assert drawn_edges(text) == spec_edges(spec)
    assert f"[*] --> {spec.initial}" in text


def test_states_are_labelled_with_their_description_and_terminals_marked() -> None:
    text = ladder_mermaid(bexley.FIRO_LADDER, bexley.POLICY, style="full")
    assert 'state "stage_4: stage 4 (Director)" as stage_4' in text
    assert 'state "resolved: the raiser accepted the response, the end" as resolved' in text
    bare = ladder_mermaid(bexley.FIRO_LADDER, bexley.POLICY, describe_states=False, style="full")
    assert 'state "stage_4" as stage_4' in bare
    assert 'state "resolved: the end" as resolved' in bare


def test_internal_transitions_are_self_loops() -> None:
    text = ladder_mermaid(bexley.CP_CHAIR_LADDER, bexley.POLICY, style="full")
    assert re.search(r"stage_2 --> stage_2: .*respond \[internal\]", text)


def test_missed_deadline_loops_are_optional() -> None:
    spec = review_spec()
    plain = full(spec)
    assert DEADLINE_MISSED not in plain
    shown = full(spec, show_missed=True, title="review")
    assert shown.startswith("---\nreview\n---")
    for state in spec.states:
        loop = (state.name, state.name, DEADLINE_MISSED)
        assert (loop in drawn_edges(shown)) == (not state.terminal)


def test_any_machine_can_be_drawn() -> None:
    spec = review_spec()
    text = full(spec)
    assert drawn_states(text) == set(spec.state_names)
    assert drawn_edges(text) == spec_edges(spec)


@pytest.mark.slow
@given(ladders())
def test_generated_ladders_draw_every_state(ladder: EscalationLadder) -> None:
    spec = escalation_machine(ladder, CONFORMANCE_POLICY)
    assert drawn_states(full(spec)) == set(spec.state_names)


# --- the readable layout ------------------------------------------------------------------


def readable_states(text: str) -> set[str]:
    """Every state drawn, inside or outside the grouping box (the box itself excluded)."""
    found = re.findall(r'^\s*state "[^"]*" as (\w+)(?: \{)?$', text, flags=re.MULTILINE)
    return {name for name in found if not name.startswith("any_of_")}


def accounted_for(text: str, source: str, dest: str, trigger: str) -> bool:
    """Whether the readable drawing shows that ``trigger`` takes ``source`` to ``dest``."""
    if source == dest:
        label = re.search(rf'^\s*state "([^"]*)" as {source}$', text, re.MULTILINE)
        boxed = re.search(r'^\s*state "([^"]*)" as any_of_\d+ \{$', text, re.MULTILINE)
        inside = re.search(rf"\{{[^}}]*as {source}\n[^}}]*\}}", text)
        texts = [label.group(1) if label else ""]
        if boxed and inside:
            texts.append(boxed.group(1))
        return any(re.search(rf"\b{trigger}\b", t.split("also here:")[-1]) for t in texts)
    for src, dst, labels in re.findall(r"^\s*(\w+) --> (\w+): (.*)$", text, re.MULTILINE):
        if dst == dest and trigger in labels.split(" / "):
            if src == source:
                return True
            if src.startswith("any_of_") and re.search(
                rf'as {src} \{{\n(?:.*\n)*?\s*state "[^"]*" as {source}\n', text
            ):
                return True
    for anchor, words in re.findall(r"^\s*note \w+ of (\w+): (.*)$", text, re.MULTILINE):
        tokens = re.findall(r"\w+", words)
        if tokens[0] == trigger and dest in tokens and (source == anchor or source in tokens):
            return True
    return False


@pytest.mark.parametrize("name", sorted(LADDERS))
def test_the_readable_ladder_shows_every_state_and_every_move(name: str) -> None:
    spec = escalation_machine(LADDERS[name], bexley.POLICY)
    text = ladder_mermaid(LADDERS[name], bexley.POLICY)
    assert readable_states(text) == set(spec.state_names)
    for source, dest, trigger in spec_edges(spec):
        assert accounted_for(text, source, dest, trigger), (source, dest, trigger)


def test_the_iro_ladder_has_at_most_two_edges_per_state_and_no_warning_colour() -> None:
    spec = escalation_machine(bexley.IRO_LADDER, bexley.POLICY)
    text = mermaid(spec)
    edges = re.findall(r"^\s*\S+ --> \S+", text, re.MULTILINE)
    assert len(edges) <= 2 * len(spec.states), len(edges)
    assert not re.search(r"(fill|color):\s*(red|darksalmon)", text)
    assert "[internal]" not in text  # commands that stay are listed in the box, not looped
    assert "note left of informal: bypass jumps to a later state" in text


def test_the_readable_drawing_of_any_machine_accounts_for_every_move() -> None:
    for spec in (
        review_spec(),
        *[escalation_machine(lad, bexley.POLICY) for lad in LADDERS.values()],
    ):
        text = mermaid(spec, show_missed=True)
        assert readable_states(text) == set(spec.state_names)
        for source, dest, trigger in spec_edges(spec):
            assert accounted_for(text, source, dest, trigger), (spec.name, source, trigger)
        for state in spec.states:
            if not state.terminal:
                assert accounted_for(text, state.name, state.name, DEADLINE_MISSED)


@given(ladders())
def test_generated_ladders_draw_readably(ladder: EscalationLadder) -> None:
    spec = escalation_machine(ladder, CONFORMANCE_POLICY)
    text = mermaid(spec)
    assert readable_states(text) == set(spec.state_names)
    for source, dest, trigger in spec_edges(spec):
        assert accounted_for(text, source, dest, trigger), (source, dest, trigger)


def _mmdc() -> str | None:
    """mermaid-cli: $QAFLOW_MMDC, on PATH, or where .ci/run installs it."""
    import os
    import shutil
    from pathlib import Path

    candidates = [
        os.environ.get("QAFLOW_MMDC"),
        shutil.which("mmdc"),
        str(Path(__file__).parents[1] / ".ci" / "node" / "node_modules" / ".bin" / "mmdc"),
    ]
    return next((c for c in candidates if c and Path(c).exists()), None)


@pytest.mark.slow  # a Node process and a headless browser
def test_the_iro_ladder_renders_in_mermaid_cli(tmp_path: object) -> None:
    """Rendered by mermaid-cli in Debian's chromium: it parses, and draws few edges."""
    import json
    import shutil
    import subprocess
    from pathlib import Path

    mmdc, chromium = _mmdc(), shutil.which("chromium")
    if mmdc is None or chromium is None:
        pytest.skip("mermaid-cli (npm @mermaid-js/mermaid-cli) or chromium is not installed")
    out = Path(str(tmp_path))
    spec = escalation_machine(bexley.IRO_LADDER, bexley.POLICY)
    (out / "iro.mmd").write_text(mermaid(spec), encoding="utf-8")
    flags = [
        "--no-sandbox",
        "--headless",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
    ]
    (out / "pp.json").write_text(json.dumps({"executablePath": chromium, "args": flags}))
    subprocess.run(
        [mmdc, "-p", str(out / "pp.json"), "-i", str(out / "iro.mmd"), "-o", str(out / "iro.svg")],
        check=True,
        capture_output=True,
        timeout=180,
    )
    svg = (out / "iro.svg").read_text(encoding="utf-8")
    drawn = len(re.findall(r'<path[^>]*class="[^"]*transition', svg))
    assert 0 < drawn <= 2 * len(spec.states), drawn
