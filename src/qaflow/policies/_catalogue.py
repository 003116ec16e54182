"""The one catalogue of the procedure files qaflow ships, and their loading (cached).

Each shipped council is a folder of procedure files under ``qaflow/policies/``; this module
lists them, so that nothing else (machines, simulation, report) names a council. The files
are read by the same loader a council's own file goes through
(:func:`qaflow.procedure.load_audit_procedure`).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Final

from qaflow.errors import PolicyError
from qaflow.procedure._audit_toml import AuditProcedure, load_audit_procedure
from qaflow.procedure._toml import ProcedureFile, loads_procedure

__all__ = [
    "DEMO_COUNCIL",
    "SHIPPED_AUDIT_FILES",
    "SHIPPED_CLAUSE_PREFIXES",
    "SHIPPED_ESCALATION_FILES",
    "shipped_audit_procedure",
    "shipped_audit_procedures",
    "shipped_escalation_procedure",
    "shipped_escalation_procedures",
]

SHIPPED_AUDIT_FILES: Final = MappingProxyType(
    {
        "bexley": "bexley/audit.toml",
        "buckinghamshire": "buckinghamshire/audit.toml",
    }
)
"""Policy name -> its audit-and-moderation procedure file, relative to ``qaflow/policies``."""

SHIPPED_ESCALATION_FILES: Final = MappingProxyType({"bexley": "bexley/escalation.toml"})
"""Policy name -> its escalation procedure file (the ladders), relative to ``qaflow/policies``."""

SHIPPED_CLAUSE_PREFIXES: Final = MappingProxyType(
    {"bexley": ("BX-", "NAT-"), "buckinghamshire": ("BK-", "NAT-CAL-")}
)
"""Policy name -> the prefixes of the clause IDs its policy page lists: its own clauses and
the national ones it follows."""

DEMO_COUNCIL: Final = "bexley"
"""The shipped council ``qaflow demo`` plays: one quarterly report is one council's, and this
council's procedures exercise every part of it (scales for distance travelled, family
feedback, follow-ups, 24 h tasks, moderation agreement, every ladder)."""


@cache
def shipped_audit_procedure(name: str) -> AuditProcedure:
    """The shipped audit and moderation policies of council ``name`` (read once, cached)."""
    relative = SHIPPED_AUDIT_FILES.get(name)
    if relative is None:
        raise PolicyError(
            source="shipped policies",
            path="name",
            value=name,
            expected="a shipped council (" + ", ".join(sorted(SHIPPED_AUDIT_FILES)) + ")",
        )
    path = resources.files("qaflow.policies").joinpath(relative)
    folder = resources.files("qaflow.policies").joinpath(relative.rsplit("/", 1)[0])
    return load_audit_procedure(
        f"qaflow/policies/{relative}", text=path.read_text("utf-8"), base=folder
    )


def shipped_audit_procedures() -> tuple[AuditProcedure, ...]:
    """Every shipped council's audit and moderation policies, in catalogue order."""
    return tuple(shipped_audit_procedure(name) for name in SHIPPED_AUDIT_FILES)


@cache
def shipped_escalation_procedure(name: str) -> ProcedureFile:
    """The shipped escalation procedures (ladders) of council ``name`` (read once, cached)."""
    relative = SHIPPED_ESCALATION_FILES.get(name)
    if relative is None:
        raise PolicyError(
            source="shipped policies",
            path="name",
            value=name,
            expected="a council that ships escalation ladders ("
            + ", ".join(sorted(SHIPPED_ESCALATION_FILES))
            + ")",
        )
    path = resources.files("qaflow.policies").joinpath(relative)
    folder = resources.files("qaflow.policies").joinpath(relative.rsplit("/", 1)[0])
    return loads_procedure(
        path.read_text("utf-8"), source=f"qaflow/policies/{relative}", base=folder
    )


def shipped_escalation_procedures() -> tuple[ProcedureFile, ...]:
    """Every shipped council's escalation procedures, in catalogue order."""
    return tuple(shipped_escalation_procedure(name) for name in SHIPPED_ESCALATION_FILES)
