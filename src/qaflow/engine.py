"""The engine: interprets a :class:`~qaflow.spec.MachineSpec` against a store.

``fire`` checks a command (trigger allowed in the state, role, payload, time, guards),
computes its effects into one :class:`~qaflow.records.Step` and hands the step to the store,
which commits it in one transaction. ``tick`` turns due deadlines into breach commands
through the same path. Replaying a workflow's events through the same code reproduces its
snapshot; :meth:`Engine.verify` checks that and the hash chain.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from qaflow._checks import check_at, check_id, check_payload
from qaflow._effects import Outputs, open_deadline, run_effects, snapshot_deadline
from qaflow._rolling import advance as advance_rolling
from qaflow.clock import Clock, SystemClock
from qaflow.errors import (
    ConcurrencyError,
    GuardFailed,
    IdempotencyConflict,
    IntegrityError,
    PermissionDenied,
    PolicyError,
    StoreBusy,
    TransitionNotAllowed,
    ValidationError,
    shown,
)
from qaflow.records import (
    SYSTEM,
    Actor,
    Deadline,
    Event,
    Step,
    TickFailure,
    WorkflowSnapshot,
    canonical_json,
    hash_fields,
)
from qaflow.spec import (
    DEADLINE_MISSED,
    POLICY_MIGRATED,
    Context,
    Guard,
    MachineSpec,
    TransitionSpec,
)
from qaflow.store import Store

if TYPE_CHECKING:
    from qaflow._integrity import VerifyReport

__all__ = ["Directory", "Engine"]

log = logging.getLogger(__name__)

_BREACH_FIELDS = frozenset({"deadline", "deadline_id"})
_MAX_TICK_ROUNDS = 10_000


class Directory(Protocol):
    """Who holds which role: supplied by the host system, which alone knows its staff."""

    def has_role(self, person_id: str, role: str) -> bool: ...


class Engine:
    """Runs workflows of the registered machine specs against one store and clock."""

    def __init__(
        self,
        store: Store,
        specs: Iterable[MachineSpec] = (),
        *,
        clock: Clock | None = None,
        directory: Directory | None = None,
    ) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.directory = directory
        self._specs: dict[tuple[str, str, str], MachineSpec] = {}
        self._latest: dict[str, MachineSpec] = {}
        self.tick_failures: list[TickFailure] = []
        """What the last :meth:`tick` could not fire (each failing workflow once)."""
        for spec in specs:
            self.register(spec)

    def register(self, spec: MachineSpec) -> MachineSpec:
        """Make ``spec`` available; the last one registered under a name starts new workflows.

        Raises :class:`PolicyError` if another spec with different content (fingerprint) is
        registered under the same (machine, policy, version): a version pins its rules.
        """
        if not isinstance(spec, MachineSpec):
            raise ValidationError(field="spec", value=spec, expected="a MachineSpec")
        known = self._specs.get(spec.key)
        if known is not None and known is not spec and known.fingerprint != spec.fingerprint:
            raise PolicyError(
                f"machine {spec.name!r} under policy {spec.policy!r} version "
                f"{spec.policy_version!r} is already registered with other content "
                f"(fingerprint {known.fingerprint[:12]}, not {spec.fingerprint[:12]}); "
                "give changed rules a new policy version"
            )
        self._specs[spec.key] = spec
        self._latest[spec.name] = spec
        return spec

    def spec(self, name: str) -> MachineSpec:
        """The spec new workflows of machine ``name`` start under."""
        check_id("machine", name)
        try:
            return self._latest[name]
        except KeyError:
            raise PolicyError(
                f"no machine {shown(name)} is registered; registered: "
                + (", ".join(map(repr, sorted(self._latest))) or "none")
            ) from None

    def spec_for(self, snapshot: WorkflowSnapshot) -> MachineSpec:
        """The spec a workflow is pinned to: its policy, version and fingerprint at start."""
        spec = self._specs.get((snapshot.machine, snapshot.policy, snapshot.policy_version))
        if spec is None:
            raise PolicyError(
                f"workflow {shown(snapshot.workflow_id)} is pinned to machine "
                f"{shown(snapshot.machine)} under policy {shown(snapshot.policy)} version "
                f"{shown(snapshot.policy_version)}, which is not registered"
            )
        if snapshot.fingerprint and snapshot.fingerprint != spec.fingerprint:
            raise PolicyError(
                f"workflow {shown(snapshot.workflow_id)} is pinned to spec fingerprint "
                f"{snapshot.fingerprint[:12]} of {spec.name!r} ({spec.policy!r} version "
                f"{spec.policy_version!r}); the registered one is {spec.fingerprint[:12]}"
            )
        return spec

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
        spec = machine if isinstance(machine, MachineSpec) else self.spec(machine)
        if spec.key not in self._specs or self._specs[spec.key] is not spec:
            self.register(spec)
        payload = _command(workflow_id, trigger, actor, payload, idempotency_key)
        if idempotency_key is not None:
            found = self._resend(workflow_id, trigger, idempotency_key, actor, payload)
            if found is not None:
                return found
        if trigger in (POLICY_MIGRATED, DEADLINE_MISSED):
            raise ValidationError(
                field="trigger", value=trigger, expected="a trigger of the machine", quote=True
            )
        blank = WorkflowSnapshot(
            workflow_id=workflow_id,
            machine=spec.name,
            policy=spec.policy,
            policy_version=spec.policy_version,
            state=spec.initial,
            fingerprint=spec.fingerprint,
        )
        step = self._compute(spec, blank, trigger, actor, payload, at, idempotency_key)
        return self._commit(step, 0, (trigger, actor, payload))

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
        payload = _command(workflow_id, trigger, actor, payload, idempotency_key)
        if trigger == POLICY_MIGRATED:
            raise ValidationError(
                field="trigger",
                value=trigger,
                expected="a trigger of the machine (Engine.migrate changes policy)",
                quote=True,
            )
        if idempotency_key is not None:
            found = self._resend(workflow_id, trigger, idempotency_key, actor, payload)
            if found is not None:
                return found
        snapshot = self.store.load(workflow_id)
        _check_version(snapshot, expected_version)
        spec = self.spec_for(snapshot)
        step = self._compute(spec, snapshot, trigger, actor, payload, at, idempotency_key)
        step = self._commit(step, snapshot.version, (trigger, actor, payload))
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "workflow %s: %s %s -> %s (v%d)",
                workflow_id,
                trigger,
                step.event.source,
                step.event.dest,
                step.snapshot.version,
            )
        return step

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
        if to.key not in self._specs or self._specs[to.key] is not to:
            self.register(to)
        _command(workflow_id, POLICY_MIGRATED, actor, None, None)
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
        _check_version(snapshot, expected_version)
        spec = self.spec_for(snapshot)
        self._authorise(spec, snapshot, POLICY_MIGRATED, actor, spec.migration_roles)
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

    def _migration_target(
        self, snapshot: WorkflowSnapshot, payload: dict[str, Any], check: bool
    ) -> MachineSpec:
        key = (snapshot.machine, payload.get("to_policy"), payload.get("to_version"))
        target = self._specs.get(key)  # type: ignore[arg-type]
        if target is None:
            raise PolicyError(
                f"workflow {snapshot.workflow_id!r} cannot move to policy "
                f"{key[1]!r} version {key[2]!r} of {snapshot.machine!r}: not registered"
            )
        if check:
            current = self.spec_for(snapshot)
            if current.state(snapshot.state).terminal:
                raise TransitionNotAllowed(
                    workflow_id=snapshot.workflow_id,
                    state=snapshot.state,
                    trigger=POLICY_MIGRATED,
                    allowed=(),
                )
            if target.key == current.key:
                raise ValidationError(
                    field="to",
                    value=target.policy_version,
                    expected="a policy version other than the workflow's own",
                )
            if snapshot.state not in target.state_names:
                raise PolicyError(
                    f"workflow {snapshot.workflow_id!r} is in state {snapshot.state!r}, which "
                    f"policy {target.policy!r} version {target.policy_version!r} does not have"
                )
        return target

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
        steps: list[Step] = []
        failures: dict[str, TickFailure] = {}

        def breach(deadline: Deadline) -> Step | None:
            if deadline.workflow_id in failures:
                return None
            try:
                snapshot = self.store.load(deadline.workflow_id)
                # The snapshot's copy is the one replay vouches for (not the row's).
                pinned = next((d for d in snapshot.deadlines if d.id == deadline.id), None)
                if pinned is None:
                    return None  # already closed by an earlier step
                return self._breach_step(snapshot, pinned, now)
            except StoreBusy:
                raise
            except Exception as error:  # one unusable workflow must not stop the others
                log.warning(
                    "tick skipped workflow %s: %s", deadline.workflow_id, type(error).__name__
                )
                failures[deadline.workflow_id] = TickFailure(
                    deadline.workflow_id, deadline.id, f"{type(error).__name__}: {error}"
                )
                return None

        # A breach may open a deadline that is itself already due: go round until none is.
        for _ in range(_MAX_TICK_ROUNDS):
            written = self.store.fire_due(now, breach, limit=batch)
            if not written:
                break
            steps.extend(written)
        self.tick_failures = list(failures.values())
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

    def _breach_step(self, snapshot: WorkflowSnapshot, deadline: Deadline, now: datetime) -> Step:
        spec = self.spec_for(snapshot)
        at = max(deadline.due_at, snapshot.updated_at or deadline.due_at)
        payload = {"deadline": deadline.name, "deadline_id": deadline.id}
        key = f"breach:{deadline.id}"
        if deadline.breach_trigger:
            try:
                return self._compute(
                    spec, snapshot, deadline.breach_trigger, SYSTEM, payload, at, key
                )
            except (TransitionNotAllowed, GuardFailed):
                log.info(
                    "workflow %s: breach trigger %s not possible in state %s; recording miss",
                    snapshot.workflow_id,
                    deadline.breach_trigger,
                    snapshot.state,
                )
        return self._compute(spec, snapshot, DEADLINE_MISSED, SYSTEM, payload, at, key)

    def _commit(
        self, step: Step, expected: int, command: tuple[str, Actor, dict[str, Any]]
    ) -> Step:
        """Commit; a writer that lost a race to the same idempotency key gets the first result."""
        try:
            self.store.commit(step, expected_version=expected)
        except ConcurrencyError:
            event = step.event
            if event.idempotency_key is None:
                raise
            trigger, actor, payload = command
            found = self._resend(event.workflow_id, trigger, event.idempotency_key, actor, payload)
            if found is None:
                raise
            return found
        if expected == 0:
            log.info("started workflow %s in state %s", step.event.workflow_id, step.snapshot.state)
        return step

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

    # --- queries --------------------------------------------------------------------------

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
        blank = self._blank(workflow_id, events)
        chosen = events if upto is None else events[:upto]
        return list(self._replayed(blank, chosen, reuse=hashes_checked))

    def _blank(
        self, workflow_id: str, events: list[Event], head: WorkflowSnapshot | None = None
    ) -> WorkflowSnapshot:
        """The snapshot ``events`` start from: the initial state of the first policy."""
        if head is None:
            head = self.store.load(workflow_id)  # raises UnknownWorkflow
        policy, version = head.policy, head.policy_version
        first_move = next((e for e in events if e.trigger == POLICY_MIGRATED), None)
        if first_move is not None:
            policy = first_move.payload["from_policy"]
            version = first_move.payload["from_version"]
        first = self.spec_for(
            head
            if first_move is None
            else attrs.evolve(head, policy=policy, policy_version=version, fingerprint="")
        )
        return WorkflowSnapshot(
            workflow_id=workflow_id,
            machine=head.machine,
            policy=policy,
            policy_version=version,
            state=first.initial,
            fingerprint=first.fingerprint if head.fingerprint else "",
        )

    def replay_events(self, blank: WorkflowSnapshot, events: Iterable[Event]) -> list[Step]:
        """Apply ``events`` to ``blank`` without re-checking them; return each step."""
        return list(self._replayed(blank, events))

    def _replayed(
        self, blank: WorkflowSnapshot, events: Iterable[Event], *, reuse: bool = False
    ) -> Iterator[Step]:
        spec = self.spec_for(blank)
        snapshot = blank
        for event in events:
            step = self._compute(
                spec,
                snapshot,
                event.trigger,
                event.actor,
                event.payload,
                event.at,
                event.idempotency_key,
                check=False,
                replayed=event if reuse else None,
            )
            yield step
            snapshot = step.snapshot
            if event.trigger == POLICY_MIGRATED:
                spec = self.spec_for(snapshot)

    def _replay_last(
        self, workflow_id: str, events: list[Event], head: WorkflowSnapshot | None = None
    ) -> WorkflowSnapshot:
        """The snapshot after ``events``; keeps no step alive (no list for the collector)."""
        last = deque(self._replayed(self._blank(workflow_id, events, head), events), maxlen=1)
        if not last:
            raise IndexError(f"workflow {workflow_id!r} has no events to replay")
        return last[0].snapshot

    def replay(self, workflow_id: str) -> WorkflowSnapshot:
        """The snapshot rebuilt from the event log (:meth:`verify` checks it equals the
        stored one)."""
        return self._replay_last(workflow_id, self.store.events(workflow_id))

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
        ``progress(done, total)`` counts the workflows checked."""
        from qaflow._integrity import verify_store

        return verify_store(self, workflow_id, checkpoint=checkpoint, key=key, progress=progress)

    # --- the interpreter ------------------------------------------------------------------

    def _compute(
        self,
        spec: MachineSpec,
        snapshot: WorkflowSnapshot,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any] | None,
        at: datetime | None,
        idempotency_key: str | None,
        *,
        check: bool = True,
        replayed: Event | None = None,
    ) -> Step:
        wid = snapshot.workflow_id
        payload = dict(payload) if payload else {}
        state = snapshot.state
        seq = snapshot.version + 1
        if check:
            clock = self.clock.now()
            at = clock if at is None else check_at(at, "at", clock)
            if snapshot.updated_at is not None and at < snapshot.updated_at:
                raise ValidationError(
                    field="at",
                    value=at.isoformat(),
                    expected=f"not earlier than the last event ({snapshot.updated_at.isoformat()})",
                    quote=True,
                )
        else:
            assert at is not None
        if trigger == DEADLINE_MISSED:
            transition = None
            if check:
                self._check_missed(spec, snapshot, actor, payload)
            dest = state
        elif trigger == POLICY_MIGRATED:
            target = self._migration_target(snapshot, payload, check)
            ctx = Context(
                spec, snapshot, trigger, state, state, actor, at, payload, dict(snapshot.data), seq
            )
            step = self._effects(target, ctx, None, idempotency_key, replayed)
            moved = attrs.evolve(
                step.snapshot,
                policy=target.policy,
                policy_version=target.policy_version,
                fingerprint=target.fingerprint if snapshot.fingerprint else "",
            )
            return attrs.evolve(step, snapshot=moved)
        else:
            candidates = spec.candidates(state, trigger)
            if not candidates:
                raise TransitionNotAllowed(
                    workflow_id=wid,
                    state=state,
                    trigger=trigger,
                    allowed=spec.allowed_triggers(state),
                )
            transition = candidates[0]
            if check:
                transition = self._choose(
                    spec, snapshot, candidates, trigger, actor, payload, at, seq
                )
            elif len(candidates) > 1:
                transition = self._first_passing(
                    spec, snapshot, candidates, actor, payload, at, seq
                )
            dest = transition.dest_from(state)
        ctx = Context(
            spec, snapshot, trigger, state, dest, actor, at, payload, dict(snapshot.data), seq
        )
        return self._effects(spec, ctx, transition, idempotency_key, replayed)

    def _authorise(
        self,
        spec: MachineSpec,
        snapshot: WorkflowSnapshot,
        trigger: str,
        actor: Actor,
        roles: frozenset[str],
    ) -> None:
        """Refuse an actor whose role is not in ``roles`` or whom the directory does not list."""
        if actor.role not in roles:
            raise PermissionDenied(
                workflow_id=snapshot.workflow_id,
                trigger=trigger,
                actor_id=actor.id,
                role=actor.role,
                allowed_roles=roles,
            )
        if self.directory is not None and not self.directory.has_role(actor.id, actor.role):
            raise PermissionDenied(
                workflow_id=snapshot.workflow_id,
                trigger=trigger,
                actor_id=actor.id,
                role=actor.role,
                allowed_roles=roles,
                reason=f"the directory does not list them as {shown(actor.role)}",
            )

    def _check_missed(
        self, spec: MachineSpec, snapshot: WorkflowSnapshot, actor: Actor, payload: dict[str, Any]
    ) -> None:
        if spec.state(snapshot.state).terminal:
            raise TransitionNotAllowed(
                workflow_id=snapshot.workflow_id,
                state=snapshot.state,
                trigger=DEADLINE_MISSED,
                allowed=(),
            )
        if actor != SYSTEM:
            raise PermissionDenied(
                workflow_id=snapshot.workflow_id,
                trigger=DEADLINE_MISSED,
                actor_id=actor.id,
                role=actor.role,
                allowed_roles=(SYSTEM.role,),
            )
        if all(d.id != payload.get("deadline_id") for d in snapshot.deadlines):
            raise ValidationError(
                field="deadline_id",
                value=payload.get("deadline_id"),
                expected="the id of an open deadline of this workflow",
            )

    def _choose(
        self,
        spec: MachineSpec,
        snapshot: WorkflowSnapshot,
        candidates: tuple[TransitionSpec, ...],
        trigger: str,
        actor: Actor,
        payload: dict[str, Any],
        at: datetime,
        seq: int,
    ) -> TransitionSpec:
        wid = snapshot.workflow_id
        breach = trigger in spec.breach_triggers and actor == SYSTEM
        first = candidates[0]
        if not breach:
            roles = (
                first.roles
                if len(candidates) == 1
                else frozenset().union(*(t.roles for t in candidates))
            )
            self._authorise(spec, snapshot, trigger, actor, roles)
        failures: list[tuple[int, Guard]] = []
        for t in candidates:
            if not breach and actor.role not in t.roles:
                continue
            if not breach and t.actor_key is not None:
                holder = snapshot.data.get(t.actor_key)
                if holder != actor.id:
                    raise PermissionDenied(
                        workflow_id=wid,
                        trigger=trigger,
                        actor_id=actor.id,
                        role=actor.role,
                        allowed_roles=t.roles,
                        reason=f"only the person recorded as {t.actor_key!r} may",
                    )
            self._check_payload(spec, t, payload, breach)
            if not t.guards:
                return t
            dest = t.dest_from(snapshot.state)
            ctx = Context(
                spec,
                snapshot,
                trigger,
                snapshot.state,
                dest,
                actor,
                at,
                payload,
                snapshot.data,
                seq,
            )
            for passed, guard in enumerate(t.guards):
                if not guard.check(ctx):
                    failures.append((passed, guard))
                    break
            else:
                return t
        if failures:
            # Report the candidates that got furthest: their unmet condition is the news.
            furthest = max(n for n, _ in failures)
            best = list({g.condition: g for n, g in failures if n == furthest}.values())
            if len(best) == 1:
                raise GuardFailed(
                    workflow_id=wid,
                    trigger=trigger,
                    condition=best[0].condition,
                    clause=best[0].clause,
                )
            raise GuardFailed(
                workflow_id=wid,
                trigger=trigger,
                condition=" or ".join(g.condition for g in best),
                clause=first.clause,
            )
        raise PermissionDenied(  # pragma: no cover - roles union already checked
            workflow_id=wid,
            trigger=trigger,
            actor_id=actor.id,
            role=actor.role,
            allowed_roles=first.roles,
        )

    def _first_passing(
        self,
        spec: MachineSpec,
        snapshot: WorkflowSnapshot,
        candidates: tuple[TransitionSpec, ...],
        actor: Actor,
        payload: dict[str, Any],
        at: datetime,
        seq: int,
    ) -> TransitionSpec:
        breach = actor == SYSTEM and candidates[0].trigger in spec.breach_triggers
        for t in candidates:
            if not breach and actor.role not in t.roles:
                continue  # replay chooses as the live command did: roles first, then guards
            ctx = Context(
                spec,
                snapshot,
                t.trigger,
                snapshot.state,
                t.dest_from(snapshot.state),
                actor,
                at,
                payload,
                snapshot.data,
                seq,
            )
            if all(g.check(ctx) for g in t.guards):
                return t
        raise IntegrityError(
            workflow_id=snapshot.workflow_id,
            seq=seq,
            problem=f"no transition for replayed {candidates[0].trigger!r} passes its guards",
        )

    @staticmethod
    def _check_payload(
        spec: MachineSpec, t: TransitionSpec, payload: dict[str, Any], breach: bool
    ) -> None:
        fields = spec.fields_of(t)
        for name, value in payload.items():
            field = fields.get(name)
            if field is None:
                if breach and name in _BREACH_FIELDS:
                    continue
                raise ValidationError(
                    field=name,
                    value=value,
                    expected=f"a field {t.trigger!r} accepts: "
                    + (", ".join(map(repr, fields)) or "none"),
                )
            field.check(value)
        for name, field in fields.items():
            if field.required and name not in payload:
                raise ValidationError(field=name, value=None, expected=f"given ({field.kind})")

    def _effects(
        self,
        spec: MachineSpec,
        ctx: Context,
        transition: TransitionSpec | None,
        idempotency_key: str | None,
        replayed: Event | None = None,
    ) -> Step:
        snapshot = ctx.snapshot
        wid = snapshot.workflow_id
        at = ctx.at
        if (
            transition is not None
            and transition.dest is None
            and not transition.effects
            and "deadline_id" not in ctx.payload
            and not spec.rolling
        ):
            return self._bare_step(ctx, idempotency_key, replayed)
        out = Outputs(wid, ctx.seq, at)
        open_now = {d.id: d for d in snapshot.deadlines} if snapshot.deadlines else {}
        breach_id = ctx.payload.get("deadline_id")
        if breach_id is not None and ctx.actor == SYSTEM and breach_id in open_now:
            out.breached.append(breach_id)
            del open_now[breach_id]
            if transition is None:
                missed = snapshot_deadline(snapshot, breach_id)
                for role in missed.notify:
                    out.notify(ctx, role, f"deadline {missed.name!r} missed", missed.clause)
        dest_state = spec.state(ctx.dest)
        leaving = transition is not None and transition.leaves(ctx.source)
        if leaving:
            for did, d in list(open_now.items()):
                if d.state == ctx.source:
                    out.closed.append(did)
                    del open_now[did]
        if transition is not None:
            run_effects(transition.effects, ctx, out, open_now)
        if leaving:
            for rule in dest_state.deadlines:
                open_deadline(rule, ctx, out, open_now, ctx.dest)
            run_effects(dest_state.on_enter, ctx, out, open_now)
        if spec.rolling and not dest_state.terminal:
            advance_rolling(spec.rolling, ctx, out.opened, out.closed, open_now)
        if dest_state.terminal:
            for did in list(open_now):
                out.closed.append(did)
                del open_now[did]
        event = self._event(ctx, idempotency_key, replayed)
        # Positional arguments: these records are built on every command.
        new = WorkflowSnapshot(
            wid,
            snapshot.machine,
            snapshot.policy,
            snapshot.policy_version,
            ctx.dest,
            ctx.data,
            ctx.seq,
            snapshot.created_at or at,
            at,
            event.hash,
            tuple(open_now.values()),
            snapshot.fingerprint,
        )
        return Step(
            event,
            new,
            tuple(out.opened) if out.opened else (),
            tuple(out.closed) if out.closed else (),
            tuple(out.breached) if out.breached else (),
            tuple(out.notifications) if out.notifications else (),
            tuple(out.tasks) if out.tasks else (),
        )

    def _bare_step(
        self, ctx: Context, idempotency_key: str | None, replayed: Event | None = None
    ) -> Step:
        """The step of an internal transition without effects: only the event is new."""
        snapshot = ctx.snapshot
        event = self._event(ctx, idempotency_key, replayed)
        new = WorkflowSnapshot(
            snapshot.workflow_id,
            snapshot.machine,
            snapshot.policy,
            snapshot.policy_version,
            ctx.dest,
            ctx.data,
            ctx.seq,
            snapshot.created_at or ctx.at,
            ctx.at,
            event.hash,
            snapshot.deadlines,
            snapshot.fingerprint,
        )
        return Step(event=event, snapshot=new)

    @staticmethod
    def _event(ctx: Context, idempotency_key: str | None, replayed: Event | None = None) -> Event:
        """The event of a command, its hash chained to the workflow's last one.

        A replay passes the stored event: when the replay reproduces every field the hash
        covers (trigger, actor, time, payload and key come from the event itself; sequence,
        source, destination and previous hash are checked here) the stored event is the
        result, and its hash is not computed again (``verify`` checks every stored hash
        once, on the chain).
        """
        snapshot = ctx.snapshot
        if (
            replayed is not None
            and replayed.seq == ctx.seq
            and replayed.source == ctx.source
            and replayed.dest == ctx.dest
            and replayed.prev_hash == snapshot.last_hash
            and replayed.workflow_id == snapshot.workflow_id
        ):
            return replayed
        wid = snapshot.workflow_id
        at = ctx.at
        payload = dict(ctx.payload)
        try:
            digest = hash_fields(
                wid,
                ctx.seq,
                ctx.trigger,
                ctx.source,
                ctx.dest,
                ctx.actor,
                at,
                payload,
                snapshot.last_hash,
                idempotency_key,
            )
        except (TypeError, ValueError):
            raise ValidationError(
                field="payload", value=payload, expected="JSON-compatible values"
            ) from None
        return Event(
            wid,
            ctx.seq,
            ctx.trigger,
            ctx.source,
            ctx.dest,
            ctx.actor,
            at,
            payload,
            snapshot.last_hash,
            digest,
            idempotency_key,
        )


