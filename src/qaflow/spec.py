"""Declarative machine specifications: what a procedure is, with no behaviour of its own.

A :class:`MachineSpec` is frozen data built by a function in ``qaflow.machines`` from a
policy: states (with the deadlines that entering them opens), transitions (trigger, sources,
destination, roles, payload fields, guards, effects) and the calendar to count in. The
:mod:`qaflow.engine` interprets it. A spec is validated when it is built (one initial state,
no unknown or unreachable states, terminal states without a way out, every state able to
reach an end), so a broken policy fails at load time, not at the first command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import attrs

from qaflow._convert import optional_duration
from qaflow._rolling import Cadence, RollingRule, Window
from qaflow._specparts import (
    GUARD_NAMES,
    Args,
    DurationRef,
    Field,
    Guard,
    _args,
    _entry,
    _one_of,
    _unset,
    bindings,
)
from qaflow.calendar import Duration, WorkingCalendar, default_calendar
from qaflow.errors import PolicyError
from qaflow.procedure.expr import compile_expression

if TYPE_CHECKING:
    from transitions import Machine

    from qaflow.records import Actor, Deadline, WorkflowSnapshot

__all__ = [
    "DEADLINE_MISSED",
    "GUARD_NAMES",
    "POLICY_MIGRATED",
    "AddTask",
    "Cadence",
    "CloseDeadline",
    "Context",
    "DeadlineRule",
    "Derived",
    "DurationRef",
    "Effect",
    "ExtendDeadline",
    "Field",
    "Guard",
    "MachineSpec",
    "Notify",
    "OpenDeadline",
    "RollingRule",
    "StateSpec",
    "TransitionSpec",
    "Update",
    "Window",
    "bindings",
]

DEADLINE_MISSED = "deadline_missed"
"""The built-in trigger ``tick`` records when a deadline without a breach trigger passes."""

POLICY_MIGRATED = "policy_migrated"
"""The built-in trigger :meth:`Engine.migrate` records when a workflow changes policy."""


@attrs.define(slots=True)
class Context:
    """What guards and effects see of one command: the workflow before, and the command."""

    spec: MachineSpec
    snapshot: WorkflowSnapshot
    trigger: str
    source: str
    dest: str
    actor: Actor
    at: datetime
    payload: Mapping[str, Any]
    data: dict[str, Any]
    seq: int

    @property
    def calendar(self) -> WorkingCalendar:
        return self.spec.calendar

    @property
    def workflow_id(self) -> str:
        return self.snapshot.workflow_id

    def open_deadline(self, name: str) -> Deadline | None:
        """The open deadline called ``name``, if any."""
        for deadline in self.snapshot.deadlines:
            if deadline.name == name:
                return deadline
        return None


Check = Callable[[Context], bool]


def _duration(value: object) -> Duration | Callable[[Context], Duration]:
    if isinstance(value, (Duration, str)):
        return Duration.parse(value)
    if callable(value):
        return value  # type: ignore[return-value,unused-ignore]
    raise PolicyError(f"a duration must be text like '5 WD' or a callable, not {value!r}")


def _role_set(roles: Iterable[str]) -> frozenset[str]:
    return frozenset(roles)


def resolve_duration(value: Duration | Callable[[Context], Duration], ctx: Context) -> Duration:
    return value if isinstance(value, Duration) else value(ctx)


@attrs.frozen
class DeadlineRule:
    """A deadline to open: its name, length, what a breach fires, who hears of a miss."""

    name: str
    duration: Duration | Callable[[Context], Duration] = attrs.field(converter=_duration, eq=False)
    breach_trigger: str | None = None
    notify: tuple[str, ...] = ()
    clause: str | None = None
    from_key: str | None = None
    """If set, the deadline runs from the datetime stored under this data key, not from now."""


# --- effects -------------------------------------------------------------------------------


@attrs.frozen
class Update:
    """Set data keys to what is computed from the context (a mapping).

    ``use`` names a vocabulary update (with ``args``); the older closure form ``Update(fn)``
    still works but makes the spec not serialisable.
    """

    fn: Callable[[Context], Mapping[str, Any]] = attrs.field(default=_unset, eq=False, repr=False)
    use: str | None = attrs.field(default=None, kw_only=True)
    args: Args = attrs.field(default=(), converter=_args, kw_only=True)

    def __attrs_post_init__(self) -> None:
        _one_of("update", None, self.use, None if self.fn is _unset else self.fn)
        if self.use is not None:
            object.__setattr__(self, "fn", _entry("update", self.use, self.args))


@attrs.frozen
class Notify:
    """Write outbox rows for each role, citing ``clause``.

    The recipient id is the data value ``<role>_id`` where the workflow holds one.
    """

    roles: tuple[str, ...]
    reason: str
    clause: str | None = None
    when: str | None = None
    """A CEL condition (reading :data:`GUARD_NAMES`): the notice is sent only when it holds."""
    _test: Check | None = attrs.field(init=False, eq=False, repr=False, default=None)

    def __attrs_post_init__(self) -> None:
        if self.when is not None:
            compiled = compile_expression(self.when, GUARD_NAMES, path="notify.when")
            object.__setattr__(self, "_test", lambda ctx: compiled.test(bindings(ctx)))

    def applies(self, ctx: Context) -> bool:
        """Whether the notice is sent for this command (always, unless ``when`` says not)."""
        return self._test is None or self._test(ctx)


@attrs.frozen
class AddTask:
    """Open a task for ``owner_role``, due ``within`` the command's time (or undated)."""

    kind: str
    owner_role: str
    within: Duration | None = attrs.field(default=None, converter=optional_duration)
    clause: str | None = None


