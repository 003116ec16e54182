"""Conformance for rolling deadlines and the timescale machines (the I15 checks).

Public through :mod:`qaflow.testing`: :func:`check_rolling` checks a workflow's rolling
deadlines after any command, :class:`TimescaleStateMachine` drives a timescale machine (case,
supervision, QA calendar: any spec whose events are declared) with random event streams,
waits and ticks, checking I1, I2, I6, I7, I14 and I15 after every step, and
:func:`check_timescales` runs it on a council's own file.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import attrs
from hypothesis import settings as _settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from qaflow._rolling import ahead_of_period, event_bindings
from qaflow.calendar import WorkingCalendar
from qaflow.clock import ManualClock
from qaflow.engine import Engine
from qaflow.errors import QAFlowError
from qaflow.records import Actor, Deadline, Step, WorkflowSnapshot
from qaflow.spec import DEADLINE_MISSED, Field, MachineSpec, RollingRule
from qaflow.store import MemoryStore
from qaflow.testing._workflow import check_tick, check_workflow

__all__ = [
    "TimescaleStateMachine",
    "check_rolling",
    "check_timescales",
    "event_bindings",
    "payloads",
    "timescale_state_machine",
]


def _policy_says(
    r: RollingRule, step: Step, prior: WorkflowSnapshot | None, calendar: WorkingCalendar
) -> Deadline | bool | None:
    """What the policy says ``step`` left open of ``r``: ``True`` for "unchanged", else the
    expected instance (compared on due time and rule text) or ``None`` for "none open"."""
    event, data = step.event, step.snapshot.data
    before_data = prior.data if prior is not None else {}
    previous = next((d for d in prior.deadlines if d.name == r.name), None) if prior else None
    after = r.case(data)
    if after is None:
        return None
    entry = r.cadence[after]
    before = None if event.seq == 1 else r.case(before_data)
    names = event_bindings(event, before_data)
    at = event.at
    if r.restarts(event.trigger, names) or (r.follows and before != after):
        length = entry.first_length(at, data)
        start = data.get(entry.from_key) if entry.from_key else None
        base = datetime.fromisoformat(start) if isinstance(start, str) else at
    elif r.is_met_by(event.trigger, names):
        if ahead_of_period(r, previous, at):
            return True
        length = entry.next_length(at, data)
        base = previous.due_at if r.anchor == "due" and previous is not None else at
    elif (
        event.trigger == DEADLINE_MISSED
        and previous is not None
        and previous.id == event.payload.get("deadline_id")
    ):
        base = previous.due_at
        length = entry.next_length(base, data)
    else:
        return True
    if length is None:
        return None
    due = length.after(base, calendar)
    return attrs.evolve(
        previous or _blank(r.name), due_at=max(due, at), rule=str(length), opened_seq=event.seq
    )


def _blank(name: str) -> Deadline:
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return Deadline(
        id="", workflow_id="", name=name, state=None, opened_at=epoch, due_at=epoch, rule=""
    )


def check_rolling(
    engine: Engine, workflow_id: str, *, since: int = 0, policy: MachineSpec | None = None
) -> None:
    """I15 for every event after ``since``: at most one open instance per rolling rule, none
    when no cadence entry applies or the workflow has ended, and each event moved each rule
    exactly as the policy says (met: the next from the event or from the period; a restart or
    a cadence change: afresh from the event; a miss: the next from the missed due time;
    anything else: untouched). ``policy`` is the spec to judge by (default: the one the
    workflow is pinned to)."""
    snap = engine.get(workflow_id)
    spec = policy or engine.spec_for(snap)
    if not spec.rolling:
        return
    steps = engine.replay_steps(workflow_id)
    for index in range(since, len(steps)):
        step = steps[index]
        prior = steps[index - 1].snapshot if index else None
        terminal = spec.state(step.snapshot.state).terminal
        for r in spec.rolling:
            mine = [d for d in step.snapshot.deadlines if d.name == r.name]
            where = f"I15 {workflow_id} event {step.event.seq} ({step.event.trigger})"
            assert len(mine) <= 1, f"{where}: {len(mine)} open instances of {r.name!r}"
            current = mine[0] if mine else None
            if terminal:
                assert current is None, f"{where}: {r.name!r} open after the end"
                continue
            expected = _policy_says(r, step, prior, spec.calendar)
            if expected is True:
                before = [d for d in prior.deadlines if d.name == r.name] if prior else []
                assert mine == before, f"{where}: moved {r.name!r} though the policy says not"
            elif expected is None or isinstance(expected, bool):
                assert current is None, f"{where}: {r.name!r} open, the policy says none"
            else:
                assert current is not None, f"{where}: no {r.name!r} open, the policy says one"
                assert current.opened_seq == step.event.seq, f"{where}: {r.name!r} not reopened"
                assert current.due_at == expected.due_at, (
                    f"{where}: {r.name!r} due {current.due_at}, the policy says {expected.due_at}"
                )
                assert current.rule.startswith(expected.rule), f"{where}: {r.name!r} length"


def payloads(fields: tuple[Field, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid payloads for a transition's fields (optional ones sometimes left out)."""
    parts: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for f in fields:
        value: st.SearchStrategy[Any]
        if f.kind == "choice":
            value = st.sampled_from(f.choices)
        elif f.kind == "bool":
            value = st.booleans()
        elif f.kind == "datetime":
            value = st.sampled_from(["2023-06-01T09:00:00+00:00", "2025-01-06T09:00:00+00:00"])
        elif f.kind in ("int", "float"):
            value = st.integers(int(f.min or 0), int(f.max if f.max is not None else 100))
        else:
            value = st.sampled_from(["T1", "P-1", "C-1"])
        (parts if f.required else optional)[f.name] = value
    return st.fixed_dictionaries(parts, optional=optional)