def _command(
    workflow_id: object, trigger: object, actor: object, payload: object, key: object
) -> dict[str, Any]:
    """Check a caller's command at the boundary; return its payload as a plain dict.

    Every field that goes into the event hash must be valid text or JSON (``_checks``), and
    the system actor is qaflow's own: only ``tick``, for a due deadline, fires as it.
    """
    check_id("workflow_id", workflow_id)
    check_id("trigger", trigger)
    check_id("idempotency_key", key, optional=True)
    if not isinstance(actor, Actor):
        raise ValidationError(field="actor", value=actor, expected="an Actor")
    check_id("actor.id", actor.id)
    check_id("actor.role", actor.role)
    if actor.role == SYSTEM.role or actor.id == SYSTEM.id:
        raise PermissionDenied(
            workflow_id=str(workflow_id),
            trigger=str(trigger),
            actor_id=actor.id,
            role=actor.role,
            allowed_roles=(),
            reason="the system actor is qaflow's own: only tick fires as it, for a due deadline",
        )
    return check_payload(payload)


def _check_version(snapshot: WorkflowSnapshot, expected_version: int | None) -> None:
    """Refuse early a command sent for a version the workflow has moved past."""
    if expected_version is not None and (
        not isinstance(expected_version, int) or isinstance(expected_version, bool)
    ):
        raise ValidationError(
            field="expected_version", value=expected_version, expected="a whole number"
        )
    if expected_version is not None and expected_version != snapshot.version:
        raise ConcurrencyError(
            workflow_id=snapshot.workflow_id,
            expected_version=expected_version,
            actual_version=snapshot.version,
        )
