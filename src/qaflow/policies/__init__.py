"""Council policies as data: one module per council, each citing the clauses it encodes.

The types the councils are written in: :mod:`~qaflow.policies.base` (a policy's name,
version and calendar), :mod:`qaflow.procedure` (audit forms, grading, audit and moderation
rules, and the procedure file reader; :mod:`~qaflow.policies.forms` and
:mod:`~qaflow.policies.audits` import them under their old names) and
:mod:`~qaflow.policies.ladders` (escalation ladders). The councils:
:mod:`~qaflow.policies.bexley` (clause prefix BX) and :mod:`~qaflow.policies.buckinghamshire`
(BK), each with its procedure files (``bexley/audit.toml``...), listed in one
catalogue (:data:`SHIPPED_AUDIT_FILES`); :mod:`~qaflow.policies.clauses` is the catalogue
of their clauses. Nothing here imports a machine: ``qaflow.machines`` builds from these.
"""

from qaflow.policies._catalogue import (
    DEMO_COUNCIL,
    SHIPPED_AUDIT_FILES,
    SHIPPED_CLAUSE_PREFIXES,
    SHIPPED_ESCALATION_FILES,
    SHIPPED_REPORT_FILES,
    shipped_audit_procedure,
    shipped_audit_procedures,
    shipped_defaults,
    shipped_escalation_procedure,
    shipped_escalation_procedures,
    shipped_report_file,
)
from qaflow.policies.base import Policy

__all__ = [
    "DEMO_COUNCIL",
    "SHIPPED_AUDIT_FILES",
    "SHIPPED_CLAUSE_PREFIXES",
    "SHIPPED_ESCALATION_FILES",
    "SHIPPED_REPORT_FILES",
    "Policy",
    "shipped_audit_procedure",
    "shipped_audit_procedures",
    "shipped_defaults",
    "shipped_escalation_procedure",
    "shipped_escalation_procedures",
    "shipped_report_file",
]
