"""The procedure file format: how a council writes its procedures as data, with no code.

This package holds the format-neutral model of a council's procedures and the thin readers
that turn a file into it; it imports nothing from the machines, the engine or the stores.
Readers report every problem in a file at once, each naming the file and the key path.

The audit and moderation side: an :class:`AuditForm` (sections, :class:`Question` s, and
how its grading becomes a :class:`Grade`: :class:`GradeBands`, a :class:`JudgementScale`,
or the grade given directly), the :class:`AuditPolicy` and :class:`ModerationPolicy` rules,
and :func:`load_audit_procedure`, which reads both from one TOML file.
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
from qaflow.procedure._audit_toml import (
    MACHINE_ROLES,
    AuditProcedure,
    load_audit_procedure,
    read_audit_procedure,
)
from qaflow.procedure._forms import (
    ANSWER_KEYS,
    KINDS,
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
from qaflow.procedure._grading import (
    GRADE_VALUES,
    Grade,
    GradeBands,
    Judgement,
    JudgementScale,
    ScoreBand,
    direct_grade,
)
from qaflow.procedure._policy import Policy
from qaflow.procedure._reader import IDENT, Node, Problems, did_you_mean, parse_toml
from qaflow.procedure._versions import FORMAT_VERSION, migrate

__all__ = [
    "ANSWER_KEYS",
    "AUDITOR",
    "FORMAT_VERSION",
    "GRADE_VALUES",
    "IDENT",
    "KINDS",
    "MACHINE_ROLES",
    "MODERATOR",
    "ROLES",
    "STAGES",
    "WORKER",
    "AuditForm",
    "AuditPolicy",
    "AuditProcedure",
    "FeedbackRule",
    "Grade",
    "GradeBands",
    "GradeRule",
    "Judgement",
    "JudgementScale",
    "ModerationPolicy",
    "Node",
    "NoticeRule",
    "Policy",
    "Problems",
    "Question",
    "QuestionKind",
    "Role",
    "SampleRule",
    "ScoreBand",
    "Section",
    "Stage",
    "TaskRule",
    "TimeLimit",
    "did_you_mean",
    "direct_grade",
    "load_audit_procedure",
    "migrate",
    "missing_answers",
    "parse_toml",
    "read_audit_procedure",
    "validate_answers",
]
