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

__all__ = ["SHIPPED_AUDIT_FILES", "shipped_audit_procedure", "shipped_audit_procedures"]

SHIPPED_AUDIT_FILES: Final = MappingProxyType(
    {
        "bexley": "bexley/audit.toml",
        "buckinghamshire": "buckinghamshire/audit.toml",
    }
)
"""Policy name -> its audit-and-moderation procedure file, relative to ``qaflow/policies``."""


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
