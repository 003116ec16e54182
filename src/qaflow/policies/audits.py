"""Audit and moderation rules: the types live in :mod:`qaflow.procedure`; imported here too.

Kept so that ``from qaflow.policies.audits import AuditPolicy`` goes on working; new code
imports them from :mod:`qaflow.procedure`.
"""

from __future__ import annotations

from qaflow.procedure._audit import (
    AUDITOR,
    MODERATOR,
    WORKER,
    AuditPolicy,
    FeedbackRule,
    GradeRule,
    ModerationPolicy,
    NoticeRule,
    SampleRule,
    TaskRule,
    TimeLimit,
)

__all__ = [
    "AUDITOR",
    "MODERATOR",
    "WORKER",
    "AuditPolicy",
    "FeedbackRule",
    "GradeRule",
    "ModerationPolicy",
    "NoticeRule",
    "SampleRule",
    "TaskRule",
    "TimeLimit",
]
