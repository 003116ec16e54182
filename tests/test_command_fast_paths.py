"""The command path's shortcuts give what the general path gives.

Each shortcut of the engine's command path (``qaflow._build``, ``qaflow._compute``,
``qaflow._command``, ``qaflow.store._simulation``) is checked here against the plain Python
it stands for: attrs' constructors, ``==``, the store's own methods, ``logging``'s answer.
"""

from __future__ import annotations

import copy
import logging
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from qaflow import Actor, Engine, ManualClock
from qaflow.records import SYSTEM, Event, Step, WorkflowSnapshot
from qaflow.spec import Context
from qaflow.store import SimulationStore
from review_machine import review_spec

T0 = datetime(2025, 12, 1, 9, tzinfo=UTC)
WORKER = Actor("P-1", "worker")


def test_a_context_made_by_its_maker_is_the_one_attrs_makes_and_stays_mutable() -> None:
    """``new_context`` fills the very slots ``Context.__init__`` fills, by position."""
    from qaflow._build import new_context

    spec = review_spec()
    snap = WorkflowSnapshot("W-1", spec.name, spec.policy, spec.policy_version, "new")
    fields = (spec, snap, "submit", "new", "submitted", WORKER, T0, {"k": 1}, {"d": 2}, 1)
    made, built = new_context(*fields), Context(*fields)
    assert type(made) is Context
    assert attrs.asdict(made, recurse=False) == attrs.asdict(built, recurse=False)
    made.dest = "elsewhere"  # a context is not frozen: a route changes its dest
    assert made.dest == "elsewhere" and made.calendar is spec.calendar


def test_the_next_snapshot_keeps_the_workflow_and_its_first_time() -> None:
    """``new_snapshot`` copies every field it is not given from the previous snapshot, and
    keeps the previous creation time once there is one."""
    from qaflow._build import new_snapshot

    first = WorkflowSnapshot("W-1", "m", "p", "2", "new", fingerprint="fp")
    one = new_snapshot(first, "a", {"x": 1}, 1, T0, "h1", ())
    later = T0 + timedelta(days=1)
    two = new_snapshot(one, "b", {"x": 2}, 2, later, "h2", ())
    expected = attrs.evolve(
        one, state="b", data={"x": 2}, version=2, updated_at=later, last_hash="h2"
    )
    assert type(two) is WorkflowSnapshot and two == expected
    assert two.created_at == T0 and (two.machine, two.policy_version) == ("m", "2")
    assert attrs.astuple(two, recurse=False) == attrs.astuple(expected, recurse=False)


def test_a_successor_maker_is_refused_for_a_converting_record_or_an_unknown_field() -> None:
    """``_successor`` copies fields as they are: a record that converts its fields gets none,
    and a field name it does not have is refused when the maker is made."""
    from qaflow._build import _successor

    with pytest.raises(TypeError, match="converts or validates"):
        _successor(Event, ("at",), {"at": "at"})
    with pytest.raises(TypeError, match="no field"):
        _successor(WorkflowSnapshot, ("stat",), {"stat": "stat"})


def test_made_records_are_the_records_for_pickle_copy_and_equality() -> None:
    """A record made through its filler class is the record's class all through: it pickles,
    copies and compares as one attrs made, and its class's layout is the record's own."""
    from qaflow._build import new_event, new_snapshot, new_step

    event = new_event("W-1", 1, "go", "new", "a", WORKER, T0, {"k": 1}, "", "", None)
    snap = new_snapshot(WorkflowSnapshot("W-1", "m", "p", "1", "new"), "a", {}, 1, T0, "", ())
    step = new_step(event, snap)
    for record, cls in ((event, Event), (snap, WorkflowSnapshot), (step, Step)):
        assert type(record) is cls and record.__class__ is cls
        assert pickle.loads(pickle.dumps(record)) == record == copy.copy(record)
        assert not hasattr(record, "__dict__")
    assert step == Step(Event("W-1", 1, "go", "new", "a", WORKER, T0, {"k": 1}, "", ""), snap)


class _Sub(Actor):
    pass


@pytest.mark.parametrize(
    "actor",
    [
        SYSTEM,
        Actor("qaflow", "system"),
        Actor("qaflow", "worker"),
        Actor("P-1", "system"),
        WORKER,
        _Sub("qaflow", "system"),
    ],
    ids=["itself", "equal", "other-role", "other-id", "worker", "subclass"],
)
def test_the_system_actor_test_answers_as_equality(actor: Actor) -> None:
    """``_is_system`` compares an exact Actor field by field: the answer is ``== SYSTEM``'s
    (attrs' equality refuses another class, so a subclass instance is never the system)."""
    from qaflow._compute import _is_system

    assert _is_system(actor) is (actor == SYSTEM)


def _counting_store_class() -> type[SimulationStore]:
    class _CountingStore(SimulationStore):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[str] = []

        def load(self, workflow_id: object) -> WorkflowSnapshot:
            self.calls.append("load")
            return super().load(workflow_id)

        def commit(self, step: Step, *, expected_version: int) -> None:
            self.calls.append("commit")
            super().commit(step, expected_version=expected_version)

    return _CountingStore


def _run(store: SimulationStore) -> list[Any]:
    spec = review_spec()
    engine = Engine(store, [spec], clock=ManualClock(T0), simulation=True)
    steps = [engine.start(spec, "W-1", "submit", WORKER, {"document_ref": "DOC-1"})]
    steps.append(engine.fire("W-1", "comment", WORKER, {"text": "a note"}))
    return [attrs.astuple(s.snapshot, recurse=False) for s in steps]


def test_the_engine_calls_a_simulation_store_subclass_through_its_own_methods() -> None:
    """The engine reads and commits an exact SimulationStore without a method call
    (``load_from``, ``commit_to``); a subclass's own ``load`` and ``commit`` still run, and
    both give the same snapshots. (In a compiled build ``SimulationStore`` is a compiled class: a
    Python subclass of it cannot be made at all, so only the exact class reaches the engine.)"""
    import qaflow

    if qaflow.compiled:
        with pytest.raises(TypeError, match="cannot inherit from compiled"):
            _counting_store_class()()
        return
    counting = _counting_store_class()()
    assert _run(counting) == _run(SimulationStore())
    assert counting.calls == ["commit", "load", "commit"]  # type: ignore[attr-defined]


def test_a_start_logs_its_info_line_exactly_while_info_is_enabled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The line a start logs at INFO follows the logger's level as it changes between
    commands (``qaflow._command`` reads logging's own memo of the answer first)."""
    spec = review_spec()
    engine = Engine(SimulationStore(), [spec], clock=ManualClock(T0), simulation=True)

    def started() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("started")]

    caplog.set_level(logging.INFO, logger="qaflow.engine")
    engine.start(spec, "W-1", "submit", WORKER, {"document_ref": "DOC-1"})
    caplog.set_level(logging.WARNING, logger="qaflow.engine")
    engine.start(spec, "W-2", "submit", WORKER, {"document_ref": "DOC-1"})
    caplog.set_level(logging.INFO, logger="qaflow.engine")
    engine.start(spec, "W-3", "submit", WORKER, {"document_ref": "DOC-1"})
    assert started() == [
        "started workflow W-1 in state submitted",
        "started workflow W-3 in state submitted",
    ]
