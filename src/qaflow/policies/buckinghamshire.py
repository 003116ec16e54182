"""Policy of a Strengthening Families council (clause prefix BK): pure, frozen data.

Every definition cites the clause it encodes (:mod:`qaflow.policies.clauses` lists them);
the tests that enforce a clause name it. Durations are plain strings (``"3 weeks"``,
``"6 months"``) that :class:`qaflow.calendar.Duration` parses; role names are the ones a
host's directory resolves to people.

This module is split into sections by heading comments, one per procedure; each section only
adds module-level constants, so the module stays importable on its own.
"""

from __future__ import annotations

from typing import Final

from qaflow.policies.audits import (
    AUDITOR,
    AuditPolicy,
    GradeRule,
    ModerationPolicy,
    NoticeRule,
    SampleRule,
    TaskRule,
    TimeLimit,
)
from qaflow.policies.base import Policy
from qaflow.policies.forms import AuditForm, Grade, JudgementScale, Question, Section

#: The name and version every workflow of this policy pins, so a later version never changes
#: a running workflow.
POLICY: Final = Policy("buckinghamshire", "1", migration_roles=("head_of_service",))

# --- Case file audit and moderation (BK framework App. 1–2) ---  # noqa: RUF003 (the framework's own dash)

# BK-AUD-01: each judgement maps to an Ofsted grade. "Exceeds good" surpasses Good, so
# Outstanding; "meets good" is Good. The framework never grades a case audit Inadequate: its
# only rule below Good is "where an auditor does not grade an audit as at least good,
# managers ensure corrective action" (BK-AUD-05), so "does not meet good" is Requires
# improvement and a BK audit never fires BX-AUD-12's Inadequate chain. A serious
# safeguarding issue is escalated on its own path (BK-AUD-04), whatever the grade.
JUDGEMENT_SCALE: Final = JudgementScale(
    exceeds_good=Grade.OUTSTANDING,
    meets_good=Grade.GOOD,
    does_not_meet_good=Grade.REQUIRES_IMPROVEMENT,
    clause="BK-AUD-01",
)

#: Section ids and the grading question the audit machine refers to.
FIELDS_SECTION: Final = "fields"
OUTCOME_SECTION: Final = "outcome"
GRADING_QUESTION: Final = "overall"

# BK-AUD-01: every judged row takes a judgement with evidence and impact text.
_JUDGED_TEXT: Final = ("evidence", "impact")


def _field(qid: str, text: str, guidance: str) -> Question:
    # BK-AUD-01: one field of the generic audit tool (App. 1), judged by the auditor in
    # collaboration with the practitioner or manager; the judgement is the auditor's.
    return Question(
        id=qid,
        section=FIELDS_SECTION,
        text=text,
        kind="judgement",
        answered_by="auditor",
        text_fields=_JUDGED_TEXT,
        guidance=guidance,
        clause="BK-AUD-01",
    )


# App. 1: the fields of the generic audit tool, in the framework's order. The record may be
# reviewed before meeting the practitioner or together with them (App. 2), so the fields
# belong to the meeting stage.
_FIELDS: Final = Section(
    id=FIELDS_SECTION,
    title="Quality of child's experience",
    stage="meeting",
    clause="BK-AUD-01",
    questions=(
        _field(
            "involvement",
            "Children, young people and families are appropriately involved",
            "Impact of involving children and families in assessment, planning and "
            "intervention; views of significant males gathered; children seen, and seen "
            "alone; equal voice; direct work linked to the plan and the reduction of risk.",
        ),
        _field(
            "decision_making",
            "Decision making is effective and timely",
            "Timely management oversight and direction with recorded rationale; case "
            "recording clear, comprehensive and focused on the child's experience.",
        ),
        _field(
            "assessments",
            "Assessments are timely, comprehensive, analytical and of high quality, and "
            "lead to appropriately focused help",
            "Historical factors from an up to date chronology; risk, needs and protective "
            "factors, including parental capacity.",
        ),
        _field(
            "coordination",
            "Coordination between agencies is effective",
            "Joint working and information sharing improve and sustain the child's "
            "experience and progress.",
        ),
        _field(
            "diversity",
            "Consideration and impact of diversity",
            "For example age, disability, ethnicity, faith or belief, gender, identity, "
            "language, race and sexual orientation.",
        ),
        _field(
            "plans",
            "Quality of plans",
            "Up to date, timely, comprehensive, specific with measurable outcomes, dynamic "
            "and implemented; management oversight; influenced by the views of children and "
            "parents/carers and by diversity.",
        ),
        _field(
            "permanence",
            "Permanence is achieved without delay and reflects assessed needs",
            "Permanence for all children, including staying at home; plans in the child's "
            "best interests and achieved without delay; preparation for placement.",
        ),
        _field(
            "reviews",
            "Children and young people participate in and benefit from effective regular reviews",
            "Reviews scrutinised and challenged to support good progress; influence and "
            "impact of the IRO / child protection chair.",
        ),
        _field(
            "living_arrangements",
            "The quality of the child's living arrangements",
            "Consistent with assessed needs; matching, stability, contact with family and "
            "friends, support for the living arrangements (including adoption support).",
        ),
        _field(
            "independence",
            "Young people are prepared for independence and live in high quality "
            "accommodation that meets their needs",
            "Is it safe, permanent and affordable (children at home or looked after)?",
        ),
        _field(
            "outcomes",
            "How has the help provided improved outcomes?",
            "Impact on the life of each child: achieving their full potential (education, "
            "physical health, emotional well-being), networks in the community, safety.",
        ),
    ),
)
#: Ids of the judged practice fields, in form order (BK-AUD-01).
FIELD_IDS: Final = tuple(q.id for q in _FIELDS.questions)

