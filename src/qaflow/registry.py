"""Every machine qaflow ships, built from every shipped policy: what the CLI and the demo run.

A host system registers its own specs with :meth:`qaflow.Engine.register`; this module only
gathers the shipped ones so that a database written by the demo can be ticked, verified and
reported on by the command line.
"""

from __future__ import annotations

from functools import lru_cache

from qaflow.errors import PolicyError
from qaflow.spec import MachineSpec

__all__ = ["shipped_spec", "shipped_specs"]


@lru_cache(maxsize=1)
def shipped_specs() -> tuple[MachineSpec, ...]:
    """The shipped machine specs, sorted by name (built once, then cached)."""
    from qaflow.machines.escalation import escalation_machine
    from qaflow.policies import shipped_escalation_procedures

    specs = [
        escalation_machine(ladder, procedure.policy)
        for procedure in shipped_escalation_procedures()
        for ladder in procedure.ladders
    ]
    specs.extend(_audit_specs())
    specs.extend(_timescale_specs())
    return tuple(sorted(specs, key=lambda s: (s.name, s.policy)))


def _audit_specs() -> list[MachineSpec]:
    from qaflow.machines.audit import audit_spec
    from qaflow.machines.moderation import moderation_spec
    from qaflow.policies import shipped_audit_procedures

    procedures = shipped_audit_procedures()
    return [
        *(audit_spec(p.audit) for p in procedures),
        *(moderation_spec(p.moderation) for p in procedures),
    ]


def _timescale_specs() -> list[MachineSpec]:
    from qaflow.machines import qa_calendar, supervision, timescales

    return [*timescales.shipped_specs(), *supervision.shipped_specs(), *qa_calendar.shipped_specs()]


def shipped_spec(name: str, policy: str | None = None) -> MachineSpec:
    """The shipped spec called ``name`` (``policy`` chooses where two councils share a name).

    Raises :class:`PolicyError` listing what is shipped when there is no single match.
    """
    found = [s for s in shipped_specs() if s.name == name and policy in (None, s.policy)]
    if len(found) == 1:
        return found[0]
    names = ", ".join(f"{s.name!r} ({s.policy})" for s in shipped_specs())
    if found:
        raise PolicyError(
            f"machine {name!r} is shipped for several policies; choose one of "
            + ", ".join(repr(s.policy) for s in found)
        )
    raise PolicyError(f"no shipped machine {name!r}; shipped: {names}")