class TimescaleStateMachine(RuleBasedStateMachine):
    """Random event streams, waits and ticks on one timescale machine (set ``spec``), with
    I1, I2, I6, I7, I14 and I15 checked after every step."""

    spec: ClassVar[MachineSpec | None] = None
    max_workflows: ClassVar[int] = 2

    def __init__(self) -> None:
        super().__init__()
        assert type(self).spec is not None, "set spec on the subclass"
        self.the_spec: MachineSpec = type(self).spec  # type: ignore[assignment]
        self.clock: ManualClock | None = None
        self.engine: Engine | None = None
        self.workflows: list[str] = []
        self.checked: dict[str, int] = {}

    @initialize(start=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 1, 1)))
    def setup(self, start: datetime) -> None:
        self.clock = ManualClock(start.replace(microsecond=0, tzinfo=UTC))
        self.engine = Engine(MemoryStore(), [self.the_spec], clock=self.clock)

    def _fire(self, wid: str, trigger: str, data: st.DataObject, *, start: bool) -> None:
        assert self.engine is not None
        spec = self.the_spec
        options = [t for t in spec.transitions if t.trigger == trigger]
        t = options[0]
        actor = Actor("A-1", data.draw(st.sampled_from(sorted(t.roles)), label="role"))
        payload = data.draw(payloads(t.fields), label="payload")
        try:
            if start:
                self.engine.start(spec.name, wid, trigger, actor, payload)
                self.workflows.append(wid)
            else:
                self.engine.fire(wid, trigger, actor, payload)
        except QAFlowError:
            pass

    @precondition(lambda self: len(self.workflows) < self.max_workflows)
    @rule(data=st.data())
    def open_workflow(self, data: st.DataObject) -> None:
        starts = sorted(
            {t.trigger for t in self.the_spec.transitions if self.the_spec.initial in t.sources}
        )
        trigger = data.draw(st.sampled_from(starts), label="start")
        self._fire(f"W-{len(self.workflows) + 1}", trigger, data, start=True)

    @precondition(lambda self: bool(self.workflows))
    @rule(data=st.data())
    def record_event(self, data: st.DataObject) -> None:
        assert self.engine is not None
        wid = data.draw(st.sampled_from(self.workflows), label="workflow")
        allowed = self.engine.allowed_triggers(wid)
        if not allowed:
            return
        ends = {
            t.trigger
            for t in self.the_spec.transitions
            if t.dest and self.the_spec.state(t.dest).terminal
        }
        usual = [t for t in allowed if t not in ends] or list(allowed)
        trigger = data.draw(st.sampled_from(usual + list(allowed)), label="event")
        self._fire(wid, trigger, data, start=False)

    @rule(hours=st.integers(0, 24 * 40))
    def time_passes(self, hours: int) -> None:
        assert self.clock is not None and self.engine is not None
        now = self.clock.advance(timedelta(hours=hours))
        check_tick(self.engine, now)

    @invariant()
    def conforms(self) -> None:
        if self.engine is None:
            return
        for wid in self.workflows:
            version = self.engine.get(wid).version
            if self.checked.get(wid) == version:
                continue
            check_workflow(self.engine, wid)
            check_rolling(self.engine, wid, since=self.checked.get(wid, 0))
            self.checked[wid] = version


def timescale_state_machine(spec: MachineSpec) -> type[TimescaleStateMachine]:
    """A :class:`TimescaleStateMachine` subclass for ``spec``."""
    return type(f"Timescales_{spec.name}_{spec.policy}", (TimescaleStateMachine,), {"spec": spec})


def check_timescales(
    spec: MachineSpec, *, max_examples: int | None = None, stateful_step_count: int | None = None
) -> None:
    """Run the timescale conformance suite on ``spec`` (e.g. the case machine built from a
    council's own file); raise ``AssertionError`` with the shortest failing event stream."""
    changes: dict[str, Any] = {}
    if max_examples is not None:
        changes["max_examples"] = max_examples
    if stateful_step_count is not None:
        changes["stateful_step_count"] = stateful_step_count
    run_state_machine_as_test(  # type: ignore[no-untyped-call,unused-ignore]
        timescale_state_machine(spec), settings=_settings(_settings(), **changes)
    )
