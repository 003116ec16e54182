"""The audit rules as the seeds write them, pinned: texts, ids, completion rules and who is
told what (BX-AUD-07, -10, -12, BK-AUD-01, -07, BX-MOD-07)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from audit_support import AUDITOR, START, WORKER, Harness, valid_answer
from qaflow import Actor
from qaflow.errors import GuardFailed, PermissionDenied, ValidationError
from qaflow.machines import audit as A
from qaflow.policies import bexley, buckinghamshire
from qaflow.procedure import Grade

BX, BK = "bexley", "buckinghamshire"
SERVICE_MANAGER = Actor("S-01", "service_manager")
BX_POLICY = bexley.BEXLEY_AUDIT
BK_POLICY = buckinghamshire.BUCKINGHAMSHIRE_AUDIT

#: Bexley form §5: the nine statements of the Signs of Safety national evaluation, word for word.
NINE_STATEMENTS = {
    "F1": "My worker listens to me in a way that shows they want to really understand my family.",
    "F2": "My worker does what they say they will do.",
    "F3": "My worker notices what's working well in my family regarding the care, safety and "
    "wellbeing of my child/ren.",
    "F4": "My worker has been clear with me about how they see the concerns about my family "
    "situation.",
    "F5": "My worker and I agree on what we are concerned about.",
    "F6": "I have felt involved in making plans about what to do.",
    "F7": "My worker has spent time with my child/ren and has listened to what they say about "
    "the problems and what should happen.",
    "F8": "My worker has made sure my child/ren fully understood what's being done to help them.",
    "F9": "My worker cares that we solve our problems.",
}

#: Buckinghamshire App. 1: the eleven judged fields, ids and texts as the tool heads them.
ELEVEN_FIELDS = {
    "involvement": "Children, young people and families are appropriately involved",
    "decision_making": "Decision making is effective and timely",
    "assessments": "Assessments are timely, comprehensive, analytical and of high quality - and "
    "lead to appropriately focused help",
    "coordination": "Coordination between agencies is effective",
    "diversity": "Consideration and impact of diversity",
    "plans": "Quality of plans",
    "permanence": "Permanence is achieved without delay and reflects assessed needs",
    "reviews": "Children and young people participate in and benefit from effective regular "
    "reviews",
    "living_arrangements": "The quality of the child's living arrangements",
    "independence": "Are young people prepared for independence and are they living in high "
    "quality accommodation that meets their needs",
    "outcomes": "How has the help provided improved outcomes?",
}


def family_set(**changes: Any) -> dict[str, Any]:
    """A whole family answer set: the nine statements scored (``None`` leaves one out)."""
    form = BX_POLICY.form
    answers = {q: valid_answer(form.question(q), 7) for q in NINE_STATEMENTS}
    answers["F_role"] = {"text": "parent"}
    answers.update(changes)
    return {k: v for k, v in answers.items() if v is not None}


def at_feedback(h: Harness, wid: str = "AU-1") -> None:
    """An audit whose actions are agreed, with no feedback yet."""
    h.drive(BX, wid, A.ACTIONS_AGREED, feedback="none")


def refused(h: Harness, error: type[Exception], call: Any) -> Exception:
    before = h.store.events("AU-1")
    with pytest.raises(error) as caught:
        call()
    assert h.store.events("AU-1") == before
    return caught.value


# --- BX-AUD-07 -------------------------------------------------------------------------------


def test_BX_AUD_07_the_nine_statements_word_for_word() -> None:
    rule = BX_POLICY.feedback
    assert rule is not None and rule.clause == "BX-AUD-07"
    assert rule.questions == tuple(NINE_STATEMENTS)
    for qid, text in NINE_STATEMENTS.items():
        question = BX_POLICY.form.question(qid)
        assert (question.text, question.kind, question.answered_by) == (
            text,
            "scale_0_10",
            "family",
        )
        assert question.anchors == ("Strongly disagree", "Strongly agree")


def test_BX_AUD_07_completion_needs_a_whole_family_set_or_a_reason() -> None:
    rule = BX_POLICY.feedback
    assert rule is not None
    assert (rule.required_from, rule.consent_for) == (("family",), ("child",))
    h = Harness()
    at_feedback(h)
    error = refused(h, GuardFailed, lambda: h.fire("AU-1", "complete", AUDITOR))
    assert error.clause == "BX-AUD-07"  # type: ignore[attr-defined]
    # Eight statements of nine are not the survey: the set is refused, naming the gap.
    short = {"respondent": "family", "answers": family_set(F9=None)}
    error = refused(h, GuardFailed, lambda: h.fire("AU-1", "record_feedback", AUDITOR, short))
    assert "F9" in str(error) and error.clause == "BX-AUD-07"  # type: ignore[attr-defined]
    h.fire("AU-1", "record_feedback", AUDITOR, {"respondent": "family", "answers": family_set()})
    assert h.fire("AU-1", "complete", AUDITOR).snapshot.state == A.COMPLETED


@pytest.mark.parametrize("left_out", sorted(NINE_STATEMENTS))
def test_BX_AUD_07_each_of_the_nine_is_needed(left_out: str) -> None:
    h = Harness()
    at_feedback(h)
    partial = {k: v for k, v in family_set().items() if k != left_out}
    short = {"respondent": "family", "answers": partial}
    error = refused(h, GuardFailed, lambda: h.fire("AU-1", "record_feedback", AUDITOR, short))
    assert left_out in str(error)
    refused(h, GuardFailed, lambda: h.fire("AU-1", "complete", AUDITOR))
    assert not A.family_feedback_complete(BX_POLICY, h.engine.get("AU-1").data)
    # A whole set given as a plain answer is not feedback either.
    assert not A.family_feedback_complete(BX_POLICY, {"answers": family_set()})


@pytest.mark.parametrize("qid", ["F1", "F9", "F_role", "C1", "N_role"])
def test_BX_AUD_07_feedback_only_through_record_feedback(qid: str) -> None:
    """One way to record feedback: a plain ``answer`` of any feedback question is refused,
    naming the clause and the command to use, and writes nothing."""
    h = Harness()
    at_feedback(h)
    answers = {"answers": {qid: valid_answer(BX_POLICY.form.question(qid))}}
    error = refused(h, GuardFailed, lambda: h.fire("AU-1", "answer", AUDITOR, answers))
    assert "record_feedback" in str(error)
    assert error.clause == "BX-AUD-07"  # type: ignore[attr-defined]


def test_BX_AUD_07_several_family_and_network_sets_are_each_kept() -> None:
    h = Harness()
    at_feedback(h)
    first = family_set(F1=valid_answer(BX_POLICY.form.question("F1"), 2))
    second = family_set(F_role={"text": "grandparent"})
    network = {"N_role": {"text": "school"}, "N_views": {"text": "going well"}}
    for respondent, answers in (("family", first), ("family", second), ("network", network)):
        h.fire("AU-1", "record_feedback", AUDITOR, {"respondent": respondent, "answers": answers})
    sets = h.engine.get("AU-1").data["feedback"]
    assert [(s["respondent"], s["answers"]) for s in sets] == [
        ("family", first),
        ("family", second),
        ("network", network),
    ]
    assert h.fire("AU-1", "complete", AUDITOR).snapshot.state == A.COMPLETED


def test_BX_AUD_07_a_network_set_alone_does_not_complete() -> None:
    h = Harness()
    at_feedback(h)
    network = {"N_role": {"text": "health visitor"}}
    h.fire("AU-1", "record_feedback", AUDITOR, {"respondent": "network", "answers": network})
    refused(h, GuardFailed, lambda: h.fire("AU-1", "complete", AUDITOR))


def test_BX_AUD_07_the_child_answers_only_with_agreement_and_it_is_recorded() -> None:
    h = Harness()
    at_feedback(h)
    child = {"C1": {"answer": True}, "C8": valid_answer(BX_POLICY.form.question("C8"), 8)}
    # Whether the parent/carer (or young adult) agreed must be said.
    unsaid = {"respondent": "child", "answers": child}
    refused(h, ValidationError, lambda: h.fire("AU-1", "record_feedback", AUDITOR, unsaid))
    # Not agreed: no answers are taken, and the refusal of agreement is kept.
    no = {"respondent": "child", "answers": child, "agreed": False}
    error = refused(h, GuardFailed, lambda: h.fire("AU-1", "record_feedback", AUDITOR, no))
    assert error.clause == "BX-AUD-07"  # type: ignore[attr-defined]
    h.fire("AU-1", "record_feedback", AUDITOR, {"respondent": "child", "agreed": False})
    h.fire("AU-1", "record_feedback", AUDITOR, {**no, "agreed": True})
    sets = h.engine.get("AU-1").data["feedback"]
    assert [(s["respondent"], s["agreed"], s["answers"]) for s in sets] == [
        ("child", False, {}),
        ("child", True, child),
    ]
    # The child's questions cannot go in as plain answers, where agreement is not recorded.
    error = refused(
        h, GuardFailed, lambda: h.fire("AU-1", "answer", AUDITOR, {"answers": {"C1": child["C1"]}})
    )
    assert "record_feedback" in str(error)


def test_BX_AUD_07_answers_belong_to_the_respondent_named() -> None:
    h = Harness()
    at_feedback(h)
    wrong = {"respondent": "network", "answers": family_set()}
    refused(h, ValidationError, lambda: h.fire("AU-1", "record_feedback", AUDITOR, wrong))
    stray = {"respondent": "family", "answers": family_set(), "agreed": True}
    refused(h, ValidationError, lambda: h.fire("AU-1", "record_feedback", AUDITOR, stray))


# --- BK-AUD-01 -------------------------------------------------------------------------------


def test_BK_AUD_01_the_eleven_fields_ids_and_texts() -> None:
    form = BK_POLICY.form
    fields = form.section("fields").questions
    assert {q.id: q.text for q in fields} == ELEVEN_FIELDS
    assert [q.id for q in fields] == list(ELEVEN_FIELDS)  # the tool's order
    for q in fields:
        assert (q.kind, q.answered_by, q.text_fields, q.clause) == (
            "judgement",
            "auditor",
            ("evidence", "impact"),
            "BK-AUD-01",
        )
    overall = form.question(form.grading_question)
    assert (overall.id, overall.text, overall.kind) == (
        "overall",
        "Auditor's overall grading",
        "judgement",
    )


# --- BX-AUD-12 -------------------------------------------------------------------------------


def inadequate_with_actions(h: Harness, wid: str = "AU-1") -> Any:
    """An Inadequate Bexley audit taken to its agreed actions; the agree_actions step."""
    return h.drive(BX, wid, A.ACTIONS_AGREED, grade=Grade.INADEQUATE)


def test_BX_AUD_12_the_notice_states_the_actions_and_their_timescales() -> None:
    h = Harness()
    graded = h.drive(BX, "AU-1", A.GRADED, grade=Grade.INADEQUATE)
    assert not graded.notifications  # nothing to state yet
    h2 = Harness()
    step = inadequate_with_actions(h2)
    assert [n.recipient_role for n in step.notifications] == [
        "worker",
        "team_manager",
        "service_manager",
        "head_of_service",
        "assistant_director",
        "psqa",
    ]
    reasons = {n.reason for n in step.notifications}
    assert len(reasons) == 1
    reason = reasons.pop()
    assert reason.startswith("audit graded Inadequate: actions needed to improve the case to Good")
    assert "2 action(s): action by the worker within 5 WD, immediate" in reason
    assert "practice_observation by the team_manager within 5 WD" in reason
    assert "share the plan" not in reason  # an action's own words stay in the event
    assert {n.seq for n in step.notifications} == {step.event.seq}
    assert all(n.clause == "BX-AUD-12" for n in step.notifications)


@pytest.mark.parametrize("grade", [Grade.REQUIRES_IMPROVEMENT, Grade.GOOD, Grade.OUTSTANDING])
def test_BX_AUD_12_no_notice_and_no_review_above_inadequate(grade: Grade) -> None:
    h = Harness()
    step = h.drive(BX, "AU-1", A.ACTIONS_AGREED, grade=grade)
    assert not step.notifications
    assert "sufficiency_review" not in [t.kind for t in step.tasks]
    refused(
        h,
        GuardFailed,
        lambda: h.fire(
            "AU-1", "review_sufficiency", SERVICE_MANAGER, {"sufficient": True, "note": "n"}
        ),
    )


def test_BX_AUD_12_the_service_manager_reviews_whether_the_actions_suffice() -> None:
    review = BX_POLICY.sufficiency_review
    assert review is not None and review.reviewer_role == "service_manager"
    assert review.clause == "BX-AUD-12" and review.notify_if_not == ("team_manager",)
    h = Harness()
    step = inadequate_with_actions(h)
    tasks = [(t.kind, t.owner_role, t.owner_id, t.clause) for t in step.tasks]
    assert ("sufficiency_review", "service_manager", "S-01", "BX-AUD-12") in tasks
    # Only the service manager recorded on the audit may record the verdict.
    refused(
        h,
        PermissionDenied,
        lambda: h.fire("AU-1", "review_sufficiency", AUDITOR, {"sufficient": True, "note": "n"}),
    )
    verdict = h.fire(
        "AU-1", "review_sufficiency", SERVICE_MANAGER, {"sufficient": False, "note": "n"}
    )
    assert verdict.snapshot.data["actions_sufficient"] is False
    assert [(n.recipient_role, n.clause) for n in verdict.notifications] == [
        ("team_manager", "BX-AUD-12")
    ]
    again = h.fire("AU-1", "review_sufficiency", SERVICE_MANAGER, {"sufficient": True, "note": "n"})
    assert again.snapshot.data["actions_sufficient"] is True and not again.notifications


# --- BK-AUD-07 -------------------------------------------------------------------------------


def test_BK_AUD_07_the_practitioner_is_told_and_a_meeting_arranged() -> None:
    notice, task = BK_POLICY.selection_notice, BK_POLICY.selection_task
    assert notice is not None and task is not None
    assert (notice.roles, notice.clause) == (("worker",), "BK-AUD-07")
    assert (task.kind, task.owner_role, task.clause) == ("arrange_meeting", "auditor", "BK-AUD-07")
    h = Harness()
    step = h.start(BK, "AU-1")
    assert [(n.recipient_role, n.recipient_id, n.clause) for n in step.notifications] == [
        ("worker", "W-01", "BK-AUD-07")
    ]
    assert "selected for an audit" in step.notifications[0].reason
    assert [(t.kind, t.owner_id, t.clause) for t in step.tasks] == [
        ("arrange_meeting", "A-01", "BK-AUD-07")
    ]
    meeting = (h.clock.now() + timedelta(days=2)).isoformat()
    refused(
        h,
        PermissionDenied,
        lambda: h.fire("AU-1", "arrange_meeting", WORKER, {"meeting_at": meeting}),
    )
    arranged = h.fire("AU-1", "arrange_meeting", AUDITOR, {"meeting_at": meeting})
    assert arranged.snapshot.state == A.ALLOCATED
    assert arranged.snapshot.data["meeting_at"] == meeting
    assert arranged.snapshot.data["meeting_arranged_at"] == h.clock.now().isoformat()


def test_BK_AUD_07_is_buckinghamshires_only() -> None:
    """Bexley's auditor books the meeting when asking for the self-assessment (BX-AUD-02)."""
    assert BX_POLICY.selection_notice is None and BX_POLICY.selection_task is None
    h = Harness()
    step = h.start(BX, "AU-1")
    assert "arrange_meeting" not in h.specs[BX].allowed_triggers(A.ALLOCATED)
    assert [n.clause for n in step.notifications] == ["BX-AUD-01"]


