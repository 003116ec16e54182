"""Audit forms and grading: the types live in :mod:`qaflow.procedure`; imported here too.

Kept so that ``from qaflow.policies.forms import AuditForm, Grade`` goes on working; new code
imports them from :mod:`qaflow.procedure`.
"""

from __future__ import annotations

from qaflow.procedure._forms import (
    ANSWER_KEYS,
    ROLES,
    STAGES,
    AuditForm,
    Question,
    QuestionKind,
    Role,
    Section,
    Stage,
    missing_answers,
    validate_answers,
)
from qaflow.procedure._grading import Grade, GradeBands, Judgement, JudgementScale, ScoreBand

__all__ = [
    "ANSWER_KEYS",
    "ROLES",
    "STAGES",
    "AuditForm",
    "Grade",
    "GradeBands",
    "Judgement",
    "JudgementScale",
    "Question",
    "QuestionKind",
    "Role",
    "ScoreBand",
    "Section",
    "Stage",
    "missing_answers",
    "validate_answers",
]