@attrs.frozen
class OpenDeadline:
    """Open a deadline from a transition.

    ``scope="workflow"`` (the default) opens one that no state change closes;
    ``scope="state"`` ties it to the destination state, closed when the workflow leaves it
    (e.g. a fresh response deadline granted after the first was breached).
    """

    rule: DeadlineRule
    scope: Literal["workflow", "state"] = "workflow"


@attrs.frozen
class CloseDeadline:
    """Close the open deadline called ``name``, if there is one."""

    name: str


@attrs.frozen
class ExtendDeadline:
    """Replace the open deadline ``name`` with one ``by`` later (an agreed extension)."""

    name: str
    by: Duration | Callable[[Context], Duration] = attrs.field(converter=_duration, eq=False)


@attrs.frozen
class Derived:
    """Effects chosen at run time from the context (e.g. by the grade just given).

    ``use`` names a vocabulary effect chooser (with ``args``); the older closure form
    ``Derived(fn)`` still works but makes the spec not serialisable.
    """

    fn: Callable[[Context], Iterable[Effect]] = attrs.field(default=_unset, eq=False, repr=False)
    use: str | None = attrs.field(default=None, kw_only=True)
    args: Args = attrs.field(default=(), converter=_args, kw_only=True)

    def __attrs_post_init__(self) -> None:
        _one_of("derived effects", None, self.use, None if self.fn is _unset else self.fn)
        if self.use is not None:
            object.__setattr__(self, "fn", _entry("effects", self.use, self.args))


Effect = Update | Notify | AddTask | OpenDeadline | CloseDeadline | ExtendDeadline | Derived


@attrs.frozen
class StateSpec:
    """A state: whether it ends the workflow, and what entering it opens and announces."""

    name: str
    terminal: bool = False
    deadlines: tuple[DeadlineRule, ...] = ()
    on_enter: tuple[Effect, ...] = ()
    description: str = ""


@attrs.frozen
class TransitionSpec:
    """A command: which states it leaves, where it goes, who may fire it and on what terms.

    ``dest=None`` is an internal transition (the state and its deadlines stay);
    ``dest == source`` with ``reenter=True`` leaves and re-enters (deadlines restart).
    Several specs may share a trigger and source: the first whose guards pass is taken.
    ``actor_key`` names a data key holding the one person id allowed to fire it.
    """

    trigger: str
    sources: tuple[str, ...]
    dest: str | None
    roles: frozenset[str]
    fields: tuple[Field, ...] = ()
    guards: tuple[Guard, ...] = ()
    effects: tuple[Effect, ...] = ()
    clause: str | None = None
    actor_key: str | None = None
    reenter: bool = False
    description: str = ""

    def dest_from(self, source: str) -> str:
        return source if self.dest is None else self.dest

    def leaves(self, source: str) -> bool:
        return self.dest is not None and (self.dest != source or self.reenter)


