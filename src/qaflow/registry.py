"""Every machine qaflow ships, built from every shipped policy: what the CLI and the demo run.

A host system registers its own specs with :meth:`qaflow.Engine.register`; this module only
gathers the shipped ones so that a database written by the demo can be ticked, verified and
reported on by the command line.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from qaflow.errors import PolicyError
from qaflow.spec import MachineSpec

if TYPE_CHECKING:
    from qaflow.policies.ladders import EscalationLadder
    from qaflow.report import ReportPolicies

__all__ = ["shipped_ladders", "shipped_report_policies", "shipped_spec", "shipped_specs"]


def shipped_ladders() -> tuple[EscalationLadder, ...]:
    """The shipped escalation ladders, from the catalogue's escalation procedure files."""
    from qaflow.policies import shipped_escalation_procedures

    return tuple(lad for p in shipped_escalation_procedures() for lad in p.ladders)


def shipped_report_policies(policy: str | None = None) -> ReportPolicies:
    """What the QA report knows of the shipped councils: every audit policy and ladder, and
    the targets of ``policy``'s report file (of the first council in the catalogue when
    ``policy`` is ``None`` or ships no such file)."""
    from qaflow.policies import SHIPPED_REPORT_FILES, shipped_audit_procedures
    from qaflow.policies import shipped_report_file as report_file
    from qaflow.policies.clauses import CLAUSES
    from qaflow.report import ReportPolicies, load_targets

    name = next(iter(SHIPPED_REPORT_FILES))
    if policy is not None and policy in SHIPPED_REPORT_FILES:
        name = policy
    source, text = report_file(name)
    return ReportPolicies(
        audits=[p.audit for p in shipped_audit_procedures()],
        ladders=shipped_ladders(),
        targets=load_targets(source, text=text),
        targets_source=source,
        clauses={cid: clause.topic for cid, clause in CLAUSES.items()},
    )


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