# --- BX-AUD-10, BX-MOD-07 --------------------------------------------------------------------


def test_BX_AUD_10_the_review_in_supervision_records_note_and_timeframe() -> None:
    review = BX_POLICY.supervision_review
    assert review is not None and review.roles == ("team_manager",)
    assert review.clause == "BX-AUD-10"
    h = Harness()
    done = h.drive(BX, "AU-1", A.COMPLETED)
    assert ("supervision_review", "M-01", "BX-AUD-10") in [
        (t.kind, t.owner_id, t.clause) for t in done.tasks
    ]
    manager = Actor("M-01", "team_manager")
    bad = {"note": "discussed", "timeframe": "soon"}
    error = refused(
        h, ValidationError, lambda: h.fire("AU-1", "review_in_supervision", manager, bad)
    )
    assert "timeframe" in str(error)
    refused(
        h,
        PermissionDenied,
        lambda: h.fire("AU-1", "review_in_supervision", AUDITOR, {**bad, "timeframe": "2 weeks"}),
    )
    step = h.fire("AU-1", "review_in_supervision", manager, {"note": "n", "timeframe": "2 weeks"})
    data = step.snapshot.data
    assert (data["oversight_note"], data["action_timeframe"]) == ("n", "2 weeks")
    assert not step.tasks  # no performance issue, no personal supervision note
    issue = {"note": "n", "timeframe": "5 WD", "performance_issue": True}
    step = h.fire("AU-1", "review_in_supervision", manager, issue)
    assert [(t.kind, t.owner_id, t.clause) for t in step.tasks] == [
        ("personal_supervision_note", "M-01", "BX-AUD-10")
    ]


