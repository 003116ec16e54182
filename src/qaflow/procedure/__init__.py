"""The procedure file format: how a council writes its procedures as data, with no code.

This package holds the format-neutral model of a council's procedures and the thin readers
that turn a file into it; it imports nothing from the machines, the engine or the stores.
Readers report every problem in a file at once, each naming the file and the key path.

Escalation ladders (:class:`EscalationLadder`) are read from a procedure file by
:func:`load_procedure`; :func:`json_schema` is the published JSON Schema of each file kind
(:data:`FILE_KINDS`: escalation, audit, roles), generated from the same definitions
(``format.toml``) the readers walk. A council declares its roles once, in a roles file
(:func:`load_roles`) that each of its procedure files cites (``[policy] roles =
"roles.toml"``); a file may instead declare its own in ``[policy.roles]``.
A parallel track (a Cafcass referral
made alongside the council's own stages) is modelled *inside* the escalation's own workflow:
a ``refer`` command records it and notifies the external party while the stages go on. A
linked child workflow would need cross-workflow commands the engine does not have, and the
referral has no procedure of its own in the council's hands to drive; the escalation record
is where the report and the simulation look for it.

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
from qaflow.procedure._format import FILE_KINDS, json_schema
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
from qaflow.procedure._ladder import (
    IRO_DISPUTE_RESOLUTION,
    STATUTORY,
    AgreedTimescale,
    EscalationLadder,
    ExtensionRule,
    ExternalReferral,
    LadderStage,
    Notice,
    PartyDeadline,
    ReferralTrack,
)
from qaflow.procedure._policy import Policy
from qaflow.procedure._reader import IDENT, Node, Problems, did_you_mean, parse_toml
from qaflow.procedure._toml import ProcedureFile, load_procedure, loads_procedure
from qaflow.procedure._versions import FORMAT_VERSION, migrate
from qaflow.procedure._walk import load_roles, read_roles

__all__ = [
    "ANSWER_KEYS",
    "AUDITOR",
    "FILE_KINDS",
    "FORMAT_VERSION",
    "GRADE_VALUES",
    "IDENT",
    "IRO_DISPUTE_RESOLUTION",
    "KINDS",
    "MACHINE_ROLES",
    "MODERATOR",
    "ROLES",
    "STAGES",
    "STATUTORY",
    "WORKER",
    "AgreedTimescale",
    "AuditForm",
    "AuditPolicy",
    "AuditProcedure",
    "EscalationLadder",
    "ExtensionRule",
    "ExternalReferral",
    "FeedbackRule",
    "Grade",
    "GradeBands",
    "GradeRule",
    "Judgement",
    "JudgementScale",
    "LadderStage",
    "ModerationPolicy",
    "Node",
    "Notice",
    "NoticeRule",
    "PartyDeadline",
    "Policy",
    "Problems",
    "ProcedureFile",
    "Question",
    "QuestionKind",
    "ReferralTrack",
    "Role",
    "SampleRule",
    "ScoreBand",
    "Section",
    "Stage",
    "TaskRule",
    "TimeLimit",
    "did_you_mean",
    "direct_grade",
    "json_schema",
    "load_audit_procedure",
    "load_procedure",
    "load_roles",
    "loads_procedure",
    "migrate",
    "missing_answers",
    "parse_toml",
    "read_audit_procedure",
    "read_roles",
    "validate_answers",
]
