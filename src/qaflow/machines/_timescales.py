"""What the timescale machines share: events declared as data, the policy file, one builder.

A timescale machine (case practice, supervision, the QA calendar) is a workflow that records
events and keeps the deadlines a council's policy names. The machine fixes only the events
(trigger, who may record it, its payload fields, the data it records) and the statuses; the
policy file names every timescale as a :class:`~qaflow.spec.RollingRule`: one-off ("ICPC held
within 15 WD of the strategy discussion"), chained, or rolling ("a visit at least every 4
weeks; every 10 WD on a CP plan"). The file is read with :mod:`qaflow.procedure`'s reader, so
one load reports every problem with its key path, and every value in it is read.

The file (TOML)::

    format_version = 1
    [policy]
    name = "my_council"        # the council policy this belongs to
    version = "1"
    [[decisions]]               # where the seed gives two rules, which one the file follows
    clause = "BX-SUP-01"
    over = "BX-SUP-02"
    why = "..."
    [[rules]]
    name = "icpc_held"
    clause = "BX-TS-01"
    restart_by = ["strategy_discussion"]   # opens (afresh) on these events
    met_by = ["icpc_held"]                 # closed as met by these
    within = "15 WD"                       # a one-off: no next instance
    [[rules]]
    name = "visit"
    clause = "BK-TS-03"
    met_by = ["visit"]
    [[rules.cadence]]                      # the first entry whose 'when' holds applies
    when = 'data.status == "cp_plan"'
    first = "5 WD"
    every = "10 WD"
    [[requires]]                           # a condition on an event (_timescale_events)
    event = "case_closed"
    clause = "BK-TS-05"
    condition = "the last CIN review chaired by a manager"
    when = 'data.status == "cin"'
    needs = 'has(data.last_review_chaired) && data.last_review_chaired'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

import attrs

from qaflow import vocabulary
from qaflow.errors import PolicyError
from qaflow.machines._timescale_events import (
    EventTask,
    Requirement,
    read_event_tasks,
    read_requirements,
    requirement_guards,
    task_effects,
)
from qaflow.policies.base import Policy
from qaflow.procedure import Node, Problems, migrate, parse_toml
from qaflow.procedure._defaults import QaflowDefault, read_defaults
from qaflow.procedure._format import TABLES
from qaflow.procedure._walk import Base, Roles, Walker, declared_roles
from qaflow.spec import (
    Cadence,
    Context,
    Field,
    MachineSpec,
    RollingRule,
    StateSpec,
    TransitionSpec,
    Update,
    Window,
)

__all__ = [
    "CLOSED",
    "NEW",
    "OPEN",
    "Decision",
    "EventSpec",
    "TimescaleMachine",
    "TimescalePolicy",
    "build_machine",
    "load_file",
    "load_shipped",
    "read_timescales",
]

NEW: Final = "new"
OPEN: Final = "open"
CLOSED: Final = "closed"


@attrs.frozen
class EventSpec:
    """One event a timescale machine records: who records it, its fields, what it sets.

    ``stamp`` is a data key set to the event's time; ``copy`` maps payload fields to data
    keys; ``set`` sets fixed data values; ``starts`` marks the event that opens the workflow
    and ``ends`` the one that closes it.
    """

    trigger: str
    roles: frozenset[str]
    fields: tuple[Field, ...] = ()
    stamp: str | None = None
    copy: tuple[tuple[str, str], ...] = ()
    set: tuple[tuple[str, Any], ...] = ()
    starts: bool = False
    ends: bool = False
    description: str = ""


@attrs.frozen
class Decision:
    """Where a seed gives two conflicting rules: which the file follows, over which, and why."""

    clause: str
    over: str
    why: str


@attrs.frozen
class TimescalePolicy:
    """A council's timescales for one machine, as read from its file."""

    policy: Policy
    rules: tuple[RollingRule, ...]
    decisions: tuple[Decision, ...] = ()
    source: str = ""
    defaults: tuple[QaflowDefault, ...] = ()
    """The file's values its framework does not give (``qaflow policy docs`` lists them)."""
    requires: tuple[Requirement, ...] = ()
    """Conditions the file puts on events (``[[requires]]``: guards citing their clause)."""
    tasks: tuple[EventTask, ...] = ()
    """Tasks the file's events open (``[[tasks]]``, e.g. a personal supervision note)."""