def test_BX_AUD_10_actions_are_reviewed_at_the_next_supervision() -> None:
    """The practitioner's supervision workflow keeps the next-supervision review."""
    from qaflow import Engine, ManualClock, MemoryStore
    from qaflow.machines import supervision

    spec = next(s for s in supervision.shipped_specs() if s.policy == "bexley")
    rule = next(r for r in spec.rolling if r.name == "audit_actions_review")
    assert rule.clause == "BX-AUD-10" and rule.restart_by == ("audit_reviewed",)
    assert rule.met_by == ("audit_actions_reviewed",)
    clock = ManualClock(START)
    store = MemoryStore()
    engine = Engine(store, [spec], clock=clock)
    boss = Actor("M-01", "team_manager")
    joined = {"team_id": "T-01", "practitioner_id": "P-01", "experience": "experienced"}
    engine.start(spec, "SU-1", "practitioner_joined", boss, {**joined, "case_holding": False})
    reviewed = {"audit_ref": "AU-1", "kind": "audit"}
    step = engine.fire("SU-1", "audit_reviewed", boss, reviewed)
    due = [d for d in step.opened if d.name == "audit_actions_review"]
    assert len(due) == 1 and due[0].due_at.date() == (START + timedelta(weeks=4)).date()
    moderation = engine.fire("SU-1", "audit_reviewed", boss, {**reviewed, "kind": "moderation"})
    assert not [d for d in moderation.opened if d.name == "audit_actions_review"]
    engine.fire("SU-1", "audit_actions_reviewed", boss, {"audit_ref": "AU-1"})
    assert not [d for d in store.open_deadlines("SU-1") if d.name == "audit_actions_review"]


