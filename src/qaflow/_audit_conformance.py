"""The audit conformance suite: hypothesis stateful tests for any audit procedure file.

:func:`check_audit_procedure` builds the audit machine of a council's procedure (as
:func:`qaflow.procedure.load_audit_procedure` reads it), then drives a few audits with the
commands the lifecycle expects next (sometimes incomplete, so the guards are exercised),
random commands by random actors, and ticks of a manual clock. The later commands where the
policy has them -- ``record_feedback``, ``review_sufficiency``, ``review_in_supervision``,
``arrange_meeting`` -- have rules of their own, with payloads drawn by
:mod:`qaflow._audit_draw` (valid most often, each way of getting one wrong the rest), and the
lifecycle takes them on its way (a whole family set before the actions, the reviews before
completion and follow-up). After every step, on every audit: the event sequence, replay,
deadlines and hash chain hold (:func:`~qaflow.testing.check_workflow`); a refused command
wrote nothing; a finished audit never moved; a tick leaves nothing due; an Inadequate grade
notifies exactly the roles of the policy's grade rules and opens their tasks in the grading
step; no grade without every required answer; completion only with an action, and only
with the feedback the policy requires or the reason it could not be had; each feedback set
is kept as given; a sufficiency verdict tells exactly ``notify_if_not`` when it is "not
sufficient"; a performance issue opens exactly the policy's supervision-note tasks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from hypothesis import HealthCheck
from hypothesis import settings as _settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from qaflow._audit_draw import (
    feedback_payloads,
    meeting_payloads,
    sufficiency_payloads,
    supervision_payloads,
    whole_feedback,
)
from qaflow.clock import ManualClock
from qaflow.engine import Engine
from qaflow.errors import QAFlowError
from qaflow.machines import audit as A
from qaflow.machines._audit_feedback import respondents
from qaflow.procedure import AuditPolicy, AuditProcedure, Grade, Question, missing_answers
from qaflow.records import Actor, Step
from qaflow.spec import MachineSpec
from qaflow.store import MemoryStore

__all__ = [
    "AuditProcedureMachine",
    "audit_state_machine",
    "check_audit_procedure",
    "grading_answer",
    "stage_answers",
    "valid_answer",
]

_START = datetime(2025, 3, 3, 9, tzinfo=UTC)  # a Monday
_TRIGGERS = [
    "request_self_assessment",
    "submit_self_assessment",
    "hold_meeting",
    "grade",
    "seek_feedback",
    "feedback_not_obtained",
    "agree_actions",
    "complete",
    "follow_up",
    "close",
    "cancel",
    "answer",
    "extend_lookback",
    "escalate_safeguarding",
    "moderation_started",
    "moderated",
    "moderation_cancelled",
    "record_feedback",
    "review_sufficiency",
    "review_in_supervision",
    "arrange_meeting",
]
_DEFAULTS: dict[str, object] = {
    "scale_0_10": 6,
    "judgement": "meets_good",
    "grade": "good",
    "yes_no": False,
    "text": "some text",
}


def valid_answer(question: Question, main: object = None) -> dict[str, Any]:
    """A complete answer to ``question``; ``main`` replaces the kind's default value."""
    answer: dict[str, Any] = {
        question.answer_key: _DEFAULTS[question.kind] if main is None else main
    }
    answer.update({name: f"{name} text" for name in question.text_fields})
    return answer


def stage_answers(policy: AuditPolicy, stage: str) -> dict[str, dict[str, Any]]:
    """Valid answers to every question of ``stage`` except the overall grading."""
    form = policy.form
    return {
        q.id: valid_answer(q)
        for q in form.questions_in_stage(stage)
        if q.id != form.grading_question
    }


