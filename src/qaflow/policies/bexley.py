"""Policy of a Signs of Safety council (clause prefix BX): pure, frozen data.

Every definition cites the clause it encodes (:mod:`qaflow.policies.clauses` lists them);
the tests that enforce a clause name it, so ``grep -r BX-AUD-07`` finds both. Durations
are plain strings (``"5 WD"``, ``"24 h"``) that :class:`qaflow.calendar.Duration` parses;
role names are the ones a host's directory resolves to people.

This module is split into sections by heading comments, one per procedure; each section only
adds module-level constants, so the module stays importable on its own.
"""

from __future__ import annotations

from typing import Final

from qaflow.policies.forms import (
    AuditForm,
    Grade,
    GradeBands,
    Question,
    QuestionKind,
    Role,
    ScoreBand,
    Section,
    Stage,
)

# --- Collaborative case audit (BX framework §1.1–1.3, Appendix a) ---  # noqa: RUF003 (the framework's own dash)

# BX-AUD-06: the auditor's overall 0-10 rating tied to Ofsted grades. The framework gives
# 0-2 Inadequate, 3-5 Requires improvement, 6 Good, and "Outstanding when 'good' has been
# reached and surpassed"; qaflow's documented default reads that as 7-10 Outstanding.
GRADE_BANDS: Final = GradeBands(
    bands=(
        ScoreBand(0, 2, Grade.INADEQUATE),
        ScoreBand(3, 5, Grade.REQUIRES_IMPROVEMENT),
        ScoreBand(6, 6, Grade.GOOD),
        ScoreBand(7, 10, Grade.OUTSTANDING),
    ),
    scale_min=0,
    scale_max=10,
    clause="BX-AUD-06",
)

#: Section ids the audit machine refers to (health check before the meeting, feedback).
CASE_DETAILS_SECTION: Final = "case_details"
SELF_ASSESSMENT_SECTION: Final = "self_assessment"
HEALTH_CHECK_SECTION: Final = "health_check"
AREAS_OF_PRACTICE_SECTION: Final = "areas_of_practice"
CHILD_FEEDBACK_SECTION: Final = "child_feedback"
FAMILY_FEEDBACK_SECTION: Final = "family_feedback"
NETWORK_FEEDBACK_SECTION: Final = "network_feedback"
OUTCOME_SECTION: Final = "outcome"
#: The question whose answer is the audit's overall grade (BX-AUD-06).
GRADING_QUESTION: Final = "overall"

# The free-text fields each kind of question needs.
# BX-AUD-03: each self-assessment scale comes with "what worked well" and "what would
# move it up".
_SELF_ASSESSMENT_TEXT: Final = ("what_worked_well", "what_would_move_it_up")
# BX-AUD-04: each health-check rating comes with areas of strength and to develop.
_HEALTH_CHECK_TEXT: Final = ("strengths", "areas_to_develop")
# BX-AUD-05: signs of impact with a reference to where the evidence is on the file
# (e.g. "direct work uploaded on 01/04/19"), areas of strength ("what worked well") and to
# develop ("what would move it up"), and the auditor's rationale.
_PRACTICE_TEXT: Final = (
    "signs_of_impact",
    "file_reference",
    "strengths",
    "areas_to_develop",
    "rationale",
)
_SCALE_ANCHORS_FAMILY: Final = ("Strongly disagree", "Strongly agree")


def _self_assessment(qid: str, text: str, anchors: tuple[str, str]) -> Question:
    # BX-AUD-03: the practitioner's own 0-10 scale, done before the meeting (BX-AUD-02).
    return Question(
        id=qid,
        section=SELF_ASSESSMENT_SECTION,
        text=text,
        kind="scale_0_10",
        answered_by="practitioner",
        text_fields=_SELF_ASSESSMENT_TEXT,
        anchors=anchors,
        clause="BX-AUD-03",
    )


def _health_check(number: int, text: str) -> Question:
    # BX-AUD-04: auditor rating 0-10, done before meeting the practitioner.
    return Question(
        id=f"Q{number}",
        section=HEALTH_CHECK_SECTION,
        text=text,
        kind="scale_0_10",
        answered_by="auditor",
        text_fields=_HEALTH_CHECK_TEXT,
        clause="BX-AUD-04",
    )


