"""The escalation machine built from each ladder: example tests per clause, then properties.

Each example test names the clause it enforces (``grep -r BX-ESC-FIRO-02 tests/``). The
stateful tests run ``qaflow.testing.EscalationLadderMachine`` (the same class a council runs
on its own ladder through ``check_ladder``) on every default ladder and on generated ones,
checking I1-I7 after every step plus the ladder's own rules: the stage never goes down, a
skip happens only by an allowed bypass, extensions stay within bounds, every stage entry
notifies exactly the ladder's recipients, and resolved/withdrawn/referred are absorbing.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qaflow import (
    SYSTEM,
    Actor,
    Engine,
    GuardFailed,
    ManualClock,
    MemoryStore,
    PermissionDenied,
    SQLiteStore,
    Step,
    TransitionNotAllowed,
    ValidationError,
)
from qaflow.calendar import LONDON
from qaflow.machines.escalation import (
    OVERDUE,
    REFERRED,
    RESOLVED,
    RESPONSE_DEADLINE,
    TRIGGERS,
    WITHDRAWN,
    EscalationRecord,
    escalation_machine,
    escalation_record,
    level_of,
    machine_name,
    state_of,
)
from qaflow.policies import bexley
from qaflow.policies.ladders import EscalationLadder, ExtensionRule, ExternalReferral, LadderStage
from qaflow.testing import (
    CONFORMANCE_POLICY,
    check_escalation,
    check_record_round_trip,
    check_tick,
    check_workflow,
    clocks,
    command_sequences,
    expected_recipients,
    ladder_state_machine,
    run_commands,
    store_content,
)

CP, IRO, FIRO = bexley.CP_CHAIR_LADDER, bexley.IRO_LADDER, bexley.FIRO_LADDER
RAISER = {"cp_chair": Actor("CH-1", "cp_chair"), "iro": Actor("IRO-1", "iro")}
RAISER["firo"] = Actor("FIRO-1", "firo")
FRI_19_DEC_2025 = datetime(2025, 12, 19, 10, tzinfo=UTC)


def end_of(day: date) -> datetime:
    """The end of a London local day, as the engine stores a WD deadline."""
    return datetime.combine(day, time(23, 59, 59, 999999), LONDON).astimezone(UTC)


class Run:
    """One escalation on an in-memory engine with a manual clock, checked after each step."""

    def __init__(
        self, ladder: EscalationLadder, start: datetime = FRI_19_DEC_2025, store: Any = None
    ) -> None:
        self.ladder = ladder
        self.spec = escalation_machine(ladder, bexley.POLICY)
        self.clock = ManualClock(start)
        self.engine = Engine(store or MemoryStore(), [self.spec], clock=self.clock)
        self.raiser = RAISER.get(ladder.kind, Actor("R-1", ladder.raiser))
        self.wid = "ESC-1"

    def start(self, **payload: Any) -> Step:
        body = {"subject_id": "SUBJ-1", "reason": self.ladder.reasons[0], **payload}
        step = self.engine.start(self.spec.name, self.wid, "raise", self.raiser, body)
        self.check()
        return step

    def fire(self, trigger: str, actor: Actor | None = None, **payload: Any) -> Step:
        step = self.engine.fire(self.wid, trigger, actor or self.raiser, payload)
        self.check()
        return step

    def holder(self, index: int = 0) -> Actor:
        level = level_of(self.ladder, self.state)
        assert level is not None
        role = self.ladder.holders(level)[index]
        return Actor(f"{role.upper()}-1", role)

    def refused(
        self, error: type[Exception], trigger: str, actor: Actor | None = None, **payload: Any
    ) -> Exception:
        """Fire and expect ``error``; check nothing was written (I3)."""
        before = store_content(self.engine.store)
        with pytest.raises(error) as info:
            self.engine.fire(self.wid, trigger, actor or self.raiser, payload)
        assert store_content(self.engine.store) == before
        return info.value

    def wait(self, **delta: float) -> list[Step]:
        now = self.clock.advance(timedelta(**delta))
        steps = self.engine.tick(now)
        check_tick(self.engine, now)
        self.check()
        return steps

    def at(self, moment: datetime) -> None:
        self.clock.set(moment)

    def check(self) -> None:
        check_workflow(self.engine, self.wid)
        check_escalation(self.engine, self.wid, self.ladder)

    @property
    def state(self) -> str:
        return self.engine.get(self.wid).state

    @property
    def data(self) -> dict[str, Any]:
        return self.engine.get(self.wid).data

    def due(self) -> datetime:
        (deadline,) = self.engine.get(self.wid).deadlines
        assert deadline.name == RESPONSE_DEADLINE
        return deadline.due_at

    def record(self) -> EscalationRecord:
        return escalation_record(self.engine.get(self.wid))


def roles(step: Step) -> Counter[str]:
    return Counter(n.recipient_role for n in step.notifications)


# --- Fostering IRO ------------------------------------------------------------------------------


def test_BX_ESC_FIRO_02_stage_deadlines() -> None:
    """Raised on Friday 19 December 2025, stage 1 is due at the end of Tuesday 30 December
    (Christmas and Boxing Day skipped); each stage then has 5 WD and the director 8 WD."""
    run = Run(FIRO)
    step = run.start(to="stage_1")  # straight to the formal ladder (BX-ESC-FIRO-03)
    assert run.state == "stage_1"
    assert step.opened[0].due_at == end_of(date(2025, 12, 30))
    assert run.due() == datetime(2025, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)  # GMT
    assert step.opened[0].clause == "BX-ESC-FIRO-02"
    # Wed 31 Dec: stage 2, 5 WD with New Year's Day skipped -> Thu 8 Jan 2026.
    run.at(datetime(2025, 12, 31, 9, tzinfo=UTC))
    run.fire("escalate")
    assert (run.state, run.due()) == ("stage_2", end_of(date(2026, 1, 8)))
    # Fri 9 Jan: stage 3, 5 WD -> Fri 16 Jan.
    run.at(datetime(2026, 1, 9, 9, tzinfo=UTC))
    run.fire("escalate")
    assert (run.state, run.due()) == ("stage_3", end_of(date(2026, 1, 16)))
    # Mon 19 Jan: stage 4, the director has 8 WD -> Thu 29 Jan.
    run.at(datetime(2026, 1, 19, 9, tzinfo=UTC))
    step = run.fire("escalate")
    assert (run.state, run.due()) == ("stage_4", end_of(date(2026, 1, 29)))
    assert roles(step)["director"] == 1
    assert [v.due_at for v in run.record().stages] == [
        end_of(date(2025, 12, 30)),
        end_of(date(2026, 1, 8)),
        end_of(date(2026, 1, 16)),
        end_of(date(2026, 1, 29)),
    ]


def test_BX_ESC_FIRO_02_stage_4_gives_the_director_8_wd() -> None:
    run = Run(FIRO, start=datetime(2026, 3, 2, 9, tzinfo=UTC))  # a Monday
    run.start(to="stage_4")
    assert run.due() == end_of(date(2026, 3, 12))  # Tue 3 .. Thu 12 March: 8 WD


def test_BX_ESC_FIRO_01_informal_first_recorded_on_the_carers_file() -> None:
    run = Run(FIRO)
    step = run.start()
    assert run.state == "informal"
    assert not step.opened  # the seed sets no informal timescale
    assert roles(step) == Counter(
        {"supervising_social_worker": 1, "fostering_manager": 1, "foster_carer": 1}
    )
    (task,) = step.tasks
    assert "foster carer's file" in task.kind
    assert (task.owner_role, task.owner_id, task.clause) == ("firo", "FIRO-1", "BX-ESC-FIRO-01")
    run.fire("respond", Actor("FM-1", "fostering_manager"), response="resolved with the carer")
    run.fire("accept")
    assert run.state == RESOLVED


def test_BX_ESC_FIRO_03_bypass_to_the_level_judged_right() -> None:
    run = Run(FIRO)
    run.start()
    step = run.fire("bypass", to="stage_2", note="needs the head of service")
    assert run.state == "stage_2" and step.event.payload["to"] == "stage_2"
    assert run.record().stages[-1].via == "bypass"
    # From stage 2, stage 3 is the next stage: escalate, not bypass, goes there.
    error = run.refused(ValidationError, "bypass", to="stage_3")
    assert "'to' must be one of 'stage_4'" in str(error)
    run.fire("escalate")
    run.refused(TransitionNotAllowed, "bypass", to="stage_4")  # nothing left to skip
    run.fire("escalate")
    assert run.state == "stage_4"


def test_BX_ESC_FIRO_04_managers_may_request_further_time() -> None:
    run = Run(FIRO)
    run.start(to="stage_1", people={"team_manager": "TM-7"})
    manager = Actor("TM-7", "team_manager")
    first_due = run.due()
    run.refused(GuardFailed, "request_extension", manager, length="6 WD")  # beyond 5 WD
    run.refused(GuardFailed, "request_extension", manager, length="2 d")  # another unit
    run.refused(PermissionDenied, "request_extension", length="2 WD")  # the FIRO cannot
    step = run.fire("request_extension", manager, length="3 WD", note="awaiting a report")
    assert roles(step) == Counter({"firo": 1})
    run.refused(GuardFailed, "request_extension", manager, length="1 WD")  # one at a time
    run.refused(PermissionDenied, "grant_extension", manager)  # the holder cannot grant
    other = run.refused(PermissionDenied, "grant_extension", Actor("FIRO-2", "firo"))
    assert "raiser_id" in str(other)  # only the FIRO who raised it
    step = run.fire("grant_extension", note="agreed")
    assert run.due() == run.spec.calendar.add_working_days(first_due, 3)
    assert roles(step) == Counter({"team_manager": 1, "service_manager": 1})
    (visit,) = run.record().stages
    (ext,) = visit.extensions
    assert (ext.length, ext.decision, ext.due_at) == ("3 WD", "granted", run.due())
    assert visit.due_at == run.due()
    error = run.refused(GuardFailed, "request_extension", manager, length="1 WD")
    assert isinstance(error, GuardFailed) and error.clause == "BX-ESC-FIRO-04"
    # A new stage has its own allowance.
    run.fire("escalate")
    run.fire("request_extension", Actor("HOS-1", "head_of_service"), length="5 WD")
    run.fire("refuse_extension", note="the child cannot wait")
    assert run.record().stages[-1].extensions[0].decision == "refused"
    assert run.data["extensions_granted"] == 1


def test_BX_ESC_FIRO_05_foster_carer_kept_informed_at_each_stage() -> None:
    run = Run(FIRO)
    steps = [run.start()]
    for _ in range(4):
        steps.append(run.fire("escalate"))
    for step in steps:
        carer = [n for n in step.notifications if n.recipient_role == "foster_carer"]
        assert len(carer) == 1 and carer[0].recipient_id == "SUBJ-1"
        assert carer[0].clause == "BX-ESC-FIRO-05"


# --- CP conference chair -----------------------------------------------------------------------


def test_BX_ESC_CP_01_informal_discussion_with_social_worker_and_manager() -> None:
    run = Run(CP)
    step = run.start(people={"social_worker": "SW-3", "team_manager": "TM-3"})
    assert run.state == "informal"
    assert {(n.recipient_role, n.recipient_id) for n in step.notifications} == {
        ("social_worker", "SW-3"),
        ("team_manager", "TM-3"),
    }
    assert "child's file" in step.tasks[0].kind and step.tasks[0].clause == "BX-ESC-CP-01"
    assert run.due() == end_of(date(2025, 12, 30))  # 5 WD: 22, 23, 24, 29, 30 Dec


def test_BX_ESC_CP_02_four_stages_then_no_further() -> None:
    run = Run(CP)
    run.start()
    for k in range(1, 5):
        step = run.fire("escalate")
        assert run.state == f"stage_{k}"
        assert step.opened[0].name == RESPONSE_DEADLINE
        assert step.opened[0].clause == "BX-ESC-CP-02"
    assert roles(step) == Counter({"assistant_director": 1, "director": 1})
    error = run.refused(TransitionNotAllowed, "escalate")
    assert "accept" in str(error) and "withdraw" in str(error)  # the allowed triggers
    run.refused(TransitionNotAllowed, "refer_externally")  # no external referral for CP


def test_BX_ESC_CP_02_chair_grants_or_refuses_further_time() -> None:
    run = Run(CP)
    run.start(to="stage_2")
    manager = Actor("SM-1", "service_manager")
    run.fire("request_extension", manager, length="2 WD")
    run.refused(PermissionDenied, "refuse_extension", manager)
    run.fire("refuse_extension")
    run.fire("request_extension", manager, length="1 WD")
    run.fire("grant_extension")
    assert [e.decision for e in run.record().stages[-1].extensions] == ["refused", "granted"]
    run.refused(GuardFailed, "grant_extension")  # nothing pending


@pytest.mark.parametrize("close", ["accept", "withdraw"])
@pytest.mark.parametrize("where", ["informal", "stage_1", "stage_2", "stage_3", "stage_4"])
def test_BX_ESC_CP_03_resolve_or_withdraw_at_any_stage_then_never_move(
    close: str, where: str
) -> None:
    run = Run(CP)
    run.start(**({} if where == "informal" else {"to": where}))
    step = run.fire(close, note="done")
    assert run.state == (RESOLVED if close == "accept" else WITHDRAWN)
    assert step.closed and not run.engine.get(run.wid).deadlines
    level = level_of(CP, where)
    assert level is not None
    assert roles(step) == Counter(CP.recipients(level))
    assert step.event.actor == run.raiser
    before = run.engine.get(run.wid)
    for trigger in TRIGGERS:
        run.refused(TransitionNotAllowed, trigger)
    run.wait(days=60)
    assert run.engine.get(run.wid) == before  # I4: absorbing


def test_NAT_CP_01_bypass_and_a_missed_response_does_not_move_the_escalation() -> None:
    run = Run(CP)
    run.start(people={"team_manager": "TM-2"})
    run.fire("escalate")
    (step,) = run.wait(days=14)
    assert step.event.trigger == OVERDUE and step.event.actor == SYSTEM
    assert run.state == "stage_1"  # the chair decides what happens next
    assert {(n.recipient_role, n.recipient_id) for n in step.notifications} == {
        ("cp_chair", "CH-1"),
        ("team_manager", "TM-2"),
    }
    assert all(
        n.clause == "NAT-CP-01" for n in step.notifications if n.recipient_role == "cp_chair"
    )
    assert run.record().stages[-1].breaches == 1
    run.fire("bypass", to="stage_4")
    assert run.state == "stage_4"


# --- IRO ----------------------------------------------------------------------------------------


def test_BX_ESC_IRO_01_iro_may_grant_further_time_before_the_next_stage() -> None:
    run = Run(IRO)
    run.start(to="stage_1")
    due = run.due()
    run.fire("request_extension", Actor("TM-1", "team_manager"), length="5 WD")
    run.fire("grant_extension")
    assert run.due() == run.spec.calendar.add_working_days(due, 5)
    assert run.engine.get(run.wid).deadlines[0].rule == "5 WD + 5 WD"


def test_BX_ESC_IRO_02_child_told_of_rights_and_advocacy_when_raised() -> None:
    run = Run(IRO)
    step = run.start()
    rights = [n for n in step.notifications if n.clause == "BX-ESC-IRO-02"]
    assert len(rights) == 1
    assert (rights[0].recipient_role, rights[0].recipient_id) == ("child", "SUBJ-1")
    assert "advocate" in rights[0].reason


def test_BX_ESC_IRO_03_child_consulted_and_informed_at_each_stage() -> None:
    run = Run(IRO)
    steps = [run.start()] + [run.fire("escalate") for _ in range(4)]
    steps.append(run.fire("refer_externally"))
    for step in steps:
        informed = [n for n in step.notifications if n.clause == "BX-ESC-IRO-03"]
        assert [(n.recipient_role, n.recipient_id) for n in informed] == [("child", "SUBJ-1")]


def test_BX_ESC_IRO_04_refer_to_cafcass_when_the_stages_do_not_resolve_it() -> None:
    run = Run(IRO)
    run.start(to="stage_2")
    run.refused(TransitionNotAllowed, "refer_externally")  # not yet the last stage
    run.fire("escalate")
    run.fire("escalate")
    step = run.fire("refer_externally", note="no resolution at director level")
    assert run.state == REFERRED and run.spec.state(REFERRED).terminal
    assert roles(step) == Counter({"cafcass": 1, "child": 1})
    record = run.record()
    assert (record.outcome, record.level, record.stages[-1].state) == ("referred", 5, "referred")
    assert record.working_days_to_resolution is None and record.working_days_open == 0
    run.refused(TransitionNotAllowed, "accept")


def test_NAT_IRO_01_informal_resolution_first_recorded_on_the_childs_file() -> None:
    run = Run(IRO)
    step = run.start()
    assert run.state == "informal"
    assert "child's file" in step.tasks[0].kind and step.tasks[0].clause == "NAT-IRO-01"


def test_NAT_IRO_02_iro_may_bypass_any_stage() -> None:
    run = Run(IRO)
    step = run.start(to="stage_3")
    assert step.event.dest == "stage_3"
    assert run.record().stages[0].via == "raise"
    run.fire("bypass", to=REFERRED)
    assert run.state == REFERRED


def test_NAT_IRO_04_refer_to_cafcass_when_starting_the_process() -> None:
    run = Run(IRO)
    step = run.start(to=REFERRED, details="waiting would harm the child")
    assert run.state == REFERRED
    assert roles(step) == Counter({"child": 2, "cafcass": 1})  # rights notice + referral
    assert run.record().outcome == "referred"


def test_NAT_IRO_04_no_referral_at_raise_unless_the_ladder_allows_it() -> None:
    book_ladder = EscalationLadder(
        name="late_referral",
        kind="iro",
        raiser="iro",
        stages=(LadderStage(("team_manager",), "5 WD"),),
        referral=ExternalReferral("cafcass"),  # after the last stage only
    )
    run = Run(book_ladder)
    with pytest.raises(ValidationError, match="'to' must be one of 'stage_1'"):
        run.start(to=REFERRED)


# --- the machine's general rules --------------------------------------------------------------


def test_a_breach_tells_the_raiser_to_escalate_or_extend_and_an_extension_still_helps() -> None:
    run = Run(FIRO)
    run.start(to="stage_1")
    (step,) = run.wait(days=14)
    assert run.state == "stage_1" and not run.engine.get(run.wid).deadlines
    assert any("escalate" in n.reason for n in step.notifications if n.recipient_role == "firo")
    granted_at = run.clock.now()
    run.fire("request_extension", Actor("TM-1", "team_manager"), length="2 WD")
    run.fire("grant_extension")
    (deadline,) = run.engine.get(run.wid).deadlines
    assert deadline.state is None  # a workflow-level deadline: the stage's was breached
    assert deadline.due_at == run.spec.calendar.add_working_days(granted_at, 2)
    (again,) = run.wait(days=7)
    assert again.event.trigger == OVERDUE and run.record().stages[-1].breaches == 2
    error = run.refused(
        GuardFailed, "request_extension", Actor("TM-1", "team_manager"), length="1 WD"
    )
    assert "fewer than 1 extension(s) granted at this stage" in str(error)  # it is used
    run.fire("escalate")
    assert [d.state for d in run.engine.get(run.wid).deadlines] == ["stage_2"]


def test_a_reopened_deadline_closes_when_the_stage_is_left() -> None:
    run = Run(CP)
    run.start(to="stage_1")
    run.wait(days=14)
    run.fire("request_extension", Actor("TM-1", "team_manager"), length="5 WD")
    run.fire("grant_extension")
    step = run.fire("bypass", to="stage_3")
    (deadline,) = run.engine.get(run.wid).deadlines
    assert deadline.state == "stage_3" and len(step.closed) == 1


def test_only_tick_may_fire_the_breach() -> None:
    run = Run(CP)
    run.start()
    run.refused(PermissionDenied, OVERDUE, deadline="response", deadline_id="x")
    with pytest.raises(PermissionDenied, match="only tick fires as it"):
        run.engine.fire(run.wid, OVERDUE, SYSTEM, {"deadline": "response", "deadline_id": "x"})


def test_respond_closes_the_deadline_once_and_tells_the_raiser() -> None:
    run = Run(IRO)
    run.start(people={"social_worker": "SW-9"})
    step = run.fire("respond", Actor("SW-9", "social_worker"), response="visit booked")
    assert step.closed and not run.engine.get(run.wid).deadlines
    assert roles(step) == Counter({"iro": 1})
    run.refused(GuardFailed, "respond", Actor("SW-9", "social_worker"), response="again")
    run.refused(PermissionDenied, "respond", Actor("SM-1", "service_manager"), response="x")
    run.refused(GuardFailed, "request_extension", Actor("SW-9", "social_worker"), length="1 WD")
    response = run.record().stages[0].response
    assert response is not None and (response.by, response.text) == ("SW-9", "visit booked")
    assert run.wait(days=30) == []  # nothing left to breach


def test_only_the_raiser_drives_the_escalation() -> None:
    run = Run(IRO)
    run.start()
    for trigger in ("escalate", "accept", "withdraw"):
        error = run.refused(PermissionDenied, trigger, Actor("IRO-2", "iro"))
        assert "raiser_id" in str(error)
        run.refused(PermissionDenied, trigger, Actor("TM-1", "team_manager"))


@pytest.mark.parametrize(
    ("payload", "error", "message"),
    [
        ({"reason": "other"}, GuardFailed, "details"),
        ({"reason": "other", "details": "  "}, GuardFailed, "details"),
        ({"reason": "bad_reason"}, ValidationError, "one of 'provision_of_care'"),
        ({"to": "stage_9"}, ValidationError, "'to' must be one of 'informal', 'stage_1'"),
        ({"people": {"raiser": "X"}}, GuardFailed, "'people' to map"),
        ({"people": {"team_manager": ""}}, GuardFailed, "'people' to map"),
        ({"people": ["team_manager"]}, ValidationError, "of type dict"),
        ({"subject_id": ""}, ValidationError, "non-empty"),
        ({"colour": "red"}, ValidationError, "a field 'raise' accepts"),
    ],
)
def test_raise_is_checked(payload: dict[str, Any], error: type[Exception], message: str) -> None:
    run = Run(FIRO)
    body = {"subject_id": "FC-1", "reason": "provision_of_care", **payload}
    with pytest.raises(error, match=message):
        run.engine.start(run.spec.name, run.wid, "raise", run.raiser, body)
    assert store_content(run.engine.store) == store_content(MemoryStore())
    with pytest.raises(PermissionDenied):
        run.engine.start(run.spec.name, run.wid, "raise", Actor("X", "team_manager"), body)


def test_people_recorded_at_any_step_become_recipient_ids() -> None:
    run = Run(IRO)
    run.start(people={"team_manager": "TM-4"})
    step = run.fire("escalate", people={"service_manager": "SM-4"})
    assert step.event.dest == "stage_1"
    assert {(n.recipient_role, n.recipient_id) for n in step.notifications} == {
        ("team_manager", "TM-4"),
        ("child", "SUBJ-1"),
    }
    step = run.fire("escalate")
    assert ("service_manager", "SM-4") in {
        (n.recipient_role, n.recipient_id) for n in step.notifications
    }


def test_ladder_may_move_up_a_stage_when_a_response_is_missed() -> None:
    auto = EscalationLadder(
        name="auto",
        kind="cp_chair",
        raiser="cp_chair",
        stages=tuple(LadderStage((f"holder_{k}",), "2 WD") for k in (1, 2, 3)),
        breach="escalate",
        breach_clause="EX-11",
    )
    run = Run(auto, start=datetime(2026, 3, 2, 9, tzinfo=UTC))
    run.start()
    steps = run.wait(days=30)  # one tick climbs every stage, then records the last miss
    assert [(s.event.source, s.event.dest) for s in steps] == [
        ("stage_1", "stage_2"),
        ("stage_2", "stage_3"),
        ("stage_3", "stage_3"),
    ]
    assert [v.via for v in run.record().stages] == ["raise", OVERDUE, OVERDUE]
    assert [v.entered_at for v in run.record().stages][1:] == [
        end_of(date(2026, 3, 4)),
        end_of(date(2026, 3, 6)),
    ]


def test_escalation_record_and_time_to_resolution_in_working_days() -> None:
    run = Run(IRO)
    run.start(reason="plan_drift", details="the plan has not moved in 3 months")
    run.at(datetime(2025, 12, 31, 9, tzinfo=UTC))
    run.fire("escalate", note="no progress")
    run.at(datetime(2026, 1, 7, 9, tzinfo=UTC))
    run.fire("respond", Actor("TM-1", "team_manager"), response="plan reviewed")
    run.fire("accept")
    record = run.record()
    check_record_round_trip(record)  # I11
    assert (record.subject_role, record.subject_id) == ("child", "SUBJ-1")
    assert (record.raiser_role, record.raiser_id, record.reason) == ("iro", "IRO-1", "plan_drift")
    assert record.outcome == "resolved" and record.state == RESOLVED
    # Fri 19 Dec 2025 -> Wed 7 Jan 2026: 22, 23, 24, 29, 30, 31 Dec, 2, 5, 6, 7 Jan
    assert record.working_days_to_resolution == record.working_days_open == 10
    assert [(v.state, v.via, v.note) for v in record.stages] == [
        ("informal", "raise", None),
        ("stage_1", "escalate", "no progress"),
    ]
    assert record.stages[0].left_at == record.stages[1].entered_at
    assert record.stages[1].left_at == record.closed_at
    with pytest.raises(ValidationError):
        escalation_record(run.engine.get(run.wid).__class__("W", "m", "p", "1", "new"))


def test_every_state_and_trigger_of_each_default_ladder() -> None:
    for lad in (CP, IRO, FIRO):
        spec = escalation_machine(lad, bexley.POLICY)
        assert spec.name == machine_name(lad)
        assert set(spec.triggers) <= set(TRIGGERS)
        expected = {"new", RESOLVED, WITHDRAWN, *(state_of(lad, lv) for lv in lad.levels)}
        if lad.referral is not None:
            expected.add(REFERRED)
        assert set(spec.state_names) == expected
        assert escalation_machine(lad, bexley.POLICY) == spec  # pure


def test_expected_recipients_oracle_matches_a_stage_entry() -> None:
    run = Run(IRO)
    step = run.start(to="stage_2")
    assert roles(step) == expected_recipients(IRO, step.event)
    assert roles(step) == Counter({"service_manager": 1, "child": 2})


def test_escalation_works_on_sqlite(tmp_path: Any) -> None:
    store = SQLiteStore(tmp_path / "esc.db")
    run = Run(IRO, store=store)
    run.start()
    run.fire("escalate")
    run.wait(days=10)
    run.fire("request_extension", Actor("TM-1", "team_manager"), length="2 WD")
    run.fire("grant_extension")
    run.fire("bypass", to="stage_4")
    run.fire("refer_externally")
    assert run.engine.verify() == 1
    store.close()


# --- properties -----------------------------------------------------------------------------


TestCPChairLadder = pytest.mark.slow(ladder_state_machine(CP, bexley.POLICY).TestCase)
TestIROLadder = pytest.mark.slow(ladder_state_machine(IRO, bexley.POLICY).TestCase)
TestFIROLadder = pytest.mark.slow(ladder_state_machine(FIRO, bexley.POLICY).TestCase)
TestGeneratedLadders = pytest.mark.slow(ladder_state_machine(None).TestCase)


@settings(max_examples=25)
@given(
    st.sampled_from([CP, IRO, FIRO]),
    st.data(),
    clocks(),
)
def test_command_sequences_on_sqlite_keep_every_invariant(
    ladder: EscalationLadder, data: st.DataObject, clock: ManualClock
) -> None:
    """Pre-drawn command sequences (valid and not) through the SQLite store."""
    commands = data.draw(command_sequences(ladder, max_size=15))
    store = SQLiteStore(":memory:")
    engine = Engine(store, [escalation_machine(ladder, CONFORMANCE_POLICY)], clock=clock)
    run_commands(engine, ladder, "ESC-1", commands, clock=clock)
    store.close()


def test_extension_bounds_per_escalation() -> None:
    lad = EscalationLadder(
        name="bounded",
        kind="custom",
        raiser="quality_lead",
        stages=(LadderStage(("team_manager",), "5 WD"), LadderStage(("director",), "5 WD")),
        extensions=ExtensionRule(1, "2 WD", per="escalation", clause="EX-EXT"),
    )
    run = Run(lad)
    run.start()
    run.fire("request_extension", Actor("TM-1", "team_manager"), length="2 WD")
    run.fire("grant_extension")
    run.fire("escalate")
    error = run.refused(GuardFailed, "request_extension", Actor("D-1", "director"), length="1 WD")
    assert "in this escalation" in str(error) and "EX-EXT" in str(error)
