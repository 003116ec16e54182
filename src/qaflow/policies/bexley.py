"""Policy of a Signs of Safety council (prefix BX, seed 000): pure, frozen data.

Every definition cites the clause it encodes (see ``POLICIES.md``); the tests that enforce
a clause name it, so ``grep -r BX-AUD-07`` finds both. The collaborative case audit and its
moderation are the procedure file ``bexley/audit.toml``, read by the same loader as any
council's file; the names below are read from it for the code and tests that use them.
Durations are plain strings (``"5 WD"``, ``"24 h"``) that :class:`qaflow.calendar.Duration`
parses; role names are the ones a host's directory resolves to people.
"""

from __future__ import annotations

from typing import Final

from qaflow.policies._catalogue import shipped_audit_procedure
from qaflow.procedure._grading import Grade

# --- Collaborative case audit and moderation (seed 000 §1.1-1.3, Appendix a: audit.toml) ---

BEXLEY_AUDIT: Final = shipped_audit_procedure("bexley").audit
"""Bexley's collaborative case audit (seed 000 §1.1-1.3, Appendix a)."""
BEXLEY_MODERATION: Final = shipped_audit_procedure("bexley").moderation
"""Bexley's moderation (seed 000 §1.3, Fig 1.4)."""

#: Appendix a: the collaborative case audit form, and its 0-10 grade bands (BX-AUD-06).
AUDIT_FORM: Final = BEXLEY_AUDIT.form
assert AUDIT_FORM.grade_bands is not None  # audit.toml grades a 0-10 score through bands
GRADE_BANDS: Final = AUDIT_FORM.grade_bands
#: The question whose answer is the audit's overall grade (BX-AUD-06).
GRADING_QUESTION: Final = AUDIT_FORM.grading_question
#: Ids of the nine family feedback statements, in form order (BX-AUD-07, form §5).
FAMILY_STATEMENT_IDS: Final = BEXLEY_AUDIT.feedback.questions if BEXLEY_AUDIT.feedback else ()
#: BX-AUD-12: who is notified of an Inadequate audit.
INADEQUATE_NOTIFY_ROLES: Final = tuple(
    role for rule in BEXLEY_AUDIT.rules_for(Grade.INADEQUATE) for role in rule.notify
)
#: BX-MOD-01: who PSQA may allocate a moderation to (never the audit's own auditor, I9).
MODERATOR_ROLES: Final = BEXLEY_MODERATION.moderator_roles


# --- Escalations (seed 000 §5.3; POLICIES.md default ladders) ---
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

#: The name and version every workflow of this policy pins (principle 8): escalations here,
#: audits and moderations in audit.toml.
POLICY: Final = Policy("bexley", "1")

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
    # BX-ESC-CP-02: four stages, each holder with a response deadline (POLICIES.md default
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
    # (the seed sets no bound; qaflow default: one extension of up to 5 WD per stage).
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

# BX-ESC-FIRO-01 (seed 000 §5.3): problems with a foster carer's care arrangement: the
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
    # fostering manager, as a case note on the foster carer's file; the seed sets no
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

#: The three default escalation ladders (BX §5.3; POLICIES.md "Default ladders").
ESCALATION_LADDERS: Final = (CP_CHAIR_LADDER, IRO_LADDER, FIRO_LADDER)
