"""A :class:`~qaflow.spec.MachineSpec` as plain data, and its content fingerprint.

Every part of a spec is data (names, roles, fields, guards as expressions or vocabulary
references with arguments, effects, deadlines, the calendar's closure days), so its plain
form is canonical JSON and its fingerprint the SHA-256 of that text: two specs with the same
behaviour-bearing content have the same fingerprint, whatever process built them (a workflow
pins the fingerprint of the spec it started under). A spec that still
holds an older-style closure is written with the closure's qualified name and reports
``serialisable = False``: its fingerprint cannot see what the closure captured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qaflow.calendar import Duration
from qaflow.spec import (
    AddTask,
    CloseDeadline,
    Derived,
    DurationRef,
    ExtendDeadline,
    Notify,
    OpenDeadline,
    Update,
)

if TYPE_CHECKING:
    from qaflow.spec import (
        DeadlineRule,
        Effect,
        Field,
        Guard,
        MachineSpec,
        RollingRule,
        StateSpec,
    )

__all__ = ["spec_to_data"]


class _Writer:
    def __init__(self) -> None:
        self.closures = 0

    def callable_(self, fn: Callable[..., Any]) -> dict[str, str]:
        self.closures += 1
        return {"python": f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"}

    def args(self, args: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
        return {k: _plain(v) for k, v in args}

    def duration(self, value: object) -> Any:
        if isinstance(value, Duration):
            return str(value)
        if isinstance(value, DurationRef):
            return {"use": value.use, "args": self.args(value.args)}
        return self.callable_(value)  # type: ignore[arg-type]

    def guard(self, g: Guard) -> dict[str, Any]:
        out: dict[str, Any] = {"condition": g.condition, "clause": g.clause}
        if g.expr is not None:
            out["expr"] = g.expr
        elif g.use is not None:
            out["use"] = g.use
            out["args"] = self.args(g.args)
        else:
            assert g.fn is not None
            out["fn"] = self.callable_(g.fn)
        return out

    def rule(self, r: DeadlineRule) -> dict[str, Any]:
        return {
            "name": r.name,
            "duration": self.duration(r.duration),
            "breach_trigger": r.breach_trigger,
            "notify": list(r.notify),
            "clause": r.clause,
            "from_key": r.from_key,
        }

    def effect(self, e: Effect) -> dict[str, Any]:
        if isinstance(e, (Update, Derived)):
            kind = "update" if isinstance(e, Update) else "derived"
            if e.use is not None:
                return {"effect": kind, "use": e.use, "args": self.args(e.args)}
            return {"effect": kind, "fn": self.callable_(e.fn)}
        if isinstance(e, Notify):
            return {
                "effect": "notify",
                "roles": list(e.roles),
                "reason": e.reason,
                "clause": e.clause,
                "when": e.when,
            }
        if isinstance(e, AddTask):
            within = None if e.within is None else str(e.within)
            return {
                "effect": "task",
                "kind": e.kind,
                "owner_role": e.owner_role,
                "within": within,
                "clause": e.clause,
            }
        if isinstance(e, OpenDeadline):
            return {"effect": "open_deadline", "rule": self.rule(e.rule), "scope": e.scope}
        if isinstance(e, CloseDeadline):
            return {"effect": "close_deadline", "name": e.name}
        if isinstance(e, ExtendDeadline):
            return {"effect": "extend_deadline", "name": e.name, "by": self.duration(e.by)}
        raise TypeError(f"unknown effect {type(e).__name__}")  # pragma: no cover - closed union

    def field(self, f: Field) -> dict[str, Any]:
        return {
            "name": f.name,
            "kind": f.kind,
            "required": f.required,
            "min": f.min,
            "max": f.max,
            "choices": [_plain(c) for c in f.choices],
            "max_length": f.max_length,
        }

    def state(self, s: StateSpec) -> dict[str, Any]:
        return {
            "name": s.name,
            "terminal": s.terminal,
            "deadlines": [self.rule(r) for r in s.deadlines],
            "on_enter": [self.effect(e) for e in s.on_enter],
            "description": s.description,
        }

    def rolling(self, r: RollingRule) -> dict[str, Any]:
        return {
            "name": r.name,
            "cadence": [
                {
                    "when": c.when,
                    "first": None if c.first is None else str(c.first),
                    "every": None if c.every is None else str(c.every),
                    "since": c.since,
                    "windows": [[str(w.until), str(w.every)] for w in c.windows],
                    "from_key": c.from_key,
                    "clause": c.clause,
                }
                for c in r.cadence
            ],
            "met_by": list(r.met_by),
            "met_when": r.met_when,
            "restart_by": list(r.restart_by),
            "restart_when": r.restart_when,
            "follows": r.follows,
            "anchor": r.anchor,
            "notify": list(r.notify),
            "clause": r.clause,
            "description": r.description,
        }

    def spec(self, spec: MachineSpec) -> dict[str, Any]:
        out = self._spec(spec)
        if spec.rolling:  # only when present: specs without any keep their plain form
            out["rolling"] = [self.rolling(r) for r in spec.rolling]
        return out

    def _spec(self, spec: MachineSpec) -> dict[str, Any]:
        return {
            "name": spec.name,
            "policy": spec.policy,
            "policy_version": spec.policy_version,
            "initial": spec.initial,
            "description": spec.description,
            "closure_days": sorted(d.isoformat() for d in spec.calendar.closures),
            "states": [self.state(s) for s in spec.states],
            "transitions": [
                {
                    "trigger": t.trigger,
                    "sources": list(t.sources),
                    "dest": t.dest,
                    "roles": sorted(t.roles),
                    "fields": [self.field(f) for f in t.fields],
                    "guards": [self.guard(g) for g in t.guards],
                    "effects": [self.effect(e) for e in t.effects],
                    "clause": t.clause,
                    "actor_key": t.actor_key,
                    "reenter": t.reenter,
                    "description": t.description,
                }
                for t in spec.transitions
            ],
        }


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        pairs = all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str) for v in value)
        if value and pairs:
            return {k: _plain(v) for k, v in value}
        return [_plain(v) for v in value]
    return value


def spec_to_data(spec: MachineSpec) -> tuple[dict[str, Any], bool]:
    """The spec as JSON-compatible data, and whether it is free of closures."""
    writer = _Writer()
    data = writer.spec(spec)
    return data, writer.closures == 0