@vocabulary.update("timescales.record")
def _record(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """The data an event records: its time under ``stamp``, copied fields, fixed values."""
    out: dict[str, Any] = dict(args.get("set", ()))
    stamp = args.get("stamp")
    if isinstance(stamp, str):
        out[stamp] = ctx.at.isoformat()
    for field, key in args.get("copy", ()):
        if field in ctx.payload:
            out[key] = ctx.payload[field]
    return out


def build_machine(
    name: str,
    events: Iterable[EventSpec],
    timescales: TimescalePolicy,
    *,
    description: str = "",
) -> MachineSpec:
    """The machine ``name`` recording ``events`` under a council's ``timescales``."""
    transitions: list[TransitionSpec] = []
    for event in events:
        args: dict[str, Any] = {"copy": event.copy, "set": event.set}
        if event.stamp is not None:
            args["stamp"] = event.stamp
        transitions.append(
            TransitionSpec(
                trigger=event.trigger,
                sources=(NEW,) if event.starts else (OPEN,),
                dest=CLOSED if event.ends else OPEN if event.starts else None,
                roles=event.roles,
                fields=event.fields,
                guards=requirement_guards(timescales.requires, event.trigger),
                effects=(
                    Update(use="timescales.record", args=args),
                    *task_effects(timescales.tasks, event.trigger),
                ),
                description=event.description,
            )
        )
    policy = timescales.policy
    for d in timescales.decisions:
        description += f" Follows {d.clause} over {d.over}: {d.why}"
    return MachineSpec(
        name=name,
        policy=policy.name,
        policy_version=policy.version,
        initial=NEW,
        states=(
            StateSpec(NEW, description="not yet opened"),
            StateSpec(OPEN, description="open: events recorded, timescales running"),
            StateSpec(CLOSED, terminal=True, description="closed"),
        ),
        transitions=tuple(transitions),
        calendar=policy.calendar,
        description=description,
        rolling=timescales.rules,
    )


# --- the file ------------------------------------------------------------------------------


def read_timescales(
    text: str,
    *,
    source: str,
    policy: Policy,
    events: Iterable[EventSpec],
    base: Base | None = None,
) -> TimescalePolicy:
    """Read a timescale file for ``policy``; raise one :class:`PolicyError` listing every
    problem (file, key path, what was found and what is accepted). The roles a rule may
    notify are the council's, from the roles file ``[policy] roles`` cites in ``base``."""
    doc = migrate(parse_toml(text, source=source), source=source)
    problems = Problems(source)
    root = Node(doc, problems)
    roles = declared_roles(doc, source=source, base=base)
    head = root.table("policy")
    if head is not None:
        for key, want in (("name", policy.name), ("version", policy.version)):
            found = head.text(key)
            if found is not None and found != want:
                head.problem(key, f"{want!r} (the council policy this file belongs to)", found)
        if head.has("roles"):
            Walker(problems, roles).value(head, TABLES["policy"].key("roles"))
        head.finish()
    events = tuple(events)
    triggers = {e.trigger for e in events}
    decisions = tuple(
        d for d in (_decision(n) for n in root.tables("decisions", required=False)) if d
    )
    rules: list[RollingRule] = []
    names: set[str] = set()
    for node in root.tables("rules", min_items=1):
        rule = _rule(node, triggers, roles)
        if rule is None:
            continue
        if rule.name in names:
            node.problem("name", "a rule name not already used in this file", rule.name)
        names.add(rule.name)
        rules.append(rule)
    requires = read_requirements(root, triggers)
    tasks = read_event_tasks(root, triggers, roles.declared, f"a role declared in {roles.where}")
    defaults = read_defaults(root)
    root.finish()
    problems.raise_if_any()
    return TimescalePolicy(policy, tuple(rules), decisions, source, defaults, requires, tasks)


def _decision(node: Node) -> Decision | None:
    clause, over, why = node.text("clause"), node.text("over"), node.text("why")
    node.finish()
    if clause is None or over is None or why is None:
        return None
    return Decision(clause, over, why)


def _triggers(node: Node, key: str, triggers: set[str]) -> tuple[str, ...]:
    return node.names(key, allowed=triggers, default=(), what="an event of the machine") or ()


def _rule(node: Node, triggers: set[str], roles: Roles) -> RollingRule | None:
    name = node.ident("name")
    clause = node.text("clause")
    met_by = _triggers(node, "met_by", triggers)
    restart_by = _triggers(node, "restart_by", triggers)
    if not met_by and not restart_by and node.has("met_by"):
        node.problem("met_by", "at least one event")
    fields: dict[str, Any] = {
        "met_when": node.text("met_when", default=None),
        "restart_when": node.text("restart_when", default=None),
        "follows": node.get("follows", bool, default=not restart_by),
        "anchor": node.choice("anchor", ("event", "due"), default="event"),
        "notify": node.names(
            "notify", default=(), allowed=roles.declared, what=f"a role declared in {roles.where}"
        )
        or (),
        "description": node.text("description", default=None) or "",
    }
    within = node.duration("within", default=None, clause=clause)
    every = node.duration("every", default=None, clause=clause)
    entries = [_cadence(n, clause) for n in node.tables("cadence", required=False)]
    if (within or every) and entries:
        node.problem("cadence", "either 'within'/'every' or [[cadence]] entries, not both")
    if within or every:
        entries = [Cadence(first=within, every=every, clause=clause)]
    elif not entries and name is not None:
        node.problem("cadence", "a length: 'within', 'every' or [[cadence]] entries", clause=clause)
    node.finish()
    if name is None or clause is None or any(e is None for e in entries) or not entries:
        return None
    return node.build(
        RollingRule,
        name=name,
        cadence=tuple(e for e in entries if e is not None),
        met_by=met_by,
        restart_by=restart_by,
        clause=clause,
        **fields,
    )


def _cadence(node: Node, rule_clause: str | None) -> Cadence | None:
    clause = node.text("clause", default=rule_clause)
    windows: list[Window] = []
    for index, raw in enumerate(node.get("windows", list, default=[]) or []):
        window = Node(
            raw if isinstance(raw, dict) else {},
            node.problems,
            f"{node.key_path('windows')}[{index}]",
        )
        until, every = (
            window.duration("until", clause=clause),
            window.duration("every", clause=clause),
        )
        window.finish()
        if until is not None and every is not None:
            windows.append(Window(until, every))
    fields = {
        "when": node.text("when", default=None),
        "first": node.duration("first", default=None, clause=clause),
        "every": node.duration("every", default=None, clause=clause),
        "since": node.ident("since", default=None),
        "from_key": node.ident("from_key", default=None),
    }
    node.finish()
    return node.build(Cadence, windows=tuple(windows), clause=clause, **fields)


def shipped_councils() -> tuple[str, ...]:
    """The councils qaflow ships, from the one catalogue in :mod:`qaflow.policies`."""
    from qaflow.policies import SHIPPED_AUDIT_FILES

    return tuple(SHIPPED_AUDIT_FILES)


def shipped_policy(council: str) -> Policy:
    """A shipped council's policy (name, version, closure days), from the catalogue."""
    from qaflow.policies import shipped_audit_procedure

    return shipped_audit_procedure(council).audit.policy


def load_shipped(
    council: str, file: str, policy: Policy, events: Iterable[EventSpec]
) -> TimescalePolicy:
    """A shipped council's timescale file (``policies/<council>/<file>.toml``)."""
    resource = resources.files("qaflow.policies") / council / f"{file}.toml"
    return read_timescales(
        resource.read_text(encoding="utf-8"),
        source=f"policies/{council}/{file}.toml",
        policy=policy,
        events=tuple(events),
        base=resources.files("qaflow.policies") / council,
    )


def load_file(path: str | Path, policy: Policy, events: Iterable[EventSpec]) -> TimescalePolicy:
    """A timescale file on disk (a council's own); raises :class:`PolicyError` on problems."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError:
        raise PolicyError(source=str(p), expected="a readable timescale file") from None
    return read_timescales(text, source=p.name, policy=policy, events=tuple(events), base=p.parent)


@cache
def _shipped(council: str, file: str, events: tuple[EventSpec, ...]) -> TimescalePolicy:
    return load_shipped(council, file, shipped_policy(council), events)


@attrs.frozen
class TimescaleMachine:
    """One timescale machine: its name, its file's name under each council, its events.

    What the case, supervision and QA calendar modules share: building the machine under a
    council's file, reading a shipped council's file (once) or a council's own, and the
    machine under every shipped council.
    """

    name: str
    file: str
    events: tuple[EventSpec, ...]
    description: str

    def spec(self, timescales: TimescalePolicy) -> MachineSpec:
        """The machine under a council's timescales."""
        return build_machine(self.name, self.events, timescales, description=self.description)

    def shipped(self, council: str) -> TimescalePolicy:
        """A shipped council's file (``policies/<council>/<file>.toml``), read once."""
        return _shipped(council, self.file, self.events)

    def load(self, path: str | Path, policy: Policy) -> TimescalePolicy:
        """A council's own file (raises :class:`PolicyError` listing every problem)."""
        return load_file(path, policy, self.events)

    def shipped_specs(self) -> tuple[MachineSpec, ...]:
        """The machine under every shipped council."""
        return tuple(self.spec(self.shipped(c)) for c in shipped_councils())