def _practice(number: int, text: str, scaling: str, anchors: tuple[str, str]) -> Question:
    # BX-AUD-05: a collaborative 0-10 scale agreed with the practitioner in the meeting.
    return Question(
        id=f"Q{number}",
        section=AREAS_OF_PRACTICE_SECTION,
        text=text,
        kind="scale_0_10",
        answered_by="collaborative",
        text_fields=_PRACTICE_TEXT,
        guidance=scaling,
        anchors=anchors,
        clause="BX-AUD-05",
    )


def _feedback(
    section: str,
    qid: str,
    text: str,
    kind: QuestionKind,
    role: Role,
    anchors: tuple[str, str] | None = None,
) -> Question:
    # BX-AUD-07: feedback questions are optional on the form; whether feedback was obtained,
    # or why not, is recorded by the audit machine.
    return Question(
        id=qid,
        section=section,
        text=text,
        kind=kind,
        answered_by=role,
        required=False,
        anchors=anchors,
        clause="BX-AUD-07",
    )


def _section(sid: str, title: str, stage: Stage, clause: str, *qs: Question) -> Section:
    return Section(id=sid, title=title, stage=stage, questions=qs, clause=clause)


# Form §1 (case demographics): dates, names and ids are audit records, not questions, so
# only the practice observation question is kept (BX-AUD-11).
_CASE_DETAILS: Final = _section(
    CASE_DETAILS_SECTION,
    "Case demographics",
    "health_check",
    "BX-AUD-11",
    Question(
        id="practice_observation",
        section=CASE_DETAILS_SECTION,
        text=(
            "Has a practice observation been undertaken in connection with this audit "
            "or is one required?"
        ),
        kind="yes_no",
        answered_by="auditor",
        clause="BX-AUD-11",
    ),
)

# Form §2 (practitioner preparation, before meeting the auditor): BX-AUD-02, BX-AUD-03.
_SELF_ASSESSMENT: Final = _section(
    SELF_ASSESSMENT_SECTION,
    "Practitioner preparation (before meeting the auditor)",
    "self_assessment",
    "BX-AUD-03",
    _self_assessment(
        "SA1",
        "What difference have you as a practitioner made in relation to this "
        "child/young person/young adult?",
        ("No difference", "Significant difference"),
    ),
    _self_assessment(
        "SA2",
        "To what extent do you use Signs of Safety / Signs of Wellbeing / Signs of Success "
        "with this child/young person/young adult and their family?",
        ("Never", "Always use"),
    ),
)

# Form §3 (case file health check, auditor only, before the meeting): BX-AUD-04.
_HEALTH_CHECK: Final = _section(
    HEALTH_CHECK_SECTION,
    "Case file health check",
    "health_check",
    "BX-AUD-04",
    _health_check(
        1,
        "Is all the demographic information accurate and up to date? "
        "(including professional involvements)",
    ),
    _health_check(
        2,
        "Case summary is up to date, giving a clear picture of what life is like for the "
        "child / young person / young adult.",
    ),
    _health_check(3, "Chronology includes relevant information of significant events."),
    _health_check(
        4,
        "Overall quality of the written records (case note, reports, statements, also "
        "Staying Together Family Plan and closure statement).",
    ),
    _health_check(5, "The family have a copy of the plan."),
)

