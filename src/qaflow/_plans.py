"""Command plans: what the interpreter needs of one (spec, state, trigger), compiled once.

None of what a live command looks up about its trigger depends on the command, only on the
spec, the workflow's state and the trigger: the candidate transitions, the union of their
roles, each one's payload field table and required names, its guards, its destination, and
what its effects write (:mod:`qaflow._program`). :func:`plan_of` builds a :class:`Plan` the
first time a pair is seen and keeps it on the spec (specs are immutable); each candidate
becomes a :class:`Route` with its guards resolved to direct callables (a vocabulary guard is
its function and arguments, called without the wrapper in between) and its effects compiled,
once for a command that builds notification and task rows and once for one that does not.
The checks themselves still run on every command, in the same order, against these tables:
:func:`choose` is the general choice among candidates, with the same refusals.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from qaflow._authorise import Directory, authorise, check_holder
from qaflow._program import Op, compile_program, updates_only
from qaflow.errors import GuardFailed, PermissionDenied, ValidationError
from qaflow.records import SYSTEM, Actor, WorkflowSnapshot
from qaflow.spec import Context, Field, Guard, MachineSpec, TransitionSpec

__all__ = ["BREACH_FIELDS", "FieldRule", "Plan", "Route", "check_fields", "choose", "plan_of"]

BREACH_FIELDS = frozenset({"deadline", "deadline_id"})
"""Payload fields every breach carries besides the trigger's own."""

GuardCall = tuple[Any, Any, Guard]


class Route:
    """One candidate transition from one state, ready to run.

    ``guards`` are ``(fn, arg, guard)``: ``fn(ctx, arg)`` is the guard's verdict.
    ``full`` and ``lean`` are its compiled effects with and without notification and task
    rows; ``full_updates``/``lean_updates``: every step is an update (no :class:`Outputs`);
    ``breach_full``/``breach_lean``: the same for a command carrying a ``deadline_id``
    (which the interpreter never treats as a bare transition).
    """

    __slots__ = (
        "actor_key",
        "breach_full",
        "breach_lean",
        "dest",
        "fields",
        "full",
        "full_updates",
        "guards",
        "lean",
        "lean_updates",
        "required",
        "roles",
        "transition",
    )

    def __init__(self, spec: MachineSpec, state: str, transition: TransitionSpec) -> None:
        self.transition = transition
        self.roles = transition.roles
        self.actor_key = transition.actor_key
        fields = spec.fields_of(transition)
        self.fields = {name: FieldRule(f) for name, f in fields.items()}
        self.required = tuple(name for name, f in fields.items() if f.required)
        self.guards: tuple[GuardCall, ...] = tuple((*g.parts(), g) for g in transition.guards)
        self.dest = transition.dest_from(state)
        self.full: tuple[Op, ...] = compile_program(spec, transition, state, True)
        self.lean: tuple[Op, ...] = compile_program(spec, transition, state, False)
        self.full_updates = updates_only(self.full)
        self.lean_updates = updates_only(self.lean)
        self.breach_full = compile_program(spec, transition, state, True, breach=True)
        self.breach_lean = compile_program(spec, transition, state, False, breach=True)


class Plan:
    """What every command of one trigger in one state of one spec shares.

    ``single`` is the route when there is exactly one candidate (the common case, checked
    without the general loop), else ``None``. ``breachable``: the
    trigger is one a deadline fires on breach, so a system command may be exempt from role
    checks. ``roles``: the union of the candidates' roles (the first's own when alone).
    """

    __slots__ = ("breachable", "roles", "routes", "single")

    def __init__(self, spec: MachineSpec, state: str, candidates: tuple[TransitionSpec, ...]):
        first = candidates[0]
        self.routes = tuple(Route(spec, state, t) for t in candidates)
        self.breachable = first.trigger in spec.breach_triggers
        self.roles: frozenset[str] = (
            first.roles
            if len(candidates) == 1
            else frozenset().union(*(t.roles for t in candidates))
        )
        self.single = self.routes[0] if len(candidates) == 1 else None


def plan_of(spec: MachineSpec, state: str, trigger: str) -> Plan | None:
    """The plan of ``trigger`` in ``state`` (``None``: the trigger is not allowed there)."""
    plans = spec._plans
    key = (state, trigger)
    try:
        return plans[key]  # type: ignore[no-any-return]
    except KeyError:
        pass
    candidates = spec.candidates(state, trigger)
    plan = Plan(spec, state, candidates) if candidates else None
    if len(plans) < 4096:  # every (state, trigger) a caller tries, allowed or not: bounded
        plans[key] = plan
    return plan


