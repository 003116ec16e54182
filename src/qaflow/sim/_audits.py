"""The audit programme's auditors, practitioners, business support and moderators.

:class:`AuditPlay` allocates the month's audits (one per manager, never a case of the auditor's
own team) and drives each through the real audit machine: the self-assessment, the health check
and meeting answers, a grade drawn from the knobs' ``grades``, family feedback
(``record_feedback``, a set per required respondent) or the reason it could not be had, the
agreed actions, completion and follow-up; a share is cancelled on the way.
:class:`ModerationPlay` draws the moderation sample from the audits completed so far, allocates
moderators and moderates: the moderator agrees or regrades, meets the auditor and agrees a
grade, which is written back to the audit.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import attrs

from qaflow.allocation import Auditor, Case, PastAudit, allocate_audits
from qaflow.machines import audit as A
from qaflow.machines import moderation as M
from qaflow.procedure import AUDITOR, MODERATOR, WORKER, AuditPolicy, Grade, ModerationPolicy
from qaflow.records import Actor
from qaflow.sim._answers import answers as answers_for
from qaflow.sim._answers import can_give, feedback_sets, grading_answer
from qaflow.sim._answers import centre as centre_of
from qaflow.sim._escalation import TEXT
from qaflow.sim._run import Run
from qaflow.spec import MachineSpec

__all__ = ["AuditPlay", "ModerationPlay"]


@attrs.define
class _Audit:
    wid: str
    auditor: str
    worker: str
    grade: Grade
    slow: bool
    cancel_at: int | None
    feedback: bool
    safeguarding: bool
    month_index: int
    steps: int = 0
    centre: float = 5.0


class AuditPlay:
    """Allocation and every audit of a programme run (see the module docstring)."""

    def __init__(
        self, run: Run, policy: AuditPolicy, spec: MachineSpec, grades: Mapping[Grade, float]
    ) -> None:
        self.run = run
        self.policy = policy
        self.form = policy.form
        self.audit_spec = spec
        self.knobs = run.behaviour
        self.grades = [g for g, w in grades.items() if w > 0]
        self.weights = [grades[g] for g in self.grades]
        self.business = Actor(run.council.business_support, "business_support")
        self.past: list[PastAudit] = []
        self.audited: dict[str, int] = {}
        self.audits: dict[str, _Audit] = {}
        self.baseline: dict[str, tuple[float, float]] = {}

    def allocate(self, index: int, month: str, when: datetime) -> None:
        council = self.run.council
        directory = council.directory
        recent = {c for c, m in self.audited.items() if index - m < 6}
        cases = [
            Case(c.child_id, c.worker_id, c.team_id)
            for c in council.cases
            if c.child_id not in recent
        ]
        auditors = [Auditor(tm, directory.team_of(tm)) for tm in council.team_managers]
        auditors += [Auditor(sm, None) for sm in council.service_managers]
        result = allocate_audits(
            cases,
            auditors,
            month,
            history=self.past,
            rules=A.allocation_rules(self.policy),
            seed=f"{self.run.seed}:{month}",
        )
        self.run.count("unallocated", len(result.unallocated))
        for n, allocation in enumerate(result.allocations, start=1):
            wid = f"{self.run.prefix}AUD-{month}-{n:03d}"
            self.past.append(PastAudit(allocation.auditor_id, allocation.worker_id, month))
            self.audited[allocation.child_id] = index
            payload = A.allocation_payload(
                self.policy,
                child_id=allocation.child_id,
                worker_id=allocation.worker_id,
                auditor_id=allocation.auditor_id,
                directory=directory,
                practice_week=self.run.rng.random() < self.knobs.practice_week_rate,
            )
            at = when + timedelta(minutes=30 + n)
            self.run.later(
                at,
                partial(
                    self.start_audit,
                    wid,
                    payload,
                    allocation.auditor_id,
                    allocation.worker_id,
                    index,
                ),
            )

    # --- audits -----------------------------------------------------------------------------

    def start_audit(
        self, wid: str, payload: dict[str, Any], auditor: str, worker: str, index: int
    ) -> None:
        rng = self.run.rng
        step = self.run.engine.start(self.audit_spec, wid, "allocate", self.business, payload)
        self.run.after(step)
        self.run.count("audits_allocated")
        grade = rng.choices(self.grades, self.weights)[0]
        audit = _Audit(
            wid=wid,
            auditor=auditor,
            worker=worker,
            grade=grade,
            slow=auditor in self.run.slow,
            cancel_at=rng.randint(0, 4) if rng.random() < self.knobs.cancel_rate else None,
            feedback=rng.random() < self.knobs.feedback_rate,
            safeguarding=self.policy.safeguarding is not None
            and rng.random() < self.knobs.safeguarding_rate,
            month_index=index,
        )
        self.audits[wid] = audit
        if self.policy.has_self_assessment:
            self.run.later(
                self.run.working_day(step.event.at, rng.randint(1, 2)),
                lambda: self.audit_next(audit),
            )
        else:
            pace = self.knobs.slow_meeting_days if audit.slow else self.knobs.meeting_days
            days = rng.randint(*pace)
            self.run.later(
                self.run.working_day(step.event.at, days), lambda: self.audit_next(audit)
            )

    def audit_next(self, audit: _Audit) -> None:
        """Take the audit one step on from wherever it is (the machine says where)."""
        rng = self.run.rng
        wid = audit.wid
        state = self.run.engine.get(wid).state
        if state in (A.CANCELLED, A.CLOSED):
            return
        if audit.cancel_at == audit.steps and state not in (A.COMPLETED, A.FOLLOWED_UP):
            self.run.fire(wid, "cancel", self.business, {"reason": TEXT})
            self.run.count("audits_cancelled")
            return
        audit.steps += 1
        auditor = Actor(audit.auditor, AUDITOR)
        now = self.run.clock.now()
        policy = self.policy
        form = self.form
        nxt: datetime | None = None
        if state == A.ALLOCATED and policy.has_self_assessment:
            meeting = self.run.working_day(now, rng.randint(3, 6))
            self.run.fire(
                wid, "request_self_assessment", auditor, {"meeting_at": meeting.isoformat()}
            )
            nxt = self.run.working_day(now, rng.randint(1, 2))
        elif state == A.SELF_ASSESSMENT_REQUESTED:
            centre = self.self_assessment_centre(audit)
            answers = answers_for(form, "self_assessment", WORKER, centre, rng)
            self.run.fire(
                wid, "submit_self_assessment", Actor(audit.worker, WORKER), {"answers": answers}
            )
            self.run.complete(self.run.sa_tasks.pop(wid, []))
            nxt = self.run.working_day(now, rng.randint(1, 3))
        elif state in (A.ALLOCATED, A.SELF_ASSESSMENT_DONE):
            overall = grading_answer(form, audit.grade, rng)
            audit.centre = centre_of(form, overall, audit.grade)
            answers = answers_for(form, "health_check", AUDITOR, audit.centre, rng)
            self.run.fire(wid, "hold_meeting", auditor, {"answers": answers})
            nxt = now + timedelta(hours=2)
        elif state == A.AUDIT_MEETING:
            if audit.safeguarding:
                self.run.fire(
                    wid,
                    "escalate_safeguarding",
                    auditor,
                    {"concern": TEXT, "corrective_action": TEXT},
                )
            answers = {
                **answers_for(form, "meeting", AUDITOR, audit.centre, rng),
                **answers_for(form, "grading", AUDITOR, audit.centre, rng),
            }
            overall = grading_answer(form, audit.grade, rng)
            self.run.fire(wid, "grade", auditor, {"answer": overall, "answers": answers})
            nxt = self.run.working_day(now, rng.randint(0, 2) if policy.feedback is None else 1)
        elif state == A.GRADED and policy.feedback is not None:
            self.run.fire(wid, "seek_feedback", auditor)
            nxt = self.run.working_day(now, rng.randint(2, 6))
        elif state in (A.GRADED, A.FEEDBACK_SOUGHT):
            if policy.feedback is not None:
                if audit.feedback:  # BX-AUD-07: each respondent's set, with agreement
                    extra = random.Random(f"{wid}:feedback")
                    rule = policy.feedback
                    for payload in feedback_sets(form, rule, audit.centre + 1.0, rng, extra):
                        self.run.fire(wid, "record_feedback", auditor, payload)
                else:
                    self.run.fire(wid, "feedback_not_obtained", auditor, {"reason": TEXT})
            data = self.run.engine.get(wid).data
            self.run.fire(wid, "agree_actions", auditor, {"actions": self.actions(data, audit)})
            days = rng.randint(2, 4) if audit.slow and policy.follow_up is None else 1
            nxt = self.run.working_day(now, rng.randint(0, days))
        elif state == A.ACTIONS_AGREED:
            self.run.fire(wid, "complete", auditor)
            self.run.count("audits_completed")
            if policy.follow_up is not None:
                knobs = self.knobs
                pace = knobs.slow_follow_up_days if audit.slow else knobs.follow_up_days
                days = rng.randint(*pace)
                nxt = self.run.working_day(now, days)
        elif state == A.COMPLETED and policy.follow_up is not None:
            self.run.fire(wid, "follow_up", auditor, {"note": TEXT})
            self.run.count("audits_followed_up")
        if nxt is not None:
            self.run.later(nxt, lambda: self.audit_next(audit))

    def self_assessment_centre(self, audit: _Audit) -> float:
        """A practitioner's own rating: a personal baseline that drifts month by month."""
        found = self.baseline.get(audit.worker)
        if found is None:
            found = self.baseline[audit.worker] = (
                self.run.rng.uniform(3.0, 7.5),
                self.run.rng.gauss(0.4, 0.6),
            )
        base, drift = found
        return base + drift * audit.month_index

    def actions(self, data: Mapping[str, Any], audit: _Audit) -> list[dict[str, Any]]:
        """The agreed actions: one for the practitioner, and whatever the grade requires."""
        actions: list[dict[str, Any]] = [
            {
                "action": TEXT,
                "owner_role": WORKER,
                "within": self.run.rng.choice(("5 WD", "10 WD", "20 WD")),
                "immediate": audit.grade < Grade.GOOD,
            }
        ]
        for need in data.get("required_actions", []):
            actions.append(
                {
                    "action": TEXT,
                    "owner_role": "team_manager",
                    "within": "10 WD",
                    "immediate": False,
                    "kind": need["kind"],
                }
            )
        return actions


