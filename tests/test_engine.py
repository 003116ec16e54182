"""Engine behaviour by example: typed refusals that write nothing, effects, time, pinning."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from qaflow import (
    SYSTEM,
    Actor,
    AddTask,
    CloseDeadline,
    ConcurrencyError,
    DeadlineRule,
    Derived,
    Engine,
    ExtendDeadline,
    Field,
    Guard,
    GuardFailed,
    IntegrityError,
    MachineSpec,
    ManualClock,
    MemoryStore,
    Notify,
    OpenDeadline,
    PermissionDenied,
    PolicyError,
    QAFlowError,
    SQLiteStore,
    StateSpec,
    TransitionNotAllowed,
    TransitionSpec,
    UnknownWorkflow,
    Update,
    ValidationError,
)
from qaflow.testing import check_workflow, store_content
from review_machine import review_spec

T0 = datetime(2025, 12, 19, 10, tzinfo=UTC)  # a Friday before Christmas
WORKER, OTHER = Actor("P-1", "worker"), Actor("P-2", "worker")
MANAGER = Actor("M-1", "manager")


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Engine]:
    store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "q.db")
    yield Engine(store, [review_spec()], clock=ManualClock(T0))
    if isinstance(store, SQLiteStore):
        store.close()


def _submitted(engine: Engine) -> str:
    engine.start("example.review", "R1", "submit", WORKER, {"document_ref": "DOC-1"})
    return "R1"


REFUSALS: list[tuple[str, type[QAFlowError], str, Callable[[Engine], Any]]] = [
    (
        "bad state",
        TransitionNotAllowed,
        "trigger 'submit' is not allowed in state 'submitted' of workflow 'R1'; allowed triggers: "
        "'approve', 'comment', 'escalate', 'send_back', 'withdraw'",
        lambda e: e.fire("R1", "submit", WORKER, {"document_ref": "D"}),
    ),
    (
        "bad role",
        PermissionDenied,
        "allowed roles: 'manager', 'service_manager'",
        lambda e: e.fire("R1", "approve", WORKER, {"score": 8}),
    ),
    (
        "not the person",
        PermissionDenied,
        "only the person recorded as 'worker_id' may",
        lambda e: e.fire("R1", "withdraw", OTHER),
    ),
    (
        "guard",
        GuardFailed,
        "requires a score of at least 6 (EX-03)",
        lambda e: e.fire("R1", "approve", MANAGER, {"score": 5}),
    ),
    (
        "out of range",
        ValidationError,
        "'score' must be a number in (0..10) (got 11)",
        lambda e: e.fire("R1", "approve", MANAGER, {"score": 11}),
    ),
    (
        "missing field",
        ValidationError,
        "'score' must be given (int)",
        lambda e: e.fire("R1", "approve", MANAGER, {}),
    ),
    (
        "unknown field",
        ValidationError,
        "a field 'approve' accepts: 'score'",
        lambda e: e.fire("R1", "approve", MANAGER, {"score": 8, "name": "x"}),
    ),
    (
        "naive time",
        ValidationError,
        "'at' must be a timezone-aware datetime, not naive",
        lambda e: e.fire("R1", "comment", MANAGER, {"text": "t"}, at=datetime(2025, 12, 20)),
    ),
    (
        "time backwards",
        ValidationError,
        "'at' must be not earlier than the last event",
        lambda e: e.fire("R1", "comment", MANAGER, {"text": "t"}, at=T0 - timedelta(hours=1)),
    ),
    (
        "stale version",
        ConcurrencyError,
        "workflow 'R1' is at version 1, not 0",
        lambda e: e.fire("R1", "comment", MANAGER, {"text": "t"}, expected_version=0),
    ),
    (
        "exists",
        ConcurrencyError,
        "the workflow already exists",
        lambda e: e.start("example.review", "R1", "submit", WORKER, {"document_ref": "D"}),
    ),
    (
        "unknown",
        UnknownWorkflow,
        "no workflow with id 'R9'",
        lambda e: e.fire("R9", "comment", MANAGER, {"text": "t"}),
    ),
    (
        "system only",
        PermissionDenied,
        "allowed roles: 'system'",
        lambda e: e.fire("R1", "deadline_missed", MANAGER, {"deadline_id": "x"}),
    ),
    (
        "not JSON",
        ValidationError,
        "'text' must be a JSON value",
        lambda e: e.fire("R1", "comment", MANAGER, {"text": object()}),
    ),
]


@pytest.mark.parametrize(
    ("name", "error", "message", "command"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_I3_refused_command_raises_typed_error_and_writes_nothing(
    engine: Engine,
    name: str,
    error: type[QAFlowError],
    message: str,
    command: Callable[[Engine], Any],
) -> None:
    _submitted(engine)
    before = store_content(engine.store)
    with pytest.raises(error) as info:
        command(engine)
    assert message in str(info.value)
    assert store_content(engine.store) == before


def test_step_carries_event_snapshot_deadlines_and_notifications(engine: Engine) -> None:
    step = engine.start("example.review", "R1", "submit", WORKER, {"document_ref": "DOC-1"})
    assert (step.event.seq, step.event.source, step.event.dest) == (1, "new", "submitted")
    assert step.snapshot.version == 1 and step.snapshot.data["worker_id"] == "P-1"
    (deadline,) = step.opened
    assert deadline.due_at == datetime(2025, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
    assert deadline.state == "submitted" and deadline.breach_trigger == "escalate"
    assert [n.recipient_role for n in step.notifications] == ["manager"]
    assert engine.store.pending_notifications() == list(step.notifications)


def _tick(engine: Engine, moment: datetime) -> list[Any]:
    """Tick at ``moment``, the engine's clock moved there first (a tick is not ahead of it)."""
    assert isinstance(engine.clock, ManualClock)
    engine.clock.set(max(moment, engine.clock.now()))
    return engine.tick(moment)