# Form §4 (areas of practice, completed with the practitioner): BX-AUD-05. Q19 is the
# auditor's own rating of management oversight (BX-AUD-05).
_AREAS_OF_PRACTICE: Final = _section(
    AREAS_OF_PRACTICE_SECTION,
    "Areas of practice (completed with the practitioner)",
    "meeting",
    "BX-AUD-05",
    _practice(
        6,
        "Clear purpose for the work is evident within the case record. Parent/carer and "
        "child/young person/young adult are aware of the purpose.",
        "Would the family or child talk about a shared purpose with us?",
        ("They would share an opposing purpose", "They would talk about a shared purpose"),
    ),
    _practice(
        7,
        "Danger statements / safety goals and the safety plan (CIN, CP, FWB, Staying "
        "Together, children in our care) are clear to the child and family.",
        "Do the written documents share specific behavioural detail rather than jargon?",
        (
            "General language and jargon, no detail of the adult behaviour and its impact",
            "Specific behavioural detail: the actual behaviour, observation and who observed",
        ),
    ),
    _practice(
        8,
        "The worries described are understood by everybody.",
        "Is the safety scale crafted to fit this situation, connecting the danger statement "
        "and safety goal, and understood by everyone?",
        (
            "Standard safety scale; danger statement and safety goal unclear",
            "Crafted safety scale understood by everyone, even if not all agree",
        ),
    ),
    _practice(
        9,
        "The plan (FWB/CIN/CP/CLA/PP) is clear and describes who will do what and when to "
        "keep the child/young person/young adult safe, specific to the danger/worry and "
        "safety/wellbeing goals.",
        "How good is the working relationship with the child, parents and support people?",
        (
            "I doubt we're relating to them in any way that involves them",
            "A good working relationship focused on strengths that can share the worries",
        ),
    ),
    _practice(
        10,
        "The parent/carer is involved in the development and progress of the plan and/or "
        "assessment and has a copy.",
        "Where would the family rate the written assessments and plans?",
        (
            "I know it's about us but I can't understand any of it",
            "We may not agree with everything but we understand it",
        ),
    ),
    _practice(
        11,
        "The family support network has been identified and is fully participating in the "
        "plan; all naturally connected people are listed with their relationship and "
        "involvement.",
        "Have we done everything we can to find all relevant extended family and naturally "
        "connected people?",
        (
            "We asked once or twice but haven't followed through",
            "We've done everything we can think of, including the father's side",
        ),
    ),
    _practice(
        12,
        "A version of the plan is made in collaboration with the child/young person/young "
        "adult and they have a copy they can understand.",
        "Would the child say they understand the safety plan and were involved throughout?",
        (
            "They know they have a worker but not why they have a plan",
            "Involved in every way possible; they understand what's happening",
        ),
    ),
    _practice(
        13,
        "Quality of the direct work with the child/young person/young adult during the visits.",
        "Would the child say they understand what's happening and have been involved "
        "throughout the case?",
        (
            "They couldn't say why children's services is involved",
            "Involved in every way possible; they understand what's happening",
        ),
    ),
    _practice(
        14,
        "The place where the child/young person/young adult lives is safe, secure and stable.",
        "Does the child live where they feel safe, with sensitive, consistent, reliable "
        "adults who know them well?",
        (
            "No stability; frequently moved; adults come in and out of their life",
            "They feel safe with adults who are consistent and know them well",
        ),
    ),
    _practice(
        15,
        "There is evidence of safety over time as expressed in the safety plan.",
        "Where would the parents (or strongest network member) rate the safety plan?",
        (
            "The plan makes no sense; we only say we will do it",
            "The plan makes complete sense; we can and will do it",
        ),
    ),
    _practice(
        16,
        "The next steps are clear and the right thing to do to keep the child/young "
        "person/young adult safe (and at home), and there is evidence to support this.",
        "Where would the child, family or most important supporter rate the safety scale?",
        ("This makes no sense to me", "I 'get it' and it helps us know where we stand"),
    ),
    _practice(
        17,
        "There is clear critical thinking and analysis throughout the process.",
        "Are the workings out shown in plans, assessments, contacts and visits, with "
        "decisions tied to specific behavioural detail?",
        (
            "Little or no analysis; the plan is a list of services",
            "Workings out shown; decisions tied to behavioural detail",
        ),
    ),
    _practice(
        18,
        "All key professionals are clear about their role in contributing to and "
        "supporting the plan.",
        "Would the network and professionals feel they play a valued part in the plan?",
        (
            "They know there is a worker but play no part in the plan",
            "A network of support in which everyone plays a valued part",
        ),
    ),
    # BX-AUD-05: Q19 is rated by the auditor alone; the form asks for strengths, areas to
    # develop and signs of impact with it.
    Question(
        id="Q19",
        section=AREAS_OF_PRACTICE_SECTION,
        text="Overall quality of management oversight.",
        kind="scale_0_10",
        answered_by="auditor",
        text_fields=("strengths", "areas_to_develop", "signs_of_impact"),
        clause="BX-AUD-05",
    ),
)

# Form §5, child: only where of age and understanding and the parent/carer agrees
# (BX-AUD-07). The last two are scaled: the framework leaves a graphic scale in their place.
_CHILD_FEEDBACK: Final = _section(
    CHILD_FEEDBACK_SECTION,
    "Feedback from the child/young person/young adult",
    "feedback",
    "BX-AUD-07",
    _feedback(
        CHILD_FEEDBACK_SECTION,
        "C1",
        "Do you know the name of the worker who is working with your family?",
        "yes_no",
        "child",
    ),
    _feedback(CHILD_FEEDBACK_SECTION, "C2", "How often do you see them?", "text", "child"),
    _feedback(
        CHILD_FEEDBACK_SECTION,
        "C3",
        "Do you know why the worker is trying to help you?",
        "yes_no",
        "child",
    ),
    _feedback(
        CHILD_FEEDBACK_SECTION,
        "C4",
        "What difference has your worker made in helping you and the people who are "
        "important to you?",
        "text",
        "child",
    ),
    _feedback(CHILD_FEEDBACK_SECTION, "C5", "What do you like about your worker?", "text", "child"),
    _feedback(
        CHILD_FEEDBACK_SECTION,
        "C6",
        "Are there things your worker could do better?",
        "text",
        "child",
    ),
    _feedback(
        CHILD_FEEDBACK_SECTION,
        "C7",
        "How helpful were we to the people who are important to you?",
        "scale_0_10",
        "child",
        anchors=("Not helpful", "Very helpful"),
    ),
    _feedback(
        CHILD_FEEDBACK_SECTION,
        "C8",
        "How much better supported or safer do you feel now?",
        "scale_0_10",
        "child",
        anchors=("No better", "Much better"),
    ),
)

