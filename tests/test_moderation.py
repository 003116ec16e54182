"""The moderation machine and its write-back to the audits: one example test per clause,
sampling, moderator allocation, crash recovery, then a stateful property test."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from audit_support import (
    AUDITOR,
    MODERATION,
    MODERATOR,
    POLICIES,
    PSQA,
    WORKER,
    Harness,
    grades_of,
    grading_answer,
    one_action,
    refused,
)
from qaflow import (
    Actor,
    GuardFailed,
    PermissionDenied,
    QAFlowError,
    Step,
    TransitionNotAllowed,
    ValidationError,
)
from qaflow.allocation import AllocationImpossible
from qaflow.directory import InMemoryDirectory
from qaflow.machines import audit as A
from qaflow.machines import moderation as M
from qaflow.policies import bexley, buckinghamshire
from qaflow.policies.forms import Grade
from qaflow.registry import shipped_specs
from qaflow.testing import check_record_round_trip, check_tick, check_workflow, store_content

BX, BK = "bexley", "buckinghamshire"
MOD2 = Actor("X-02", "moderator")


@pytest.fixture
def h() -> Harness:
    return Harness()


def final_state(council: str) -> str:
    return A.FOLLOWED_UP if POLICIES[council].follow_up else A.COMPLETED


def done_audit(h: Harness, council: str, wid: str, grade: Grade = Grade.GOOD) -> Step:
    return h.drive(council, wid, final_state(council), grade=grade)


def review(
    h: Harness,
    council: str,
    mid: str,
    grade: Grade = Grade.GOOD,
    *,
    actions_completed: bool = True,
    actions: list[dict[str, Any]] | None = None,
    actor: Actor = MODERATOR,
) -> Step:
    payload: dict[str, Any] = {
        "answer": grading_answer(POLICIES[council], grade),
        "good_practice": "direct work is evidenced",
        "areas_for_development": "plan timescales",
        "actions_completed": actions_completed,
    }
    if actions is not None:
        payload["actions"] = actions
    return h.fire(mid, "review", actor, payload)


def opened(h: Harness, council: str, audit_id: str, mid: str, grade: Grade = Grade.GOOD) -> None:
    done_audit(h, council, audit_id, grade)
    M.open_moderation(h.engine, MODERATION[council], audit_id, mid, PSQA)
    h.fire(mid, "allocate", PSQA, {"moderator_id": MODERATOR.id})


def test_all_is_sorted_and_importable() -> None:
    key = lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n)  # noqa: E731
    assert list(M.__all__) == sorted(M.__all__, key=key)
    assert all(hasattr(M, n) for n in M.__all__)


# --- BX-MOD-01 / BK-MOD-01: sampling and allocation --------------------------------------


def test_BX_MOD_01_sample_is_every_inadequate_plus_a_seeded_share(h: Harness) -> None:
    grades = [Grade.INADEQUATE, Grade.INADEQUATE] + [Grade.GOOD] * 9 + [Grade.OUTSTANDING] * 9
    for i, grade in enumerate(grades):
        done_audit(h, BX, f"AU-{i:02d}", grade)
    now = h.clock.now()
    policy = bexley.BEXLEY_MODERATION
    sample = M.sample_audits(h.store.snapshots(), policy, now=now, seed=2025)
    assert {"AU-00", "AU-01"} <= set(sample)
    assert len(sample) == 2 + 2  # ceil(10% of 18)
    assert sample == M.sample_audits(h.store.snapshots(), policy, now=now, seed=2025)
    other = {M.sample_audits(h.store.snapshots(), policy, now=now, seed=s) for s in range(8)}
    assert len(other) > 1


def test_BX_MOD_01_only_audits_of_the_last_6_months_not_yet_moderated(h: Harness) -> None:
    done_audit(h, BX, "AU-OLD", Grade.INADEQUATE)
    h.clock.advance(days=120)
    done_audit(h, BX, "AU-1", Grade.INADEQUATE)
    done_audit(h, BX, "AU-2", Grade.INADEQUATE)
    h.drive(BX, "AU-OPEN", A.GRADED, grade=Grade.INADEQUATE)  # not completed
    done_audit(h, BK, "AU-BK", Grade.REQUIRES_IMPROVEMENT)  # another council
    M.open_moderation(h.engine, bexley.BEXLEY_MODERATION, "AU-2", "MOD-1", PSQA)
    h.clock.advance(days=70)  # AU-OLD is now over 6 months old
    ids = [
        s.workflow_id
        for s in M.eligible_audits(h.store.snapshots(), bexley.BEXLEY_MODERATION, now=h.clock.now())
    ]
    assert ids == ["AU-1"]
    # The moderation itself refuses an audit completed outside the look-back.
    payload = M.sample_payload(h.engine.get("AU-OLD"), bexley.BEXLEY_MODERATION)
    spec = h.mod_specs[BX]
    error = refused(h, GuardFailed, lambda: h.engine.start(spec, "MOD-9", "sample", PSQA, payload))
    assert error.clause == "BX-MOD-01"  # type: ignore[attr-defined]


def test_BX_MOD_01_the_moderator_is_never_the_auditor(h: Harness) -> None:
    done_audit(h, BX, "AU-1")
    M.open_moderation(h.engine, bexley.BEXLEY_MODERATION, "AU-1", "MOD-1", PSQA)
    error = refused(
        h, GuardFailed, lambda: h.fire("MOD-1", "allocate", PSQA, {"moderator_id": AUDITOR.id})
    )
    assert error.clause == "BX-MOD-01"  # type: ignore[attr-defined]
    refused(
        h,
        PermissionDenied,
        lambda: h.fire("MOD-1", "allocate", MODERATOR, {"moderator_id": "X-01"}),
    )
    step = h.fire("MOD-1", "allocate", PSQA, {"moderator_id": MODERATOR.id})
    assert step.snapshot.data["moderator_id"] == "X-01"
    # Only the allocated moderator reviews.
    refused(h, PermissionDenied, lambda: review(h, BX, "MOD-1", actor=MOD2))


def test_BX_MOD_01_assign_moderators_is_balanced_and_never_the_auditor() -> None:
    audits = {f"AU-{i}": ("A-1" if i % 2 else "A-2") for i in range(6)}
    out = M.assign_moderators(audits, ["A-1", "A-2", "X-1"])
    assert all(out[a] != audits[a] for a in audits)
    assert max(list(out.values()).count(m) for m in set(out.values())) == 2
    with pytest.raises(AllocationImpossible, match="own auditor"):
        M.assign_moderators({"AU-1": "A-1"}, ["A-1"])
    with pytest.raises(AllocationImpossible, match="no moderators"):
        M.assign_moderators({"AU-1": "A-1"}, [])


def test_BX_MOD_01_moderators_come_from_the_policys_roles() -> None:
    from pathlib import Path

    org = InMemoryDirectory.load_json(
        Path(__file__).resolve().parent.parent / "examples" / "directory.json"
    )
    policy = bexley.BEXLEY_MODERATION
    assert M.eligible_moderators(org, policy) == ("H-002", "R-001", "R-002", "S-001")
    assert set(policy.moderator_roles) == set(bexley.MODERATOR_ROLES)


def test_BK_MOD_01_a_sample_of_each_months_audits_at_least_one(h: Harness) -> None:
    for i in range(3):
        done_audit(h, BK, f"AU-{i}")
    now = h.clock.now()
    sample = M.sample_audits(
        h.store.snapshots(), buckinghamshire.BUCKINGHAMSHIRE_MODERATION, now=now, seed=1
    )
    assert len(sample) == 1  # ceil(10% of 3) = 1, and at least one
    h.clock.advance(days=40)  # last month's audits are no longer this month's sample
    later = h.clock.now()
    assert (
        M.sample_audits(
            h.store.snapshots(), buckinghamshire.BUCKINGHAMSHIRE_MODERATION, now=later, seed=1
        )
        == ()
    )


def test_open_moderation_marks_the_audit_and_is_idempotent(h: Harness) -> None:
    done_audit(h, BX, "AU-1")
    first, second = M.open_moderation(h.engine, bexley.BEXLEY_MODERATION, "AU-1", "MOD-1", PSQA)
    assert first.snapshot.state == M.SAMPLED
    assert second.snapshot.data["moderation_open"] is True
    content = store_content(h.store)
    again = M.open_moderation(h.engine, bexley.BEXLEY_MODERATION, "AU-1", "MOD-1", PSQA)
    assert (again[0].event, again[1].event) == (first.event, second.event)
    assert store_content(h.store) == content


def test_an_audit_already_under_moderation_refuses_a_second_one(h: Harness) -> None:
    done_audit(h, BX, "AU-1")
    M.open_moderation(h.engine, bexley.BEXLEY_MODERATION, "AU-1", "MOD-1", PSQA)
    with pytest.raises(GuardFailed):
        M.open_moderation(h.engine, bexley.BEXLEY_MODERATION, "AU-1", "MOD-2", PSQA)
    assert h.engine.get("MOD-2").state == M.CANCELLED  # compensated, with the reason
    assert "refused" in h.engine.get("MOD-2").data["cancel_reason"]


def test_sample_payload_needs_a_completed_audit_of_the_council(h: Harness) -> None:
    h.drive(BX, "AU-1", A.GRADED)
    with pytest.raises(ValidationError):
        M.sample_payload(h.engine.get("AU-1"), bexley.BEXLEY_MODERATION)
    done_audit(h, BK, "AU-2")
    with pytest.raises(ValidationError):
        M.sample_payload(h.engine.get("AU-2"), bexley.BEXLEY_MODERATION)


# --- BX-MOD-02..05 -----------------------------------------------------------------------


def test_BX_MOD_02_review_records_scaling_and_comments(h: Harness) -> None:
    opened(h, BX, "AU-1", "MOD-1")
    bad = grading_answer(POLICIES[BX], Grade.GOOD) | {"score": 12}
    payload = {
        "answer": bad,
        "good_practice": "g",
        "areas_for_development": "a",
        "actions_completed": True,
    }
    error = refused(h, ValidationError, lambda: h.fire("MOD-1", "review", MODERATOR, payload))
    assert error.field == "overall.score"  # type: ignore[attr-defined]
    missing = {k: v for k, v in payload.items() if k != "good_practice"} | {
        "answer": grading_answer(POLICIES[BX], Grade.GOOD)
    }
    refused(h, ValidationError, lambda: h.fire("MOD-1", "review", MODERATOR, missing))
    step = review(h, BX, "MOD-1", Grade.REQUIRES_IMPROVEMENT)
    data = step.snapshot.data
    assert data["moderator_grade"] == "REQUIRES_IMPROVEMENT"
    assert data["good_practice"] and data["areas_for_development"]


def test_BX_MOD_03_actions_completed_and_new_actions_with_timescales(h: Harness) -> None:
    opened(h, BX, "AU-1", "MOD-1")
    bad = [{"action": "x", "owner_role": "worker"}]
    refused(h, ValidationError, lambda: review(h, BX, "MOD-1", actions=bad))
    step = review(h, BX, "MOD-1", actions_completed=False, actions=[one_action(within="10 WD")])
    assert step.snapshot.data["actions_completed"] is False
    assert [(t.kind, t.owner_id, t.clause) for t in step.tasks] == [("action", "W-01", "BX-MOD-03")]
    assert step.tasks[0].due_at == h.engine.spec("audit").calendar.add_working_days(
        step.event.at, 10
    )


def test_BX_MOD_04_agreement_finalises_and_tells_worker_and_manager(h: Harness) -> None:
    opened(h, BX, "AU-1", "MOD-1", Grade.GOOD)
    review(h, BX, "MOD-1", Grade.GOOD)
    h.fire("MOD-1", "agree", MODERATOR)
    finalised, written = M.finalise_moderation(h.engine, "MOD-1", MODERATOR)
    assert finalised.snapshot.state == M.FINALISED
    assert [(n.recipient_role, n.recipient_id, n.clause) for n in finalised.notifications] == [
        ("worker", "W-01", "BX-MOD-04"),
        ("team_manager", "M-01", "BX-MOD-04"),
    ]
    assert [(t.kind, t.owner_id, t.clause) for t in finalised.tasks] == [
        ("management_oversight_note", "M-01", "BX-MOD-04"),
        ("supervision_review", "M-01", "BX-MOD-07"),  # every moderation reviewed in supervision
    ]
    audit = written.snapshot.data
    assert written.event.trigger == "moderated"
    assert (audit["grade"], audit["moderation_agreed"], audit["moderation_open"]) == (
        "GOOD",
        True,
        False,
    )
    refused(h, TransitionNotAllowed, lambda: h.fire("MOD-1", "cancel", PSQA, {"reason": "x"}))


def test_BX_MOD_05_disagreement_meeting_and_the_agreed_grade_replaces_keeping_both(
    h: Harness,
) -> None:
    opened(h, BX, "AU-1", "MOD-1", Grade.REQUIRES_IMPROVEMENT)
    review(h, BX, "MOD-1", Grade.GOOD)
    refused(h, TransitionNotAllowed, lambda: h.fire("MOD-1", "finalise", MODERATOR))
    refused(h, ValidationError, lambda: h.fire("MOD-1", "disagree", MODERATOR, {}))
    h.fire("MOD-1", "disagree", MODERATOR, {"reason": "evidence supports Good"})
    refused(h, TransitionNotAllowed, lambda: h.fire("MOD-1", "agree_grade", MODERATOR, {}))
    h.fire("MOD-1", "meet", MODERATOR)
    agreed = {"answer": grading_answer(POLICIES[BX], Grade.GOOD), "rationale": "agreed at meeting"}
    h.fire("MOD-1", "agree_grade", MODERATOR, agreed)
    _, written = M.finalise_moderation(h.engine, "MOD-1", MODERATOR)
    data = written.snapshot.data
    assert (data["grade"], data["original_grade"]) == ("GOOD", "REQUIRES_IMPROVEMENT")
    assert [(g["grade"], g["source"]) for g in data["grades"]] == [
        ("REQUIRES_IMPROVEMENT", "auditor"),
        ("GOOD", "moderation"),
    ]
    history = h.engine.history("AU-1")
    graded = next(e for e in history if e.trigger == "grade")
    moderated = next(e for e in history if e.trigger == "moderated")
    assert graded.payload["answer"]["score"] in range(3, 6)
    assert moderated.payload == {
        "moderation_id": "MOD-1",
        "moderator_id": "X-01",
        "grade": "GOOD",
        "agreed": False,
    }
    check_workflow(h.engine, "AU-1")
    check_workflow(h.engine, "MOD-1")


# --- BX-MOD-06 ----------------------------------------------------------------------------


def _finalise_with(h: Harness, grade: Grade, actions_completed: bool) -> Step:
    opened(h, BX, "AU-1", "MOD-1", grade)
    review(h, BX, "MOD-1", grade, actions_completed=actions_completed)
    h.fire("MOD-1", "agree", MODERATOR)
    return M.finalise_moderation(h.engine, "MOD-1", MODERATOR)[0]


def test_BX_MOD_06_inadequate_notifies_psqa_too_and_opens_24h_tasks() -> None:
    step = _finalise_with(Harness(), Grade.INADEQUATE, actions_completed=True)
    six = [
        (n.recipient_role, n.recipient_id) for n in step.notifications if n.clause == "BX-MOD-06"
    ]
    assert six == [
        ("worker", "W-01"),
        ("team_manager", "M-01"),
        ("service_manager", "S-01"),
        ("psqa", "Q-01"),
    ]
    at = step.event.at
    assert [(t.kind, t.owner_id, t.due_at) for t in step.tasks if t.clause == "BX-MOD-06"] == [
        ("moderation_tasks", "W-01", at + timedelta(hours=24)),
        ("management_oversight_note", "M-01", at + timedelta(hours=24)),
    ]


def test_BX_MOD_06_outstanding_actions_notify_worker_and_managers() -> None:
    step = _finalise_with(Harness(), Grade.GOOD, actions_completed=False)
    six = [n.recipient_role for n in step.notifications if n.clause == "BX-MOD-06"]
    assert bexley.BEXLEY_MODERATION.follow_up_notice is not None
    assert tuple(six) == bexley.BEXLEY_MODERATION.follow_up_notice.roles
    assert len([t for t in step.tasks if t.clause == "BX-MOD-06"]) == 2


def test_BX_MOD_06_nothing_more_when_good_and_actions_done() -> None:
    step = _finalise_with(Harness(), Grade.GOOD, actions_completed=True)
    assert not [n for n in step.notifications if n.clause == "BX-MOD-06"]
    assert not [t for t in step.tasks if t.clause == "BX-MOD-06"]


def test_BK_moderation_notifies_nobody_the_seed_does_not_name(h: Harness) -> None:
    opened(h, BK, "AU-1", "MOD-1", Grade.REQUIRES_IMPROVEMENT)
    review(h, BK, "MOD-1", Grade.REQUIRES_IMPROVEMENT, actions_completed=False)
    h.fire("MOD-1", "agree", MODERATOR)
    step, written = M.finalise_moderation(h.engine, "MOD-1", MODERATOR)
    assert not step.notifications and not step.tasks
    assert written.snapshot.data["moderated"] is True


# --- cancellation, late write-back, crash recovery ---------------------------------------


def test_cancelling_a_moderation_releases_its_audit(h: Harness) -> None:
    opened(h, BX, "AU-1", "MOD-1")
    refused(h, ValidationError, lambda: M.cancel_moderation(h.engine, "MOD-1", PSQA, ""))
    first, second = M.cancel_moderation(h.engine, "MOD-1", PSQA, "moderator on leave")
    assert first.snapshot.state == M.CANCELLED
    assert second is not None and second.snapshot.data["moderation_open"] is False
    # The audit can be sampled again.
    M.open_moderation(h.engine, bexley.BEXLEY_MODERATION, "AU-1", "MOD-2", PSQA)


def test_reconcile_resends_write_backs_a_crash_lost(h: Harness) -> None:
    opened(h, BX, "AU-1", "MOD-1", Grade.REQUIRES_IMPROVEMENT)
    review(h, BX, "MOD-1", Grade.INADEQUATE)
    h.fire("MOD-1", "disagree", MODERATOR, {"reason": "r"})
    h.fire("MOD-1", "meet", MODERATOR)
    answer = grading_answer(POLICIES[BX], Grade.INADEQUATE)
    h.fire("MOD-1", "agree_grade", MODERATOR, {"answer": answer, "rationale": "r"})
    h.fire("MOD-1", "finalise", MODERATOR)  # the process dies before the write-back
    assert h.engine.get("AU-1").data["grade"] == "REQUIRES_IMPROVEMENT"
    (written,) = M.reconcile(h.engine)
    assert written.snapshot.data["grade"] == "INADEQUATE"
    assert M.reconcile(h.engine) == []
    # A lost start and a lost cancellation are recovered the same way.
    done_audit(h, BX, "AU-2")
    h.engine.start(
        h.mod_specs[BX],
        "MOD-2",
        "sample",
        PSQA,
        M.sample_payload(h.engine.get("AU-2"), bexley.BEXLEY_MODERATION),
    )
    (started,) = M.reconcile(h.engine)
    assert started.event.trigger == "moderation_started"
    h.fire("MOD-2", "cancel", PSQA, {"reason": "duplicate"})
    (released,) = M.reconcile(h.engine)
    assert released.event.trigger == "moderation_cancelled"
    assert M.reconcile(h.engine) == []


def test_a_refused_start_is_compensated_by_reconcile(h: Harness) -> None:
    done_audit(h, BX, "AU-1")
    h.fire("AU-1", "moderation_started", PSQA, {"moderation_id": "MOD-1"})
    payload = M.sample_payload(h.engine.get("AU-1"), bexley.BEXLEY_MODERATION)
    h.engine.start(h.mod_specs[BX], "MOD-2", "sample", PSQA, payload)
    (cancelled,) = M.reconcile(h.engine)
    assert cancelled.snapshot.state == M.CANCELLED


def test_write_back_follows_the_audits_clock(h: Harness) -> None:
    """The audit may have moved on (a tick) after the moderation step; time stays monotone."""
    opened(h, BX, "AU-1", "MOD-1")
    review(h, BX, "MOD-1")
    h.fire("MOD-1", "agree", MODERATOR)
    step = h.fire("MOD-1", "finalise", MODERATOR)
    h.clock.advance(days=200)
    h.engine.tick()  # the window passes while moderation is open: recorded as missed
    (written,) = M.reconcile(h.engine, at=step.event.at)
    assert written.event.at >= step.event.at
    assert written.snapshot.state == A.CLOSED


def test_BX_MOD_workflow_records_round_trip(h: Harness) -> None:
    opened(h, BX, "AU-1", "MOD-1", Grade.INADEQUATE)
    review(h, BX, "MOD-1", Grade.INADEQUATE, actions=[one_action()])
    h.fire("MOD-1", "agree", MODERATOR)
    M.finalise_moderation(h.engine, "MOD-1", MODERATOR)
    for record in [
        h.engine.get("MOD-1"),
        *h.engine.history("MOD-1"),
        *h.store.notifications("MOD-1"),
        *h.store.tasks("MOD-1"),
    ]:
        check_record_round_trip(record)


# --- stateful ------------------------------------------------------------------------------

MOD_ACTORS = [PSQA, MODERATOR, MOD2, Actor("A-01", "moderator"), AUDITOR, WORKER]


class ModerationMachine(RuleBasedStateMachine):
    """Moderations of a few completed audits, driven through the public functions, with
    random invalid commands and lost write-backs mixed in.

    After every step: I1, I2, I6, I14 on every workflow; refusals write nothing (I3);
    terminal workflows never move (I4); records round-trip (I11); I7 after ticks; I9 (no
    moderator is the auditor); BX-MOD-06's notifications and 24 h tasks on every finalised
    moderation; and once write-backs are reconciled, every finalised moderation's grade on
    its audit with the auditor's grade still in the history.
    """

    council = BX

    def __init__(self) -> None:
        super().__init__()
        self.h = Harness()
        self.checked: dict[str, int] = {}
        self.policy = MODERATION[self.council]
        self.audits: list[str] = []
        self.mods: list[str] = []
        self.lost = False

    @initialize(grades=st.lists(st.sampled_from(list(Grade)), min_size=1, max_size=3))
    def audits_to_moderate(self, grades: list[Grade]) -> None:
        possible = grades_of(self.policy.audit)
        for i, grade in enumerate(grades):
            wid = f"AU-{i}"
            done_audit(self.h, self.council, wid, grade if grade in possible else Grade.GOOD)
            self.audits.append(wid)

    def _attempt(self, wid: str | None, action: Any) -> Any:
        before_content = store_content(self.h.store)
        before = None
        if wid is not None:
            with contextlib.suppress(QAFlowError):
                before = self.h.engine.get(wid)
        try:
            result = action()
        except QAFlowError:
            # The one documented exception: a refused audit start compensates by cancelling.
            if store_content(self.h.store) != before_content:
                assert any(
                    self.h.engine.get(m).data.get("cancel_reason", "").startswith("the audit")
                    for m in self._known_mods()
                ), "I3: a refusal wrote"
            return None
        if before is not None and self.h.engine.spec_for(before).state(before.state).terminal:
            assert self.h.engine.get(before.workflow_id) == before, "I4: a terminal one moved"
        for step in result if isinstance(result, tuple) else (result,):
            if step is not None:
                check_record_round_trip(step)
        return result

    def _known_mods(self) -> list[str]:
        return list(self.h.store.workflow_ids(M.MACHINE))

    @rule(index=st.integers(0, 2), reuse=st.integers(0, 4), fresh=st.booleans())
    def open(self, index: int, reuse: int, fresh: bool) -> None:
        """Open a moderation: usually a new id on an audit free for it, sometimes an id or
        an audit already taken (which must be refused, or compensated)."""
        free = [
            a
            for a in self.audits
            if not self.h.engine.get(a).data.get("moderation_open")
            and not self.h.engine.get(a).data.get("moderated")
        ]
        pool = free if fresh and free else self.audits
        audit_id = pool[index % len(pool)]
        mid = f"MOD-{len(self._known_mods())}" if fresh else f"MOD-{reuse}"
        self._attempt(
            mid, lambda: M.open_moderation(self.h.engine, self.policy, audit_id, mid, PSQA)
        )
        if mid not in self.mods and mid in self._known_mods():
            self.mods.append(mid)

    @rule(index=st.integers(0, 4), moderator=st.sampled_from(["X-01", "X-02", "A-01"]))
    def allocate(self, index: int, moderator: str) -> None:
        if self.mods:
            mid = self.mods[index % len(self.mods)]
            self._attempt(
                mid, lambda: self.h.fire(mid, "allocate", PSQA, {"moderator_id": moderator})
            )

    @rule(
        index=st.integers(0, 4),
        grade=st.sampled_from(list(Grade)),
        done=st.booleans(),
        actor=st.sampled_from([MODERATOR, MOD2]),
    )
    def do_review(self, index: int, grade: Grade, done: bool, actor: Actor) -> None:
        if self.mods:
            mid = self.mods[index % len(self.mods)]
            grade = grade if grade in grades_of(self.policy.audit) else Grade.GOOD
            self._attempt(
                mid,
                lambda: review(
                    self.h, self.council, mid, grade, actions_completed=done, actor=actor
                ),
            )

    @rule(index=st.integers(0, 4), agree=st.booleans(), grade=st.sampled_from(list(Grade)))
    def decide(self, index: int, agree: bool, grade: Grade) -> None:
        if not self.mods:
            return
        mid = self.mods[index % len(self.mods)]
        actor = Actor(str(self.h.engine.get(mid).data.get("moderator_id", "X-01")), "moderator")
        state = self.h.engine.get(mid).state
        if state == M.REVIEWED and agree:
            self._attempt(mid, lambda: self.h.fire(mid, "agree", actor))
        elif state == M.REVIEWED:
            self._attempt(mid, lambda: self.h.fire(mid, "disagree", actor, {"reason": "r"}))
        elif state == M.DISAGREED:
            self._attempt(mid, lambda: self.h.fire(mid, "meet", actor))
        elif state == M.MEETING:
            grade = grade if grade in grades_of(self.policy.audit) else Grade.GOOD
            payload = {"answer": grading_answer(self.policy.audit, grade), "rationale": "r"}
            self._attempt(mid, lambda: self.h.fire(mid, "agree_grade", actor, payload))

    @rule(
        index=st.integers(0, 4),
        steps=st.integers(1, 6),
        grade=st.sampled_from(list(Grade)),
        data=st.data(),
    )
    def progress(self, index: int, steps: int, grade: Grade, data: st.DataObject) -> None:
        """Up to ``steps`` commands the lifecycle expects next (sometimes to the auditor)."""
        if not self.mods:
            return
        mid = self.mods[index % len(self.mods)]
        grade = grade if grade in grades_of(self.policy.audit) else Grade.GOOD
        for _ in range(steps):
            snap = self.h.engine.get(mid)
            actor = Actor(str(snap.data.get("moderator_id", "X-01")), "moderator")
            state = snap.state
            if state == M.SAMPLED:
                moderator = data.draw(st.sampled_from(["X-01", "X-02", "A-01"]))
                payload = {"moderator_id": moderator}
                self._attempt(mid, lambda p=payload: self.h.fire(mid, "allocate", PSQA, p))
            elif state == M.ALLOCATED:
                done = data.draw(st.booleans())
                self._attempt(
                    mid,
                    lambda d=done, a=actor: review(
                        self.h, self.council, mid, grade, actions_completed=d, actor=a
                    ),
                )
            elif state in (M.REVIEWED, M.DISAGREED, M.MEETING):
                self.decide(index, data.draw(st.booleans()), grade)
            elif state in (M.AGREED, M.GRADE_AGREED):
                self.finalise(index, data.draw(st.booleans()))
            else:
                return

    @rule(index=st.integers(0, 4), lose=st.booleans())
    def finalise(self, index: int, lose: bool) -> None:
        """Finalise through the public function, or lose the write-back (a crash)."""
        if not self.mods:
            return
        mid = self.mods[index % len(self.mods)]
        actor = Actor(str(self.h.engine.get(mid).data.get("moderator_id", "X-01")), "moderator")
        if lose:  # the process dies between the moderation step and the write-back
            step = self._attempt(mid, lambda: self.h.fire(mid, "finalise", actor))
            self.lost = self.lost or step is not None
        else:
            self._attempt(mid, lambda: M.finalise_moderation(self.h.engine, mid, actor))

    @rule(index=st.integers(0, 4), actor=st.sampled_from([PSQA, MODERATOR]))
    def cancel(self, index: int, actor: Actor) -> None:
        if self.mods:
            mid = self.mods[index % len(self.mods)]
            self._attempt(mid, lambda: M.cancel_moderation(self.h.engine, mid, actor, "reason"))

    @rule()
    def do_reconcile(self) -> None:
        steps = M.reconcile(self.h.engine)
        for step in steps:
            check_record_round_trip(step)
        assert M.reconcile(self.h.engine) == []
        self.lost = False

    @rule(
        index=st.integers(0, 4),
        trigger=st.sampled_from(
            [
                "sample",
                "allocate",
                "review",
                "agree",
                "disagree",
                "meet",
                "agree_grade",
                "finalise",
                "cancel",
                "bogus",
            ]
        ),
        actor=st.sampled_from(MOD_ACTORS),
        payload=st.one_of(
            st.just({}),
            st.fixed_dictionaries({"moderator_id": st.sampled_from(["A-01", "X-01"])}),
            st.fixed_dictionaries({"reason": st.sampled_from(["", "r"])}),
            st.fixed_dictionaries({"answer": st.just({"score": 42})}),
        ),
    )
    def junk(self, index: int, trigger: str, actor: Actor, payload: dict[str, Any]) -> None:
        if self.mods:
            mid = self.mods[index % len(self.mods)]
            step = self._attempt(mid, lambda: self.h.fire(mid, trigger, actor, payload))
            # A bare cancel or finalise is a write-back lost until ``reconcile``.
            self.lost = self.lost or (step is not None and trigger in ("cancel", "finalise"))

    @rule(hours=st.sampled_from([1, 24, 24 * 10, 24 * 40]))
    def advance_and_tick(self, hours: int) -> None:
        self.h.clock.advance(hours=hours)
        check_tick(self.h.engine, self.h.clock.now())

    @invariant()
    def workflows_hold_the_invariants(self) -> None:
        # A workflow whose version has not moved since its last check has nothing new to
        # replay; skipping it keeps the run fast without weakening the check.
        for wid in [*self.audits, *self._known_mods()]:
            version = self.h.engine.get(wid).version
            if self.checked.get(wid) != version:
                check_workflow(self.h.engine, wid)
                self.checked[wid] = version

    @invariant()
    def moderation_rules_hold(self) -> None:
        policy = self.policy
        for mid in self._known_mods():
            mod = self.h.engine.get(mid)
            data = mod.data
            # I9: no moderator moderates their own audit.
            assert data.get("moderator_id") != data["auditor_id"]
            if mod.state != M.FINALISED:
                continue
            finalise = self.h.engine.history(mid)[-1]
            grade = Grade[data["agreed_grade"]]
            notes = [n for n in self.h.store.notifications(mid) if n.seq == finalise.seq]
            # BX-MOD-06 (or the policy's own clause for it): who hears the case still needs work.
            follow = {x.clause for x in (policy.inadequate_notice, policy.follow_up_notice) if x}
            six = [n.recipient_role for n in notes if n.clause in follow]
            expected: tuple[str, ...] = ()
            if grade is Grade.INADEQUATE and policy.inadequate_notice:
                expected = policy.inadequate_notice.roles
            elif (grade in policy.follow_up_grades or not data["actions_completed"]) and (
                policy.follow_up_notice
            ):
                expected = policy.follow_up_notice.roles
            assert tuple(six) == expected
            tasks = [t for t in self.h.store.tasks(mid) if t.seq == finalise.seq]
            within = {t.clause: t.within for t in policy.follow_up_tasks}
            for task in tasks:
                if within.get(task.clause) == "24 h":
                    assert task.due_at == finalise.at + timedelta(hours=24)
            if self.lost:
                continue
            # Once written back: the agreed grade on the audit, the auditor's still there.
            audit = self.h.engine.get(data["audit_id"])
            history = self.h.engine.history(data["audit_id"])
            written = [
                e for e in history if e.trigger == "moderated" and e.payload["moderation_id"] == mid
            ]
            assert len(written) == 1 and written[0].payload["grade"] == data["agreed_grade"]
            graded = next(e for e in history if e.trigger == "grade")
            assert graded.seq < written[0].seq
            assert audit.data["original_grade"] == data["original_grade"]
            assert audit.data["grades"][0] == {
                "grade": data["original_grade"],
                "source": "auditor",
                "seq": graded.seq,
            }
        for audit_id in self.audits:
            audit = self.h.engine.get(audit_id)
            holder = str(audit.data.get("moderation_id"))
            if audit.data.get("moderation_open") and not self.lost:
                assert self.h.engine.get(holder).state not in (M.FINALISED, M.CANCELLED)


class BuckinghamshireModerationMachine(ModerationMachine):
    council = BK


class OfstedGradeModerationMachine(ModerationMachine):
    """The same on a third council written only as a file (examples/councils)."""

    council = "ofsted_example"


_STATEFUL = settings(
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestBexleyModerationMachine = pytest.mark.slow(ModerationMachine.TestCase)
TestBexleyModerationMachine.settings = _STATEFUL
TestBuckinghamshireModerationMachine = pytest.mark.slow(BuckinghamshireModerationMachine.TestCase)
TestBuckinghamshireModerationMachine.settings = _STATEFUL
TestOfstedGradeModerationMachine = pytest.mark.slow(OfstedGradeModerationMachine.TestCase)
TestOfstedGradeModerationMachine.settings = _STATEFUL


def test_a_moderation_id_is_never_reused_for_another_audit(h: Harness) -> None:
    done_audit(h, BX, "AU-1")
    done_audit(h, BX, "AU-2")
    M.open_moderation(h.engine, bexley.BEXLEY_MODERATION, "AU-1", "MOD-1", PSQA)
    error = refused(
        h,
        ValidationError,
        lambda: M.open_moderation(h.engine, bexley.BEXLEY_MODERATION, "AU-2", "MOD-1", PSQA),
    )
    assert error.field == "moderation_id"  # type: ignore[attr-defined]
    M.cancel_moderation(h.engine, "MOD-1", PSQA, "wrong case")
    refused(
        h,
        ValidationError,
        lambda: M.open_moderation(h.engine, bexley.BEXLEY_MODERATION, "AU-1", "MOD-1", PSQA),
    )


def test_shipped_specs_cover_both_councils() -> None:
    keys = [spec.key for spec in shipped_specs() if spec.name == M.MACHINE]
    assert keys == [("moderation", "bexley", "1"), ("moderation", "buckinghamshire", "1")]
