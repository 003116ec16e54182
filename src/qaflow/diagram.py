"""Mermaid state diagrams of machine specs: a readable layout, or every edge via ``transitions``.

The default, ``style="readable"``, is drawn for a person: top to bottom in the spec's state
order; a command that stays in its state is listed inside the state's box instead of a
self-loop; a command that reaches one state from three or more states (withdraw, accept) is
one edge from a box around those states; a command that can jump to many states (bypass,
raise straight to a later stage) is one note instead of an edge per pair. Nothing is drawn
in a warning colour. ``style="full"`` is the exhaustive drawing below.

With ``style="full"``, :func:`mermaid` maps a :class:`~qaflow.spec.MachineSpec` onto a
``transitions`` GraphMachine exactly as :meth:`MachineSpec.to_transitions` maps it onto a
plain Machine (same states, same transitions, no automatic transitions) with
``graph_engine="mermaid"``, and returns the text ``transitions`` renders. Nothing here needs
graphviz. ``qaflow diagram`` prints it; paste the text into any mermaid renderer (GitHub
renders ```` ```mermaid ```` blocks).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Literal

from qaflow.spec import DEADLINE_MISSED, MachineSpec

if TYPE_CHECKING:
    from qaflow.policies.base import Policy
    from qaflow.policies.ladders import EscalationLadder

__all__ = ["DiagramStyle", "ladder_mermaid", "mermaid"]

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


DiagramStyle = Literal["readable", "full"]


def mermaid(
    spec: MachineSpec,
    *,
    title: str | None = None,
    show_missed: bool = False,
    describe_states: bool = True,
    style: DiagramStyle = "readable",
) -> str:
    """The mermaid ``stateDiagram-v2`` text of ``spec``; writes nothing.

    Each state appears (labelled with its description when ``describe_states``).
    ``style="readable"`` (the default) groups and notes edges as the module docstring says;
    ``style="full"`` draws every trigger on every edge it may take, internal transitions as
    ``[internal]`` self-loops. ``show_missed`` adds the built-in ``deadline_missed`` that
    ``tick`` may record in every non-terminal state.
    """
    if style == "readable":
        return _readable(spec, title or spec.name, show_missed, describe_states)
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


_FAN = 3
"""A command reaching one state from this many states, or many states from one, is grouped."""


def _readable(spec: MachineSpec, title: str, show_missed: bool, describe: bool) -> str:
    order = {name: index for index, name in enumerate(spec.state_names)}
    stays: dict[str, list[str]] = defaultdict(list)
    moves: dict[tuple[str, str], list[str]] = defaultdict(list)  # (trigger, dest) -> sources
    for t in spec.transitions:
        for source in t.sources:
            dest = t.dest_from(source)
            if dest == source:
                _add(stays[source], t.trigger)
            else:
                _add(moves[(t.trigger, dest)], source)
    if show_missed:
        for state in spec.states:
            if not state.terminal:
                _add(stays[state.name], DEADLINE_MISSED)
    fans = _fan_out(moves)
    grouped = {key: srcs for key, srcs in moves.items() if len(srcs) >= _FAN}
    box = max((tuple(s) for k, s in grouped.items() if k[0] not in fans), key=len, default=())
    lines = ["---", f"title: {_label(title)}", "---", "stateDiagram-v2", "  direction TB"]
    lines.append("  classDef terminal fill:#f2f2f2,stroke:#555,color:#111")

    shared = stays.get(box[0], []) if box else []
    if box and any(stays.get(name, []) != shared for name in box):
        shared = []

    def state_line(name: str, indent: str) -> str:
        spec_state = spec.state(name)
        text = name
        if describe and spec_state.description:
            text = f"{name}: {spec_state.description}"
        if stays.get(name) and not (name in box and shared):
            text += _also(stays[name])
        return f'{indent}state "{_label(text)}" as {name}'

    for state in spec.states:
        if state.name not in box:
            lines.append(state_line(state.name, "  "))
        elif state.name == box[0]:
            heading = f"while in any of these {len(box)} states"
            if shared:
                heading += _also(shared)
            lines.append(f'  state "{_label(heading)}" as any_of_{len(box)} {{')
            lines.extend(state_line(name, "    ") for name in box)
            lines.append("  }")
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    notes: list[str] = []
    for (trigger, dest), sources in moves.items():
        if trigger in fans:
            continue
        if tuple(sources) == box and len(sources) >= _FAN:
            _add(edges[(f"any_of_{len(box)}", dest)], trigger)
        else:
            for source in sources:
                _add(edges[(source, dest)], trigger)
    for trigger, pairs in fans.items():
        sources = sorted({s for s, _ in pairs}, key=order.__getitem__)
        dests = sorted({d for _, d in pairs}, key=order.__getitem__)
        later = all(order[d] > order[s] for s, d in pairs)
        where = "a later state" if later else "another state"
        if len(sources) == 1:
            first = min((d for _, d in pairs), key=order.__getitem__)
            _add(edges[(sources[0], first)], trigger)
            rest = [d for d in dests if d != first]
            notes.append(f"note right of {sources[0]}: {trigger} may also go to {', '.join(rest)}")
        else:
            notes.append(
                f"note left of {sources[0]}: {trigger} jumps to {where} "
                f"from {', '.join(sources)} (to any of {', '.join(dests)})"
            )
    lines.append(f"  [*] --> {spec.initial}")
    for (source, dest), triggers in sorted(
        edges.items(), key=lambda item: (order.get(item[0][0], -1), order[item[0][1]])
    ):
        lines.append(f"  {source} --> {dest}: {' / '.join(triggers)}")
    lines.extend("  " + _label_note(note) for note in notes)
    terminals = [s.name for s in spec.states if s.terminal]
    if terminals:
        lines.append(f"  class {','.join(terminals)} terminal")
    return "\n".join(lines) + "\n"


def _also(triggers: list[str]) -> str:
    """The commands that stay in a state, three to a line."""
    rows = [", ".join(triggers[i : i + 3]) for i in range(0, len(triggers), 3)]
    return "<br/>also here: " + ",<br/>".join(rows)


def _add(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def _fan_out(moves: dict[tuple[str, str], list[str]]) -> dict[str, list[tuple[str, str]]]:
    """Triggers that lead from one state to three or more others: drawn as a note."""
    by_trigger: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for (trigger, dest), sources in moves.items():
        by_trigger[trigger].extend((source, dest) for source in sources)
    fans: dict[str, list[tuple[str, str]]] = {}
    for trigger, pairs in by_trigger.items():
        per_source: dict[str, int] = defaultdict(int)
        for source, _ in pairs:
            per_source[source] += 1
        if max(per_source.values()) >= _FAN:
            fans[trigger] = pairs
    return fans


def _label_note(note: str) -> str:
    head, _, text = note.partition(": ")
    return f"{head}: {_UNSAFE.sub(' ', text)}"


def ladder_mermaid(ladder: EscalationLadder, policy: Policy, **options: Any) -> str:
    """The mermaid text of the escalation machine built from ``ladder`` under ``policy``."""
    from qaflow.machines.escalation import escalation_machine

    return mermaid(escalation_machine(ladder, policy), **options)
