"""The audit machine under both councils' policies: one example test per clause, then a
stateful property test of invariants I1-I4, I6-I11 and the audit's own rules.

Each clause test names its ID, so ``grep -r BX-AUD-12 tests/`` finds the executable spec.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from audit_support import (
    AUDITOR,
    BUSINESS,
    MODERATOR,
    POLICIES,
    PSQA,
    ROLE_IDS,
    START,
    WORKER,
    Harness,
    actions_for,
    allocation,
    grades_of,
    grading_answer,
    one_action,
    payload_for,
    refused,
    stage_answers,
    valid_answer,
)
from qaflow import (
    Actor,
    GuardFailed,
    PermissionDenied,
    PolicyError,
    QAFlowError,
    SQLiteStore,
    TransitionNotAllowed,
    ValidationError,
)
from qaflow.calendar import LONDON, Duration
from qaflow.directory import InMemoryDirectory, Person, Service, Team
from qaflow.machines import audit as A
from qaflow.policies import bexley, buckinghamshire
from qaflow.policies.audits import FeedbackRule, GradeRule, TaskRule, TimeLimit
from qaflow.policies.base import Policy
from qaflow.policies.forms import Grade, missing_answers
from qaflow.registry import shipped_specs
from qaflow.testing import (
    check_record_round_trip,
    check_tick,
    check_workflow,
    store_content,
)

BX, BK = "bexley", "buckinghamshire"
BOTH = pytest.mark.parametrize("council", [BX, BK])


@pytest.fixture
def h() -> Harness:
    return Harness()


def _isort_key(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_importable() -> None:
    exported = list(A.__all__)
    assert exported == sorted(exported, key=_isort_key)
    assert all(hasattr(A, name) for name in exported)


# --- the machine's shape ------------------------------------------------------------------


def test_bexley_machine_has_the_whole_lifecycle() -> None:
    spec = A.audit_spec(bexley.BEXLEY_AUDIT)
    assert spec.key == ("audit", "bexley", "1")
    assert spec.state_names == (
        A.NEW,
        A.ALLOCATED,
        A.SELF_ASSESSMENT_REQUESTED,
        A.SELF_ASSESSMENT_DONE,
        A.AUDIT_MEETING,
        A.GRADED,
        A.FEEDBACK_SOUGHT,
        A.ACTIONS_AGREED,
        A.COMPLETED,
        A.FOLLOWED_UP,
        A.CLOSED,
        A.CANCELLED,
    )


def test_buckinghamshire_machine_leaves_out_what_its_policy_does_not_use() -> None:
    """BK's form has no self-assessment, no health check and no feedback section, and the
    seed sets no follow-up: those states are not built (a new council is data)."""
    spec = A.audit_spec(buckinghamshire.BUCKINGHAMSHIRE_AUDIT)
    assert spec.state_names == (
        A.NEW,
        A.ALLOCATED,
        A.AUDIT_MEETING,
        A.GRADED,
        A.ACTIONS_AGREED,
        A.COMPLETED,
        A.CLOSED,
        A.CANCELLED,
    )
    assert "escalate_safeguarding" in spec.triggers
    assert "escalate_safeguarding" not in A.audit_spec(bexley.BEXLEY_AUDIT).triggers


def test_a_new_council_is_a_new_policy_value_not_code() -> None:
    policy = attrs.evolve(
        bexley.BEXLEY_AUDIT,
        policy=Policy("example-council", "2026.1"),
        feedback=None,
        follow_up=TimeLimit(within="3 WD", notify=("auditor",), clause="EX-09"),
    )
    spec = A.audit_spec(policy)
    assert spec.key == ("audit", "example-council", "2026.1")
    assert A.FEEDBACK_SOUGHT not in spec.state_names
    assert spec.state(A.COMPLETED).deadlines[0].clause == "EX-09"


@pytest.mark.parametrize(
    "changes",
    [
        {"feedback": FeedbackRule(questions=("nope",), clause="X")},
        {"moderation_window": "5 WD"},
        {"moderation_window": "soon"},
        {"practice_week_action": "practice_observation", "practice_week_clause": None},
        {"stage_clauses": {"nonsense": "X"}},
    ],
)
def test_a_broken_policy_is_refused_when_built(changes: dict[str, Any]) -> None:
    with pytest.raises(PolicyError):
        attrs.evolve(bexley.BEXLEY_AUDIT, **changes)


def test_rule_data_is_validated() -> None:
    with pytest.raises(PolicyError):
        TaskRule(kind="Bad Kind", owner_role="worker")
    with pytest.raises(PolicyError):
        TaskRule(kind="ok", owner_role="worker", within="tomorrow")
    with pytest.raises(PolicyError):
        GradeRule(grades=(), clause="X")
    with pytest.raises(PolicyError):
        GradeRule(grades={Grade.INADEQUATE}, notify=("worker",), clause="X")


# --- BX-AUD-01 allocation ------------------------------------------------------------------


def test_BX_AUD_01_auditor_never_from_the_cases_team(h: Harness) -> None:
    """BX-AUD-01 (I9 where the policy requires it): the auditor is from another team."""
    assert POLICIES[BX].auditor_from_other_team and POLICIES[BX].other_team_clause == "BX-AUD-01"
    error = refused(h, GuardFailed, lambda: h.start(BX, "AU-1", auditor_team_id="T-01"))
    assert "another team" in str(error)
    refused(h, GuardFailed, lambda: h.start(BX, "AU-1", auditor_id=WORKER.id))
    step = h.start(BX, "AU-1")
    assert step.snapshot.state == A.ALLOCATED
    assert step.snapshot.data["child_id"] == "C-01"


def test_BK_allocation_allows_an_auditor_from_the_cases_team(h: Harness) -> None:
    """BK's framework never requires an auditor from another team (BX-AUD-01 is Bexley's):
    managers at all levels audit; only the case's own worker may not audit it."""
    assert not POLICIES[BK].auditor_from_other_team
    assert not A.allocation_rules(POLICIES[BK]).exclude_own_team
    refused(h, GuardFailed, lambda: h.start(BK, "AU-1", auditor_id=WORKER.id))
    step = h.start(BK, "AU-1", auditor_team_id="T-01")
    assert step.snapshot.state == A.ALLOCATED


def test_BX_AUD_01_the_team_manager_sees_the_allocation(h: Harness) -> None:
    step = h.start(BX, "AU-1")
    assert [(n.recipient_role, n.recipient_id, n.clause) for n in step.notifications] == [
        ("team_manager", "M-01", "BX-AUD-01")
    ]


def test_BX_AUD_01_only_business_support_allocates(h: Harness) -> None:
    refused(
        h,
        PermissionDenied,
        lambda: h.engine.start(
            h.specs[BX], "AU-1", "allocate", AUDITOR, payload_for(bexley.BEXLEY_AUDIT)
        ),
    )


