"""Command plans: what the interpreter needs of one (spec, state, trigger), worked out once.

A live command used to look up its candidate transitions, the union of their roles, the
payload field table of its transition, whether the transition may be a deadline's breach,
and whether it is "bare" (an internal transition without effects, which writes only its
event and data) on every call. None of that depends on the command, only on the spec, the
workflow's state and the trigger, so :func:`plan_of` builds a :class:`Plan` the first time a
pair is seen and keeps it on the spec (specs are immutable). The checks themselves still run
on every command, in the same order, against the plan's tables.
"""

from __future__ import annotations

from qaflow.spec import Field, MachineSpec, TransitionSpec

__all__ = ["Plan", "plan_of"]


class Plan:
    """What every command of one trigger in one state of one spec shares.

    ``single`` is the transition when there is exactly one candidate and it has no guards
    (the common case, checked without the general loop), else ``None``; ``fields``,
    ``required``, ``dest`` and ``bare`` describe ``single``. ``breachable``: the trigger is
    one a deadline fires on breach, so a system command may be exempt from role checks.
    """

    __slots__ = (
        "bare",
        "breachable",
        "candidates",
        "dest",
        "fields",
        "required",
        "roles",
        "single",
    )

    def __init__(self, spec: MachineSpec, state: str, candidates: tuple[TransitionSpec, ...]):
        self.candidates = candidates
        first = candidates[0]
        self.breachable = first.trigger in spec.breach_triggers
        self.roles: frozenset[str] = frozenset().union(*(t.roles for t in candidates))
        one = first if len(candidates) == 1 and not first.guards else None
        self.single = one
        self.fields: dict[str, Field] = spec.fields_of(first)
        self.required = tuple(name for name, f in self.fields.items() if f.required)
        self.dest = first.dest_from(state)
        self.bare = one is not None and one.dest is None and not one.effects and not spec.rolling


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
