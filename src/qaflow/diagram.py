"""Mermaid state diagrams of machine specs, drawn by ``transitions``' own diagram support.

:func:`mermaid` maps a :class:`~qaflow.spec.MachineSpec` onto a ``transitions`` GraphMachine
exactly as :meth:`MachineSpec.to_transitions` maps it onto a plain Machine (same states, same
transitions, no automatic transitions) with ``graph_engine="mermaid"``, and returns the text
``transitions`` renders. Nothing here needs graphviz. ``qaflow diagram`` prints it; paste the
text into any mermaid renderer (GitHub renders ```` ```mermaid ```` blocks).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from qaflow.spec import DEADLINE_MISSED, MachineSpec

if TYPE_CHECKING:
    from qaflow.policies.base import Policy
    from qaflow.policies.ladders import EscalationLadder

__all__ = ["ladder_mermaid", "mermaid"]

_UNSAFE = re.compile(r'["\n\r;#{}]')


class _Model:
    """The object the GraphMachine binds its triggers and ``get_graph`` to."""


def _graph_machine_class() -> Any:
    """A GraphMachine whose states accept a display ``label`` (imported lazily)."""
    from transitions.core import State
    from transitions.extensions import GraphMachine

    class LabelledState(State):
        def __init__(self, *args: Any, label: str | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if label:
                self.label = label

    class LabelledGraphMachine(GraphMachine):
        state_cls = LabelledState

    return LabelledGraphMachine


def _label(text: str) -> str:
    """A state label mermaid accepts inside ``state "..." as name``."""
    return _UNSAFE.sub(" ", text).strip()


def mermaid(
    spec: MachineSpec,
    *,
    title: str | None = None,
    show_missed: bool = False,
    describe_states: bool = True,
) -> str:
    """The mermaid ``stateDiagram-v2`` text of ``spec``; writes nothing.

    Each state appears (labelled with its description when ``describe_states``), each
    trigger labels the edges it may take; internal transitions show as ``[internal]``
    self-loops. ``show_missed`` adds the built-in ``deadline_missed`` loop that ``tick`` may
    record in every non-terminal state.
    """
    states: list[dict[str, Any]] = []
    for state in spec.states:
        entry: dict[str, Any] = {"name": state.name}
        text = state.description if describe_states else ""
        if state.terminal:
            text = f"{text}, the end" if text else "the end"
        if text:
            entry["label"] = _label(f"{state.name}: {text}")
        states.append(entry)
    model = _Model()
    machine = _graph_machine_class()(
        model=model,
        states=states,
        initial=spec.initial,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
        graph_engine="mermaid",
        title=title or spec.name,
        show_conditions=False,
        show_state_attributes=False,
    )
    seen: set[tuple[str, str, str | None]] = set()
    edges: list[dict[str, Any]] = []
    for t in spec.transitions:
        for source in t.sources:
            key = (t.trigger, source, t.dest)
            if key not in seen:
                seen.add(key)
                edges.append({"trigger": t.trigger, "source": source, "dest": t.dest})
    if show_missed:
        for s in spec.states:
            if not s.terminal:
                edges.append({"trigger": DEADLINE_MISSED, "source": s.name, "dest": None})
    machine.add_transitions(edges)
    graph = model.get_graph(title=title or spec.name, force_new=True)  # type: ignore[attr-defined]
    rendered: str = graph.draw(None)
    return rendered


def ladder_mermaid(ladder: EscalationLadder, policy: Policy, **options: Any) -> str:
    """The mermaid text of the escalation machine built from ``ladder`` under ``policy``."""
    from qaflow.machines.escalation import escalation_machine

    return mermaid(escalation_machine(ladder, policy), **options)
