"""The one catalogue of the procedure files qaflow ships, and their loading (cached).

Each shipped council is a folder of procedure files under ``qaflow/policies/``; this module
lists them, so that nothing else (machines, simulation, report) names a council. The files
are read by the same loader a council's own file goes through
(:func:`qaflow.procedure.load_audit_procedure`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Final

from qaflow.errors import PolicyError
from qaflow.procedure._audit_toml import AuditProcedure, load_audit_procedure
from qaflow.procedure._toml import ProcedureFile, loads_procedure

__all__ = [
    "SHIPPED_AUDIT_FILES",
    "SHIPPED_ESCALATION_FILES",
    "shipped_audit_procedure",
    "shipped_audit_procedures",
    "shipped_escalations",
]

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
    relative, text = _read(SHIPPED_AUDIT_FILES, name, "a shipped council")
    return load_audit_procedure(f"qaflow/policies/{relative}", text=text)


def _read(files: Mapping[str, str], name: str, kind: str) -> tuple[str, str]:
    """The relative path and text of council ``name``'s file in ``files``."""
    relative = files.get(name)
    if relative is None:
        raise PolicyError(
            source="shipped policies",
            path="name",
            value=name,
            expected=f"{kind} (" + ", ".join(sorted(files)) + ")",
        )
    text = resources.files("qaflow.policies").joinpath(relative).read_text("utf-8")
    return relative, text


def shipped_audit_procedures() -> tuple[AuditProcedure, ...]:
    """Every shipped council's audit and moderation policies, in catalogue order."""
    return tuple(shipped_audit_procedure(name) for name in SHIPPED_AUDIT_FILES)


SHIPPED_ESCALATION_FILES: Final = MappingProxyType({"bexley": "bexley/escalation.toml"})
"""Policy name -> its escalation procedure file (ladders), relative to ``qaflow/policies``."""


@cache
def shipped_escalations(name: str | None = None) -> ProcedureFile:
    """The shipped escalation ladders of council ``name`` (read once, cached).

    ``None`` gives the first council in the catalogue that ships ladders: what a generated
    council escalates on when its own audit policy comes without them.
    """
    if name is None:
        name = next(iter(SHIPPED_ESCALATION_FILES))
    relative, text = _read(SHIPPED_ESCALATION_FILES, name, "a council that ships ladders")
    return loads_procedure(text, source=f"qaflow/policies/{relative}")