# Form §5, family: must be sought (BX-AUD-07). The nine statements come from the Signs of
# Safety national evaluation and are scored 0 (strongly disagree) to 10 (strongly agree).
# The same questions may be put to several family members; the role is asked, not names.
_FAMILY_STATEMENTS: Final = (
    "My worker listens to me in a way that shows they want to really understand my family.",
    "My worker does what they say they will do.",
    (
        "My worker notices what's working well in my family regarding the care, safety and "
        "wellbeing of my child/ren."
    ),
    "My worker has been clear with me about how they see the concerns about my family situation.",
    "My worker and I agree on what we are concerned about.",
    "I have felt involved in making plans about what to do.",
    (
        "My worker has spent time with my child/ren and has listened to what they say about "
        "the problems and what should happen."
    ),
    "My worker has made sure my child/ren fully understood what's being done to help them.",
    "My worker cares that we solve our problems.",
)
_FAMILY_FEEDBACK: Final = _section(
    FAMILY_FEEDBACK_SECTION,
    "Feedback from the family",
    "feedback",
    "BX-AUD-07",
    _feedback(FAMILY_FEEDBACK_SECTION, "F_role", "Role of family member", "text", "family"),
    _feedback(
        FAMILY_FEEDBACK_SECTION,
        "F_views",
        "What is going well? What could be done differently? What has made a difference?",
        "text",
        "family",
    ),
    *(
        _feedback(
            FAMILY_FEEDBACK_SECTION,
            f"F{number}",
            statement,
            "scale_0_10",
            "family",
            anchors=_SCALE_ANCHORS_FAMILY,
        )
        for number, statement in enumerate(_FAMILY_STATEMENTS, start=1)
    ),
    _feedback(
        FAMILY_FEEDBACK_SECTION,
        "F_change",
        "If you could change one thing about our work with you, what would it be?",
        "text",
        "family",
    ),
    _feedback(
        FAMILY_FEEDBACK_SECTION,
        "F_other",
        "Is there anything else you would like to tell us?",
        "text",
        "family",
    ),
)
#: Ids of the nine family feedback statements, in form order (BX-AUD-07, form §5).
FAMILY_STATEMENT_IDS: Final = tuple(f"F{n}" for n in range(1, len(_FAMILY_STATEMENTS) + 1))

# Form §5, network: where possible, from a member of the family or professional network
# (BX-AUD-07). The form asks "name and role"; only the role is kept.
_NETWORK_FEEDBACK: Final = _section(
    NETWORK_FEEDBACK_SECTION,
    "Feedback from a member of the family or professional network",
    "feedback",
    "BX-AUD-07",
    _feedback(NETWORK_FEEDBACK_SECTION, "N_role", "Role", "text", "network"),
    _feedback(
        NETWORK_FEEDBACK_SECTION,
        "N_views",
        "What is going well? What could be done differently? What has made a difference?",
        "text",
        "network",
    ),
)

# Form §6 (audit outcome): the auditor's overall rating with signs of impact and a
# rationale (BX-AUD-06). Actions (action, who, when) are audit records (BX-AUD-08).
_OUTCOME: Final = _section(
    OUTCOME_SECTION,
    "Audit outcome",
    "grading",
    "BX-AUD-06",
    Question(
        id=GRADING_QUESTION,
        section=OUTCOME_SECTION,
        text=(
            "Overall rating of case audit: having completed the collaborative case audit, "
            "what difference are we making to this child/young person/young adult?"
        ),
        kind="scale_0_10",
        answered_by="auditor",
        text_fields=("signs_of_impact", "rationale"),
        guidance="0-2 Inadequate, 3-5 Requires improvement, 6 Good, 7-10 Outstanding.",
        clause="BX-AUD-06",
    ),
)

