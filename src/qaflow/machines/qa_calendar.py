"""The QA calendar machine: a programme's recurring duties as deadlines (BX-QA-01..03,
BK-QA-01).

One workflow per duty holder (a manager, a practitioner, the QA lead): each duty the
council's file (``policies/<council>/qa_calendar.toml``) gives their role recurs on the
calendar (``anchor = "due"``: the next month's duty falls due a month after this month's,
whenever this month's was done); a missed duty is a ``deadline_missed`` breach like any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from qaflow.errors import ValidationError
from qaflow.machines._timescales import EventSpec, TimescaleMachine, TimescalePolicy
from qaflow.policies.base import Policy
from qaflow.records import Actor
from qaflow.spec import Field, MachineSpec

if TYPE_CHECKING:
    from qaflow.engine import Engine
    from qaflow.records import Step

__all__ = [
    "EVENTS",
    "HOLDERS",
    "MACHINE",
    "ROLES",
    "calendar_spec",
    "load_qa_calendar",
    "record_audit_completion",
    "shipped_qa_calendar",
    "shipped_specs",
]

MACHINE: Final = "qa_calendar"
HOLDERS: Final = ("manager", "practitioner", "qa_lead")
"""Who holds a calendar (``data.holder``); a duty's ``when`` names the holders it binds."""
ROLES: Final = frozenset({"team_manager", "practitioner", "qa_lead"})
_ANY = ROLES

EVENTS: Final = (
    EventSpec(
        "calendar_started",
        frozenset({"qa_lead"}),
        (Field("team_id"), Field("holder", "choice", choices=HOLDERS), Field("holder_id")),
        stamp="started_at",
        copy=(("team_id", "team_id"), ("holder", "holder"), ("holder_id", "holder_id")),
        starts=True,
        description="a duty holder's calendar starts (at the start of a period)",
    ),
    EventSpec("audit_completed", _ANY, (Field("audit_ref", required=False),), stamp="audit_at"),
    EventSpec("self_assessment_done", _ANY, stamp="self_assessment_at"),
    EventSpec("moderation_sample_done", _ANY, stamp="moderation_at"),
    EventSpec("themes_reported", _ANY, stamp="themes_at"),
    EventSpec("qa_report_published", _ANY, stamp="qa_report_at"),
    EventSpec("qa_report_reviewed", _ANY, stamp="qa_review_at"),
    EventSpec("practice_week_held", _ANY, stamp="practice_week_at"),
    EventSpec(
        "practice_observations_recorded",
        _ANY,
        stamp="observations_at",
        description="the practice observations of a Practice Week recorded",
    ),
    EventSpec(
        "cycle_started",
        _ANY,
        stamp="cycle_started_at",
        description="a performance and accountability cycle starts (its week 1)",
    ),
    EventSpec("calendar_closed", frozenset({"qa_lead"}), ends=True),
)


_MACHINE: Final = TimescaleMachine(
    MACHINE, "qa_calendar", EVENTS, "a duty holder's recurring QA duties"
)


def calendar_spec(timescales: TimescalePolicy) -> MachineSpec:
    """The qa calendar machine under a council's file."""
    return _MACHINE.spec(timescales)


def shipped_qa_calendar(council: str) -> TimescalePolicy:
    """A shipped council's file (``policies/<council>/qa_calendar.toml``), read once."""
    return _MACHINE.shipped(council)


def load_qa_calendar(path: str | Path, policy: Policy) -> TimescalePolicy:
    """A council's own file (raises :class:`PolicyError` listing every problem)."""
    return _MACHINE.load(path, policy)


def shipped_specs() -> tuple[MachineSpec, ...]:
    """The machine under every shipped council."""
    return _MACHINE.shipped_specs()


#: The audit states in which an audit counts as completed (its auditor's duty is done).
_COMPLETED: Final = frozenset({"completed", "followed_up", "closed"})


def record_audit_completion(engine: Engine, calendar_id: str, audit_id: str) -> Step:
    """Feed a completed audit to its auditor's QA calendar (BX-QA-01 / BX-AUD-13, BK-QA-01):
    the ``audit_completed`` event that meets the manager's monthly audit duty (writes).

    The calendar must be the auditor's own (its ``holder_id`` is the audit's ``auditor_id``)
    and the audit completed; else :class:`~qaflow.errors.ValidationError` and nothing is
    written. Feeding the same audit again returns the first step (its idempotency key is the
    audit's id), so a host may feed every completion it sees without keeping count.
    """
    audit = engine.get(audit_id)
    if (
        audit.machine != "audit"
        or audit.state not in _COMPLETED
        or "completed_at" not in audit.data
    ):
        raise ValidationError(field="audit_id", value=audit_id, expected="a completed audit")
    holder = engine.get(calendar_id)
    if holder.machine != MACHINE or holder.data.get("holder_id") != audit.data.get("auditor_id"):
        raise ValidationError(
            field="calendar_id",
            value=calendar_id,
            expected="the QA calendar of the audit's own auditor",
        )
    actor = Actor(str(holder.data["holder_id"]), "team_manager")
    return engine.fire(
        calendar_id,
        "audit_completed",
        actor,
        {"audit_ref": audit_id},
        idempotency_key=f"audit_completed:{audit_id}",
    )
