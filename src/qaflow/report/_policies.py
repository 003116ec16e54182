"""What the report is told about the policies: audit forms, escalation ladders, targets.

The report names no council. Whoever builds it passes the policies it should know
(:class:`ReportPolicies`); the CLI, the demo and the service pass the shipped ones from the
catalogue (:func:`qaflow.registry.shipped_report_policies`). A workflow is classified by the
machine it runs, read from that data: the audit and moderation machines by their names, an
escalation by the machine its ladder compiles to (never by a name prefix).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

import attrs

from qaflow.machines import audit as audit_machine
from qaflow.machines import moderation as moderation_machine
from qaflow.machines.escalation import machine_name
from qaflow.policies.ladders import EscalationLadder
from qaflow.procedure import AuditPolicy
from qaflow.report._model import Target

__all__ = ["KINDS", "ReportPolicies"]

KINDS: Final = ("audit", "moderation", "escalation")
"""The kinds of work the report counts."""


def _audits(value: Iterable[AuditPolicy]) -> tuple[AuditPolicy, ...]:
    return tuple(value)


def _ladders(value: Iterable[EscalationLadder]) -> tuple[EscalationLadder, ...]:
    return tuple(value)


def _targets(value: Mapping[str, Target]) -> Mapping[str, Target]:
    return MappingProxyType(dict(value))


def _texts(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen
class ReportPolicies:
    """The audit policies, ladders and targets a report knows.

    With an audit policy the report orders questions as its form does and knows its family
    feedback statements and self-assessment scales; with a ladder it counts that ladder's
    escalations, lists every stage (even one nobody reached) and names stages by their
    titles. ``targets`` (measure key -> :class:`Target`) give the RAG status; ``targets_source``
    says where they were read from; ``clauses`` name each clause's topic.
    """

    audits: tuple[AuditPolicy, ...] = attrs.field(default=(), converter=_audits)
    ladders: tuple[EscalationLadder, ...] = attrs.field(default=(), converter=_ladders)
    targets: Mapping[str, Target] = attrs.field(
        factory=dict, converter=_targets, eq=False, repr=False
    )
    targets_source: str = ""
    clauses: Mapping[str, str] = attrs.field(factory=dict, converter=_texts, eq=False, repr=False)
    """Clause id -> its topic, for the words after a clause id ("BX-AUD-09: Collaborative
    case audit")."""

    def audit(self, name: str) -> AuditPolicy | None:
        """The audit policy called ``name`` (the first given wins)."""
        return next((p for p in self.audits if p.name == name), None)

    def ladder(self, name: str) -> EscalationLadder | None:
        """The ladder called ``name`` or whose machine is ``name``."""
        return next((lad for lad in self.ladders if name in (lad.name, machine_name(lad))), None)

    def audit_map(self) -> dict[str, AuditPolicy]:
        out: dict[str, AuditPolicy] = {}
        for policy in self.audits:
            out.setdefault(policy.name, policy)
        return out

    def ladder_map(self) -> dict[str, EscalationLadder]:
        out: dict[str, EscalationLadder] = {}
        for ladder in self.ladders:
            out.setdefault(ladder.name, ladder)
        return out

    def machines(self) -> frozenset[str]:
        """Every machine :meth:`kind_of` counts (what the report's period reads ask for)."""
        return frozenset(
            {audit_machine.MACHINE, moderation_machine.MACHINE}
            | {machine_name(lad) for lad in self.ladders}
        )

    def kind_of(self, machine: str) -> str | None:
        """ "audit", "moderation" or "escalation" for a machine the report counts, else None."""
        if machine == audit_machine.MACHINE:
            return "audit"
        if machine == moderation_machine.MACHINE:
            return "moderation"
        if any(machine == machine_name(lad) for lad in self.ladders):
            return "escalation"
        return None

    def merged(self, other: ReportPolicies) -> ReportPolicies:
        """These policies with ``other``'s added (``other``'s targets win)."""
        return ReportPolicies(
            audits=(*self.audits, *other.audits),
            ladders=(*self.ladders, *other.ladders),
            targets={**self.targets, **other.targets},
            targets_source=other.targets_source or self.targets_source,
            clauses={**self.clauses, **other.clauses},
        )
