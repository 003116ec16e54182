"""The fast replay fold (issue 14): the plain replay's snapshot and rows, or nothing.

:func:`qaflow._fold.fold` must reach exactly what replaying step by step reaches (snapshot,
deadline rows with their status, notifications, tasks) for every intact history it accepts,
and must be taken for them (else its speed is untested fiction); what it does not accept
goes to the plain replay. The tamper cases are in ``tests/adversarial/test_fold_tamper.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from qaflow import (
    Actor,
    DeadlineRule,
    Engine,
    MachineSpec,
    ManualClock,
    MemoryStore,
    SQLiteStore,
    StateSpec,
    TransitionSpec,
)
from qaflow._effects import collect
from qaflow._fold import _PROVEN, Folded, event_tuples, fold, rows_match
from qaflow.machines.escalation import escalation_machine
from qaflow.policies import bexley
from qaflow.policies.ladders import EscalationLadder
from qaflow.spec import Context
from qaflow.testing import clocks, command_sequences, run_commands
from review_machine import review_spec

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
WORKER = Actor("P-001", "worker")
MANAGER = Actor("M-001", "manager")
LADDERS = [bexley.CP_CHAIR_LADDER, bexley.IRO_LADDER, bexley.FIRO_LADDER]


def _plain(engine: Engine, wid: str) -> Folded:
    """What verify's plain path expects: every step of the step-by-step replay, folded."""
    want = Folded()
    head = engine.store.load(wid)
    for step in engine._replay_from(head, engine.store.events(wid)):
        want.add_step(step)
    return want


def _rows(engine: Engine, wid: str) -> list[tuple[object, ...]]:
    store = engine.store
    if isinstance(store, SQLiteStore):
        return store.event_rows(wid)
    return event_tuples(store.events(wid))


def _same_as_plain(engine: Engine, wid: str) -> Folded:
    """Assert the fold is taken and equals the plain replay, rows and all; return it.

    Folded twice: with no payload text proven canonical yet (each is re-encoded), then with
    every stored text proven (each hashed as it stands; a quiet event's not even decoded)."""
    head = engine.store.load(wid)
    want = _plain(engine, wid)
    _PROVEN.clear()
    for _ in range(2):
        folded = fold(engine._registry, head, _rows(engine, wid), rows_wanted=True)
        assert folded is not None, "an intact history must take the fast path"
        assert folded.snapshot == want.snapshot == head
        assert folded.deadlines == want.deadlines
        assert folded.notes == want.notes
        assert folded.tasks == want.tasks
    alone = fold(engine._registry, head, _rows(engine, wid), rows_wanted=False)
    assert alone is not None and alone.snapshot == head
    assert not alone.notes and not alone.tasks
    assert engine.replay(wid) == head
    store = engine.store
    if isinstance(store, SQLiteStore):
        assert rows_match(folded, *store.derived_rows(wid))
    return folded


def _review(store: MemoryStore | SQLiteStore) -> tuple[Engine, ManualClock]:
    clock = ManualClock(T0)
    return Engine(store, [review_spec()], clock=clock), clock


def test_the_review_mix_folds_to_the_plain_replay_on_both_stores() -> None:
    for store in (MemoryStore(), SQLiteStore(":memory:")):
        engine, clock = _review(store)
        engine.start("example.review", "R-1", "submit", WORKER, {"document_ref": "D-1"})
        for _ in range(5):
            for trigger, actor, payload in (
                ("comment", WORKER, {"text": 'é ü \u2028 "quoted" \\ back'}),
                ("send_back", MANAGER, {"reason": "section 3"}),
                ("submit", WORKER, {"document_ref": "D-1"}),
            ):
                clock.advance(minutes=1, seconds=1)
                engine.fire("R-1", trigger, actor, payload)
        clock.advance(microseconds=17)  # a time with microseconds, hashed as such
        engine.fire("R-1", "comment", MANAGER, {"text": "x"}, idempotency_key="k-1")
        folded = _same_as_plain(engine, "R-1")
        assert len(folded.notes) == 6 and len(folded.tasks) == 5


def test_a_breach_and_a_recorded_miss_fold_to_the_plain_replay() -> None:
    """``tick`` fires the breach trigger (a payload with ``deadline_id``), then records a
    miss of a deadline without one (``deadline_missed``, replayed through replay_step)."""
    for store in (MemoryStore(), SQLiteStore(":memory:")):
        engine, clock = _review(store)
        engine.start("example.review", "R-1", "submit", WORKER, {"document_ref": "D-1"})
        clock.advance(days=10)
        assert [s.event.trigger for s in engine.tick()] == ["escalate", "deadline_missed"]
        engine.fire("R-1", "comment", MANAGER, {"text": "late"})
        folded = _same_as_plain(engine, "R-1")
        assert {status for _, status in folded.deadlines.values()} == {"breached"}