def _org() -> InMemoryDirectory:
    """Two teams of one service, a second service with no team, and the organisation-wide
    roles both councils notify."""
    return InMemoryDirectory(
        [
            Person("W-01", {"worker"}, "T-01"),
            Person("A-01", {"auditor"}, "T-02"),
            Person("M-01", (), "T-01"),
            Person("M-02", (), "T-02"),
            Person("S-01"),
            Person("H-01"),
            Person("S-02"),
            Person("D-01", {"assistant_director"}),
            Person("D-02", {"director_of_childrens_services"}),
            Person("Q-01", {"psqa"}),
        ],
        [Team("T-01", "SV-1", "M-01"), Team("T-02", "SV-1", "M-02")],
        [Service("SV-1", "S-01", "H-01"), Service("SV-2", "S-02", "H-01")],
    )


def test_allocation_payload_looks_every_role_up_in_the_directory(h: Harness) -> None:
    payload = A.allocation_payload(
        bexley.BEXLEY_AUDIT,
        child_id="C-01",
        worker_id="W-01",
        auditor_id="A-01",
        directory=_org(),
        allocated_at=START,
        practice_week=False,
    )
    assert payload == {
        "child_id": "C-01",
        "worker_id": "W-01",
        "auditor_id": "A-01",
        "team_id": "T-01",
        "auditor_team_id": "T-02",
        "team_manager_id": "M-01",
        "service_manager_id": "S-01",
        "head_of_service_id": "H-01",
        "assistant_director_id": "D-01",
        "psqa_id": "Q-01",
        "allocated_at": START.isoformat(),
        "practice_week": False,
    }
    assert h.engine.start(h.specs[BX], "AU-1", "allocate", BUSINESS, payload).snapshot.version == 1


def test_BK_AUD_04_allocation_payload_gives_only_the_ids_the_policy_takes(h: Harness) -> None:
    """BK notifies no service manager, so the worker's chain gives no ``service_manager_id``
    (``allocate`` would refuse it); the senior managers of BK-AUD-04 are looked up."""
    payload = A.allocation_payload(
        buckinghamshire.BUCKINGHAMSHIRE_AUDIT,
        child_id="C-01",
        worker_id="W-01",
        auditor_id="A-01",
        directory=_org(),
        allocated_at=START,
        practice_week=True,  # BK has no Practice Week rule: left out
    )
    assert payload == {
        "child_id": "C-01",
        "worker_id": "W-01",
        "auditor_id": "A-01",
        "team_id": "T-01",
        "auditor_team_id": "T-02",
        "team_manager_id": "M-01",
        "head_of_service_id": "H-01",
        "director_of_childrens_services_id": "D-02",
        "allocated_at": START.isoformat(),
    }
    assert h.engine.start(h.specs[BK], "AU-1", "allocate", BUSINESS, payload).snapshot.version == 1


def test_BX_AUD_01_an_auditor_without_a_team_stands_in_with_their_service(h: Harness) -> None:
    """A service manager audits too (BX-AUD-13) but has no team of their own: the service
    they manage is their ``auditor_team_id``, never "" (which ``allocate`` refuses)."""
    payload = A.allocation_payload(
        bexley.BEXLEY_AUDIT, child_id="C-01", worker_id="W-01", auditor_id="S-02", directory=_org()
    )
    assert (payload["team_id"], payload["auditor_team_id"]) == ("T-01", "SV-2")
    step = h.engine.start(h.specs[BX], "AU-1", "allocate", BUSINESS, payload)
    assert step.snapshot.data["auditor_team_id"] == "SV-2"


def test_allocation_payload_refuses_an_auditor_with_neither_team_nor_service() -> None:
    args: dict[str, Any] = {"child_id": "C-01", "worker_id": "W-01", "directory": _org()}
    with pytest.raises(ValidationError) as info:
        A.allocation_payload(bexley.BEXLEY_AUDIT, auditor_id="D-01", **args)
    assert info.value.field == "auditor_team_id"
    assert "'D-01'" in str(info.value)
    with pytest.raises(ValidationError, match="'team_id'"):
        A.allocation_payload(
            bexley.BEXLEY_AUDIT, auditor_id="A-01", **{**args, "worker_id": "D-01"}
        )
    given = A.allocation_payload(
        bexley.BEXLEY_AUDIT, auditor_id="D-01", auditor_team_id="DIRECTORATE", **args
    )
    assert given["auditor_team_id"] == "DIRECTORATE"


def test_allocation_time_may_not_be_in_the_future(h: Harness) -> None:
    later = (START + timedelta(hours=1)).isoformat()
    error = refused(h, ValidationError, lambda: h.start(BX, "AU-1", allocated_at=later))
    assert error.field == "allocated_at"  # type: ignore[attr-defined]


# --- BX-AUD-02..05: before and in the meeting --------------------------------------------


def test_BX_AUD_02_self_assessment_is_requested_before_the_meeting(h: Harness) -> None:
    h.start(BX, "AU-1", staying_together_worker_id="ST-01")
    refused(h, TransitionNotAllowed, lambda: h.fire("AU-1", "hold_meeting", AUDITOR))
    refused(h, PermissionDenied, lambda: h.fire("AU-1", "request_self_assessment", WORKER))
    other = Actor("A-99", "auditor")
    refused(h, PermissionDenied, lambda: h.fire("AU-1", "request_self_assessment", other))
    step = h.fire(
        "AU-1", "request_self_assessment", AUDITOR, {"meeting_at": "2025-03-10T10:00:00+00:00"}
    )
    assert [(n.recipient_role, n.recipient_id, n.clause) for n in step.notifications] == [
        ("worker", "W-01", "BX-AUD-02"),
        ("staying_together_worker", "ST-01", "BX-AUD-02"),
    ]
    assert [(t.kind, t.owner_id, t.clause) for t in step.tasks] == [
        ("self_assessment", "W-01", "BX-AUD-02")
    ]


def test_BX_AUD_03_self_assessment_needs_both_scales(h: Harness) -> None:
    h.drive(BX, "AU-1", A.SELF_ASSESSMENT_REQUESTED)
    error = refused(h, GuardFailed, lambda: h.fire("AU-1", "submit_self_assessment", WORKER, {}))
    assert error.clause == "BX-AUD-03"  # type: ignore[attr-defined]
    assert "SA1, SA2" in str(error)
    bad = {"answers": {"SA1": {"score": 11, "what_worked_well": "w", "what_would_move_it_up": "m"}}}
    error = refused(h, ValidationError, lambda: h.fire("AU-1", "answer", WORKER, bad))
    assert error.field == "SA1.score"  # type: ignore[attr-defined]
    assert "0..10" in str(error)
    # The auditor does not answer the practitioner's self-assessment.
    good = stage_answers(bexley.BEXLEY_AUDIT, "self_assessment")
    refused(h, PermissionDenied, lambda: h.fire("AU-1", "answer", AUDITOR, {"answers": good}))
    h.fire("AU-1", "answer", WORKER, {"answers": {"SA1": good["SA1"]}})
    step = h.fire("AU-1", "submit_self_assessment", WORKER, {"answers": {"SA2": good["SA2"]}})
    assert step.snapshot.state == A.SELF_ASSESSMENT_DONE
    assert set(step.snapshot.data["answers"]) == {"SA1", "SA2"}


