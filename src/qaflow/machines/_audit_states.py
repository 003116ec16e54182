"""The audit machine's state, deadline and machine names (shared by its private parts)."""

from __future__ import annotations

from typing import Final

MACHINE: Final = "audit"
"""The machine name every audit workflow is pinned to (with its policy and version)."""

NEW: Final = "new"
ALLOCATED: Final = "allocated"
SELF_ASSESSMENT_REQUESTED: Final = "self_assessment_requested"
SELF_ASSESSMENT_DONE: Final = "self_assessment_done"
AUDIT_MEETING: Final = "audit_meeting"
GRADED: Final = "graded"
FEEDBACK_SOUGHT: Final = "feedback_sought"
ACTIONS_AGREED: Final = "actions_agreed"
COMPLETED: Final = "completed"
FOLLOWED_UP: Final = "followed_up"
CLOSED: Final = "closed"
CANCELLED: Final = "cancelled"


COMPLETION_DEADLINE: Final = "completion"
FOLLOW_UP_DEADLINE: Final = "follow_up"
MODERATION_WINDOW: Final = "moderation_window"

TEXT_LIMIT: Final = 4000

__all__ = [
    "ACTIONS_AGREED",
    "ALLOCATED",
    "AUDIT_MEETING",
    "CANCELLED",
    "CLOSED",
    "COMPLETED",
    "COMPLETION_DEADLINE",
    "FEEDBACK_SOUGHT",
    "FOLLOWED_UP",
    "FOLLOW_UP_DEADLINE",
    "GRADED",
    "MACHINE",
    "MODERATION_WINDOW",
    "NEW",
    "SELF_ASSESSMENT_DONE",
    "SELF_ASSESSMENT_REQUESTED",
    "TEXT_LIMIT",
]
