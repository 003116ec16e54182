"""The QA calendar machine: a programme's recurring duties as deadlines (BX-QA-01..03,
BK-QA-01).

One workflow per duty holder (a manager, a practitioner, the QA lead): each duty the
council's file (``policies/<council>/qa_calendar.toml``) gives their role recurs on the
calendar (``anchor = "due"``: the next month's duty falls due a month after this month's,
whenever this month's was done); a missed duty is a ``deadline_missed`` breach like any other.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Final

from qaflow.machines._timescales import (
    EventSpec,
    TimescalePolicy,
    build_machine,
    load_file,
    load_shipped,
    shipped_councils,
    shipped_policy,
)
from qaflow.policies.base import Policy
from qaflow.spec import Field, MachineSpec

__all__ = [
    "EVENTS",
    "HOLDERS",
    "MACHINE",
    "ROLES",
    "calendar_spec",
    "load_qa_calendar",
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
    EventSpec("calendar_closed", frozenset({"qa_lead"}), ends=True),
)


def calendar_spec(timescales: TimescalePolicy) -> MachineSpec:
    """The QA calendar machine under a council's calendar file."""
    return build_machine(
        MACHINE, EVENTS, timescales, description="a duty holder's recurring QA duties"
    )


@cache
def shipped_qa_calendar(council: str) -> TimescalePolicy:
    """A shipped council's QA calendar (``policies/<council>/qa_calendar.toml``)."""
    return load_shipped(council, "qa_calendar", shipped_policy(council), EVENTS)


def load_qa_calendar(path: str | Path, policy: Policy) -> TimescalePolicy:
    """A council's own QA calendar file (raises :class:`PolicyError` listing problems)."""
    return load_file(path, policy, EVENTS)


def shipped_specs() -> tuple[MachineSpec, ...]:
    """The QA calendar machine under every shipped council."""
    return tuple(calendar_spec(shipped_qa_calendar(c)) for c in shipped_councils())