def test_BX_AUD_04_health_check_before_the_meeting(h: Harness) -> None:
    h.drive(BX, "AU-1", A.SELF_ASSESSMENT_DONE)
    error = refused(h, GuardFailed, lambda: h.fire("AU-1", "hold_meeting", AUDITOR))
    assert error.clause == "BX-AUD-04"  # type: ignore[attr-defined]
    health = stage_answers(bexley.BEXLEY_AUDIT, "health_check")
    refused(h, PermissionDenied, lambda: h.fire("AU-1", "answer", WORKER, {"answers": health}))
    h.fire("AU-1", "answer", AUDITOR, {"answers": health})
    assert h.fire("AU-1", "hold_meeting", AUDITOR).snapshot.state == A.AUDIT_MEETING
    # Once the meeting has started the health check is closed.
    error = refused(h, GuardFailed, lambda: h.fire("AU-1", "answer", AUDITOR, {"answers": health}))
    assert error.clause == "BX-AUD-04"  # type: ignore[attr-defined]


def test_BX_AUD_05_areas_of_practice_are_answered_in_the_meeting(h: Harness) -> None:
    h.drive(BX, "AU-1", A.ALLOCATED)
    practice = stage_answers(bexley.BEXLEY_AUDIT, "meeting")
    error = refused(
        h, GuardFailed, lambda: h.fire("AU-1", "answer", AUDITOR, {"answers": practice})
    )
    assert error.clause == "BX-AUD-05"  # type: ignore[attr-defined]
    h2 = Harness()
    h2.drive(BX, "AU-2", A.AUDIT_MEETING)
    missing = {k: v for k, v in practice.items() if k != "Q19"}
    h2.fire("AU-2", "answer", AUDITOR, {"answers": missing})
    answer = grading_answer(bexley.BEXLEY_AUDIT, Grade.GOOD)
    error = refused(h2, GuardFailed, lambda: h2.fire("AU-2", "grade", AUDITOR, {"answer": answer}))
    assert "missing: Q19" in str(error)


@BOTH
def test_a_bad_answer_names_the_field_and_range_and_writes_nothing(
    h: Harness, council: str
) -> None:
    h.drive(council, "AU-1", A.AUDIT_MEETING)
    policy = POLICIES[council]
    question = policy.form.questions_in_stage("meeting")[0]
    bad = valid_answer(question, "excellent" if question.kind == "judgement" else 12)
    error = refused(
        h,
        ValidationError,
        lambda: h.fire("AU-1", "answer", AUDITOR, {"answers": {question.id: bad}}),
    )
    assert error.field == f"{question.id}.{question.answer_key}"  # type: ignore[attr-defined]
    error = refused(
        h, ValidationError, lambda: h.fire("AU-1", "answer", AUDITOR, {"answers": {"Q99": {}}})
    )
    assert error.field == "question_id"  # type: ignore[attr-defined]
    extra = {**valid_answer(question), "typo": "x"}
    refused(
        h,
        ValidationError,
        lambda: h.fire("AU-1", "answer", AUDITOR, {"answers": {question.id: extra}}),
    )
    grading = policy.form.grading_question
    refused(
        h,
        GuardFailed,
        lambda: h.fire(
            "AU-1",
            "answer",
            AUDITOR,
            {"answers": {grading: grading_answer(policy, Grade.GOOD)}},
        ),
    )


# --- BX-AUD-06 / BK-AUD-01 grading -------------------------------------------------------


@pytest.mark.parametrize("score", range(11))
def test_BX_AUD_06_grading_maps_the_score_through_the_bands(score: int) -> None:
    h = Harness()
    h.drive(BX, "AU-1", A.AUDIT_MEETING)
    answers = stage_answers(bexley.BEXLEY_AUDIT, "meeting")
    answer = valid_answer(bexley.BEXLEY_AUDIT.form.question("overall"), score)
    step = h.fire("AU-1", "grade", AUDITOR, {"answer": answer, "answers": answers})
    expected = bexley.GRADE_BANDS.grade_for(score)
    assert step.snapshot.data["grade"] == expected.name
    assert step.snapshot.data["original_grade"] == expected.name
    assert step.snapshot.data["answers"]["overall"]["score"] == score


def test_BX_AUD_06_an_off_scale_grade_is_refused(h: Harness) -> None:
    h.drive(BX, "AU-1", A.AUDIT_MEETING)
    answers = stage_answers(bexley.BEXLEY_AUDIT, "meeting")
    bad = valid_answer(bexley.BEXLEY_AUDIT.form.question("overall"), 11)
    error = refused(
        h,
        ValidationError,
        lambda: h.fire("AU-1", "grade", AUDITOR, {"answer": bad, "answers": answers}),
    )
    assert error.field == "overall.score"  # type: ignore[attr-defined]


@pytest.mark.parametrize("judgement", ["exceeds_good", "meets_good", "does_not_meet_good"])
def test_BK_AUD_01_every_field_judged_then_graded_by_judgement(judgement: str) -> None:
    h = Harness()
    h.drive(BK, "AU-1", A.AUDIT_MEETING)
    question = buckinghamshire.BUCKINGHAMSHIRE_AUDIT.form.question("overall")
    answer = valid_answer(question, judgement)
    error = refused(h, GuardFailed, lambda: h.fire("AU-1", "grade", AUDITOR, {"answer": answer}))
    assert error.clause == "BK-AUD-01"  # type: ignore[attr-defined]
    assert "involvement" in str(error)
    fields = stage_answers(buckinghamshire.BUCKINGHAMSHIRE_AUDIT, "meeting")
    step = h.fire("AU-1", "grade", AUDITOR, {"answer": answer, "answers": fields})
    expected = buckinghamshire.JUDGEMENT_SCALE.grade_for(judgement)
    assert step.snapshot.data["grade"] == expected.name
    assert not missing_answers(
        buckinghamshire.BUCKINGHAMSHIRE_AUDIT.form,
        step.snapshot.data["answers"],
        stages=("meeting", "grading"),
    )


# --- BX-AUD-07 feedback -----------------------------------------------------------------


@pytest.mark.parametrize("feedback", ["answers", "reason"])
def test_BX_AUD_07_family_feedback_or_a_reason_before_completion(feedback: str) -> None:
    h = Harness()
    h.drive(BX, "AU-1", A.ACTIONS_AGREED, feedback=feedback)
    assert h.fire("AU-1", "complete", AUDITOR).snapshot.state == A.COMPLETED


def test_BX_AUD_07_completion_refused_without_feedback_or_reason(h: Harness) -> None:
    h.drive(BX, "AU-1", A.ACTIONS_AGREED, feedback="none")
    error = refused(h, GuardFailed, lambda: h.fire("AU-1", "complete", AUDITOR))
    assert error.clause == "BX-AUD-07"  # type: ignore[attr-defined]
    # Partial feedback is not family feedback.
    partial = {"F1": valid_answer(bexley.BEXLEY_AUDIT.form.question("F1"))}
    family = {"respondent": "family", "answers": partial}
    refused(h, GuardFailed, lambda: h.fire("AU-1", "record_feedback", AUDITOR, family))
    refused(h, GuardFailed, lambda: h.fire("AU-1", "complete", AUDITOR))
    refused(h, ValidationError, lambda: h.fire("AU-1", "feedback_not_obtained", AUDITOR, {}))
    h.fire("AU-1", "feedback_not_obtained", AUDITOR, {"reason": "family declined"})
    assert h.fire("AU-1", "complete", AUDITOR).snapshot.state == A.COMPLETED