@attrs.frozen
class MachineSpec:
    """A whole procedure: validated on construction (raises :class:`PolicyError`)."""

    name: str
    policy: str
    policy_version: str
    initial: str
    states: tuple[StateSpec, ...]
    transitions: tuple[TransitionSpec, ...]
    calendar: WorkingCalendar = attrs.field(factory=default_calendar, eq=False)
    description: str = ""
    rolling: tuple[RollingRule, ...] = ()
    """Rolling and recurring deadlines on the whole workflow (see :mod:`qaflow._rolling`)."""
    migration_roles: frozenset[str] = attrs.field(default=frozenset(), converter=_role_set)
    """The roles that may move a workflow off this spec to another policy version."""
    _table: dict[tuple[str, str], tuple[TransitionSpec, ...]] = attrs.field(
        init=False, eq=False, repr=False
    )
    _states: dict[str, StateSpec] = attrs.field(init=False, eq=False, repr=False)
    _breach_triggers: frozenset[str] = attrs.field(init=False, eq=False, repr=False)
    _fields: dict[int, dict[str, Field]] = attrs.field(init=False, eq=False, repr=False)
    _fingerprint: str = attrs.field(init=False, eq=False, repr=False, default="")
    _plain: tuple[dict[str, Any], bool] | None = attrs.field(
        init=False, eq=False, repr=False, default=None
    )
    _plans: dict[tuple[str, str], Any] = attrs.field(init=False, eq=False, repr=False, factory=dict)
    """What a live command needs of each (state, trigger), worked out once (``_plans``)."""

    def __attrs_post_init__(self) -> None:
        states = {s.name: s for s in self.states}
        if len(states) != len(self.states):
            raise PolicyError(f"machine {self.name!r} names a state twice")
        if self.initial not in states:
            raise PolicyError(
                f"machine {self.name!r}: initial state {self.initial!r} is not a state"
            )
        if states[self.initial].terminal:
            raise PolicyError(f"machine {self.name!r}: initial state {self.initial!r} is terminal")
        table: dict[tuple[str, str], list[TransitionSpec]] = {}
        for t in self.transitions:
            if t.trigger in (DEADLINE_MISSED, POLICY_MIGRATED):
                raise PolicyError(f"machine {self.name!r}: {t.trigger!r} is reserved")
            if not t.sources:
                raise PolicyError(f"machine {self.name!r}: transition {t.trigger!r} has no source")
            unknown = [s for s in (*t.sources, t.dest) if s is not None and s not in states]
            if unknown:
                raise PolicyError(
                    f"machine {self.name!r}: transition {t.trigger!r} names unknown "
                    f"state(s) {', '.join(map(repr, unknown))}"
                )
            for source in t.sources:
                if states[source].terminal:
                    raise PolicyError(
                        f"machine {self.name!r}: terminal state {source!r} has a way out "
                        f"({t.trigger!r})"
                    )
                table.setdefault((source, t.trigger), []).append(t)
        self._check_graph(states)
        breach: set[str] = set()
        for s in self.states:
            names = [d.name for d in s.deadlines]
            if len(set(names)) != len(names):
                raise PolicyError(f"machine {self.name!r}: state {s.name!r} names a deadline twice")
            breach.update(d.breach_trigger for d in s.deadlines if d.breach_trigger)
        for t in self.transitions:
            breach.update(
                e.rule.breach_trigger
                for e in t.effects
                if isinstance(e, OpenDeadline) and e.rule.breach_trigger
            )
        triggers = {t.trigger for t in self.transitions}
        missing = sorted(breach - triggers)
        if missing:
            raise PolicyError(
                f"machine {self.name!r}: breach trigger(s) {', '.join(map(repr, missing))} "
                "have no transition"
            )
        self._check_rolling(triggers, {d.name for s in self.states for d in s.deadlines})
        object.__setattr__(self, "_states", states)
        object.__setattr__(self, "_table", {k: tuple(v) for k, v in table.items()})
        object.__setattr__(self, "_breach_triggers", frozenset(breach))
        object.__setattr__(
            self, "_fields", {id(t): {f.name: f for f in t.fields} for t in self.transitions}
        )

    def _check_rolling(self, triggers: set[str], deadline_names: set[str]) -> None:
        names = [r.name for r in self.rolling]
        for rule in self.rolling:
            if names.count(rule.name) > 1 or rule.name in deadline_names:
                raise PolicyError(
                    path=f"rolling {rule.name!r}",
                    expected="a deadline name no other deadline of the machine uses",
                )
            unknown = sorted(rule.triggers - triggers)
            if unknown:
                raise PolicyError(
                    path=f"rolling {rule.name!r}",
                    value=", ".join(unknown),
                    expected=f"triggers of machine {self.name!r}",
                )

    def _check_graph(self, states: dict[str, StateSpec]) -> None:
        edges: dict[str, set[str]] = {name: set() for name in states}
        for t in self.transitions:
            for source in t.sources:
                edges[source].add(t.dest_from(source))
        seen = {self.initial}
        todo = [self.initial]
        while todo:
            for nxt in edges[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        unreachable = sorted(set(states) - seen)
        if unreachable:
            raise PolicyError(
                f"machine {self.name!r}: state(s) {', '.join(map(repr, unreachable))} "
                f"cannot be reached from {self.initial!r}"
            )
        ends = {name for name, s in states.items() if s.terminal}
        if not ends:
            raise PolicyError(f"machine {self.name!r} has no terminal state")
        can_end = set(ends)
        changed = True
        while changed:
            changed = False
            for name, outs in edges.items():
                if name not in can_end and outs & can_end:
                    can_end.add(name)
                    changed = True
        stuck = sorted(set(states) - can_end)
        if stuck:
            raise PolicyError(
                f"machine {self.name!r}: state(s) {', '.join(map(repr, stuck))} "
                "can never reach a terminal state"
            )

    # --- plain data and fingerprint ------------------------------------------------------

    def _serialised(self) -> tuple[dict[str, Any], bool]:
        if self._plain is None:
            from qaflow._specdata import spec_to_data

            object.__setattr__(self, "_plain", spec_to_data(self))
        assert self._plain is not None
        return self._plain

    def to_data(self) -> dict[str, Any]:
        """The spec as JSON-compatible data: guards as expressions or vocabulary references."""
        return self._serialised()[0]

    @property
    def serialisable(self) -> bool:
        """Whether every guard, effect and duration is data (no older-style closure)."""
        return self._serialised()[1]

    # --- queries --------------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the spec's content: what a workflow pins besides its key."""
        if not self._fingerprint:
            from qaflow._fingerprint import spec_fingerprint

            object.__setattr__(self, "_fingerprint", spec_fingerprint(self))
        return self._fingerprint

    @property
    def key(self) -> tuple[str, str, str]:
        """(machine, policy, policy version): what a workflow pins."""
        return (self.name, self.policy, self.policy_version)

    def state(self, name: str) -> StateSpec:
        return self._states[name]

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    @property
    def breach_triggers(self) -> frozenset[str]:
        return self._breach_triggers

    def candidates(self, state: str, trigger: str) -> tuple[TransitionSpec, ...]:
        """The transitions ``trigger`` may take from ``state`` (empty if none)."""
        return self._table.get((state, trigger), ())

    def fields_of(self, transition: TransitionSpec) -> dict[str, Field]:
        return self._fields[id(transition)]

    def allowed_triggers(self, state: str) -> tuple[str, ...]:
        """Triggers the structure permits in ``state`` (guards and roles not considered)."""
        return tuple(sorted({t for (s, t) in self._table if s == state}))

    @property
    def triggers(self) -> tuple[str, ...]:
        return tuple(sorted({t.trigger for t in self.transitions}))

    def to_transitions(self, check: Callable[[TransitionSpec, Any], bool] | None = None) -> Machine:
        """The equivalent ``transitions.Machine`` (shared, no models attached).

        ``check(transition, event_data)`` becomes each transition's condition, so the
        ``transitions`` machine can be driven side by side with the engine.
        """
        from transitions import Machine

        machine = Machine(
            model=None,
            states=list(self.state_names),
            initial=self.initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )
        for t in self.transitions:
            conditions: list[Any] = [lambda ev, t=t: check(t, ev)] if check else []
            for source in t.sources:
                dest = None if t.dest is None else t.dest
                machine.add_transition(t.trigger, source, dest, conditions=conditions)
        for s in self.states:
            if not s.terminal:
                machine.add_transition(DEADLINE_MISSED, s.name, None)
        return machine
