"""The stateful escalation conformance test a council runs on its own ladder.

Public through :mod:`qaflow.testing`: subclass :class:`EscalationLadderMachine` (set
``ladder``) and collect its ``TestCase``, or call :func:`check_ladder`.
"""

from __future__ import annotations

from datetime import timedelta
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

from qaflow.clock import ManualClock
from qaflow.engine import Engine
from qaflow.errors import QAFlowError
from qaflow.machines.escalation import TERMINAL_STATES, escalation_machine
from qaflow.policies.base import Policy
from qaflow.policies.ladders import EscalationLadder
from qaflow.spec import MachineSpec
from qaflow.store import MemoryStore
from qaflow.testing._ladder_checks import apply_command, check_escalation, check_ladder_spec
from qaflow.testing._ladder_draw import (
    CONFORMANCE_POLICY,
    clock_starts,
    ladder_commands,
    ladders,
    raise_commands,
    waits,
)
from qaflow.testing._workflow import check_tick, check_workflow

__all__ = ["EscalationLadderMachine", "check_ladder", "ladder_state_machine"]


class EscalationLadderMachine(RuleBasedStateMachine):
    """Drives escalations of one ladder (or, with ``ladder = None``, of a generated one)
    through random commands, waits and ticks, checking the workflow checks above and the
    ladder's rules after every step. Subclass it and set ``ladder`` (and ``policy``), or use
    :func:`ladder_state_machine`; collect ``YourMachine.TestCase`` with pytest.
    """

    ladder: ClassVar[EscalationLadder | None] = None
    policy: ClassVar[Policy] = CONFORMANCE_POLICY
    max_workflows: ClassVar[int] = 3

    def __init__(self) -> None:
        super().__init__()
        self.the_ladder: EscalationLadder | None = None
        self.spec: MachineSpec | None = None
        self.engine: Engine | None = None
        self.clock: ManualClock | None = None
        self.workflows: list[str] = []
        self.checked: dict[str, int] = {}

    @initialize(data=st.data())
    def setup(self, data: st.DataObject) -> None:
        ladder = type(self).ladder or data.draw(ladders(), label="ladder")
        self.the_ladder = ladder
        self.spec = escalation_machine(ladder, type(self).policy)
        check_ladder_spec(ladder, self.spec)
        self.clock = ManualClock(data.draw(clock_starts(), label="start"))
        self.engine = Engine(MemoryStore(), [self.spec], clock=self.clock)

    def _parts(self) -> tuple[EscalationLadder, MachineSpec, Engine, ManualClock]:
        assert self.the_ladder and self.spec and self.engine and self.clock
        return self.the_ladder, self.spec, self.engine, self.clock

    @precondition(lambda self: len(self.workflows) < self.max_workflows)
    @rule(data=st.data())
    def raise_escalation(self, data: st.DataObject) -> None:
        ladder, _, engine, clock = self._parts()
        wid = f"ESC-{len(self.workflows) + 1}"
        result = apply_command(engine, ladder, wid, data.draw(raise_commands(ladder)), clock=clock)
        if not isinstance(result, QAFlowError):
            self.workflows.append(wid)

    @precondition(lambda self: bool(self.workflows))
    @rule(data=st.data())
    def command(self, data: st.DataObject) -> None:
        ladder, spec, engine, clock = self._parts()
        open_ = [w for w in self.workflows if engine.get(w).state not in TERMINAL_STATES]
        wid = data.draw(st.sampled_from(open_ or self.workflows), label="workflow")
        state = engine.get(wid).state
        cmd = data.draw(ladder_commands(ladder, spec, state), label="command")
        apply_command(engine, ladder, wid, attrs.evolve(cmd, wait=timedelta(0)), clock=clock)

    @rule(wait=waits())
    def time_passes(self, wait: timedelta) -> None:
        _, _, engine, clock = self._parts()
        check_tick(engine, clock.advance(wait))

    @invariant()
    def conforms(self) -> None:
        """The workflow checks and the ladder's rules on every workflow that changed."""
        if self.engine is None:
            return
        ladder, _, engine, _ = self._parts()
        for wid in self.workflows:
            version = engine.get(wid).version
            if self.checked.get(wid) == version:
                continue  # nothing of it changed since it was last checked
            check_workflow(engine, wid)
            check_escalation(engine, wid, ladder)
            self.checked[wid] = version


def ladder_state_machine(
    ladder: EscalationLadder | None, policy: Policy | None = None
) -> type[EscalationLadderMachine]:
    """An :class:`EscalationLadderMachine` subclass for ``ladder`` (``None``: generated)."""
    name = f"LadderMachine_{ladder.name}" if ladder is not None else "GeneratedLadderMachine"
    return type(
        name,
        (EscalationLadderMachine,),
        {"ladder": ladder, "policy": policy or CONFORMANCE_POLICY},
    )


def check_ladder(
    ladder: EscalationLadder,
    policy: Policy | None = None,
    *,
    max_examples: int | None = None,
    stateful_step_count: int | None = None,
) -> None:
    """Run the escalation conformance suite on ``ladder``; raise ``AssertionError`` on a
    failure (hypothesis prints the shortest command sequence that breaks it).

    Checks the machine's shape (:func:`check_ladder_spec`), then runs
    :class:`EscalationLadderMachine` under the current hypothesis profile (overridable).
    """
    spec = escalation_machine(ladder, policy or CONFORMANCE_POLICY)
    check_ladder_spec(ladder, spec)
    changes: dict[str, Any] = {}
    if max_examples is not None:
        changes["max_examples"] = max_examples
    if stateful_step_count is not None:
        changes["stateful_step_count"] = stateful_step_count
    run_state_machine_as_test(  # type: ignore[no-untyped-call,unused-ignore]  # hypothesis leaves it untyped
        ladder_state_machine(ladder, policy), settings=_settings(_settings(), **changes)
    )