# --- BX-AUD-08 / BK-AUD-05 actions --------------------------------------------------------


@BOTH
def test_BX_AUD_08_at_least_one_action_even_when_good(h: Harness, council: str) -> None:
    before = A.FEEDBACK_SOUGHT if council == BX else A.GRADED
    h.drive(council, "AU-1", before, grade=Grade.GOOD)
    error = refused(
        h, GuardFailed, lambda: h.fire("AU-1", "agree_actions", AUDITOR, {"actions": []})
    )
    assert error.clause == POLICIES[council].actions_clause  # type: ignore[attr-defined]
    step = h.fire("AU-1", "agree_actions", AUDITOR, {"actions": [one_action(immediate=False)]})
    assert step.snapshot.state == A.ACTIONS_AGREED


@pytest.mark.parametrize(("council", "clause"), [(BX, "BX-AUD-08"), (BK, "BK-AUD-05")])
def test_BX_AUD_08_BK_AUD_05_immediate_actions_when_below_good(council: str, clause: str) -> None:
    h = Harness()
    before = A.FEEDBACK_SOUGHT if council == BX else A.GRADED
    h.drive(council, "AU-1", before, grade=Grade.REQUIRES_IMPROVEMENT)
    plain = {"actions": [one_action(immediate=False)]}
    error = refused(h, GuardFailed, lambda: h.fire("AU-1", "agree_actions", AUDITOR, plain))
    assert error.clause == clause  # type: ignore[attr-defined]
    assert h.fire("AU-1", "agree_actions", AUDITOR, {"actions": [one_action()]}).snapshot.state


def test_BX_AUD_08_actions_become_tasks_with_owner_and_due_date(h: Harness) -> None:
    h.drive(BX, "AU-1", A.FEEDBACK_SOUGHT)
    actions = [
        one_action(within="24 h"),
        one_action(owner_role="team_manager", due="2025-03-14", immediate=False),
        one_action(owner_role="iro", owner_id="I-07", within="2 weeks", kind="review"),
    ]
    step = h.fire("AU-1", "agree_actions", AUDITOR, {"actions": actions})
    at = step.event.at
    end_of_14th = datetime(2025, 3, 14, 23, 59, 59, 999999, tzinfo=LONDON).astimezone(UTC)
    assert [(t.kind, t.owner_role, t.owner_id, t.due_at, t.clause) for t in step.tasks] == [
        ("action", "worker", "W-01", at + timedelta(hours=24), "BX-AUD-08"),
        ("action", "team_manager", "M-01", end_of_14th, "BX-AUD-08"),
        ("review", "iro", "I-07", at + timedelta(weeks=2), "BX-AUD-08"),
    ]
    # The owner swap used to write the third task leaves the workflow's data as it was.
    assert "iro_id" not in step.snapshot.data
    assert step.snapshot.data["actions"][2]["owner_id"] == "I-07"


@pytest.mark.parametrize(
    ("action", "field"),
    [
        ({"action": "", "owner_role": "worker", "within": "5 WD"}, "actions[0].action"),
        ({"action": "a", "owner_role": "Worker!", "within": "5 WD"}, "actions[0].owner_role"),
        ({"action": "a", "owner_role": "iro", "within": "5 WD"}, "actions[0].owner_id"),
        ({"action": "a", "owner_role": "worker"}, "actions[0].within"),
        ({"action": "a", "owner_role": "worker", "within": "soon"}, "actions[0].within"),
        ({"action": "a", "owner_role": "worker", "due": "2025-03-08"}, "actions[0].due"),
        ({"action": "a", "owner_role": "worker", "due": "2025-02-28"}, "actions[0].due"),
        ({"action": "a", "owner_role": "worker", "due": "14/03/2025"}, "actions[0].due"),
        ({"action": "a", "owner_role": "worker", "within": "5 WD", "who": "x"}, "actions[0].who"),
        (
            {"action": "a", "owner_role": "worker", "within": "5 WD", "immediate": 1},
            "actions[0].immediate",
        ),
        ("do it", "actions[0]"),
    ],
)
def test_BX_AUD_08_a_malformed_action_names_its_field(action: Any, field: str) -> None:
    h = Harness()
    h.drive(BX, "AU-1", A.FEEDBACK_SOUGHT)
    error = refused(
        h, ValidationError, lambda: h.fire("AU-1", "agree_actions", AUDITOR, {"actions": [action]})
    )
    assert error.field == field  # type: ignore[attr-defined]


# --- BX-AUD-09, -10: completion and follow-up ---------------------------------------------


def test_BX_AUD_09_follow_up_within_5_working_days_of_completion(h: Harness) -> None:
    step = h.drive(BX, "AU-1", A.COMPLETED)
    (deadline,) = step.opened
    assert (deadline.name, deadline.state, deadline.clause) == (
        "follow_up",
        A.COMPLETED,
        "BX-AUD-09",
    )
    assert deadline.due_at == h.engine.spec("audit").calendar.add_working_days(step.event.at, 5)
    assert deadline.due_at.astimezone(LONDON).date().isoformat() == "2025-03-10"
    h.clock.set(deadline.due_at + timedelta(seconds=1))
    (missed,) = h.engine.tick()
    assert missed.event.trigger == "deadline_missed"
    assert [(n.recipient_role, n.recipient_id) for n in missed.notifications] == [
        ("auditor", "A-01"),
        ("team_manager", "M-01"),
    ]
    followed = h.fire("AU-1", "follow_up", AUDITOR, {"note": "manager confirms actions"})
    assert followed.snapshot.state == A.FOLLOWED_UP
    assert [d.name for d in followed.snapshot.deadlines] == ["moderation_window"]


def test_BX_AUD_09_following_up_in_time_closes_the_deadline(h: Harness) -> None:
    step = h.drive(BX, "AU-1", A.FOLLOWED_UP)
    assert "follow_up" not in {d.name for d in step.snapshot.deadlines}
    assert step.closed


def test_BX_AUD_10_completion_asks_for_a_supervision_review(h: Harness) -> None:
    step = h.drive(BX, "AU-1", A.COMPLETED)
    assert [(t.kind, t.owner_id, t.due_at, t.clause) for t in step.tasks] == [
        ("supervision_review", "M-01", None, "BX-AUD-10")
    ]


def test_BK_AUD_06_completion_goes_on_file_with_management_oversight(h: Harness) -> None:
    step = h.drive(BK, "AU-1", A.COMPLETED)
    assert [(t.kind, t.owner_id, t.clause) for t in step.tasks] == [
        ("upload_to_child_file", "A-01", "BK-AUD-06"),
        ("management_oversight_note", "M-01", "BK-AUD-06"),
    ]


# --- BX-AUD-11, -12: practice observation and the Inadequate path ------------------------