# Appendix a: the collaborative case audit form, sections in the framework's order.
AUDIT_FORM: Final = AuditForm(
    name="bexley-collaborative-case-audit",
    sections=(
        _CASE_DETAILS,
        _SELF_ASSESSMENT,
        _HEALTH_CHECK,
        _AREAS_OF_PRACTICE,
        _CHILD_FEEDBACK,
        _FAMILY_FEEDBACK,
        _NETWORK_FEEDBACK,
        _OUTCOME,
    ),
    grading_question=GRADING_QUESTION,
    grade_bands=GRADE_BANDS,
    clause="BX-AUD-06",
)

# BX-AUD-01: the auditor audits a child from another team than their own.
AUDITOR_FROM_OTHER_TEAM: Final = True
# BX-AUD-13: every manager completes one collaborative audit a month.
AUDITS_PER_MANAGER: Final = 1
AUDIT_PERIOD: Final = "1 month"
# BX-AUD-08: below Good, the immediate actions needed to reach Good must be recorded.
IMMEDIATE_ACTIONS_BELOW: Final = Grade.GOOD
# BX-AUD-09: the auditor follows up with the manager within 5 working days of completion.
FOLLOW_UP_WITHIN: Final = "5 WD"
# BX-AUD-12: who the auditor notifies of an Inadequate audit. The guidance says assistant
# director, the form's note "deputy director"; one senior role is notified, named here
# "assistant_director". PSQA must be told of every Inadequate audit (BX framework §1.3).
INADEQUATE_NOTIFY_ROLES: Final = (
    "worker",
    "team_manager",
    "service_manager",
    "head_of_service",
    "assistant_director",
    "psqa",
)
# BX-AUD-12: immediate tasks of an Inadequate audit are actioned within 24 hours.
INADEQUATE_TASK_WITHIN: Final = "24 h"
# BX-AUD-11: an Inadequate audit adds a practice observation to its actions.
INADEQUATE_REQUIRED_ACTIONS: Final = ("practice_observation",)

# BX-MOD-01: the moderation list is drawn from cases audited in the last 6 months.
MODERATION_LOOKBACK: Final = "6 months"
# BX-MOD-01: who PSQA may allocate a moderation to (never the audit's own auditor).
MODERATOR_ROLES: Final = (
    "consultant_social_worker",
    "cp_chair",
    "iro",
    "service_manager",
    "head_of_service",
    "deputy_director",
)
# BX-MOD-06: if the case remains Inadequate or actions are outstanding, these are
# notified and tasks are actioned within 24 hours.
MODERATION_FOLLOW_UP_ROLES: Final = ("worker", "team_manager", "service_manager")
MODERATION_TASK_WITHIN: Final = "24 h"
# BX-MOD-06: the head of service for PSQA is told of every moderation graded Inadequate
# ("psqa"; BX framework §1.3 also names the service manager, already notified above).
MODERATION_INADEQUATE_NOTIFY_ROLES: Final = (*MODERATION_FOLLOW_UP_ROLES, "psqa")


# --- Escalations (BX framework §5.3; qaflow's default ladders) ---
# Appended as its own section: the import sits here, not at the top, so the section stays
# self-contained (ruff E402 is silenced for that reason only).
from qaflow.policies.base import Policy  # noqa: E402
from qaflow.policies.ladders import (  # noqa: E402
    EscalationLadder,
    ExtensionRule,
    ExternalReferral,
    LadderStage,
    Notice,
)

#: The name and version every workflow of this policy pins, so a later version never changes
#: a running workflow: escalations here, audits and moderations in the section below.
POLICY: Final = Policy("bexley", "1", migration_roles=("head_of_service",))