def test_BX_MOD_07_every_moderation_is_reviewed_in_supervision() -> None:
    tasks = [(t.kind, t.owner_role, t.clause) for t in bexley.BEXLEY_MODERATION.completion_tasks]
    assert ("supervision_review", "team_manager", "BX-MOD-07") in tasks


def test_BX_AUD_07_the_report_counts_every_recorded_set_and_shows_agreement() -> None:
    """The report's family feedback reads the ``record_feedback`` sets: each family member's
    set counts towards the statements' means, and the child's agreement is shown."""
    from qaflow.registry import shipped_report_policies
    from qaflow.report import FeedbackRespondent, build_report, from_json, to_json, to_markdown

    h = Harness()
    f1 = BX_POLICY.form.question("F1")
    child = {"C1": {"answer": True}}
    given = {
        "AU-1": [
            {"respondent": "family", "answers": family_set(F1=valid_answer(f1, 2))},
            {"respondent": "family", "answers": family_set()},
            {"respondent": "network", "answers": {"N_role": {"text": "school"}}},
            {"respondent": "child", "agreed": False},
        ],
        "AU-2": [
            {"respondent": "child", "answers": child, "agreed": True},
            {"respondent": "family", "answers": family_set(F1=valid_answer(f1, 10))},
        ],
    }
    for wid, sets in given.items():
        at_feedback(h, wid)
        for payload in sets:
            h.fire(wid, "record_feedback", AUDITOR, payload)
        h.fire(wid, "complete", AUDITOR)
    known = shipped_report_policies()
    report = build_report(
        h.store, policies=known, start=START.date(), end=START.date() + timedelta(days=30)
    )
    (score,) = [s for s in report.family_feedback if s.question_id == "F1"]
    assert (score.responses, score.mean) == (3, (2 + 7 + 10) / 3)
    assert report.feedback_obtained == 2 and report.feedback_not_obtained == 0
    assert report.feedback_respondents == (
        FeedbackRespondent("family", sets=3, audits=2),
        FeedbackRespondent("child", sets=2, audits=2, agreed=1, not_agreed=1),
        FeedbackRespondent("network", sets=1, audits=1),
    )
    assert from_json(to_json(report)) == report
    page = to_markdown(report, policies=known)
    assert "Answer sets per respondent" in page and "| child | 2 | 2 | 1 | 1 |" in page