def grading_answer(policy: AuditPolicy, grade: Grade) -> dict[str, Any]:
    """An answer to the grading question that the policy's form maps to ``grade``."""
    form = policy.form
    question = form.question(form.grading_question)
    if form.grade_bands is not None:
        score = next(s for s in range(11) if form.grade_bands.grade_for(s) is grade)
        return valid_answer(question, score)
    if form.judgement_scale is not None:
        judgement = next(j for j, g in form.judgement_scale.as_mapping().items() if g is grade)
        return valid_answer(question, judgement.value)
    return valid_answer(question, grade.name.lower())


class AuditProcedureMachine(RuleBasedStateMachine):
    """Random valid and invalid commands on a few audits under one procedure."""

    procedure: ClassVar[AuditProcedure]

    def __init__(self) -> None:
        super().__init__()
        self.policy = self.procedure.audit
        self.spec: MachineSpec = A.audit_spec(self.policy)
        self.clock = ManualClock(_START)
        self.store = MemoryStore()
        self.engine = Engine(self.store, [self.spec], clock=self.clock)
        self.ids: list[str] = []
        self.checked: dict[str, int] = {}
        self.grades = sorted(self.policy.form.grades)
        review = self.policy.sufficiency_review
        acted_on = {g for r in self.policy.grade_rules for g in r.grades}
        acted_on |= set(review.grades) if review is not None else set()
        self.acted_on = sorted(acted_on & set(self.grades)) or self.grades  # drawn more often
        self.business = Actor("B-01", self.policy.allocator_roles[0])
        self.auditor = Actor("A-01", "auditor")
        self.worker = Actor("W-01", "worker")
        self.qa = Actor("Q-01", self.policy.qa_roles[0])
        self.actors = [self.business, self.auditor, self.worker, self.qa, Actor("A-02", "auditor")]
        role = review.reviewer_role if review is not None else "service_manager"
        self.reviewer = Actor(f"{role.upper()}-1", role)  # the id _payload records for it
        supervision = self.policy.supervision_review
        self.supervisors = [Actor("SUP-1", r) for r in (supervision.roles if supervision else ())]
        self.triggers = set(self.spec.triggers)

    def _payload(self) -> dict[str, Any]:
        accepted = {f.name for f in self.spec.candidates(A.NEW, "allocate")[0].fields}
        payload: dict[str, Any] = {
            "child_id": "C-01",
            "worker_id": self.worker.id,
            "auditor_id": self.auditor.id,
            "team_id": "T-01",
            "auditor_team_id": "T-02",
        }
        for role in self.policy.roles():
            payload.setdefault(f"{role}_id", f"{role.upper()}-1")
        return {k: v for k, v in payload.items() if k in accepted}

    def _attempt(self, wid: str, action: Any) -> Step | None:
        from qaflow.testing import store_content

        before_content = store_content(self.store)
        before = self.engine.get(wid)
        try:
            step: Step = action()
        except QAFlowError:
            assert store_content(self.store) == before_content, "a refused command wrote something"
            return None
        if self.spec.state(before.state).terminal:
            raise AssertionError(f"the finished audit {wid!r} moved")
        if step.event.trigger == "grade":
            self._check_grade_step(step)
        if step.event.trigger == "agree_actions":
            grade = Grade[str(step.snapshot.data["grade"])]
            told = [n.recipient_role for n in step.notifications]
            assert told == list(self.policy.notified(grade, step="actions")), (
                "the notices that go with the agreed actions are not the policy's"
            )
        self._check_later_step(before.data, step)
        return step

    def _check_later_step(self, before: dict[str, Any], step: Step) -> None:
        """What each later command must have done, judged from its payload."""
        trigger, payload, data = step.event.trigger, step.event.payload, step.snapshot.data
        told = [n.recipient_role for n in step.notifications]
        if trigger == "record_feedback":
            rule = self.policy.feedback
            assert rule is not None
            sets = data["feedback"]
            assert sets[:-1] == before.get("feedback", []), "an earlier feedback set changed"
            last = sets[-1]
            assert last["respondent"] == payload["respondent"]
            assert last["answers"] == payload.get("answers", {})
            assert ("agreed" in last) == (payload["respondent"] in rule.consent_for)
            if last.get("agreed") is False:
                assert not last["answers"], "a child's answers taken without agreement"
        elif trigger == "review_sufficiency":
            review = self.policy.sufficiency_review
            assert review is not None and Grade[str(data["grade"])] in review.grades
            assert data["actions_sufficient"] is payload["sufficient"]
            assert told == ([] if payload["sufficient"] else list(review.notify_if_not))
        elif trigger == "review_in_supervision":
            supervision = self.policy.supervision_review
            assert supervision is not None and data["oversight_note"] == payload["note"]
            wanted = supervision.performance_tasks if payload.get("performance_issue") else ()
            assert [t.kind for t in step.tasks] == [t.kind for t in wanted]
        elif trigger == "arrange_meeting":
            assert data["meeting_at"] == payload["meeting_at"]

    def _check_grade_step(self, step: Step) -> None:
        """The grading step notifies exactly the grade rules' roles and opens their tasks."""
        grade = Grade[str(step.snapshot.data["grade"])]
        rules = self.policy.rules_for(grade)
        assert [n.recipient_role for n in step.notifications] == list(
            self.policy.notified(grade)
        ), "the grading step's notifications are not the policy's"
        assert len(step.tasks) == sum(len(rule.tasks) for rule in rules)
        for task in step.tasks:
            assert task.due_at is None or task.due_at > step.event.at

    @initialize()
    def first_audit(self) -> None:
        self.engine.start(self.spec, "AU-0", "allocate", self.business, self._payload())
        self.ids.append("AU-0")

    @rule()
    def new_audit(self) -> None:
        if len(self.ids) < 3:
            wid = f"AU-{len(self.ids)}"
            self.engine.start(self.spec, wid, "allocate", self.business, self._payload())
            self.ids.append(wid)

    @rule(index=st.integers(0, 2), grade_index=st.integers(0, 3), data=st.data())
    def next_step(self, index: int, grade_index: int, data: st.DataObject) -> None:
        """The command the lifecycle expects next, sometimes without what it needs."""
        wid = self.ids[index % len(self.ids)]
        full = data.draw(st.booleans())
        command = self._next(wid, self.grades[grade_index % len(self.grades)], full)
        if command is not None:
            self._fire_on(wid, *command)

    @rule(index=st.integers(0, 2), steps=st.integers(2, 12), data=st.data())
    def run_ahead(self, index: int, steps: int, data: st.DataObject) -> None:
        """Several lifecycle steps in a row, so a short run still reaches the later commands
        (feedback, the reviews, completion, follow-up) and the rules above act on them."""
        wid = self.ids[index % len(self.ids)]
        grade = data.draw(st.sampled_from(self.grades) | st.sampled_from(self.acted_on))
        for _ in range(steps):
            command = self._next(wid, grade, data.draw(st.integers(0, 5)) > 0)
            if command is None:
                return
            self._fire_on(wid, *command)

    def _next(self, wid: str, grade: Grade, full: bool) -> tuple[str, Actor, dict[str, Any]] | None:
        policy, snap = self.policy, self.engine.get(wid)
        if snap.state == A.ALLOCATED:
            if full and "arrange_meeting" in self.triggers and "meeting_at" not in snap.data:
                return ("arrange_meeting", self.auditor, {"meeting_at": _START.isoformat()})
            if policy.has_self_assessment:
                return ("request_self_assessment", self.auditor, {})
            answers = stage_answers(policy, "health_check") if full else {}
            return ("hold_meeting", self.auditor, {"answers": answers})
        if snap.state == A.SELF_ASSESSMENT_REQUESTED:
            answers = stage_answers(policy, "self_assessment") if full else {}
            return ("submit_self_assessment", self.worker, {"answers": answers})
        if snap.state == A.SELF_ASSESSMENT_DONE:
            answers = stage_answers(policy, "health_check") if full else {}
            return ("hold_meeting", self.auditor, {"answers": answers})
        if snap.state == A.AUDIT_MEETING:
            answers = {**stage_answers(policy, "meeting"), **stage_answers(policy, "grading")}
            payload = {"answer": grading_answer(policy, grade), "answers": answers if full else {}}
            return ("grade", self.auditor, payload)
        if snap.state == A.GRADED and policy.feedback is not None:
            return ("seek_feedback", self.auditor, {})
        if snap.state == A.FEEDBACK_SOUGHT and not full:
            return ("feedback_not_obtained", self.auditor, {"reason": "no reply"})
        if snap.state == A.FEEDBACK_SOUGHT and "record_feedback" in self.triggers:
            given = {f.get("respondent") for f in snap.data.get("feedback", [])}
            rule = policy.feedback
            due = [w for w in rule.required_from if w not in given] if rule is not None else []
            if due and due[0] in respondents(policy.form):
                return ("record_feedback", self.auditor, whole_feedback(policy, due[0]))
        if snap.state in (A.GRADED, A.FEEDBACK_SOUGHT):
            actions = [{"action": "a", "owner_role": "worker", "within": "5 WD", "immediate": full}]
            for need in snap.data.get("required_actions", []):
                actions.append(
                    {"action": "b", "owner_role": "worker", "within": "5 WD", "kind": need["kind"]}
                )
            return ("agree_actions", self.auditor, {"actions": actions})
        review = self._review(snap.state, snap.data, grade) if full else None
        if review is not None:
            return review
        if snap.state == A.ACTIONS_AGREED:
            return ("complete", self.auditor, {})
        if snap.state == A.COMPLETED and policy.follow_up is not None:
            return ("follow_up", self.auditor, {"note": "n"})
        return None

    def _review(
        self, state: str, data: dict[str, Any], grade: Grade
    ) -> tuple[str, Actor, dict[str, Any]] | None:
        """The review the lifecycle takes next, if the policy has one not yet recorded: the
        actions' sufficiency before completion, the supervision review after it."""
        review = self.policy.sufficiency_review
        if (
            state == A.ACTIONS_AGREED
            and review is not None
            and "actions_sufficient" not in data
            and Grade[str(data["grade"])] in review.grades
        ):
            verdict = {"sufficient": grade > Grade.REQUIRES_IMPROVEMENT, "note": "n"}
            return ("review_sufficiency", self.reviewer, verdict)
        if state == A.COMPLETED and self.supervisors and "oversight_note" not in data:
            note = {"note": "n", "timeframe": "2 weeks", "performance_issue": grade < Grade.GOOD}
            return ("review_in_supervision", self.supervisors[0], note)
        return None

    @rule(index=st.integers(0, 2), data=st.data())
    def record_feedback(self, index: int, data: st.DataObject) -> None:
        """One respondent's answer set (BX-AUD-07), drawn whole, partial or wrong."""
        if "record_feedback" in self.triggers:
            payload = data.draw(feedback_payloads(self.policy))
            self._fire(index, "record_feedback", self.auditor, payload)

    @rule(index=st.integers(0, 2), holder=st.booleans(), payload=sufficiency_payloads())
    def review_sufficiency(self, index: int, holder: bool, payload: dict[str, Any]) -> None:
        """The reviewer's verdict on the agreed actions (BX-AUD-12), sometimes by another."""
        if "review_sufficiency" in self.triggers:
            actor = self.reviewer if holder else Actor("OTHER-1", self.reviewer.role)
            self._fire(index, "review_sufficiency", actor, payload)

    @rule(index=st.integers(0, 2), who=st.integers(0, 3), payload=supervision_payloads())
    def review_in_supervision(self, index: int, who: int, payload: dict[str, Any]) -> None:
        """The oversight note and timeframe (BX-AUD-10), by a supervisor or someone else."""
        if "review_in_supervision" in self.triggers:
            actors = [*self.supervisors, self.worker]
            self._fire(index, "review_in_supervision", actors[who % len(actors)], payload)

    @rule(index=st.integers(0, 2), own=st.booleans(), payload=meeting_payloads())
    def arrange_meeting(self, index: int, own: bool, payload: dict[str, Any]) -> None:
        """The auditor arranges the meeting (BK-AUD-07); another auditor may not."""
        if "arrange_meeting" in self.triggers:
            self._fire(index, "arrange_meeting", self.auditor if own else self.actors[4], payload)

    def _fire(self, index: int, trigger: str, actor: Actor, payload: dict[str, Any]) -> None:
        self._fire_on(self.ids[index % len(self.ids)], trigger, actor, payload)

    def _fire_on(
        self, wid: str, trigger: str, actor: Actor, payload: dict[str, Any]
    ) -> Step | None:
        """Fire on ``wid`` through :meth:`_attempt`: the step, or ``None`` if refused."""
        return self._attempt(wid, lambda: self.engine.fire(wid, trigger, actor, dict(payload)))

    @rule(
        index=st.integers(0, 2),
        trigger=st.sampled_from(_TRIGGERS),
        actor_index=st.integers(0, 4),
        payload=st.sampled_from([{}, {"reason": "r"}, {"answers": {}}, {"actions": []}]),
    )
    def random_command(
        self, index: int, trigger: str, actor_index: int, payload: dict[str, Any]
    ) -> None:
        wid = self.ids[index % len(self.ids)]
        actor = self.actors[actor_index]
        self._attempt(wid, lambda: self.engine.fire(wid, trigger, actor, dict(payload)))

    @rule(hours=st.sampled_from([1, 24, 24 * 10, 24 * 40]))
    def advance_and_tick(self, hours: int) -> None:
        from qaflow.testing import check_tick

        self.clock.advance(hours=hours)
        check_tick(self.engine, self.clock.now())

    @invariant()
    def audits_hold_the_invariants(self) -> None:
        from qaflow.testing import check_workflow

        form = self.policy.form
        for wid in self.ids:
            snap = self.engine.get(wid)
            if self.checked.get(wid) != snap.version:
                check_workflow(self.engine, wid)
                self.checked[wid] = snap.version
            triggers = [e.trigger for e in self.engine.history(wid)]
            if "grade" in triggers:
                stages = form.stages_through("grading")
                assert not missing_answers(form, snap.data["answers"], stages=stages)
            if "complete" in triggers:
                assert snap.data["actions"], "completed without an action"
                assert self.policy.feedback is None or (
                    A.family_feedback_complete(self.policy, snap.data)
                    or snap.data.get("feedback_reason")
                ), "completed without the feedback the policy requires or its reason"


def audit_state_machine(procedure: AuditProcedure) -> type[AuditProcedureMachine]:
    """An :class:`AuditProcedureMachine` subclass for ``procedure``."""
    name = f"AuditMachine_{procedure.audit.name}"
    return type(name, (AuditProcedureMachine,), {"procedure": procedure})


def check_audit_procedure(
    procedure: AuditProcedure,
    *,
    max_examples: int | None = None,
    stateful_step_count: int | None = None,
) -> None:
    """Run the audit conformance suite on ``procedure``; raise ``AssertionError`` on a
    failure (hypothesis prints the shortest command sequence that breaks it)."""
    from hypothesis.stateful import run_state_machine_as_test

    changes: dict[str, Any] = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
    }
    if max_examples is not None:
        changes["max_examples"] = max_examples
    if stateful_step_count is not None:
        changes["stateful_step_count"] = stateful_step_count
    run_state_machine_as_test(  # type: ignore[no-untyped-call,unused-ignore]  # hypothesis leaves it untyped
        audit_state_machine(procedure), settings=_settings(_settings(), **changes)
    )