# BX-ESC-CP-01: the chair's concerns: expected practice not delivered, or safeguarding;
# the other categories are qaflow's common list.
CP_CHAIR_REASONS: Final = (
    "practice_not_as_expected",
    "safeguarding_concern",
    "plan_drift",
    "visits_not_done",
    "no_allocated_worker",
    "other",
)
CP_CHAIR_LADDER: Final = EscalationLadder(
    name="bexley_cp_chair",
    kind="cp_chair",
    title="Child protection conference chair escalation",
    raiser="cp_chair",
    subject="child",
    reasons=CP_CHAIR_REASONS,
    # BX-ESC-CP-01: first a discussion with the social worker and their manager, recorded on
    # the child's file (qaflow default: 5 WD to resolve it informally).
    informal=LadderStage(
        ("social_worker", "team_manager"),
        "5 WD",
        title="Social worker and team manager",
        task="record the informal discussion on the child's file",
        clause="BX-ESC-CP-01",
    ),
    # BX-ESC-CP-02: four stages, each holder with a response deadline (qaflow's default
    # ladder: 5 WD each).
    stages=(
        LadderStage(("team_manager",), "5 WD", title="Team manager", clause="BX-ESC-CP-02"),
        LadderStage(("service_manager",), "5 WD", title="Service manager", clause="BX-ESC-CP-02"),
        LadderStage(("head_of_service",), "5 WD", title="Head of service", clause="BX-ESC-CP-02"),
        LadderStage(
            ("assistant_director", "director"),
            "5 WD",
            title="Assistant director / director of children's services",
            clause="BX-ESC-CP-02",
        ),
    ),
    # NAT-CP-01: the chair may bypass any stage.
    bypass=True,
    bypass_clause="NAT-CP-01",
    # NAT-CP-01: the chair moves on when no response arrives in time: a missed deadline tells
    # the chair (and the holder); it does not move the escalation by itself.
    breach="notify",
    breach_clause="NAT-CP-01",
    # BX-ESC-CP-02: managers may ask the chair for further time, who grants or refuses it
    # (the framework sets no bound; qaflow default: one extension of up to 5 WD per stage).
    extensions=ExtensionRule(1, "5 WD", per="stage", clause="BX-ESC-CP-02"),
    clause="BX-ESC-CP-02",
    # BX-ESC-CP-03: the chair may resolve or withdraw at any stage.
    close_clause="BX-ESC-CP-03",
)

# BX-ESC-IRO-*: concerns an IRO raises about a child we care for (plan drift, visits...).
IRO_REASONS: Final = (
    "plan_drift",
    "visits_not_done",
    "no_allocated_worker",
    "safeguarding_concern",
    "practice_not_as_expected",
    "other",
)
IRO_LADDER: Final = EscalationLadder(
    name="bexley_iro",
    kind="iro",
    title="Independent reviewing officer escalation (children we care for)",
    raiser="iro",
    subject="child",
    reasons=IRO_REASONS,
    # NAT-IRO-01: informal resolution with the social worker or their manager comes first,
    # recorded on the child's file (qaflow default: 5 WD).
    informal=LadderStage(
        ("social_worker", "team_manager"),
        "5 WD",
        title="Social worker and team manager",
        task="record the informal resolution on the child's file",
        clause="NAT-IRO-01",
    ),
    # BX-ESC-IRO-01: five stages: four council stages here, the Cafcass referral (below) the
    # fifth. NAT-IRO-03: 4 x 5 WD = 20 WD, the most the formal stages may add up to.
    stages=(
        LadderStage(("team_manager",), "5 WD", title="Team manager", clause="BX-ESC-IRO-01"),
        LadderStage(("service_manager",), "5 WD", title="Service manager", clause="BX-ESC-IRO-01"),
        LadderStage(("head_of_service",), "5 WD", title="Head of service", clause="BX-ESC-IRO-01"),
        LadderStage(
            ("director",),
            "5 WD",
            title="Director of children's services",
            clause="BX-ESC-IRO-01",
        ),
    ),
    # BX-ESC-IRO-03: the child is consulted and kept informed at each stage.
    informed=("child",),
    informed_clause="BX-ESC-IRO-03",
    # BX-ESC-IRO-02: when raised, the child is told their rights and helped to an advocate
    # and/or legal representation.
    on_raise=(
        Notice(
            ("child",),
            "your rights, and help to get an advocate or legal representation",
            clause="BX-ESC-IRO-02",
        ),
    ),
    # NAT-IRO-02: the IRO may bypass any stage.
    bypass=True,
    bypass_clause="NAT-IRO-02",
    breach="notify",
    # BX-ESC-IRO-04: unresolved after the council's stages, the IRO refers to Cafcass
    # (terminal); NAT-IRO-04: or at any point, even when starting the process.
    referral=ExternalReferral(
        "cafcass",
        title="Referral to Cafcass",
        when="any_time",
        clause="BX-ESC-IRO-04",
        any_time_clause="NAT-IRO-04",
    ),
    # BX-ESC-IRO-01: the IRO may grant managers further time before the next stage
    # (qaflow default bound: one extension of up to 5 WD per stage).
    extensions=ExtensionRule(1, "5 WD", per="stage", clause="BX-ESC-IRO-01"),
    clause="BX-ESC-IRO-01",
)

