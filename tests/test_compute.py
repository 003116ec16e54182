"""The engine's seams: the pure interpreter (``_compute``) and the effect dispatch table."""

from __future__ import annotations

import ast
import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import attrs
import pytest

import qaflow
from qaflow import (
    Actor,
    Derived,
    Engine,
    ManualClock,
    MemoryStore,
    PolicyError,
    SQLiteStore,
    StateSpec,
)
from qaflow._compute import Command, compute, replay_step
from qaflow._effects import HANDLERS
from qaflow.errors import GuardFailed, PermissionDenied, QAFlowError
from qaflow.spec import Effect
from qaflow.testing import store_content
from review_machine import review_spec

T0 = datetime(2025, 12, 1, 9, tzinfo=UTC)
WORKER = Actor("P-1", "worker")
MANAGER = Actor("P-2", "manager")
MIX: list[tuple[str, Actor, dict[str, Any]]] = [
    ("comment", WORKER, {"text": "first"}),
    ("send_back", MANAGER, {"reason": "incomplete"}),
    ("submit", WORKER, {"document_ref": "DOC-2"}),
    ("approve", MANAGER, {"score": 7}),
]


def _engine(store: Any) -> Engine:
    return Engine(store, [review_spec()], clock=ManualClock(T0 + timedelta(days=1)))


def test_compute_is_pure_same_inputs_same_step_and_the_store_untouched(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "pure.db")
    engine = _engine(store)
    engine.start("example.review", "W-1", "submit", WORKER, {"document_ref": "DOC-1"}, at=T0)
    spec = engine.spec("example.review")
    at = T0
    for trigger, actor, payload in MIX:
        at += timedelta(hours=1)
        snapshot = store.load("W-1")
        frozen = copy.deepcopy(snapshot)
        before = store_content(store)
        command = Command(trigger=trigger, actor=actor, at=at, payload=payload)
        first = compute(spec, snapshot, command)
        second = compute(spec, snapshot, command)
        assert first == second
        assert first is not second and first.snapshot.data is not snapshot.data
        assert snapshot == frozen and snapshot.data == frozen.data  # the input is not changed
        assert store_content(store) == before  # no store was touched
        # ...and it is the step the facade commits for the same command.
        assert engine.fire("W-1", trigger, actor, payload, at=at) == first
    assert engine.verify("W-1") == 1


def test_compute_reads_no_clock_and_imports_no_store() -> None:
    """The interpreter's modules import neither a store nor a clock, and never ask the time."""
    source = Path(qaflow.__file__).parent
    for name in ("_compute.py", "_effects.py", "_authorise.py"):
        tree = ast.parse((source / name).read_text(encoding="utf-8"))
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module is not None
        } | {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        assert not {m for m in imported if m.startswith(("qaflow.store", "qaflow.clock"))}, name
        calls = {
            node.func.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        }
        assert not calls & {"now", "utcnow", "today", "time", "perf_counter"}, name


def test_compute_refuses_without_writing_and_replay_step_reproduces_it() -> None:
    store = MemoryStore()
    engine = _engine(store)
    engine.start("example.review", "W-1", "submit", WORKER, {"document_ref": "DOC-1"}, at=T0)
    spec = engine.spec("example.review")
    snapshot = store.load("W-1")
    later = T0 + timedelta(hours=1)
    with pytest.raises(PermissionDenied):
        compute(spec, snapshot, Command(trigger="approve", actor=WORKER, at=later))
    with pytest.raises(GuardFailed):
        compute(
            spec,
            snapshot,
            Command(trigger="approve", actor=MANAGER, at=later, payload={"score": 2}),
        )
    step = compute(
        spec, snapshot, Command(trigger="approve", actor=MANAGER, at=later, payload={"score": 8})
    )
    assert replay_step(spec, snapshot, step.event) == step
    assert replay_step(spec, snapshot, step.event, hash_checked=True).event is step.event


def test_every_effect_type_has_exactly_one_handler() -> None:
    assert set(HANDLERS) == set(get_args(Effect))


@attrs.frozen
class Teleport:
    """An effect type the engine does not know."""

    where: str = "elsewhere"


def _spec_with(effects: tuple[Any, ...]) -> qaflow.MachineSpec:
    spec = review_spec()
    transitions = tuple(
        attrs.evolve(t, effects=effects) if t.trigger == "comment" else t for t in spec.transitions
    )
    return attrs.evolve(spec, policy_version="odd", transitions=transitions)


def test_an_unknown_effect_type_is_refused_when_the_spec_is_registered() -> None:
    spec = _spec_with((Teleport(),))
    with pytest.raises(PolicyError) as caught:
        Engine(MemoryStore(), [spec])
    assert isinstance(caught.value, QAFlowError)
    assert caught.value.value == "Teleport" and "comment" in caught.value.path
    assert "Notify" in str(caught.value) and "Update" in str(caught.value)
    on_enter = attrs.evolve(
        review_spec(),
        policy_version="odd2",
        states=(*review_spec().states[:-1], StateSpec("withdrawn", True, on_enter=(Teleport(),))),
    )
    with pytest.raises(PolicyError, match="Teleport"):
        Engine(MemoryStore()).register(on_enter)


def test_an_unknown_effect_chosen_at_run_time_is_refused_and_nothing_is_written() -> None:
    spec = _spec_with((Derived(lambda ctx: [Teleport()]),))
    store = MemoryStore()
    engine = Engine(store, [spec], clock=ManualClock(T0 + timedelta(days=1)))
    engine.start(spec, "W-1", "submit", WORKER, {"document_ref": "DOC-1"}, at=T0)
    before = store_content(store)
    with pytest.raises(PolicyError, match="Teleport"):
        engine.fire("W-1", "comment", WORKER, {"text": "hello"}, at=T0 + timedelta(hours=1))
    assert store_content(store) == before


ENGINE_MODULES = (
    "engine.py",
    "_command.py",
    "_compute.py",
    "_authorise.py",
    "_effects.py",
    "_specs.py",
    "_reads.py",
    "_replay.py",
    "_tick.py",
    "_integrity.py",
)


@pytest.mark.parametrize("name", ENGINE_MODULES)
def test_the_engine_modules_stay_small(name: str) -> None:
    """Each engine module under 600 lines, each class in it under 300."""
    text = (Path(qaflow.__file__).parent / name).read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 600
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno is not None
            assert node.end_lineno - node.lineno + 1 <= 300, node.name