def test_BX_AUD_11_inadequate_requires_a_practice_observation_action(h: Harness) -> None:
    h.drive(BX, "AU-1", A.FEEDBACK_SOUGHT, grade=Grade.INADEQUATE)
    error = refused(
        h,
        GuardFailed,
        lambda: h.fire("AU-1", "agree_actions", AUDITOR, {"actions": [one_action()]}),
    )
    assert error.clause == "BX-AUD-11"  # type: ignore[attr-defined]
    observation = one_action(kind="practice_observation", owner_role="team_manager")
    step = h.fire("AU-1", "agree_actions", AUDITOR, {"actions": [one_action(), observation]})
    assert "practice_observation" in [t.kind for t in step.tasks]


def test_BX_AUD_11_practice_week_requires_a_practice_observation(h: Harness) -> None:
    h.drive(BX, "AU-1", A.FEEDBACK_SOUGHT, grade=Grade.OUTSTANDING, practice_week=True)
    plain = {"actions": [one_action(immediate=False)]}
    error = refused(h, GuardFailed, lambda: h.fire("AU-1", "agree_actions", AUDITOR, plain))
    assert error.clause == "BX-AUD-11"  # type: ignore[attr-defined]
    h2 = Harness()
    h2.drive(BX, "AU-2", A.FEEDBACK_SOUGHT, grade=Grade.OUTSTANDING)
    assert h2.fire("AU-2", "agree_actions", AUDITOR, plain).snapshot.state == A.ACTIONS_AGREED


def test_BX_AUD_12_inadequate_notifies_and_opens_24h_tasks(h: Harness) -> None:
    step = h.drive(BX, "AU-1", A.GRADED, grade=Grade.INADEQUATE)
    assert step.snapshot.data["grade"] == "INADEQUATE"
    graded = step
    assert not step.notifications  # the notice states the actions: it goes with them
    step = h.drive(BX, "AU-2", A.ACTIONS_AGREED, grade=Grade.INADEQUATE)
    notes = [(n.recipient_role, n.recipient_id, n.clause) for n in step.notifications]
    assert notes == [
        ("worker", "W-01", "BX-AUD-12"),
        ("team_manager", "M-01", "BX-AUD-12"),
        ("service_manager", "S-01", "BX-AUD-12"),
        ("head_of_service", "H-01", "BX-AUD-12"),
        ("assistant_director", "D-01", "BX-AUD-12"),
        ("psqa", "Q-01", "BX-AUD-12"),
    ]
    assert tuple(n.recipient_role for n in step.notifications) == bexley.INADEQUATE_NOTIFY_ROLES
    step = graded
    at = step.event.at
    assert [(t.kind, t.owner_id, t.due_at, t.clause) for t in step.tasks] == [
        ("immediate_tasks", "W-01", at + timedelta(hours=24), "BX-AUD-12"),
        ("management_oversight_note", "M-01", at + timedelta(hours=24), "BX-AUD-12"),
    ]


@pytest.mark.parametrize("grade", [Grade.REQUIRES_IMPROVEMENT, Grade.GOOD, Grade.OUTSTANDING])
def test_BX_AUD_12_only_inadequate_fires_the_chain(grade: Grade) -> None:
    h = Harness()
    step = h.drive(BX, "AU-1", A.GRADED, grade=grade)
    assert not step.notifications and not step.tasks


def test_BK_AUD_05_below_good_tells_the_manager_to_take_corrective_action(h: Harness) -> None:
    step = h.drive(BK, "AU-1", A.GRADED, grade=Grade.REQUIRES_IMPROVEMENT)
    assert [(n.recipient_id, n.clause) for n in step.notifications] == [("M-01", "BK-AUD-05")]
    assert [(t.kind, t.owner_id, t.clause) for t in step.tasks] == [
        ("corrective_action", "M-01", "BK-AUD-05")
    ]
    # BK never grades a case audit Inadequate, so BX-AUD-12's chain never runs there.
    assert Grade.INADEQUATE not in grades_of(buckinghamshire.BUCKINGHAMSHIRE_AUDIT)


# --- BK-AUD-02, -04 ---------------------------------------------------------------------


def test_BK_AUD_02_three_weeks_from_allocation_to_complete(h: Harness) -> None:
    earlier = START - timedelta(days=2)
    step = h.start(BK, "AU-1", allocated_at=earlier.isoformat())
    (deadline,) = step.opened
    assert (deadline.name, deadline.state, deadline.clause) == ("completion", None, "BK-AUD-02")
    assert deadline.due_at == earlier + timedelta(weeks=3)
    h.clock.set(deadline.due_at)
    (missed,) = h.engine.tick()
    assert missed.event.trigger == "deadline_missed"
    assert [(n.recipient_role, n.recipient_id, n.clause) for n in missed.notifications] == [
        ("auditor", "A-01", "BK-AUD-02"),
        ("team_manager", "M-01", "BK-AUD-02"),
    ]
    assert h.engine.get("AU-1").state == A.ALLOCATED


def test_BK_AUD_02_completing_in_time_closes_the_deadline(h: Harness) -> None:
    step = h.drive(BK, "AU-1", A.COMPLETED)
    assert "completion" not in {d.name for d in step.snapshot.deadlines}
    assert h.engine.tick(h.clock.set(START + timedelta(days=22))) == []


def test_BX_has_no_completion_deadline(h: Harness) -> None:
    assert not h.start(BX, "AU-1").opened


@pytest.mark.parametrize("state", [A.ALLOCATED, A.AUDIT_MEETING, A.GRADED, A.COMPLETED])
def test_BK_AUD_04_safeguarding_issue_escalated_immediately(state: str) -> None:
    h = Harness()
    h.drive(BK, "AU-1", state)
    h.clock.advance(hours=3)
    payload = {"concern": "child seen with injuries", "corrective_action": "strategy meeting today"}
    refused(h, PermissionDenied, lambda: h.fire("AU-1", "escalate_safeguarding", WORKER, payload))
    step = h.fire("AU-1", "escalate_safeguarding", AUDITOR, payload)
    assert step.snapshot.state == state
    assert [(n.recipient_role, n.recipient_id, n.clause) for n in step.notifications] == [
        ("head_of_service", "H-01", "BK-AUD-04"),
        ("director_of_childrens_services", "D-02", "BK-AUD-04"),
    ]
    assert all(n.created_at == step.event.at == h.clock.now() for n in step.notifications)
    assert step.snapshot.data["safeguarding_escalations"] == 1


# --- cancellation, closure, moderation write-back -----------------------------------------


@BOTH
def test_cancel_from_any_open_state_with_a_reason(council: str) -> None:
    spec = A.audit_spec(POLICIES[council])
    for state in spec.state_names:
        if state == A.NEW or spec.state(state).terminal:
            continue
        _cancel_from(council, state)


def _cancel_from(council: str, state: str) -> None:
    h = Harness()
    h.drive(council, "AU-1", state)
    refused(h, ValidationError, lambda: h.fire("AU-1", "cancel", PSQA, {}))
    refused(h, PermissionDenied, lambda: h.fire("AU-1", "cancel", AUDITOR, {"reason": "x"}))
    step = h.fire("AU-1", "cancel", BUSINESS, {"reason": "child moved out of area"})
    assert step.snapshot.state == A.CANCELLED
    assert step.snapshot.data["cancel_reason"] == "child moved out of area"
    assert not step.snapshot.deadlines
    refused(h, TransitionNotAllowed, lambda: h.fire("AU-1", "cancel", PSQA, {"reason": "y"}))


