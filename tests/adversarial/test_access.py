"""Access under attack (issue 16, #4-#8): forged system actor, migration, start, resend, time.

Each test reproduces a hole an adversarial run found; each refusal writes nothing (I3).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import MANAGER, T0, WORKER
from qaflow import (
    MAX_CLOCK_SKEW,
    SYSTEM,
    Actor,
    ConcurrencyError,
    Engine,
    IdempotencyConflict,
    MachineSpec,
    ManualClock,
    MemoryStore,
    PermissionDenied,
    SQLiteStore,
    Step,
    ValidationError,
)
from qaflow.machines.escalation import OVERDUE, escalation_machine
from qaflow.policies import bexley
from qaflow.testing import store_content
from review_machine import review_spec


@pytest.mark.parametrize(
    "actor",
    [SYSTEM, Actor("qaflow", "system"), Actor("P-1", "system"), Actor("qaflow", "worker")],
    ids=["SYSTEM", "rebuilt", "system-role", "system-id"],
)
@pytest.mark.parametrize("trigger", ["escalate", "deadline_missed", "comment"])
def test_nobody_fires_as_the_system_actor(engine: Engine, actor: Actor, trigger: str) -> None:
    """#4: a forged system actor is refused before any role, guard or directory check."""
    before = store_content(engine.store)
    payload = {"deadline": "review", "deadline_id": "R2:1:review"}
    with pytest.raises(PermissionDenied, match="only tick fires as it"):
        engine.fire("R2", trigger, actor, payload)
    with pytest.raises(PermissionDenied):
        engine.start("example.review", "R9", "submit", actor, {"document_ref": "D"})
    assert store_content(engine.store) == before


def test_a_breach_trigger_without_roles_is_refused_before_it_is_due() -> None:
    """#4: ``response_overdue`` names no role: only tick fires it, and only when due."""
    spec = escalation_machine(bexley.FIRO_LADDER, bexley.POLICY)
    clock = ManualClock(datetime(2025, 12, 19, 10, tzinfo=UTC))
    engine = Engine(MemoryStore(), [spec], clock=clock)
    raiser = Actor("FIRO-1", "firo")
    payload = {"subject_id": "CARER-7", "reason": bexley.FIRO_LADDER.reasons[0], "to": "stage_1"}
    step = engine.start(spec.name, "ESC-1", "raise", raiser, payload)
    (deadline,) = step.opened
    before = store_content(engine.store)
    for actor in (SYSTEM, raiser, Actor("TM-1", "team_manager")):
        with pytest.raises(PermissionDenied):
            engine.fire(
                "ESC-1", OVERDUE, actor, {"deadline": "response", "deadline_id": deadline.id}
            )
    assert store_content(engine.store) == before
    assert engine.tick() == []
    clock.set(deadline.due_at + timedelta(minutes=1))
    (breach,) = engine.tick()
    assert breach.event.trigger == OVERDUE and breach.event.actor == SYSTEM
    engine.verify()


def test_migration_needs_a_policy_named_role(engine: Engine) -> None:
    """#5: only the roles the workflow's policy names may move it to another version."""
    v1 = engine.spec("example.review")
    assert v1.migration_roles == {"manager"}
    v2 = MachineSpec(
        v1.name, v1.policy, "2", v1.initial, v1.states, v1.transitions, migration_roles=()
    )
    before = store_content(engine.store)
    for actor in (WORKER, Actor("SM-1", "service_manager"), SYSTEM):
        with pytest.raises(PermissionDenied):
            engine.migrate("R2", v2, actor, reason="new rules")
    assert store_content(engine.store) == before
    step = engine.migrate("R2", v2, MANAGER, reason="new rules")
    assert step.snapshot.policy_version == "2"
    with pytest.raises(PermissionDenied, match="allowed roles: none"):
        engine.migrate("R2", v1, MANAGER, reason="back again")  # v2 names nobody
    engine.verify()


def test_migration_checks_the_directory(engine: Engine) -> None:
    class Nobody:
        def has_role(self, person_id: str, role: str) -> bool:
            return False

    v1 = engine.spec("example.review")
    v2 = MachineSpec(v1.name, v1.policy, "2", v1.initial, v1.states, v1.transitions)
    engine.directory = Nobody()
    before = store_content(engine.store)
    with pytest.raises(PermissionDenied, match="the directory does not list them"):
        engine.migrate("R2", v2, MANAGER, reason="new rules")
    assert store_content(engine.store) == before


def test_shipped_policies_name_their_migration_role() -> None:
    spec = escalation_machine(bexley.FIRO_LADDER, bexley.POLICY)
    assert spec.migration_roles == frozenset(bexley.POLICY.migration_roles) != frozenset()