class ModerationPlay:
    """PSQA's monthly sample and every moderation of a programme run."""

    def __init__(self, run: Run, audit_play: AuditPlay, moderation: ModerationPolicy) -> None:
        self.run = run
        self.audit_play = audit_play
        self.form = audit_play.form
        self.moderation = moderation
        self.knobs = run.behaviour
        self.psqa = Actor(run.council.psqa, "psqa")
        self.moderator_load: dict[str, int] = {}

    def sample(self, month: str) -> None:
        """PSQA draws the month's moderation sample and allocates moderators (BX-MOD-01)."""
        now = self.run.clock.now()
        mine = [
            s
            for s in self.run.store.snapshots(A.MACHINE)
            if s.workflow_id.startswith(self.run.prefix)
        ]
        chosen = M.sample_audits(mine, self.moderation, now=now, seed=f"{self.run.seed}:{month}")
        if not chosen:
            return
        auditors = {
            aid: self.audit_play.audits[aid].auditor
            for aid in chosen
            if aid in self.audit_play.audits
        }
        pool = M.eligible_moderators(self.run.council.directory, self.moderation)
        pool = pool or self.run.council.directory.holders(MODERATOR)
        assigned = M.assign_moderators(auditors, pool, load=self.moderator_load)
        for n, audit_id in enumerate(sorted(assigned), start=1):
            moderator = assigned[audit_id]
            self.moderator_load[moderator] = self.moderator_load.get(moderator, 0) + 1
            mid = f"{self.run.prefix}MOD-{month}-{n:03d}"
            for step in M.open_moderation(
                self.run.engine, self.moderation, audit_id, mid, self.psqa
            ):
                self.run.after(step)
            self.run.fire(mid, "allocate", self.psqa, {"moderator_id": moderator})
            self.run.count("moderations_opened")
            self.run.later(
                self.run.working_day(now, self.run.rng.randint(2, 6)),
                partial(self.review, mid, moderator),
            )

    def gradable(self) -> list[Grade]:
        return [g for g in Grade if can_give(self.form, g)]

    def review(self, mid: str, moderator: str) -> None:
        """The moderator scales the audit: the same grade, or a neighbouring one."""
        rng = self.run.rng
        actor = Actor(moderator, MODERATOR)
        original = Grade[str(self.run.engine.get(mid).data["original_grade"])]
        grade = original
        if rng.random() >= self.knobs.moderation_agreement:
            grades = self.gradable()
            i = grades.index(original)
            options = [grades[j] for j in (i - 1, i + 1) if 0 <= j < len(grades)]
            grade = rng.choice(options)
        done = rng.random() < self.knobs.moderator_actions_done
        payload: dict[str, Any] = {
            "answer": grading_answer(self.form, grade, rng),
            "good_practice": TEXT,
            "areas_for_development": TEXT,
            "actions_completed": done,
        }
        if not done:
            payload["actions"] = [{"action": TEXT, "owner_role": WORKER, "within": "10 WD"}]
        self.run.fire(mid, "review", actor, payload)
        later = self.run.clock.now() + timedelta(hours=1)
        self.run.later(later, lambda: self.decide_moderation(mid, actor, original, grade))

    def decide_moderation(self, mid: str, actor: Actor, original: Grade, grade: Grade) -> None:
        """Agree (BX-MOD-04), or disagree and meet the auditor to agree a grade (BX-MOD-05)."""
        rng = self.run.rng
        now = self.run.clock.now()
        if grade is original:
            self.run.fire(mid, "agree", actor)
            self.run.later(
                self.run.working_day(now, rng.randint(1, 2)), lambda: self.finalise(mid, actor)
            )
        else:
            self.run.fire(mid, "disagree", actor, {"reason": TEXT})
            agreed = grade if rng.random() < self.knobs.regrade_kept else original
            self.run.later(
                self.run.working_day(now, rng.randint(1, 3)), lambda: self.meet(mid, actor, agreed)
            )

    def meet(self, mid: str, actor: Actor, grade: Grade) -> None:
        self.run.fire(mid, "meet", actor)
        answer = grading_answer(self.form, grade, self.run.rng)
        self.run.fire(mid, "agree_grade", actor, {"answer": answer, "rationale": TEXT})
        self.run.later(self.run.clock.now() + timedelta(hours=1), lambda: self.finalise(mid, actor))

    def finalise(self, mid: str, actor: Actor) -> None:
        for step in M.finalise_moderation(self.run.engine, mid, actor):
            self.run.after(step)
        self.run.count("moderations_finalised")
        if self.run.engine.get(mid).data.get("agreed"):
            self.run.count("moderations_agreed")
        moderator = actor.id
        self.moderator_load[moderator] = max(0, self.moderator_load.get(moderator, 0) - 1)