@BOTH
def test_the_audit_closes_when_its_moderation_window_passes(council: str) -> None:
    h = Harness()
    policy = POLICIES[council]
    final = A.FOLLOWED_UP if policy.follow_up else A.COMPLETED
    h.drive(council, "AU-1", final)
    completed = datetime.fromisoformat(h.engine.get("AU-1").data["completed_at"])
    end = Duration.parse(policy.moderation_window).after(completed)
    h.clock.set(end - timedelta(seconds=1))
    assert h.engine.tick() == []
    h.clock.set(end)
    steps = h.engine.tick()
    assert steps[-1].event.trigger == "close"
    assert h.engine.get("AU-1").state == A.CLOSED


def test_moderation_write_back_keeps_both_grades(h: Harness) -> None:
    h.drive(BX, "AU-1", A.FOLLOWED_UP, grade=Grade.REQUIRES_IMPROVEMENT)
    h.fire("AU-1", "moderation_started", PSQA, {"moderation_id": "MOD-1"})
    refused(h, GuardFailed, lambda: h.fire("AU-1", "cancel", PSQA, {"reason": "x"}))
    refused(h, GuardFailed, lambda: h.fire("AU-1", "close", PSQA))
    payload = {"moderation_id": "MOD-1", "moderator_id": "X-01", "grade": "GOOD", "agreed": False}
    refused(
        h,
        GuardFailed,
        lambda: h.fire(
            "AU-1", "moderated", Actor("A-01", "moderator"), {**payload, "moderator_id": "A-01"}
        ),
    )
    refused(
        h,
        PermissionDenied,
        lambda: h.fire("AU-1", "moderated", Actor("X-02", "moderator"), payload),
    )
    refused(
        h,
        ValidationError,
        lambda: h.fire("AU-1", "moderated", MODERATOR, {**payload, "moderation_id": "MOD-2"}),
    )
    step = h.fire("AU-1", "moderated", MODERATOR, payload)
    data = step.snapshot.data
    assert (data["grade"], data["original_grade"], data["moderated_grade"]) == (
        "GOOD",
        "REQUIRES_IMPROVEMENT",
        "GOOD",
    )
    assert [g["grade"] for g in data["grades"]] == ["REQUIRES_IMPROVEMENT", "GOOD"]
    triggers = [e.trigger for e in h.engine.history("AU-1")]
    assert triggers.count("grade") == 1 and triggers[-1] == "moderated"
    refused(
        h,
        GuardFailed,
        lambda: h.fire("AU-1", "moderation_started", PSQA, {"moderation_id": "MOD-3"}),
    )


def test_a_late_moderation_closes_the_audit(h: Harness) -> None:
    h.drive(BX, "AU-1", A.FOLLOWED_UP)
    h.fire("AU-1", "moderation_started", PSQA, {"moderation_id": "MOD-1"})
    h.clock.advance(days=200)
    (missed,) = h.engine.tick()  # the window passes while moderation is open: only recorded
    assert missed.event.trigger == "deadline_missed"
    payload = {"moderation_id": "MOD-1", "moderator_id": "X-01", "grade": "GOOD", "agreed": True}
    step = h.fire("AU-1", "moderated", MODERATOR, payload)
    assert step.snapshot.state == A.CLOSED
    check_workflow(h.engine, "AU-1")


def test_moderation_cannot_start_outside_the_window(h: Harness) -> None:
    h.drive(BX, "AU-1", A.COMPLETED)
    h.clock.advance(days=190)
    error = refused(
        h, GuardFailed, lambda: h.fire("AU-1", "moderation_started", PSQA, {"moderation_id": "M"})
    )
    assert error.clause == "BX-MOD-01"  # type: ignore[attr-defined]


def test_roles_come_from_the_directory_when_one_is_given() -> None:
    directory = InMemoryDirectory(
        [
            Person("B-01", {"business_support"}),
            Person("A-01", {"auditor"}),
            Person("W-01", {"worker"}),
        ]
    )
    h = Harness(directory=directory)
    h.start(BX, "AU-1")
    impostor = Actor("W-01", "auditor")
    refused(h, PermissionDenied, lambda: h.fire("AU-1", "request_self_assessment", impostor))
    assert h.fire("AU-1", "request_self_assessment", AUDITOR).snapshot.version == 2


# --- stateful: invariants after every step ------------------------------------------------

TRIGGERS = [
    "request_self_assessment",
    "submit_self_assessment",
    "hold_meeting",
    "grade",
    "seek_feedback",
    "feedback_not_obtained",
    "agree_actions",
    "complete",
    "follow_up",
    "cancel",
    "answer",
    "escalate_safeguarding",
    "extend_lookback",
    "moderation_started",
    "moderated",
    "moderation_cancelled",
    "close",
    "bogus",
]
ACTORS = [
    AUDITOR,
    WORKER,
    BUSINESS,
    PSQA,
    MODERATOR,
    Actor("A-02", "auditor"),
    Actor("A-01", "moderator"),
]