# App. 1, last table: the auditor's overall grading, judged like a field with evidence and
# impact (BK-AUD-01), and optional additional comments. Agreed actions (action, by whom,
# by when) are audit records, not questions.
_OUTCOME: Final = Section(
    id=OUTCOME_SECTION,
    title="Auditor's overall grading",
    stage="grading",
    clause="BK-AUD-01",
    questions=(
        Question(
            id=GRADING_QUESTION,
            section=OUTCOME_SECTION,
            text="Auditor's overall grading",
            kind="judgement",
            answered_by="auditor",
            text_fields=_JUDGED_TEXT,
            guidance=(
                "Based on aggregated impact on outcomes: was progress sufficient and timely, "
                "could other action have been taken, was the pace of change appropriate?"
            ),
            clause="BK-AUD-01",
        ),
        Question(
            id="additional_comments",
            section=OUTCOME_SECTION,
            text="Auditor's additional comments",
            kind="text",
            answered_by="auditor",
            required=False,
            clause="BK-AUD-01",
        ),
    ),
)

# App. 1: the generic audit tool.
AUDIT_FORM: Final = AuditForm(
    name="buckinghamshire-case-file-audit",
    sections=(_FIELDS, _OUTCOME),
    grading_question=GRADING_QUESTION,
    judgement_scale=JUDGEMENT_SCALE,
    clause="BK-AUD-01",
)

# BK-AUD-02: the auditor has 3 weeks from allocation to complete the audit.
COMPLETION_WITHIN: Final = "3 weeks"
# BK-AUD-03: the audit looks back 6 months by default; the auditor may look further.
LOOKBACK: Final = "6 months"
LOOKBACK_MAY_EXTEND: Final = True
# BK-AUD-04: a serious safeguarding issue or significant concern is escalated, with the
# corrective action required, to senior managers immediately: the notification is written
# in the same step that records the concern, so there is no deadline to wait on. The framework
# says only "senior managers"; the senior roles it names are these two.
SAFEGUARDING_ESCALATION_ROLES: Final = ("head_of_service", "director_of_childrens_services")
# BK-AUD-05: an audit graded below Good needs corrective action on that case.
CORRECTIVE_ACTION_BELOW: Final = Grade.GOOD
# BK-MOD-01: a sample of each month's audits is moderated. The framework gives no size; qaflow's
# documented default samples one audit in ten, and at least one a month when any completed.
MODERATION_PERIOD: Final = "1 month"
MODERATION_SAMPLE_RATE: Final = 0.1
MODERATION_SAMPLE_MIN: Final = 1

# The rules above put together as the policies the audit and moderation machines are built
# from.
_BELOW_GOOD: Final = frozenset(g for g in Grade if g < CORRECTIVE_ACTION_BELOW)

BUCKINGHAMSHIRE_AUDIT: Final = AuditPolicy(
    policy=POLICY,
    form=AUDIT_FORM,
    stage_clauses={"meeting": "BK-AUD-01", "grading": "BK-AUD-01"},
    grade_rules=(
        # BK-AUD-05: not at least Good: managers make sure corrective action is taken.
        GradeRule(
            grades=_BELOW_GOOD,
            immediate_actions=True,
            notify=("team_manager",),
            reason="audit graded below Good: make sure corrective action is taken on the case",
            tasks=(
                TaskRule(kind="corrective_action", owner_role="team_manager", clause="BK-AUD-05"),
            ),
            clause="BK-AUD-05",
        ),
    ),
    actions_clause="BK-AUD-01",
    # BK-AUD-06: the audit goes on the child's file; the manager records oversight.
    completion_tasks=(
        TaskRule(kind="upload_to_child_file", owner_role=AUDITOR, clause="BK-AUD-06"),
        TaskRule(kind="management_oversight_note", owner_role="team_manager", clause="BK-AUD-06"),
    ),
    # BK-AUD-02: 3 weeks from allocation to complete.
    completion_limit=TimeLimit(
        within=COMPLETION_WITHIN,
        notify=(AUDITOR, "team_manager"),
        clause="BK-AUD-02",
    ),
    # BK-AUD-04: a serious safeguarding issue goes to senior managers immediately.
    safeguarding=NoticeRule(
        roles=SAFEGUARDING_ESCALATION_ROLES,
        reason="serious safeguarding issue found in an audit, with the corrective action "
        "required: address immediately",
        clause="BK-AUD-04",
    ),
    # BK-AUD-03: the audit looks back 6 months by default; the auditor may look further.
    lookback=LOOKBACK,
    lookback_clause="BK-AUD-03",
    moderation_window=MODERATION_PERIOD,
    moderation_clause="BK-MOD-01",
)
"""Buckinghamshire's case file audit (BK framework App. 1-2)."""

BUCKINGHAMSHIRE_MODERATION: Final = ModerationPolicy(
    audit=BUCKINGHAMSHIRE_AUDIT,
    # BK-MOD-01: a sample of each month's audits (one in ten, at least one).
    sample=SampleRule(
        lookback=MODERATION_PERIOD,
        share=MODERATION_SAMPLE_RATE,
        minimum=MODERATION_SAMPLE_MIN,
        clause="BK-MOD-01",
    ),
    allocator_roles=("psqa",),
    allocation_clause="BK-MOD-01",
)
"""Buckinghamshire's moderation (BK framework App. 2): only the sample is specified."""
