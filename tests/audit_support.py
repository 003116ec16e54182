"""Shared drivers for the audit and moderation tests: valid answers, ids, and a harness
that brings an audit to any state of its lifecycle under either council's policy."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from qaflow import Actor, Engine, ManualClock, MemoryStore, QAFlowError, Step
from qaflow._audit_conformance import grading_answer, stage_answers, valid_answer
from qaflow.machines import audit as A
from qaflow.machines import moderation as M
from qaflow.policies import bexley, buckinghamshire
from qaflow.policies.audits import AuditPolicy
from qaflow.policies.forms import Grade
from qaflow.procedure import load_audit_procedure
from qaflow.testing import store_content

#: A third council's tool written only as a file: the four Ofsted grades given directly.
OFSTED_FILE = Path(__file__).parent.parent / "examples" / "councils" / "ofsted_grade_audit.toml"
OFSTED = load_audit_procedure(OFSTED_FILE)

POLICIES = {
    "bexley": bexley.BEXLEY_AUDIT,
    "buckinghamshire": buckinghamshire.BUCKINGHAMSHIRE_AUDIT,
    "ofsted_example": OFSTED.audit,
}
MODERATION = {
    "bexley": bexley.BEXLEY_MODERATION,
    "buckinghamshire": buckinghamshire.BUCKINGHAMSHIRE_MODERATION,
    "ofsted_example": OFSTED.moderation,
}

BUSINESS = Actor("B-01", "business_support")
AUDITOR = Actor("A-01", "auditor")
WORKER = Actor("W-01", "worker")
PSQA = Actor("Q-01", "psqa")
MODERATOR = Actor("X-01", "moderator")
START = datetime(2025, 3, 3, 9, tzinfo=UTC)  # a Monday

ROLE_IDS = {
    "team_manager_id": "M-01",
    "service_manager_id": "S-01",
    "head_of_service_id": "H-01",
    "assistant_director_id": "D-01",
    "director_of_childrens_services_id": "D-02",
    "psqa_id": "Q-01",
}


def grades_of(policy: AuditPolicy) -> list[Grade]:
    """The grades the policy's form can give."""
    return [g for g in Grade if _can_give(policy, g)]


def _can_give(policy: AuditPolicy, grade: Grade) -> bool:
    try:
        grading_answer(policy, grade)
    except StopIteration:
        return False
    return True


def allocation(**changes: Any) -> dict[str, Any]:
    """A valid ``allocate`` payload with every notified role's id."""
    payload: dict[str, Any] = {
        "child_id": "C-01",
        "worker_id": WORKER.id,
        "auditor_id": AUDITOR.id,
        "team_id": "T-01",
        "auditor_team_id": "T-02",
        **ROLE_IDS,
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


def payload_for(policy: AuditPolicy, **changes: Any) -> dict[str, Any]:
    """An allocation payload keeping only the id fields this policy's ``allocate`` accepts."""
    spec = A.audit_spec(policy)
    accepted = {f.name for f in spec.candidates(A.NEW, "allocate")[0].fields}
    return {k: v for k, v in allocation(**changes).items() if k in accepted}


def one_action(**changes: Any) -> dict[str, Any]:
    action: dict[str, Any] = {
        "action": "share the plan with the family",
        "owner_role": "worker",
        "within": "5 WD",
        "immediate": True,
    }
    action.update(changes)
    if "due" in changes and "within" not in changes:
        del action["within"]
    return {k: v for k, v in action.items() if v is not None}


def actions_for(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Actions that satisfy whatever the grade requires (immediate, required kinds)."""
    actions = [one_action()]
    for need in data.get("required_actions", []):
        actions.append(one_action(kind=need["kind"], owner_role="team_manager", immediate=False))
    return actions


class Harness:
    """One engine on a memory store and a manual clock, with every council registered."""

    def __init__(self, store: Any = None, directory: Any = None) -> None:
        self.clock = ManualClock(START)
        self.store = store if store is not None else MemoryStore()
        self.specs = {name: A.audit_spec(p) for name, p in POLICIES.items()}
        self.mod_specs = {name: M.moderation_spec(p) for name, p in MODERATION.items()}
        self.engine = Engine(
            self.store,
            [*self.specs.values(), *self.mod_specs.values()],
            clock=self.clock,
            directory=directory,
        )

    def start(self, council: str, wid: str, **changes: Any) -> Step:
        policy = POLICIES[council]
        return self.engine.start(
            self.specs[council], wid, "allocate", BUSINESS, payload_for(policy, **changes)
        )

    def fire(self, wid: str, trigger: str, actor: Actor, payload: Any = None) -> Step:
        return self.engine.fire(wid, trigger, actor, payload)

    def drive(
        self,
        council: str,
        wid: str,
        until: str,
        *,
        grade: Grade = Grade.GOOD,
        feedback: str = "answers",
        **changes: Any,
    ) -> Step:
        """Start an audit and take it, validly, to state ``until``."""
        policy = POLICIES[council]
        spec = self.specs[council]
        names = spec.state_names
        order = [n for n in names if n not in (A.CLOSED, A.CANCELLED, A.NEW)]
        step = self.start(council, wid, **changes)
        for state in order[1 : order.index(until) + 1]:
            step = self._enter(policy, wid, state, grade, feedback)
        return step

    def _enter(
        self, policy: AuditPolicy, wid: str, state: str, grade: Grade, feedback: str
    ) -> Step:
        data = self.engine.get(wid).data
        if state == A.SELF_ASSESSMENT_REQUESTED:
            return self.fire(wid, "request_self_assessment", AUDITOR)
        if state == A.SELF_ASSESSMENT_DONE:
            answers = stage_answers(policy, "self_assessment")
            return self.fire(wid, "submit_self_assessment", WORKER, {"answers": answers})
        if state == A.AUDIT_MEETING:
            answers = stage_answers(policy, "health_check") if policy.has_health_check else {}
            return self.fire(wid, "hold_meeting", AUDITOR, {"answers": answers})
        if state == A.GRADED:
            answers = {
                **stage_answers(policy, "meeting"),
                **stage_answers(policy, "grading"),
            }
            payload = {"answer": grading_answer(policy, grade), "answers": answers}
            return self.fire(wid, "grade", AUDITOR, payload)
        if state == A.FEEDBACK_SOUGHT:
            return self.fire(wid, "seek_feedback", AUDITOR)
        if state == A.ACTIONS_AGREED:
            if policy.feedback is not None:
                if feedback == "answers":
                    answers = {
                        q: valid_answer(policy.form.question(q)) for q in policy.feedback.questions
                    }
                    family = {"respondent": "family", "answers": answers}
                    self.fire(wid, "record_feedback", AUDITOR, family)
                elif feedback == "reason":
                    self.fire(wid, "feedback_not_obtained", AUDITOR, {"reason": "no reply"})
            return self.fire(wid, "agree_actions", AUDITOR, {"actions": actions_for(data)})
        if state == A.COMPLETED:
            return self.fire(wid, "complete", AUDITOR)
        if state == A.FOLLOWED_UP:
            return self.fire(wid, "follow_up", AUDITOR, {"note": "actions under way"})
        raise AssertionError(f"no way into {state!r}")


def refused(h: Harness, error: type[QAFlowError], action: Callable[[], object]) -> QAFlowError:
    """Run ``action``; it must raise ``error`` and write nothing at all (I3)."""
    before = store_content(h.store)
    with pytest.raises(error) as caught:
        action()
    assert store_content(h.store) == before, "I3: a refused command wrote something"
    return caught.value