class AuditMachine(RuleBasedStateMachine):
    """Random valid and invalid commands on a few audits of one council.

    After every step: I1, I2, I6, I14 (``check_workflow``) on every audit; a refusal wrote
    nothing (I3); a terminal audit never moved (I4); every step's records survive a JSON
    round trip (I11); I7 after ticks; and the audit's rules: no grade without every
    required answer, completion only with an action and family feedback or a reason, an
    Inadequate grade always with the clause's notifications and 24 h tasks, and after a
    moderation both grades in the history.
    """

    council = BX

    def __init__(self) -> None:
        super().__init__()
        self.h = Harness()
        self.checked: dict[str, int] = {}
        self.policy = POLICIES[self.council]
        self.spec = self.h.specs[self.council]
        self.ids: list[str] = []
        self.moderations = 0

    def _attempt(self, wid: str | None, action: Any) -> None:
        before_content = store_content(self.h.store)
        before = None
        if wid is not None:
            with contextlib.suppress(QAFlowError):
                before = self.h.engine.get(wid)
        try:
            step = action()
        except QAFlowError:
            assert store_content(self.h.store) == before_content, "I3: a refusal wrote"
            return
        if before is not None and self.spec.state(before.state).terminal:
            assert self.h.engine.get(before.workflow_id) == before, "I4: a terminal audit moved"
        check_record_round_trip(step)
        if step.event.trigger == "grade" and step.snapshot.data["grade"] == "INADEQUATE":
            self._check_inadequate(step)
        if step.event.trigger == "agree_actions" and step.snapshot.data["grade"] == "INADEQUATE":
            told = [n.recipient_role for n in step.notifications]
            assert told == list(self.policy.notified(Grade.INADEQUATE, step="actions"))

    def _check_inadequate(self, step: Any) -> None:
        """I8: exactly the policy's roles, and tasks due within 24 h, in the grading step
        (BX-AUD-12's notice itself goes with the agreed actions)."""
        rules = self.policy.rules_for(Grade.INADEQUATE)
        roles = list(self.policy.notified(Grade.INADEQUATE))
        assert [n.recipient_role for n in step.notifications] == roles
        for task in step.tasks:
            assert task.due_at is not None
            assert task.due_at - step.event.at <= timedelta(hours=24)
        assert len(step.tasks) == sum(len(rule.tasks) for rule in rules)

    def _check_inadequate_rows(self, wid: str, event: Any) -> None:
        """I8 from the stored outbox: the grading event's notifications and 24 h tasks."""
        rules = self.policy.rules_for(Grade.INADEQUATE)
        notes = [n for n in self.h.store.notifications(wid) if n.seq == event.seq]
        assert [n.recipient_role for n in notes] == list(self.policy.notified(Grade.INADEQUATE))
        tasks = [t for t in self.h.store.tasks(wid) if t.seq == event.seq]
        assert len(tasks) == sum(len(rule.tasks) for rule in rules)
        for task in tasks:
            assert task.due_at is not None
            assert event.at < task.due_at <= event.at + timedelta(hours=24)

    @initialize(practice_week=st.booleans())
    def first_audit(self, practice_week: bool) -> None:
        extra = {"practice_week": practice_week} if self.policy.practice_week_action else {}
        self.h.start(self.council, "AU-0", **extra)
        self.ids.append("AU-0")

    @rule(
        grade=st.sampled_from(list(Grade)),
        target_state=st.integers(0, 12),
        feedback=st.sampled_from(["answers", "reason", "none"]),
        practice_week=st.booleans(),
    )
    def new_audit(
        self, grade: Grade, target_state: int, feedback: str, practice_week: bool
    ) -> None:
        if len(self.ids) >= 3:
            return
        wid = f"AU-{len(self.ids)}"
        names = [n for n in self.spec.state_names if n not in (A.NEW, A.CLOSED, A.CANCELLED)]
        until = names[target_state % len(names)]
        grade = grade if grade in grades_of(self.policy) else Grade.GOOD
        extra = {"practice_week": practice_week} if self.policy.practice_week_action else {}
        # A refusal on the way (completion without feedback) leaves the audit where it got to.
        with contextlib.suppress(QAFlowError):
            self.h.drive(self.council, wid, until, grade=grade, feedback=feedback, **extra)
        with contextlib.suppress(QAFlowError):
            self.h.engine.get(wid)
            self.ids.append(wid)

    @rule(
        index=st.integers(0, 2),
        trigger=st.sampled_from(TRIGGERS),
        actor=st.sampled_from(ACTORS),
        payload=st.one_of(
            st.just({}),
            st.fixed_dictionaries({"reason": st.sampled_from(["", "no reply"])}),
            st.fixed_dictionaries({"note": st.just("n")}),
            st.fixed_dictionaries({"answers": st.just({"Q6": {"score": 99}})}),
            st.fixed_dictionaries({"actions": st.just([])}),
            st.fixed_dictionaries({"moderation_id": st.sampled_from(["MOD-1", "MOD-2"])}),
            st.fixed_dictionaries({"concern": st.just("c"), "corrective_action": st.just("a")}),
            st.fixed_dictionaries(
                {
                    "look_back_from": st.sampled_from(
                        ["2024-01-01T00:00:00+00:00", "2030-01-01T00:00:00+00:00"]
                    ),
                    "reason": st.just("r"),
                }
            ),
            st.fixed_dictionaries({"unexpected": st.integers()}),
        ),
    )
    def random_command(
        self, index: int, trigger: str, actor: Actor, payload: dict[str, Any]
    ) -> None:
        if not self.ids:
            return
        wid = self.ids[index % len(self.ids)]
        self._attempt(wid, lambda: self.h.fire(wid, trigger, actor, payload))

    @rule(
        index=st.integers(0, 2),
        grade=st.sampled_from(list(Grade)),
        steps=st.integers(1, 4),
        data=st.data(),
    )
    def valid_next(self, index: int, grade: Grade, steps: int, data: st.DataObject) -> None:
        """Up to ``steps`` commands the lifecycle expects next, with valid-looking data
        (sometimes incomplete, so the guards get exercised on the way)."""
        if not self.ids:
            return
        wid = self.ids[index % len(self.ids)]
        grade = grade if grade in grades_of(self.policy) else Grade.GOOD
        for _ in range(steps):
            command = self._next_command(wid, grade, data)
            if command is None:
                return
            trigger, actor, payload = command
            self._attempt(wid, lambda t=trigger, a=actor, p=payload: self.h.fire(wid, t, a, p))

    def _next_command(
        self, wid: str, grade: Grade, data: st.DataObject
    ) -> tuple[str, Actor, dict[str, Any]] | None:
        policy = self.policy
        snap = self.h.engine.get(wid)
        state = snap.state
        if state == A.ALLOCATED:
            if policy.has_self_assessment:
                return ("request_self_assessment", AUDITOR, {})
            return ("hold_meeting", AUDITOR, {})
        if state == A.SELF_ASSESSMENT_REQUESTED:
            answers = stage_answers(policy, "self_assessment")
            return ("submit_self_assessment", WORKER, {"answers": answers})
        if state == A.SELF_ASSESSMENT_DONE:
            answers = data.draw(st.sampled_from([stage_answers(policy, "health_check"), {}]))
            return ("hold_meeting", AUDITOR, {"answers": answers})
        if state == A.AUDIT_MEETING:
            full = {**stage_answers(policy, "meeting"), **stage_answers(policy, "grading")}
            answers = data.draw(st.sampled_from([full, {}]))
            return ("grade", AUDITOR, {"answer": grading_answer(policy, grade), "answers": answers})
        if state == A.GRADED and policy.feedback:
            return ("seek_feedback", AUDITOR, {})
        if state == A.FEEDBACK_SOUGHT and data.draw(st.booleans()):
            if data.draw(st.booleans()):
                return ("feedback_not_obtained", AUDITOR, {"reason": "no reply"})
            assert policy.feedback is not None
            form = policy.form
            answers = {q: valid_answer(form.question(q)) for q in policy.feedback.questions}
            return ("record_feedback", AUDITOR, {"respondent": "family", "answers": answers})
        if state in (A.GRADED, A.FEEDBACK_SOUGHT):
            choices = [actions_for(snap.data), [one_action(immediate=False)]]
            return ("agree_actions", AUDITOR, {"actions": data.draw(st.sampled_from(choices))})
        if state == A.ACTIONS_AGREED and policy.feedback and data.draw(st.booleans()):
            return ("feedback_not_obtained", AUDITOR, {"reason": "family declined"})
        if state == A.ACTIONS_AGREED:
            return ("complete", AUDITOR, {})
        if state == A.COMPLETED and policy.follow_up:
            return ("follow_up", AUDITOR, {"note": "n"})
        if state in (A.COMPLETED, A.FOLLOWED_UP) and not snap.data.get("moderation_open"):
            self.moderations += 1
            return ("moderation_started", PSQA, {"moderation_id": f"MOD-{self.moderations}"})
        if state in (A.COMPLETED, A.FOLLOWED_UP):
            payload = {
                "moderation_id": snap.data["moderation_id"],
                "moderator_id": MODERATOR.id,
                "grade": grade.name,
                "agreed": data.draw(st.booleans()),
            }
            return ("moderated", MODERATOR, payload)
        return None

    @rule(index=st.integers(0, 2), grade=st.sampled_from(list(Grade)), agreed=st.booleans())
    def moderate(self, index: int, grade: Grade, agreed: bool) -> None:
        """What the moderation code writes back: start, then the agreed grade."""
        if not self.ids:
            return
        wid = self.ids[index % len(self.ids)]
        snap = self.h.engine.get(wid)
        if not snap.data.get("moderation_open"):
            self.moderations += 1
            mid = f"MOD-{self.moderations}"
            self._attempt(
                wid, lambda: self.h.fire(wid, "moderation_started", PSQA, {"moderation_id": mid})
            )
            return
        payload = {
            "moderation_id": snap.data["moderation_id"],
            "moderator_id": MODERATOR.id,
            "grade": grade.name,
            "agreed": agreed,
        }
        self._attempt(wid, lambda: self.h.fire(wid, "moderated", MODERATOR, payload))

    @rule(hours=st.sampled_from([1, 24, 24 * 8, 24 * 40, 24 * 200]))
    def advance_and_tick(self, hours: int) -> None:
        self.h.clock.advance(hours=hours)
        check_tick(self.h.engine, self.h.clock.now())

    @invariant()
    def workflows_hold_the_invariants(self) -> None:
        # A workflow whose version has not moved since its last check has nothing new to
        # replay; skipping it keeps the run fast without weakening the check.
        for wid in self.ids:
            version = self.h.engine.get(wid).version
            if self.checked.get(wid) != version:
                check_workflow(self.h.engine, wid)
                self.checked[wid] = version

    @invariant()
    def audit_rules_hold(self) -> None:
        policy = self.policy
        form = policy.form
        for wid in self.ids:
            snap = self.h.engine.get(wid)
            data = snap.data
            history = self.h.engine.history(wid)
            triggers = [e.trigger for e in history]
            if "grade" in triggers:
                # No grade without every required answer (BX-AUD-05, BK-AUD-01).
                assert not missing_answers(
                    form, data["answers"], stages=form.stages_through("grading")
                )
                assert data["original_grade"] == data["grades"][0]["grade"]
            else:
                assert "grade" not in data
            if "complete" in triggers:
                # Completion only with an action and family feedback or a reason.
                assert data["actions"], "completed without an action"
                if policy.feedback is not None:
                    assert A.family_feedback_complete(policy, data) or data.get("feedback_reason")
            for event in history:
                if event.trigger == "moderated":
                    # Both grades stay in the history.
                    assert triggers.index("grade") < event.seq - 1
                    assert any(g["source"] == "moderation" for g in data["grades"])
                    assert data["original_grade"] == data["grades"][0]["grade"]
            for event in history:
                if event.trigger == "grade" and data["grades"][0]["grade"] == "INADEQUATE":
                    self._check_inadequate_rows(wid, event)
            moderated = [e for e in history if e.trigger == "moderated"]
            if moderated:
                assert data["grade"] == moderated[-1].payload["grade"]
                assert len(data["grades"]) == 1 + len(moderated)