def test_tick_breach_fires_trigger_then_records_miss_and_is_idempotent(engine: Engine) -> None:
    _submitted(engine)
    (escalated,) = _tick(engine, datetime(2025, 12, 31, 9, tzinfo=UTC))
    assert escalated.event.actor == SYSTEM and escalated.snapshot.state == "escalated"
    assert escalated.breached == ("R1:1:review",)
    assert escalated.event.at == datetime(2025, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
    assert _tick(engine, datetime(2025, 12, 31, 9, tzinfo=UTC)) == []
    (missed,) = _tick(engine, datetime(2026, 1, 2, 9, tzinfo=UTC))
    assert missed.event.trigger == "deadline_missed" and missed.snapshot.state == "escalated"
    assert [n.recipient_role for n in missed.notifications] == ["service_manager"]
    assert _tick(engine, datetime(2026, 1, 2, 9, tzinfo=UTC)) == []
    check_workflow(engine, "R1")


def test_idempotency_key_returns_first_result_and_refuses_other_trigger(engine: Engine) -> None:
    _submitted(engine)
    first = engine.fire("R1", "comment", MANAGER, {"text": "a"}, idempotency_key="k")
    content = store_content(engine.store)
    again = engine.fire("R1", "comment", MANAGER, {"text": "a"}, idempotency_key="k")
    assert again == first
    assert store_content(engine.store) == content
    with pytest.raises(ConcurrencyError, match="first used for 'comment', not 'escalate'"):
        engine.fire("R1", "escalate", WORKER, idempotency_key="k")


def test_terminal_state_closes_every_deadline_and_absorbs(engine: Engine) -> None:
    _submitted(engine)
    step = engine.fire("R1", "approve", MANAGER, {"score": 9})
    assert step.closed == ("R1:1:review",) and step.snapshot.deadlines == ()
    with pytest.raises(TransitionNotAllowed, match="none \\(terminal state\\)"):
        engine.fire("R1", "comment", MANAGER, {"text": "t"})
    assert _tick(engine, datetime(2027, 1, 1, tzinfo=UTC)) == []


def test_add_task_due_in_working_days(engine: Engine) -> None:
    _submitted(engine)
    step = engine.fire("R1", "send_back", MANAGER, {"reason": "incomplete"})
    (task,) = step.tasks
    assert (task.owner_role, task.owner_id, task.clause) == ("worker", "P-1", "EX-04")
    assert task.due_at == datetime(2025, 12, 23, 23, 59, 59, 999999, tzinfo=UTC)
    assert engine.store.complete_tasks([task.id], T0) == 1
    assert engine.store.tasks("R1", open_only=True) == []


def test_I14_verify_detects_a_changed_or_deleted_stored_event(tmp_path: Any) -> None:
    store = SQLiteStore(tmp_path / "q.db")
    engine = Engine(store, [review_spec()], clock=ManualClock(T0))
    _submitted(engine)
    engine.fire("R1", "comment", MANAGER, {"text": "a"})
    engine.fire("R1", "comment", MANAGER, {"text": "b"})
    assert engine.verify() == 1
    store.conn.execute('UPDATE events SET payload = \'{"text": "z"}\' WHERE seq = 2')
    with pytest.raises(IntegrityError, match="at event 2: hash does not match the event's"):
        engine.verify()
    store.conn.execute('UPDATE events SET payload = \'{"text": "a"}\' WHERE seq = 2')
    engine.verify()
    store.conn.execute("DELETE FROM events WHERE seq = 2")
    with pytest.raises(IntegrityError, match="at event 3: expected seq 2"):
        engine.verify()
    store.conn.execute("DELETE FROM events WHERE seq = 3")
    with pytest.raises(IntegrityError, match="snapshot is at version 3 but there are 1 events"):
        engine.verify()


def test_workflow_stays_pinned_to_its_policy_version() -> None:
    store = MemoryStore()
    v1 = review_spec("5 WD")
    engine = Engine(store, [v1], clock=ManualClock(T0))
    _submitted(engine)
    v2 = MachineSpec(
        v1.name,
        v1.policy,
        "2",
        v1.initial,
        review_spec("2 WD").states,
        v1.transitions,
        migration_roles=v1.migration_roles,
    )
    engine.register(v2)
    engine.start("example.review", "R2", "submit", WORKER, {"document_ref": "D"})
    assert engine.get("R1").policy_version == "1" and engine.get("R2").policy_version == "2"
    assert engine.get("R2").deadlines[0].due_at < engine.get("R1").deadlines[0].due_at
    engine.verify()
    fresh = Engine(store, [v2])
    with pytest.raises(
        PolicyError,
        match=re.escape(
            "pinned to machine 'example.review' under policy 'example' version '1', "
            "which is not registered"
        ),
    ):
        fresh.fire("R1", "comment", MANAGER, {"text": "t"})


class _Directory:
    def has_role(self, person_id: str, role: str) -> bool:
        return (person_id, role) in {("P-1", "worker"), ("M-1", "manager")}


def test_directory_is_consulted_for_roles() -> None:
    engine = Engine(MemoryStore(), [review_spec()], clock=ManualClock(T0), directory=_Directory())
    _submitted(engine)
    with pytest.raises(PermissionDenied, match="the directory does not list them as 'manager'"):
        engine.fire("R1", "approve", Actor("M-2", "manager"), {"score": 8})
    engine.fire("R1", "approve", MANAGER, {"score": 8})


def _effects_spec() -> MachineSpec:
    """Every effect kind once: workflow deadlines from a stored date, extension, derived."""
    return MachineSpec(
        name="example.effects",
        policy="example",
        policy_version="1",
        initial="new",
        states=(
            StateSpec("new"),
            StateSpec("open", deadlines=(DeadlineRule("reply", "5 WD", notify=("raiser",)),)),
            StateSpec("done", terminal=True),
        ),
        transitions=(
            TransitionSpec(
                "raise",
                ("new",),
                "open",
                frozenset({"raiser"}),
                fields=(Field("allocated_at", "datetime"),),
                effects=(
                    Update(
                        lambda c: {
                            "raiser_id": c.actor.id,
                            "allocated_at": c.payload["allocated_at"],
                        }
                    ),
                    OpenDeadline(
                        DeadlineRule(
                            "complete", "3 weeks", from_key="allocated_at", clause="BK-AUD-02"
                        )
                    ),
                ),
            ),
            TransitionSpec(
                "extend",
                ("open",),
                None,
                frozenset({"raiser"}),
                actor_key="raiser_id",
                fields=(Field("days", "int", min=1, max=5),),
                guards=(
                    Guard(
                        "fewer than 2 extensions",
                        lambda c: c.data.get("extensions", 0) < 2,
                        "X-EXT",
                    ),
                ),
                effects=(
                    ExtendDeadline("reply", lambda c: _wd(c.payload["days"])),
                    Update(lambda c: {"extensions": c.data.get("extensions", 0) + 1}),
                ),
            ),
            TransitionSpec(
                "note",
                ("open",),
                None,
                frozenset({"raiser"}),
                fields=(Field("urgent", "bool"),),
                effects=(
                    Derived(
                        lambda c: (
                            [
                                Notify(("director",), "urgent", "X-URG"),
                                AddTask("call", "director", "24 h"),
                            ]
                            if c.payload["urgent"]
                            else []
                        )
                    ),
                    CloseDeadline("complete"),
                ),
            ),
            TransitionSpec("close", ("open",), "done", frozenset({"raiser"})),
        ),
    )


def _wd(days: int) -> Any:
    from qaflow import Duration

    return Duration(days, "WD")


def test_effects_workflow_deadline_extension_and_derived(engine: Engine) -> None:
    engine.register(_effects_spec())
    raiser = Actor("C-1", "raiser")
    step = engine.start(
        "example.effects", "E1", "raise", raiser, {"allocated_at": "2025-12-01T09:00:00+00:00"}
    )
    due = {d.name: d for d in step.opened}
    assert due["complete"].due_at == datetime(2025, 12, 22, 9, tzinfo=UTC)
    assert due["complete"].state is None and due["reply"].state == "open"
    ext = engine.fire("E1", "extend", raiser, {"days": 2})
    (new_reply,) = ext.opened
    assert ext.closed == (due["reply"].id,)
    assert new_reply.due_at == datetime(2026, 1, 2, 23, 59, 59, 999999, tzinfo=UTC)
    assert new_reply.rule == "5 WD + 2 WD"
    engine.fire("E1", "extend", raiser, {"days": 1})
    with pytest.raises(GuardFailed, match="fewer than 2 extensions \\(X-EXT\\)"):
        engine.fire("E1", "extend", raiser, {"days": 1})
    with pytest.raises(PermissionDenied):
        engine.fire("E1", "extend", Actor("C-2", "raiser"), {"days": 1})
    note = engine.fire("E1", "note", raiser, {"urgent": True})
    assert [n.recipient_role for n in note.notifications] == ["director"]
    assert note.tasks[0].due_at == T0 + timedelta(hours=24)
    assert [d.name for d in engine.get("E1").deadlines] == ["reply"]
    check_workflow(engine, "E1")
    assert engine.fire("E1", "close", raiser).snapshot.deadlines == ()
    check_workflow(engine, "E1")


def test_allowed_triggers_and_history(engine: Engine) -> None:
    _submitted(engine)
    assert "approve" in engine.allowed_triggers("R1")
    engine.fire("R1", "comment", MANAGER, {"text": "x"})
    assert [e.trigger for e in engine.history("R1")] == ["submit", "comment"]
    assert engine.replay("R1") == engine.get("R1")


def test_migration_is_an_explicit_recorded_event_and_replays(engine: Engine) -> None:
    """Principle 8: changing policy mid-flight is an explicit, recorded migration."""
    _submitted(engine)
    v1 = engine.spec("example.review")
    v2 = MachineSpec(
        v1.name,
        v1.policy,
        "2",
        v1.initial,
        review_spec("2 WD").states,
        v1.transitions,
        migration_roles=v1.migration_roles,
    )
    with pytest.raises(ValidationError, match=r"Engine\.migrate changes policy"):
        engine.fire("R1", "policy_migrated", MANAGER, {"to_version": "2"})
    before = store_content(engine.store)
    with pytest.raises(ValidationError, match="'reason' must be non-empty text"):
        engine.migrate("R1", v2, MANAGER, reason=" ")
    assert store_content(engine.store) == before
    step = engine.migrate("R1", v2, MANAGER, reason="council changed its review timescale")
    assert step.event.trigger == "policy_migrated" and step.event.dest == "submitted"
    assert step.event.payload["from_version"] == "1"
    assert (step.snapshot.policy_version, step.snapshot.state) == ("2", "submitted")
    assert step.snapshot.deadlines == engine.get("R1").deadlines  # carried over
    engine.fire("R1", "send_back", MANAGER, {"reason": "r"})
    submitted = engine.fire("R1", "submit", WORKER, {"document_ref": "D"})
    assert submitted.opened[0].rule == "2 WD"  # the new policy governs from here
    check_workflow(engine, "R1")
    with pytest.raises(ValidationError, match="other than the workflow's own"):
        engine.migrate("R1", v2, MANAGER, reason="again")
    engine.fire("R1", "approve", MANAGER, {"score": 9})
    with pytest.raises(TransitionNotAllowed):
        engine.migrate("R1", v1, MANAGER, reason="too late")
    check_workflow(engine, "R1")


def test_replay_chooses_between_same_trigger_transitions_by_role_as_live() -> None:
    """Two transitions share state and trigger but differ by role: replay must take the one
    the live command took (I2)."""
    spec = MachineSpec(
        name="example.split",
        policy="example",
        policy_version="1",
        initial="new",
        states=(StateSpec("new"), StateSpec("a", terminal=True), StateSpec("b", terminal=True)),
        transitions=(
            TransitionSpec("go", ("new",), "a", frozenset({"manager"})),
            TransitionSpec("go", ("new",), "b", frozenset({"worker"})),
        ),
    )
    engine = Engine(MemoryStore(), [spec], clock=ManualClock(T0))
    assert engine.start(spec, "S1", "go", WORKER).snapshot.state == "b"
    check_workflow(engine, "S1")


def test_fire_logs_its_debug_line_exactly_while_debug_is_enabled(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The debug line of a command follows the logger's level as it changes between commands
    (qaflow._command reads logging's own memo of the answer first)."""

    def debug_lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]

    caplog.set_level(logging.INFO, logger="qaflow.engine")
    _submitted(engine)
    engine.fire("R1", "comment", WORKER, {"text": "a note"})
    assert debug_lines() == []
    caplog.set_level(logging.DEBUG, logger="qaflow.engine")
    engine.fire("R1", "comment", WORKER, {"text": "a note"})
    assert debug_lines() == ["workflow R1: comment submitted -> submitted (v3)"]
    caplog.set_level(logging.INFO, logger="qaflow.engine")
    engine.fire("R1", "comment", WORKER, {"text": "a note"})
    logging.getLogger("qaflow.engine").disabled = True
    try:
        caplog.set_level(logging.DEBUG, logger="qaflow.engine")
        engine.fire("R1", "comment", WORKER, {"text": "a note"})
    finally:
        logging.getLogger("qaflow.engine").disabled = False
    engine.fire("R1", "comment", WORKER, {"text": "a note"})
    assert debug_lines() == [
        "workflow R1: comment submitted -> submitted (v3)",
        "workflow R1: comment submitted -> submitted (v6)",
    ]
