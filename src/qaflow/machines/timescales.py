"""The case timescales machine: a child's case records practice events, the policy's
timescales run on them (BK-TS-01..07, BX-TS-01).

The machine fixes the practice events and the statuses a case can have; which deadlines
those events open, meet and restart is the council's file
(``policies/<council>/timescales.toml``, read by :mod:`qaflow.machines._timescales`). One
workflow per case: ``referral_received`` opens it, ``case_closed`` ends it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from qaflow.machines._timescales import EventSpec, TimescaleMachine, TimescalePolicy
from qaflow.policies.base import Policy
from qaflow.spec import Field, MachineSpec

__all__ = [
    "EVENTS",
    "MACHINE",
    "ROLES",
    "STATUSES",
    "case_spec",
    "load_case_timescales",
    "shipped_case_timescales",
    "shipped_specs",
]

MACHINE: Final = "case_timescales"

STATUSES: Final = (
    "referral",
    "assessment",
    "cin",
    "cp_plan",
    "looked_after",
    "private_fostering",
    "supervision_order",
    "interim_care_order",
    "adoptive_placement",
    "remanded",
    "care_leaver",
)
"""What a case can be (``data.status``); a cadence entry's ``when`` chooses among them."""

ROLES: Final = frozenset({"social_worker", "team_manager", "independent_worker"})
_PRACTICE = frozenset({"social_worker", "team_manager"})
_MANAGER = frozenset({"team_manager"})


def _status(name: str = "status", *, required: bool = True) -> Field:
    return Field(name, "choice", required=required, choices=STATUSES)


def _flag(name: str) -> Field:
    return Field(name, "bool", required=False)


EVENTS: Final = (
    EventSpec(
        "referral_received",
        _PRACTICE,
        (Field("team_id"), Field("social_worker_id"), _status(required=False)),
        stamp="referral_at",
        copy=(
            ("team_id", "team_id"),
            ("social_worker_id", "social_worker_id"),
            ("status", "status"),
        ),
        set=(("status", "referral"), ("permanent", False)),
        starts=True,
        description="a referral opens the case (and starts the contact timescale)",
    ),
    EventSpec(
        "contact_decision",
        _PRACTICE,
        (Field("decision", "choice", choices=("no_further_action", "early_help", "s17", "s47")),),
        stamp="decided_at",
        copy=(("decision", "decision"),),
        description="the decision on the response; feedback given to the referrer",
    ),
    EventSpec("assessment_visit", _PRACTICE, stamp="assessment_visit_at"),
    EventSpec("concern_identified", _PRACTICE, stamp="concern_at"),
    EventSpec("strategy_discussion", _MANAGER, stamp="strategy_at"),
    EventSpec("s47_started", _PRACTICE, stamp="s47_started_at"),
    EventSpec("s47_completed", _PRACTICE, stamp="s47_completed_at"),
    EventSpec("icpc_requested", _PRACTICE, stamp="icpc_requested_at"),
    EventSpec(
        "icpc_held",
        _PRACTICE,
        (Field("outcome", "choice", choices=("cp_plan", "cin")),),
        stamp="icpc_at",
        copy=(("outcome", "status"),),
        description="the initial child protection conference: a CP plan or CIN",
    ),
    EventSpec(
        "visit",
        _PRACTICE,
        (
            _flag("unannounced"),
            _flag("seen_alone"),
            Field("setting", "choice", required=False, choices=("main", "other")),
        ),
        stamp="last_visit_at",
        description="the child visited (announced unless said otherwise; where the child "
        "lives in more than one setting, which one)",
    ),
    EventSpec(
        "plan_review",
        _PRACTICE,
        (_flag("plan_changed"), _flag("chaired_by_manager")),
        stamp="reviewed_at",
        copy=(("chaired_by_manager", "last_review_chaired"),),
        set=(("last_review_chaired", False),),  # unless this review says it was chaired
        description="the plan reviewed (chaired by a manager or not)",
    ),
    EventSpec(
        "core_group",
        _PRACTICE,
        (_flag("chaired_by_manager"),),
        stamp="core_group_at",
        description="a core group meeting reviews and updates the child protection plan",
    ),
    EventSpec(
        "setting_added",
        _PRACTICE,
        stamp="setting_added_at",
        set=(("other_setting", True),),
        description="the child also lives in another setting (e.g. a residential school)",
    ),
    EventSpec(
        "setting_ended",
        _PRACTICE,
        set=(("other_setting", False),),
        description="the child no longer lives in a second setting",
    ),
    EventSpec("plan_updated", _PRACTICE, stamp="plan_updated_at"),
    EventSpec("significant_event", _PRACTICE, stamp="significant_event_at"),
    EventSpec("significant_event_recorded", _PRACTICE, stamp="significant_recorded_at"),
    EventSpec("missing_started", _PRACTICE, stamp="missing_at", set=(("missing", True),)),
    EventSpec(
        "child_found",
        _PRACTICE,
        (_flag("rhi_applies"),),
        stamp="found_at",
        set=(("missing", False),),
    ),
    EventSpec("return_visit", _PRACTICE, stamp="return_visit_at"),
    EventSpec("return_interview", frozenset({"independent_worker"}), stamp="rhi_at"),
    EventSpec("rhi_referral", _PRACTICE, stamp="rhi_referral_at"),
    EventSpec(
        "placement_started",
        _PRACTICE,
        stamp="placed_at",
        set=(("status", "looked_after"), ("permanent", False)),
        description="a placement starts (the child is looked after)",
    ),
    EventSpec("permanence_agreed", _MANAGER, stamp="permanence_at", set=(("permanent", True),)),
    EventSpec(
        "status_changed",
        _PRACTICE,
        (_status(),),
        stamp="status_at",
        copy=(("status", "status"),),
        description="the case's status changes (CIN plan, private fostering, remand...)",
    ),
    EventSpec("case_closed", _MANAGER, ends=True),
)


_MACHINE: Final = TimescaleMachine(
    MACHINE, "timescales", EVENTS, "a child's case: practice events and the timescales they keep"
)


def case_spec(timescales: TimescalePolicy) -> MachineSpec:
    """The timescales machine under a council's file."""
    return _MACHINE.spec(timescales)


def shipped_case_timescales(council: str) -> TimescalePolicy:
    """A shipped council's file (``policies/<council>/timescales.toml``), read once."""
    return _MACHINE.shipped(council)


def load_case_timescales(path: str | Path, policy: Policy) -> TimescalePolicy:
    """A council's own file (raises :class:`PolicyError` listing every problem)."""
    return _MACHINE.load(path, policy)


def shipped_specs() -> tuple[MachineSpec, ...]:
    """The machine under every shipped council."""
    return _MACHINE.shipped_specs()