class BuckinghamshireAuditMachine(AuditMachine):
    council = BK


class OfstedGradeAuditMachine(AuditMachine):
    """The same on a third council written only as a file: a direct four-level Ofsted-grade
    tool (examples/councils/ofsted_grade_audit.toml), loaded and driven like the shipped."""

    council = "ofsted_example"


class SQLiteAuditMachine(AuditMachine):
    """The same, committed to SQLite (the durable store; I3 compares whole table dumps)."""

    def __init__(self) -> None:
        super().__init__()
        self.sqlite = SQLiteStore(":memory:")
        self.h = Harness(store=self.sqlite)
        self.spec = self.h.specs[self.council]

    def teardown(self) -> None:
        self.sqlite.close()


_STATEFUL = settings(
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestBexleyAuditMachine = pytest.mark.slow(AuditMachine.TestCase)
TestBexleyAuditMachine.settings = _STATEFUL
TestBuckinghamshireAuditMachine = pytest.mark.slow(BuckinghamshireAuditMachine.TestCase)
TestBuckinghamshireAuditMachine.settings = _STATEFUL
TestOfstedGradeAuditMachine = pytest.mark.slow(OfstedGradeAuditMachine.TestCase)
TestOfstedGradeAuditMachine.settings = _STATEFUL
TestSQLiteAuditMachine = pytest.mark.slow(SQLiteAuditMachine.TestCase)
TestSQLiteAuditMachine.settings = settings(
    _STATEFUL, max_examples=max(1, settings().max_examples // 4)
)


def test_round_trip_of_every_record_of_a_full_audit(h: Harness) -> None:
    h.drive(BX, "AU-1", A.FOLLOWED_UP, grade=Grade.INADEQUATE)
    for record in [
        h.engine.get("AU-1"),
        *h.engine.history("AU-1"),
        *h.store.notifications("AU-1"),
        *h.store.tasks("AU-1"),
        *h.engine.get("AU-1").deadlines,
    ]:
        check_record_round_trip(record)
    assert allocation()["team_manager_id"] == ROLE_IDS["team_manager_id"]


def test_BK_AUD_03_six_months_back_by_default_further_if_needed(h: Harness) -> None:
    step = h.start(BK, "AU-1")
    assert step.snapshot.data["look_back_from"] == "2024-09-03T08:00:00+00:00"  # 9:00 London
    later = {"look_back_from": "2024-12-01T00:00:00+00:00", "reason": "r"}
    error = refused(h, ValidationError, lambda: h.fire("AU-1", "extend_lookback", AUDITOR, later))
    assert error.field == "look_back_from"  # type: ignore[attr-defined]
    refused(h, PermissionDenied, lambda: h.fire("AU-1", "extend_lookback", WORKER, later))
    further = {"look_back_from": "2023-09-01T00:00:00+01:00", "reason": "earlier concerns"}
    step = h.fire("AU-1", "extend_lookback", AUDITOR, further)
    assert step.snapshot.data["look_back_from"] == "2023-08-31T23:00:00+00:00"
    assert "extend_lookback" not in A.audit_spec(bexley.BEXLEY_AUDIT).triggers


def test_an_empty_answer_command_is_refused(h: Harness) -> None:
    h.drive(BX, "AU-1", A.ALLOCATED)
    error = refused(h, ValidationError, lambda: h.fire("AU-1", "answer", AUDITOR, {"answers": {}}))
    assert error.field == "answers"  # type: ignore[attr-defined]


def test_shipped_specs_cover_both_councils() -> None:
    keys = [spec.key for spec in shipped_specs() if spec.name == A.MACHINE]
    assert keys == [("audit", "bexley", "1"), ("audit", "buckinghamshire", "1")]
    assert bexley.BEXLEY_AUDIT.policy == bexley.POLICY
    assert buckinghamshire.BUCKINGHAMSHIRE_AUDIT.policy == buckinghamshire.POLICY