class FieldRule:
    """One payload field's table, read once from its :class:`Field`: a command's check reads
    these slots instead of the attrs field's attributes.

    ``kind`` is :data:`STR`, :data:`CHOICE`, :data:`ANY` or :data:`OTHER` (every other kind:
    its value goes to :meth:`Field.check`); ``max_length`` ``-1`` is no limit; ``choices`` is
    the field's own tuple. ``field.kind`` stays the field's name of its kind, for messages.
    """

    __slots__ = ("choices", "field", "kind", "max_length", "required")

    def __init__(self, field: Field) -> None:
        self.field = field
        name = field.kind if type(field) is Field else ""  # a subclass checks for itself
        self.kind = _KINDS.get(name, OTHER)
        self.max_length = -1 if field.max_length is None else field.max_length
        self.required = bool(field.required)
        self.choices: tuple[Any, ...] = tuple(field.choices)


STR: Final = 0
CHOICE: Final = 1
ANY: Final = 2
OTHER: Final = 3
_KINDS: Final[dict[str, int]] = {"str": STR, "choice": CHOICE, "any": ANY}


def check_fields(
    fields: dict[str, FieldRule],
    required: tuple[str, ...],
    trigger: str,
    payload: dict[str, Any],
    breach: bool,
) -> None:
    """Refuse a payload field the transition does not accept, a bad value or a missing one."""
    for name, value in payload.items():
        rule = fields.get(name)
        if rule is None:
            if breach and name in BREACH_FIELDS:
                continue
            raise ValidationError(
                field=name,
                value=value,
                expected=f"a field {trigger!r} accepts: "
                + (", ".join(map(repr, fields)) or "none"),
            )
        # Field.check's common passes, decided here from the rule's slots; any value they do
        # not pass (and every other kind) goes to Field.check, which raises
        kind = rule.kind
        if kind == STR:
            if type(value) is str:
                limit = rule.max_length
                if (limit < 0 or len(value) <= limit) and (not rule.required or value.strip()):
                    continue
        elif kind == CHOICE:
            if value in rule.choices:
                continue
        elif kind == ANY:
            continue
        rule.field.check(value)
    for name in required:
        if name not in payload:
            raise ValidationError(
                field=name, value=None, expected=f"given ({fields[name].field.kind})"
            )


def choose(
    spec: MachineSpec,
    plan: Plan,
    snapshot: WorkflowSnapshot,
    trigger: str,
    actor: Actor,
    at: datetime,
    payload: dict[str, Any],
    directory: Directory | None,
) -> tuple[Route, Context | None]:
    """The first candidate the actor may fire whose payload fits and whose guards pass.

    Returns the route and the context its guards read (``None`` if none was needed; its
    ``data`` is the snapshot's own, not a copy: the caller copies it before effects run).
    """
    breach = plan.breachable and actor == SYSTEM
    if not breach:
        authorise(snapshot, trigger, actor, plan.roles, directory)
    failures: list[tuple[int, Guard]] = []
    ctx: Context | None = None
    for route in plan.routes:
        if not breach:
            if actor.role not in route.roles:
                continue
            if route.actor_key is not None:
                check_holder(snapshot, route.transition, actor)
        if payload or route.required:  # an empty payload where none is required fits
            check_fields(route.fields, route.required, trigger, payload, breach)
        if ctx is None:
            # (spec, snapshot, trigger, source, dest, actor, at, payload, data, seq)
            ctx = Context(
                spec, snapshot, trigger, snapshot.state, route.dest, actor, at, payload,
                snapshot.data, snapshot.version + 1,
            )  # fmt: skip
        else:
            ctx.dest = route.dest
        for passed, (fn, arg, guard) in enumerate(route.guards):
            if not fn(ctx, arg):
                failures.append((passed, guard))
                break
        else:
            return route, ctx
    first = plan.routes[0].transition
    if not failures:  # pragma: no cover - the union of roles was checked above
        raise PermissionDenied(
            workflow_id=snapshot.workflow_id,
            trigger=trigger,
            actor_id=actor.id,
            role=actor.role,
            allowed_roles=first.roles,
        )
    # Report the candidates that got furthest: their unmet condition is the news.
    furthest = max(n for n, _ in failures)
    best = list({g.condition: g for n, g in failures if n == furthest}.values())
    raise GuardFailed(
        workflow_id=snapshot.workflow_id,
        trigger=trigger,
        condition=" or ".join(g.condition for g in best),
        clause=best[0].clause if len(best) == 1 else first.clause,
    )
