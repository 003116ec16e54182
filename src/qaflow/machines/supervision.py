"""The supervision machine: one workflow per practitioner, the policy's supervision cadence
(BX-SUP-01/02, BK-SUP-01).

The machine records the practitioner's experience and whether they hold cases, sessions with
their length, casework discussed and recorded on the child's file, and the yearly duties
(agreement, observation, appraisal); the council's file
(``policies/<council>/supervision.toml``) sets the cadence by experience and time in post.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from qaflow.machines._timescales import EventSpec, TimescaleMachine, TimescalePolicy
from qaflow.policies.base import Policy
from qaflow.spec import Field, MachineSpec

__all__ = [
    "EVENTS",
    "EXPERIENCE",
    "MACHINE",
    "ROLES",
    "load_supervision",
    "shipped_specs",
    "shipped_supervision",
    "supervision_spec",
]

MACHINE: Final = "supervision"
EXPERIENCE: Final = ("newly_qualified", "experienced")
ROLES: Final = frozenset({"supervisor", "team_manager", "practitioner"})
_SUPERVISOR = frozenset({"supervisor", "team_manager"})

EVENTS: Final = (
    EventSpec(
        "practitioner_joined",
        _SUPERVISOR,
        (
            Field("team_id"),
            Field("practitioner_id"),
            Field("experience", "choice", choices=EXPERIENCE),
            Field("case_holding", "bool"),
            Field("in_post_since", "datetime", required=False),
        ),
        stamp="started_at",
        copy=(
            ("in_post_since", "started_at"),
            ("team_id", "team_id"),
            ("practitioner_id", "practitioner_id"),
            ("experience", "experience"),
            ("case_holding", "case_holding"),
        ),
        starts=True,
        description="a practitioner's supervision starts (in post since now, or the date given)",
    ),
    EventSpec(
        "session_recorded",
        _SUPERVISOR,
        (
            Field("minutes", "int", min=1, max=600),
            Field("kind", "choice", required=False, choices=("individual", "group")),
        ),
        stamp="last_session_at",
        copy=(("minutes", "last_minutes"),),
        description="a supervision session held, with its length",
    ),
    EventSpec("casework_discussed", _SUPERVISOR, (Field("case_ref"),), stamp="casework_at"),
    EventSpec("casework_recorded", _SUPERVISOR, (Field("case_ref"),), stamp="recorded_at"),
    EventSpec(
        "audit_reviewed",
        _SUPERVISOR,
        (
            Field("audit_ref"),
            Field("kind", "choice", choices=("audit", "moderation")),
            Field("performance_issue", "bool", required=False),
        ),
        stamp="audit_reviewed_at",
        copy=(("audit_ref", "audit_ref"), ("performance_issue", "performance_issue")),
        description="an audit or moderation of the practitioner's case reviewed in supervision",
    ),
    EventSpec(
        "audit_actions_reviewed",
        _SUPERVISOR,
        (Field("audit_ref"),),
        stamp="audit_actions_reviewed_at",
        description="the actions from an audit reviewed at a later supervision",
    ),
    EventSpec("agreement_signed", _SUPERVISOR, stamp="agreement_at"),
    EventSpec("observation_recorded", _SUPERVISOR, stamp="observation_at"),
    EventSpec("appraisal_completed", _SUPERVISOR, stamp="appraisal_at"),
    EventSpec(
        "role_changed",
        _SUPERVISOR,
        (
            Field("experience", "choice", required=False, choices=EXPERIENCE),
            Field("case_holding", "bool", required=False),
        ),
        copy=(("experience", "experience"), ("case_holding", "case_holding")),
        description="the practitioner qualifies further or starts or stops holding cases",
    ),
    EventSpec("practitioner_left", _SUPERVISOR, ends=True),
)


_MACHINE: Final = TimescaleMachine(
    MACHINE, "supervision", EVENTS, "a practitioner's supervision and its cadence"
)


def supervision_spec(timescales: TimescalePolicy) -> MachineSpec:
    """The supervision machine under a council's file."""
    return _MACHINE.spec(timescales)


def shipped_supervision(council: str) -> TimescalePolicy:
    """A shipped council's file (``policies/<council>/supervision.toml``), read once."""
    return _MACHINE.shipped(council)


def load_supervision(path: str | Path, policy: Policy) -> TimescalePolicy:
    """A council's own file (raises :class:`PolicyError` listing every problem)."""
    return _MACHINE.load(path, policy)


def shipped_specs() -> tuple[MachineSpec, ...]:
    """The machine under every shipped council."""
    return _MACHINE.shipped_specs()