def test_a_quiet_breach_trigger_folds_to_the_plain_replay() -> None:
    """A breach trigger that is an internal transition without effects: its payload (a
    ``deadline_id``) marks the deadline breached, so the fold must read it even when the
    text is already proven canonical; a quiet comment's payload is only hashed."""
    spec = MachineSpec(
        name="t.nudge",
        policy="t",
        policy_version="1",
        initial="new",
        states=(
            StateSpec("new"),
            StateSpec("open", deadlines=(DeadlineRule("look", "2 h", breach_trigger="nudge"),)),
            StateSpec("done", terminal=True),
        ),
        transitions=(
            TransitionSpec("start", ("new",), "open", frozenset({"worker"})),
            TransitionSpec("nudge", ("open",), None, frozenset({"worker"})),
            TransitionSpec("note", ("open",), None, frozenset({"worker"})),
            TransitionSpec("finish", ("open",), "done", frozenset({"worker"})),
        ),
    )
    for store in (MemoryStore(), SQLiteStore(":memory:")):
        clock = ManualClock(T0)
        engine = Engine(store, [spec], clock=clock)
        for wid in ("N-1", "N-2"):
            engine.start("t.nudge", wid, "start", WORKER, {})
            engine.fire(wid, "note", WORKER, {})
        clock.advance(hours=3)
        assert [s.event.trigger for s in engine.tick()] == ["nudge", "nudge"]
        for wid in ("N-1", "N-2"):
            engine.fire(wid, "note", WORKER, {})
            folded = _same_as_plain(engine, wid)
            assert [status for _, status in folded.deadlines.values()] == ["breached"]
            assert engine.verify_report(wid).ok
            if isinstance(store, SQLiteStore):  # its breach text was proven, and so marked
                assert _PROVEN[f'{{"deadline":"look","deadline_id":"{wid}:1:look"}}'] is True


def test_a_choice_between_transitions_sharing_a_trigger_folds_as_live() -> None:
    spec = MachineSpec(
        name="example.split",
        policy="example",
        policy_version="1",
        initial="new",
        states=(StateSpec("new"), StateSpec("a"), StateSpec("b", terminal=True)),
        transitions=(
            TransitionSpec("go", ("new", "a"), "a", frozenset({"manager"})),
            TransitionSpec("go", ("new", "a"), "b", frozenset({"worker"})),
        ),
    )
    engine = Engine(MemoryStore(), [spec], clock=ManualClock(T0))
    engine.start(spec, "S1", "go", MANAGER)
    engine.fire("S1", "go", WORKER)
    assert _same_as_plain(engine, "S1").snapshot.state == "b"


def test_a_migration_is_left_to_the_plain_replay() -> None:
    v1, v2 = review_spec(), attrs.evolve(review_spec("2 WD"), policy_version="2")
    engine = Engine(MemoryStore(), [v1, v2], clock=ManualClock(T0))
    engine.start(v1, "R-1", "submit", WORKER, {"document_ref": "D-1"})
    engine.migrate("R-1", v2, MANAGER, reason="new policy")
    head = engine.store.load("R-1")
    assert fold(engine._registry, head, _rows(engine, "R-1"), rows_wanted=False) is None
    assert engine.replay("R-1") == head
    assert engine.verify("R-1") == 1


def test_collect_without_rows_changes_the_same_deadlines_and_writes_no_rows() -> None:
    spec = review_spec()
    engine, _ = _review(MemoryStore())
    engine.start(spec, "R-1", "submit", WORKER, {"document_ref": "D-1"})
    snapshot = engine.get("R-1")
    send_back = spec.candidates("submitted", "send_back")[0]

    def ctx() -> Context:
        return Context(
            spec, snapshot, "send_back", "submitted", "returned", MANAGER,
            T0 + timedelta(hours=1), {"reason": "r"}, dict(snapshot.data), 2,
        )  # fmt: skip

    full, bare = collect(spec, ctx(), send_back), collect(spec, ctx(), send_back, rows=False)
    assert (full.opened, full.closed, full.open_now) == (bare.opened, bare.closed, bare.open_now)
    assert full.tasks and not bare.tasks and not bare.notifications


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(LADDERS), st.data(), clocks())
def test_escalation_ladders_fold_to_the_plain_replay(
    ladder: EscalationLadder, data: st.DataObject, clock: ManualClock
) -> None:
    """Drawn command sequences (valid and refused, with waits and ticks) on a shipped
    ladder: every history the store keeps folds to the plain replay, rows included."""
    commands = data.draw(command_sequences(ladder, max_size=12))
    store = SQLiteStore(":memory:")
    engine = Engine(store, [escalation_machine(ladder, bexley.POLICY)], clock=clock)
    run_commands(engine, ladder, "ESC-1", commands, clock=clock)
    if list(store.workflow_ids()):
        _same_as_plain(engine, "ESC-1")
    store.close()
