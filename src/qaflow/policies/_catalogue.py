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
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Final

import attrs

from qaflow.errors import PolicyError
from qaflow.procedure._audit_toml import AuditProcedure, load_audit_procedure
from qaflow.procedure._defaults import QaflowDefault
from qaflow.procedure._toml import ProcedureFile, loads_procedure

__all__ = [
    "DEMO_COUNCIL",
    "SHIPPED_AUDIT_FILES",
    "SHIPPED_CLAUSE_PREFIXES",
    "SHIPPED_ESCALATION_FILES",
    "SHIPPED_REPORT_FILES",
    "shipped_audit_procedure",
    "shipped_audit_procedures",
    "shipped_defaults",
    "shipped_escalation_procedure",
    "shipped_escalation_procedures",
    "shipped_report_file",
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


def _shipped_file(files: Mapping[str, str], name: str, expected: str) -> tuple[str, str]:
    """The source name and text of council ``name``'s file in ``files``; an unknown council
    is refused naming the ones listed."""
    relative = files.get(name)
    if relative is None:
        raise PolicyError(
            source="shipped policies",
            path="name",
            value=name,
            expected=f"{expected} (" + ", ".join(sorted(files)) + ")",
        )
    text = resources.files("qaflow.policies").joinpath(relative).read_text("utf-8")
    return f"qaflow/policies/{relative}", text


def _folder(files: Mapping[str, str], name: str) -> Traversable:
    """The folder of council ``name``'s file in ``files``: where its roles file is."""
    return resources.files("qaflow.policies").joinpath(files[name].rsplit("/", 1)[0])


@cache
def shipped_audit_procedure(name: str) -> AuditProcedure:
    """The shipped audit and moderation policies of council ``name`` (read once, cached)."""
    source, text = _shipped_file(SHIPPED_AUDIT_FILES, name, "a shipped council")
    return load_audit_procedure(source, text=text, base=_folder(SHIPPED_AUDIT_FILES, name))


def shipped_audit_procedures() -> tuple[AuditProcedure, ...]:
    """Every shipped council's audit and moderation policies, in catalogue order."""
    return tuple(shipped_audit_procedure(name) for name in SHIPPED_AUDIT_FILES)


def shipped_defaults() -> dict[str, tuple[QaflowDefault, ...]]:
    """Council -> the qaflow defaults marked in its shipped files (audit, timescales,
    supervision, QA calendar), each path prefixed with its file's name."""
    from qaflow.machines import qa_calendar, supervision, timescales

    out: dict[str, tuple[QaflowDefault, ...]] = {}
    for name, relative in SHIPPED_AUDIT_FILES.items():
        files = [
            (relative, shipped_audit_procedure(name).audit.defaults),
            (f"{name}/timescales.toml", timescales.shipped_case_timescales(name).defaults),
            (f"{name}/supervision.toml", supervision.shipped_supervision(name).defaults),
            (f"{name}/qa_calendar.toml", qa_calendar.shipped_qa_calendar(name).defaults),
        ]
        out[name] = tuple(
            attrs.evolve(mark, path=f"{file.split('/')[-1]}: {mark.path}")
            for file, marks in files
            for mark in marks
        )
    return out


@cache
def shipped_escalation_procedure(name: str) -> ProcedureFile:
    """The shipped escalation procedures (ladders) of council ``name`` (read once, cached)."""
    expected = "a council that ships escalation ladders"
    source, text = _shipped_file(SHIPPED_ESCALATION_FILES, name, expected)
    return loads_procedure(text, source=source, base=_folder(SHIPPED_ESCALATION_FILES, name))


def shipped_escalation_procedures() -> tuple[ProcedureFile, ...]:
    """Every shipped council's escalation procedures, in catalogue order."""
    return tuple(shipped_escalation_procedure(name) for name in SHIPPED_ESCALATION_FILES)


SHIPPED_REPORT_FILES: Final = MappingProxyType(
    {
        "bexley": "bexley/report.toml",
        "buckinghamshire": "buckinghamshire/report.toml",
    }
)
"""Policy name -> its QA report targets file, relative to ``qaflow/policies``."""


def shipped_report_file(name: str) -> tuple[str, str]:
    """The source name and text of council ``name``'s report targets file (read by
    :func:`qaflow.report.load_targets`; this package does not import the report)."""
    relative = SHIPPED_REPORT_FILES.get(name)
    if relative is None:
        raise PolicyError(
            source="shipped policies",
            path="name",
            value=name,
            expected="a shipped council (" + ", ".join(sorted(SHIPPED_REPORT_FILES)) + ")",
        )
    path = resources.files("qaflow.policies").joinpath(relative)
    return f"qaflow/policies/{relative}", path.read_text("utf-8")