# BX-ESC-FIRO-01 (BX framework §5.3): problems with a foster carer's care arrangement: the
# provision of care, resources to support it, or poor practice.
FIRO_REASONS: Final = (
    "provision_of_care",
    "resources_or_support",
    "practice_not_as_expected",
    "safeguarding_concern",
    "other",
)
FIRO_LADDER: Final = EscalationLadder(
    name="bexley_firo",
    kind="firo",
    title="Fostering independent reviewing officer escalation",
    raiser="firo",
    subject="foster_carer",
    reasons=FIRO_REASONS,
    # BX-ESC-FIRO-01: informal resolution first with the supervising social worker or the
    # fostering manager, as a case note on the foster carer's file; the framework sets no
    # timescale ("appropriate to the foster carer's and/or child's needs"), so none opens.
    informal=LadderStage(
        ("supervising_social_worker", "fostering_manager"),
        None,
        title="Supervising social worker or fostering manager",
        task="case note of the informal resolution on the foster carer's file",
        clause="BX-ESC-FIRO-01",
    ),
    # BX-ESC-FIRO-02: team manager/service manager 5 WD, head of service 5 WD, assistant
    # director 5 WD, director 8 WD.
    stages=(
        LadderStage(
            ("team_manager", "service_manager"),
            "5 WD",
            title="Team manager / service manager",
            clause="BX-ESC-FIRO-02",
        ),
        LadderStage(("head_of_service",), "5 WD", title="Head of service", clause="BX-ESC-FIRO-02"),
        LadderStage(
            ("assistant_director",),
            "5 WD",
            title="Assistant director",
            clause="BX-ESC-FIRO-02",
        ),
        LadderStage(("director",), "8 WD", title="Director", clause="BX-ESC-FIRO-02"),
    ),
    # BX-ESC-FIRO-05: the foster carer is consulted and kept informed at each stage.
    informed=("foster_carer",),
    informed_clause="BX-ESC-FIRO-05",
    # BX-ESC-FIRO-03: the FIRO may bypass any stage, to the level they judge right.
    bypass=True,
    bypass_clause="BX-ESC-FIRO-03",
    breach="notify",
    # BX-ESC-FIRO-04: managers may request further time before escalation to the next stage
    # (qaflow default bound: one extension of up to 5 WD per stage).
    extensions=ExtensionRule(1, "5 WD", per="stage", clause="BX-ESC-FIRO-04"),
    clause="BX-ESC-FIRO-02",
)

#: The three default escalation ladders (BX §5.3; qaflow's defaults).
ESCALATION_LADDERS: Final = (CP_CHAIR_LADDER, IRO_LADDER, FIRO_LADDER)


