"""The engine's read side: snapshots, history, replay, verify and resent commands.

:class:`EngineReads` is the base of :class:`qaflow.Engine` holding every method that only
reads the store: the facade in :mod:`qaflow.engine` keeps the commands that write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from qaflow._replay import blank_of, replayed, stored_replay
from qaflow._specs import SpecRegistry
from qaflow.errors import ConcurrencyError, IdempotencyConflict, ValidationError, shown
from qaflow.records import Actor, Event, Step, WorkflowSnapshot, canonical_json
from qaflow.spec import MachineSpec
from qaflow.store import Store

if TYPE_CHECKING:
    from qaflow._integrity import VerifyReport

__all__ = ["EngineReads"]


class EngineReads:
    """What an engine answers without writing: the base of :class:`qaflow.Engine`."""

    store: Store
    _registry: SpecRegistry

    def spec(self, name: str) -> MachineSpec:
        """The spec new workflows of machine ``name`` start under."""
        return self._registry.latest(name)

    def spec_for(self, snapshot: WorkflowSnapshot) -> MachineSpec:
        """The spec a workflow is pinned to: its policy, version and fingerprint at start."""
        return self._registry.pinned(snapshot)

    def get(self, workflow_id: str) -> WorkflowSnapshot:
        """The workflow's current snapshot (raises :class:`UnknownWorkflow`)."""
        return self.store.load(workflow_id)

    def allowed_triggers(self, workflow_id: str) -> tuple[str, ...]:
        """Triggers the machine's structure allows now (roles and guards not checked)."""
        snapshot = self.store.load(workflow_id)
        return self.spec_for(snapshot).allowed_triggers(snapshot.state)

    def history(self, workflow_id: str) -> list[Event]:
        """Every event of the workflow, in order."""
        return self.store.events(workflow_id)

    def replay_steps(
        self,
        workflow_id: str,
        *,
        upto: int | None = None,
        events: list[Event] | None = None,
        hashes_checked: bool = False,
    ) -> list[Step]:
        """Recompute the workflow's steps from its stored events alone.

        ``events``: the workflow's events when the caller has already read them.
        ``hashes_checked``: the caller has checked every event's hash against its content
        (verify does, on the chain), so a replayed event that reproduces every hashed field
        is returned as stored instead of being hashed a second time (issue 14).
        """
        if events is None:
            events = self.store.events(workflow_id)
        blank = blank_of(self._registry, self.store.load(workflow_id), events)
        chosen = events if upto is None else events[:upto]
        return list(replayed(self._registry, blank, chosen, hashes_checked=hashes_checked))

    def _replay_from(
        self, head: WorkflowSnapshot, events: list[Event], *, hashes_checked: bool = False
    ) -> Iterator[Step]:
        """Each step of ``events`` replayed, for the workflow whose stored snapshot is ``head``
        (read by the caller), one at a time; see :meth:`replay_steps` for ``hashes_checked``."""
        blank = blank_of(self._registry, head, events)
        return replayed(self._registry, blank, events, hashes_checked=hashes_checked)

    def replay_events(self, blank: WorkflowSnapshot, events: Iterable[Event]) -> list[Step]:
        """Apply ``events`` to ``blank`` without re-checking them; return each step."""
        return list(replayed(self._registry, blank, events))

    def replay(self, workflow_id: str) -> WorkflowSnapshot:
        """The snapshot rebuilt from the event log (:meth:`verify` checks it equals the
        stored one)."""
        return stored_replay(self._registry, self.store, self.store.load(workflow_id))

    def verify(self, workflow_id: str | None = None) -> int:
        """Check chains, replays, derived rows and (for the whole store) the anchor; reads.

        Returns how many workflows were checked; raises :class:`IntegrityError` naming the
        first problem and how many more there are. :meth:`verify_report` lists them all.
        """
        report = self.verify_report(workflow_id)
        report.raise_for_problems()
        return report.workflows

    def verify_report(
        self,
        workflow_id: str | None = None,
        *,
        checkpoint: Mapping[str, Any] | None = None,
        key: bytes | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> VerifyReport:
        """Every problem :mod:`qaflow._integrity` finds (never raises for a damaged row);
        ``progress(done, total)`` counts the workflows checked. A
        :class:`~qaflow.store.SimulationStore` keeps no events to verify: refused at once."""
        from qaflow._integrity import verify_store
        from qaflow.store import SimulationStore

        if isinstance(self.store, SimulationStore):
            raise ValidationError(
                field="store",
                value=self.store,
                expected="a store that keeps the event log and its hash chain to verify "
                "(a SimulationStore keeps neither)",
            )

        return verify_store(self, workflow_id, checkpoint=checkpoint, key=key, progress=progress)

    def _resend(
        self, workflow_id: str, trigger: str, key: str, actor: Actor, payload: dict[str, Any]
    ) -> Step | None:
        """The first result of a resent command: only to the same actor, trigger and payload."""
        event = self.store.find_idempotent(workflow_id, key)
        if event is None:
            return None
        if event.trigger != trigger:
            raise ConcurrencyError(
                workflow_id=workflow_id,
                expected_version=None,
                actual_version=self.store.load(workflow_id).version,
                detail=f"idempotency key was first used for {event.trigger!r}, "
                f"not {shown(trigger)}",
            )
        if event.actor != actor:
            differs: str | None = "actor"
        elif canonical_json(event.payload) != canonical_json(payload):
            differs = "payload"
        else:
            differs = None
        if differs is not None:
            raise IdempotencyConflict(
                workflow_id=workflow_id,
                actual_version=self.store.load(workflow_id).version,
                differs=differs,
            )
        return self.replay_steps(workflow_id, upto=event.seq)[-1]