@pytest.mark.parametrize("trigger", ["policy_migrated", "deadline_missed"])
def test_start_refuses_internal_triggers(engine: Engine, trigger: str) -> None:
    """#6: ``start(trigger="policy_migrated")`` used to be accepted, then verify crashed."""
    before = store_content(engine.store)
    with pytest.raises(ValidationError, match="'trigger' must be a trigger of the machine"):
        engine.start("example.review", "R9", trigger, MANAGER, {"to_version": "2"})
    assert store_content(engine.store) == before
    assert engine.verify() == 3


def test_resend_returns_the_first_result_only_to_the_same_command(engine: Engine) -> None:
    """#7: another actor or payload under the same key is a typed conflict, not the result."""
    first = engine.fire("R2", "comment", MANAGER, {"text": "private words"}, idempotency_key="k")
    assert (
        engine.fire("R2", "comment", MANAGER, {"text": "private words"}, idempotency_key="k")
        == first
    )
    before = store_content(engine.store)
    with pytest.raises(IdempotencyConflict, match="different actor") as other_actor:
        engine.fire(
            "R2", "comment", Actor("M-2", "manager"), {"text": "private words"}, idempotency_key="k"
        )
    with pytest.raises(IdempotencyConflict, match="different payload") as other_payload:
        engine.fire("R2", "comment", MANAGER, {"text": "other"}, idempotency_key="k")
    for info in (other_actor, other_payload):
        assert "private" not in str(info.value) and isinstance(info.value, ConcurrencyError)
    assert store_content(engine.store) == before


class _LateKeyStore(SQLiteStore):
    """A real SQLite store whose first key lookup lets another engine commit first.

    It reproduces the interleaving of two processes resending one key: both look the key
    up (not found), the other commits, then this one commits and loses.
    """

    other: Any = None

    def find_idempotent(self, workflow_id: str, key: str) -> Any:
        found = super().find_idempotent(workflow_id, key)
        if self.other is not None:
            other, self.other = self.other, None
            other()
        return found


def test_a_concurrent_resend_loser_gets_the_first_result(tmp_path: Path) -> None:
    """#7: the loser of two concurrent resends of one key used to get ConcurrencyError."""
    path = tmp_path / "q.db"
    winner = Engine(SQLiteStore(path), [review_spec()], clock=ManualClock(T0))
    winner.start("example.review", "R1", "submit", WORKER, {"document_ref": "D"})
    loser_store = _LateKeyStore(path)
    loser = Engine(loser_store, [review_spec()], clock=ManualClock(T0))
    won: list[Step] = []
    loser_store.other = lambda: won.append(
        winner.fire("R1", "comment", MANAGER, {"text": "a"}, idempotency_key="k")
    )
    got = loser.fire("R1", "comment", MANAGER, {"text": "a"}, idempotency_key="k")
    assert got == won[0]
    assert len(winner.history("R1")) == 2
    # and the start of a workflow, raced the same way:
    loser_store.other = lambda: won.append(
        winner.start(
            "example.review", "R2", "submit", WORKER, {"document_ref": "D"}, idempotency_key="s"
        )
    )
    got = loser.start(
        "example.review", "R2", "submit", WORKER, {"document_ref": "D"}, idempotency_key="s"
    )
    assert got == won[1]
    winner.verify()


@pytest.mark.parametrize(
    "ahead",
    [MAX_CLOCK_SKEW + timedelta(seconds=1), timedelta(days=365)],
    ids=["skew+1s", "a year"],
)
def test_at_is_bounded_by_the_clock(engine: Engine, ahead: timedelta) -> None:
    """#8: a command a year ahead used to be accepted and then block every later one."""
    now = engine.clock.now()
    before = store_content(engine.store)
    with pytest.raises(ValidationError, match="'at' must be not later than the clock"):
        engine.fire("R2", "comment", MANAGER, {"text": "x"}, at=now + ahead)
    with pytest.raises(ValidationError, match="'now' must be not later than the clock"):
        engine.tick(now + ahead)
    assert store_content(engine.store) == before
    engine.fire("R2", "comment", MANAGER, {"text": "x"}, at=now + MAX_CLOCK_SKEW)


@pytest.mark.parametrize(
    "at",
    [
        datetime(9999, 12, 31, 23, tzinfo=UTC),
        datetime(9999, 12, 31, 23, tzinfo=UTC).astimezone(
            __import__("datetime").timezone(timedelta(hours=-5))
        ),
        datetime(1, 1, 1, tzinfo=__import__("datetime").timezone(timedelta(hours=1))),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(2025, 12, 20),
    ],
    ids=["9999", "9999-05:00", "year1+01:00", "year1", "naive"],
)
def test_extreme_times_are_refused_typed(engine: Engine, at: datetime) -> None:
    """#11: years 1 and 9999 used to raise OverflowError."""
    before = store_content(engine.store)
    with pytest.raises(ValidationError):
        engine.fire("R2", "comment", MANAGER, {"text": "x"}, at=at)
    with pytest.raises(ValidationError):
        engine.tick(at)
    assert store_content(engine.store) == before