# --- Audit and moderation rules (BX framework §1.1-1.3) ---
# The audit form and the values above, put together as the policies the audit and
# moderation machines are built from. Its own section, like the escalations: the imports sit
# here (ruff E402 is silenced for that reason only).
from qaflow.policies.audits import (  # noqa: E402
    AUDITOR,
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

# BX-AUD-12: the immediate tasks of an Inadequate audit, each due within 24 h: the worker's
# immediate tasks, and the manager's management oversight note recording case direction and
# tasks.
BX_INADEQUATE_TASKS: Final = (
    TaskRule(
        kind="immediate_tasks",
        owner_role=WORKER,
        within=INADEQUATE_TASK_WITHIN,
        clause="BX-AUD-12",
    ),
    TaskRule(
        kind="management_oversight_note",
        owner_role="team_manager",
        within=INADEQUATE_TASK_WITHIN,
        clause="BX-AUD-12",
    ),
)

_BELOW_GOOD: Final = frozenset(g for g in Grade if g < IMMEDIATE_ACTIONS_BELOW)

BEXLEY_AUDIT: Final = AuditPolicy(
    policy=POLICY,
    form=AUDIT_FORM,
    stage_clauses={
        "self_assessment": "BX-AUD-03",
        "health_check": "BX-AUD-04",
        "meeting": "BX-AUD-05",
        "grading": "BX-AUD-06",
        "feedback": "BX-AUD-07",
    },
    # BX-AUD-01: the auditor is from another team; managers see their team's files audited.
    other_team_clause="BX-AUD-01",
    allocation_notice=NoticeRule(
        roles=("team_manager",),
        reason="a case in your team has been allocated for audit",
        clause="BX-AUD-01",
    ),
    # BX-AUD-02: the self-assessment is requested before the meeting.
    self_assessment_notice=NoticeRule(
        roles=(WORKER,),
        reason="please complete the self-assessment before the audit meeting",
        clause="BX-AUD-02",
    ),
    self_assessment_task=TaskRule(kind="self_assessment", owner_role=WORKER, clause="BX-AUD-02"),
    grade_rules=(
        # BX-AUD-08: below Good, immediate actions to reach Good must be recorded.
        GradeRule(grades=_BELOW_GOOD, immediate_actions=True, clause="BX-AUD-08"),
        # BX-AUD-12: Inadequate notifies the exact roles; immediate tasks within 24 h.
        GradeRule(
            grades={Grade.INADEQUATE},
            notify=INADEQUATE_NOTIFY_ROLES,
            reason="audit graded Inadequate: actions needed to improve the case to Good",
            tasks=BX_INADEQUATE_TASKS,
            clause="BX-AUD-12",
        ),
        # BX-AUD-11: Inadequate adds a practice observation to the actions.
        GradeRule(
            grades={Grade.INADEQUATE},
            required_actions=INADEQUATE_REQUIRED_ACTIONS,
            clause="BX-AUD-11",
        ),
    ),
    actions_clause="BX-AUD-08",
    feedback=FeedbackRule(questions=FAMILY_STATEMENT_IDS, clause="BX-AUD-07"),
    # BX-AUD-10: manager and practitioner review the audit in supervision.
    completion_tasks=(
        TaskRule(kind="supervision_review", owner_role="team_manager", clause="BX-AUD-10"),
    ),
    follow_up=TimeLimit(
        within=FOLLOW_UP_WITHIN, notify=(AUDITOR, "team_manager"), clause="BX-AUD-09"
    ),
    practice_week_action="practice_observation",
    practice_week_clause="BX-AUD-11",
    moderation_window=MODERATION_LOOKBACK,
    moderation_clause="BX-MOD-01",
)
"""Bexley's collaborative case audit (BX framework §1.1-1.3, Appendix a)."""

# BX-MOD-01 gives no sample size: the rule "all Inadequate plus a share of the rest"
# with qaflow's default share, one in ten (the BK default too).
BX_MODERATION_SAMPLE_SHARE: Final = 0.1

BEXLEY_MODERATION: Final = ModerationPolicy(
    audit=BEXLEY_AUDIT,
    # BX-MOD-01: from audits of the last 6 months; PSQA allocates; never the auditor.
    sample=SampleRule(
        lookback=MODERATION_LOOKBACK,
        always={Grade.INADEQUATE},
        share=BX_MODERATION_SAMPLE_SHARE,
        clause="BX-MOD-01",
    ),
    allocator_roles=("psqa",),
    moderator_roles=MODERATOR_ROLES,
    allocation_clause="BX-MOD-01",
    scaling_clause="BX-MOD-02",
    actions_clause="BX-MOD-03",
    agreement_clause="BX-MOD-04",
    disagreement_clause="BX-MOD-05",
    # BX-MOD-04: worker and manager are told the moderation is complete; a management
    # oversight note is recorded.
    completion_notice=NoticeRule(
        roles=(WORKER, "team_manager"),
        reason="the moderation of this audit is complete",
        clause="BX-MOD-04",
    ),
    completion_tasks=(
        TaskRule(kind="management_oversight_note", owner_role="team_manager", clause="BX-MOD-04"),
    ),
    # BX-MOD-06: case remains Inadequate or actions outstanding: notify, tasks in 24 h; the
    # head of service for PSQA hears of every moderation graded Inadequate.
    follow_up_notice=NoticeRule(
        roles=MODERATION_FOLLOW_UP_ROLES,
        reason="after moderation the case needs action: tasks to be actioned within 24 hours",
        clause="BX-MOD-06",
    ),
    inadequate_notice=NoticeRule(
        roles=MODERATION_INADEQUATE_NOTIFY_ROLES,
        reason="moderation graded the case Inadequate: tasks to be actioned within 24 hours",
        clause="BX-MOD-06",
    ),
    follow_up_tasks=(
        TaskRule(
            kind="moderation_tasks",
            owner_role=WORKER,
            within=MODERATION_TASK_WITHIN,
            clause="BX-MOD-06",
        ),
        TaskRule(
            kind="management_oversight_note",
            owner_role="team_manager",
            within=MODERATION_TASK_WITHIN,
            clause="BX-MOD-06",
        ),
    ),
)
"""Bexley's moderation (BX framework §1.3, Fig 1.4)."""
