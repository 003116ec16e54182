"""The engine under random command sequences, on both stores (I1-I4, I6, I7, I11, I12, I14).

Commands are valid and invalid alike: wrong triggers, wrong roles, out-of-range scores, naive
or earlier times, stale versions, reused idempotency keys. After every step the invariants of
DESIGN.md are checked on every workflow.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from qaflow import (
    Actor,
    ConcurrencyError,
    Engine,
    ManualClock,
    MemoryStore,
    PostgresStore,
    QAFlowError,
    SQLiteStore,
    WorkflowSnapshot,
)
from qaflow.testing import (
    check_integrity_detects_tampering,
    check_record_round_trip,
    check_terminal_absorbing,
    check_tick,
    check_workflow,
    store_content,
)
from review_machine import review_spec

ACTORS = [
    Actor("P-1", "worker"),
    Actor("P-2", "worker"),
    Actor("M-1", "manager"),
    Actor("S-1", "service_manager"),
    Actor("X-1", "auditor"),
]
TRIGGERS = ["submit", "escalate", "approve", "send_back", "withdraw", "comment", "bogus"]
PAYLOADS = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"document_ref": st.sampled_from(["DOC-1", "DOC-2", ""])}),
    st.fixed_dictionaries({"score": st.integers(min_value=-2, max_value=12)}),
    st.fixed_dictionaries({"score": st.sampled_from([7.5, "7", True, None])}),
    st.fixed_dictionaries({"reason": st.text(max_size=5)}),
    st.fixed_dictionaries({"text": st.text(max_size=5)}),
    st.fixed_dictionaries({"unexpected": st.integers()}),
)


class EngineMachine(RuleBasedStateMachine):
    """Drives one engine and store; subclasses choose the store."""

    workflows = Bundle("workflows")

    def make_store(self) -> Any:
        return MemoryStore()

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(datetime(2025, 12, 15, 9, tzinfo=UTC))
        self.store = self.make_store()
        self.engine = Engine(self.store, [review_spec()], clock=self.clock)
        self.spec = self.engine.spec("example.review")
        self.count = 0
        self.keys: dict[tuple[str, str], tuple[str, int]] = {}

    def teardown(self) -> None:
        close = getattr(self.store, "close", None)
        if close:
            close()

    def _attempt(self, wid: str, action: Any) -> None:
        """Run ``action``; a refusal must be typed and must write nothing (I3, I4)."""
        before_content = store_content(self.store)
        before: WorkflowSnapshot | None = None
        with contextlib.suppress(QAFlowError):
            before = self.engine.get(wid)
        try:
            step = action()
        except QAFlowError:
            assert store_content(self.store) == before_content, "I3: a refusal wrote something"
            return
        if before is not None:
            assert not self.spec.state(before.state).terminal or step.snapshot == before, (
                "I4: a terminal workflow moved"
            )
        check_record_round_trip(step)

    @initialize()
    def start_one(self) -> None:
        self.count += 1
        self.engine.start("example.review", "W0", "submit", ACTORS[0], {"document_ref": "DOC-0"})

    @rule(target=workflows, actor=st.sampled_from(ACTORS), ref=st.sampled_from(["DOC-1", ""]))
    def start(self, actor: Actor, ref: str) -> str:
        wid = f"W{self.count}"
        self._attempt(
            wid,
            lambda: self.engine.start(
                "example.review", wid, "submit", actor, {"document_ref": ref}
            ),
        )
        try:
            self.engine.get(wid)
            self.count += 1
        except QAFlowError:
            pass
        return wid

    @rule(
        wid=st.one_of(workflows, st.just("W0")),
        trigger=st.sampled_from(TRIGGERS),
        actor=st.sampled_from(ACTORS),
        payload=PAYLOADS,
    )
    def fire(self, wid: str, trigger: str, actor: Actor, payload: dict[str, Any]) -> None:
        self._attempt(wid, lambda: self.engine.fire(wid, trigger, actor, payload))

    @rule(wid=st.just("W0"), score=st.integers(min_value=6, max_value=10))
    def approve(self, wid: str, score: int) -> None:
        self._attempt(wid, lambda: self.engine.fire(wid, "approve", ACTORS[2], {"score": score}))

    @rule(
        wid=st.one_of(workflows, st.just("W0")),
        naive=st.booleans(),
        back=st.integers(min_value=1, max_value=100),
    )
    def bad_time(self, wid: str, naive: bool, back: int) -> None:
        now = self.clock.now()
        at = now.replace(tzinfo=None) if naive else now - timedelta(days=back)
        self._attempt(
            wid, lambda: self.engine.fire(wid, "comment", ACTORS[0], {"text": "t"}, at=at)
        )

    @rule(
        wid=st.one_of(workflows, st.just("W0")),
        key=st.sampled_from(["k1", "k2"]),
        trigger=st.sampled_from(["comment", "escalate"]),
    )
    def idempotent(self, wid: str, key: str, trigger: str) -> None:
        payload = {"text": "t"} if trigger == "comment" else {}
        actor = ACTORS[0]
        try:
            first = self.engine.fire(wid, trigger, actor, payload, idempotency_key=key)
        except ConcurrencyError:
            assert self.keys.get((wid, key), (trigger,))[0] != trigger
            return
        except QAFlowError:
            return
        seen = self.keys.setdefault((wid, key), (trigger, first.event.seq))
        assert seen == (trigger, first.event.seq), "a resent key must return the first result"
        content = store_content(self.store)
        again = self.engine.fire(wid, trigger, actor, payload, idempotency_key=key)
        assert again.event == first.event
        assert store_content(self.store) == content

    @rule(wid=st.one_of(workflows, st.just("W0")))
    def two_writers(self, wid: str) -> None:
        """I12: of two commands computed at the same version, exactly one is written."""
        try:
            snap = self.engine.get(wid)
        except QAFlowError:
            return
        assume(not self.spec.state(snap.state).terminal)
        first = self.engine.fire(
            wid, "comment", ACTORS[2], {"text": "a"}, expected_version=snap.version
        )
        content = store_content(self.store)
        try:
            self.engine.fire(
                wid, "comment", ACTORS[2], {"text": "b"}, expected_version=snap.version
            )
            raise AssertionError("I12: a second writer at the same version won")
        except ConcurrencyError:
            pass
        assert store_content(self.store) == content
        assert self.engine.get(wid).version == first.snapshot.version

    @rule(hours=st.integers(min_value=0, max_value=24 * 20))
    def advance(self, hours: int) -> None:
        self.clock.advance(timedelta(hours=hours))

    @rule()
    def tick(self) -> None:
        before = {w: self.engine.get(w) for w in self.store.workflow_ids()}
        check_tick(self.engine, self.clock.now())
        for wid, snap in before.items():
            check_terminal_absorbing(self.engine, wid, snap)

    @precondition(lambda self: self.count > 0)
    @invariant()
    def workflows_hold_invariants(self) -> None:
        for wid in self.store.workflow_ids():
            check_workflow(self.engine, wid)

    @invariant()
    def tampering_is_detected(self) -> None:
        check_integrity_detects_tampering(self.engine, "W0")


class SQLiteEngineMachine(EngineMachine):
    def make_store(self) -> Any:
        return SQLiteStore(":memory:")


TestEngineOnMemoryStore = pytest.mark.slow(EngineMachine.TestCase)
TestEngineOnSQLiteStore = pytest.mark.slow(SQLiteEngineMachine.TestCase)


def test_engine_on_postgres_store(pg_server: Any) -> None:
    """The same rules and invariants against a real PostgreSQL server (fewer examples)."""

    class PostgresEngineMachine(EngineMachine):
        def make_store(self) -> Any:
            dsn, self.schema = pg_server.fresh_dsn()
            return PostgresStore(dsn, max_size=2)

        def teardown(self) -> None:
            super().teardown()
            pg_server.drop(self.schema)

    # Every step checks every invariant over the network: fewer, shorter runs than in memory.
    examples = max(8, settings.default.max_examples // 6)
    run_state_machine_as_test(
        PostgresEngineMachine,
        settings=settings(settings.default, max_examples=examples, stateful_step_count=25),
    )


@pytest.mark.parametrize("store_cls", [MemoryStore, SQLiteStore])
def test_stateful_machine_smoke(store_cls: type) -> None:
    """The stateful machine runs a fixed short script on each store."""
    machine = EngineMachine() if store_cls is MemoryStore else SQLiteEngineMachine()
    machine.start_one()
    machine.fire("W0", "approve", ACTORS[2], {"score": 11})
    machine.tick()
    machine.workflows_hold_invariants()
    machine.teardown()
