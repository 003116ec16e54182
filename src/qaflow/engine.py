"""The engine's facade: loads a workflow, asks the interpreter for its step, commits it.

The command path itself is :mod:`qaflow._command` (compiled in a compiled build); ``Engine``
is its public face, with the public annotations. ``fire`` checks a command at the boundary
(ids, payload, time against the clock), loads the snapshot, and hands spec, snapshot,
command and directory to the pure :func:`qaflow._compute.compute`, which checks the rest and
returns one :class:`~qaflow.records.Step`; the store commits it in one transaction. ``tick``
turns due deadlines into breach commands through the same path. The seams live in private modules:

- :mod:`qaflow._command`: the command path (boundary checks, load, the step, the commit);
- :mod:`qaflow._compute`: the interpreter (no store, no clock);
- :mod:`qaflow._plans` and :mod:`qaflow._program`: each (spec, state, trigger) compiled once;
- :mod:`qaflow._authorise`: roles, directory, holders, the system actor;
- :mod:`qaflow._effects`: one handler per effect type;
- :mod:`qaflow._specs`: the registry of specs workflows are pinned to;
- :mod:`qaflow._replay` and :mod:`qaflow._integrity`: replay and verify.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from qaflow import _command
from qaflow._authorise import Directory, authorise
from qaflow._checks import check_at
from qaflow._reads import EngineReads
from qaflow._specs import SpecRegistry
from qaflow._tick import run_tick
from qaflow.clock import Clock, SystemClock
from qaflow.errors import ValidationError
from qaflow.records import Actor, Deadline, Step, TickFailure, WorkflowSnapshot
from qaflow.spec import POLICY_MIGRATED, MachineSpec
from qaflow.store import SimulationStore, Store

__all__ = ["Directory", "Engine"]

log = logging.getLogger(__name__)


class Engine(EngineReads):
    """Runs workflows of the registered machine specs against one store and clock."""

    def __init__(
        self,
        store: Store,
        specs: Iterable[MachineSpec] = (),
        *,
        clock: Clock | None = None,
        directory: Directory | None = None,
        simulation: bool = False,
    ) -> None:
        """``simulation=True``: commands skip what a :class:`SimulationStore` does not keep
        (the event hash chain, notification and task rows) and nothing else; every check
        still runs, and state, data and deadlines are the same. Only with a
        :class:`SimulationStore` (any other store is refused: it would keep unhashed events).
        """
        if simulation is not False and simulation is not True:
            raise ValidationError(field="simulation", value=simulation, expected="True or False")
        if simulation and not isinstance(store, SimulationStore):
            raise ValidationError(
                field="store",
                value=store,
                expected="a SimulationStore when simulation=True (events carry no hash)",
            )
        self.simulation = simulation
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.directory = directory
        self._registry = SpecRegistry()
        self.tick_failures: list[TickFailure] = []
        """What the last :meth:`tick` could not fire (each failing workflow once)."""
        for spec in specs:
            self.register(spec)

    def register(self, spec: MachineSpec) -> MachineSpec:
        """Make ``spec`` available; the last one registered under a name starts new workflows.

        Raises :class:`PolicyError` if another spec with different content (fingerprint) is
        registered under the same (machine, policy, version): a version pins its rules; or if
        the spec names an effect type the engine has no handler for.
        """
        return self._registry.register(spec)

    # --- commands -------------------------------------------------------------------------

    def start(
        self,
        machine: str | MachineSpec,
        workflow_id: str,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any] | None = None,
        *,
        at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> Step:
        """Create workflow ``workflow_id`` by firing ``trigger`` from the initial state.

        Writes the workflow's first event; raises :class:`ConcurrencyError` if it exists.
        """
        return _command.start(
            self, machine, workflow_id, trigger, actor, payload, at, idempotency_key
        )

    def fire(
        self,
        workflow_id: str,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any] | None = None,
        *,
        at: datetime | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Step:
        """Fire ``trigger`` on a workflow as ``actor``; commit and return the step.

        Raises a :class:`~qaflow.errors.QAFlowError` subclass, having written nothing, when
        the command is refused. With ``expected_version`` the write happens only if the
        workflow is still at that version; a resent ``idempotency_key`` returns the first
        result without writing.
        """
        return _command.fire(
            self, workflow_id, trigger, actor, payload, at, expected_version, idempotency_key
        )

    def migrate(
        self,
        workflow_id: str,
        to: MachineSpec,
        actor: Actor,
        *,
        reason: str,
        at: datetime | None = None,
        expected_version: int | None = None,
    ) -> Step:
        """Move a workflow to another version of its machine's policy; writes.

        The move is an event of its own (``policy_migrated``), so history shows when and why
        the rules changed; the state, data and open deadlines carry over unchanged and the
        new policy governs from the next command. The current state must exist in ``to``.
        Only an actor in one of the current spec's ``migration_roles`` (and, with a
        directory, listed in that role) may migrate.
        """
        if not isinstance(to, MachineSpec):
            raise ValidationError(field="to", value=to, expected="a MachineSpec")
        self._registry.ensure(to)
        _command.command_payload(workflow_id, POLICY_MIGRATED, actor, None, None)
        snapshot = self.store.load(workflow_id)
        payload = {
            "from_policy": snapshot.policy,
            "from_version": snapshot.policy_version,
            "to_policy": to.policy,
            "to_version": to.policy_version,
            "reason": reason,
        }
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError(field="reason", value=reason, expected="non-empty text")
        _command.check_version(snapshot, expected_version)
        spec = self.spec_for(snapshot)
        authorise(snapshot, POLICY_MIGRATED, actor, spec.migration_roles, self.directory)
        step = self._compute(spec, snapshot, POLICY_MIGRATED, actor, payload, at, None)
        self.store.commit(step, expected_version=snapshot.version)
        log.info(
            "workflow %s migrated from %s v%s to %s v%s",
            workflow_id,
            snapshot.policy,
            snapshot.policy_version,
            to.policy,
            to.policy_version,
        )
        return step

    def tick(self, now: datetime | None = None, *, batch: int = 200) -> list[Step]:
        """Fire every deadline due by ``now``; return the steps written.

        Idempotent: a deadline is closed by the step that breaches it, so a second tick at
        the same time writes nothing. Safe to run from several processes and nodes: each
        round the store claims up to ``batch`` due deadlines that no other ticker holds and
        commits their breaches in one transaction (:meth:`Store.fire_due`), so each breach
        fires exactly once; a breach another writer overtook is skipped and retried.
        ``now`` may not be ahead of the clock by more than ``MAX_CLOCK_SKEW``. A workflow
        that cannot be ticked (pinned to an unregistered spec, a damaged row) is skipped and
        listed in :attr:`tick_failures`; the others go on.
        """
        clock = self.clock.now()
        now = clock if now is None else check_at(now, "now", clock)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValidationError(field="batch", value=batch, expected="a whole number >= 1")
        steps, self.tick_failures = run_tick(self.store, now, batch, _command.Breaches(self))
        return steps

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Commit every command fired in the block in one transaction when it ends (writes).

        Commands in the block see the batch's earlier steps and return their steps as usual,
        but nothing is durable until the block ends; then all of them are written, or, if
        the block raises or a step is stale by then (:class:`ConcurrencyError`), none. For
        imports, simulations written to a database and other bulk work. A batch inside a
        batch joins it; ``tick`` cannot run inside one (it commits by itself).
        """
        from qaflow.store._staged import StagedStore

        if isinstance(self.store, StagedStore):
            yield
            return
        staged = StagedStore(self.store)
        self.store = staged
        try:
            yield
        finally:
            self.store = staged.base
        staged.flush()

    def _compute(
        self,
        spec: MachineSpec,
        snapshot: WorkflowSnapshot,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any] | None,
        at: datetime | None,
        idempotency_key: str | None,
    ) -> Step:
        """The step of a live command (:func:`qaflow._command.compute_step`), not committed."""
        return _command.compute_step(
            self, spec, snapshot, trigger, actor, payload, at, idempotency_key
        )

    def _breach_step(self, snapshot: WorkflowSnapshot, deadline: Deadline, now: datetime) -> Step:
        """The step a due deadline fires (:func:`qaflow._command.breach_step`), not committed."""
        return _command.breach_step(self, snapshot, deadline, now)
