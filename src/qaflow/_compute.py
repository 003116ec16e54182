"""The engine's interpreter: one command against one snapshot, computed into one Step.

:func:`compute` is pure: it reads the spec, the snapshot, the command and (for the role
check) the directory, and returns the :class:`~qaflow.records.Step` the store would commit.
It touches no store and reads no clock: the command carries its time, the calendar is the
spec's own (``spec.calendar``). The same inputs give an equal step every time, which is what
makes replay reproduce a snapshot and a refused command write nothing: the facade in
:mod:`qaflow.engine` loads, calls this, and commits.

A live command is checked in order: time not before the last event, trigger allowed in the
state, role and directory, the holder named by ``actor_key``, payload fields, guards. It runs
through the (spec, state, trigger)'s compiled plan (:mod:`qaflow._plans`: the tables, the
guards as direct callables, the effects as a flat tuple of steps from :mod:`qaflow._program`),
which builds no context or outputs a route does not use. :func:`replay_step` applies a stored
event without those checks, choosing among transitions that share a trigger exactly as the
live command did (roles first, then guards), through the general effects interpreter
(:func:`qaflow._effects.collect`), the compiled plans' reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Protocol

import attrs

from qaflow._authorise import (
    Directory,
    authorise,
    check_holder,
    check_system_miss,
    is_breach,
)
from qaflow._build import (
    chained_event,
    event_digest,
    new_context,
    new_event,
    new_snapshot,
    new_step,
)
from qaflow._effects import Outputs, collect
from qaflow._plans import BREACH_FIELDS, Route, check_fields, choose, plan_of
from qaflow._program import run_program
from qaflow.errors import (
    GuardFailed,
    IntegrityError,
    PolicyError,
    TransitionNotAllowed,
    ValidationError,
)
from qaflow.records import SYSTEM, Actor, Event, Step, WorkflowSnapshot
from qaflow.spec import (
    DEADLINE_MISSED,
    POLICY_MIGRATED,
    Context,
    MachineSpec,
    TransitionSpec,
)

__all__ = ["BREACH_FIELDS", "Command", "CommandLike", "compute", "live_step", "replay_step"]

# Bound once (``Final``): a compiled build reads these as C statics, where an imported name is
# looked up in the module's dict at each use.
_SYSTEM: Final = SYSTEM
_SYSTEM_ID: Final = SYSTEM.id
_SYSTEM_ROLE: Final = SYSTEM.role
_ACTOR: Final = Actor
_NEW_CONTEXT: Final = new_context
_NEW_EVENT: Final = new_event
_NEW_SNAPSHOT: Final = new_snapshot
_NEW_STEP: Final = new_step


def _is_system(actor: Actor) -> bool:
    """``actor == SYSTEM``: an exact :class:`Actor` compared field by field here, rather than
    through attrs' generated ``__eq__`` (a Python-level call); anything else asks ``==``."""
    if actor is _SYSTEM:
        return True
    if type(actor) is _ACTOR:
        return actor.id == _SYSTEM_ID and actor.role == _SYSTEM_ROLE
    return bool(actor == _SYSTEM)


@attrs.frozen(kw_only=True)
class Command:
    """One command as the facade hands it to :func:`compute`: already checked at the
    boundary (ids, payload, ``at`` against the clock).

    ``target`` is the spec a ``policy_migrated`` command moves the workflow to.
    """

    trigger: str
    actor: Actor
    at: datetime
    payload: Mapping[str, Any] = attrs.field(factory=dict)
    idempotency_key: str | None = None
    target: MachineSpec | None = None


class CommandLike(Protocol):
    """What :func:`replay_step` reads of a command: a stored :class:`Event` fits."""

    @property
    def trigger(self) -> str: ...
    @property
    def actor(self) -> Actor: ...
    @property
    def at(self) -> datetime: ...
    @property
    def payload(self) -> Mapping[str, Any]: ...
    @property
    def idempotency_key(self) -> str | None: ...


def compute(
    spec: MachineSpec,
    snapshot: WorkflowSnapshot,
    command: Command,
    directory: Directory | None = None,
    *,
    lean: bool = False,
) -> Step:
    """The step a live command makes of ``snapshot`` under ``spec``; raises if refused.

    Raises a :class:`~qaflow.errors.QAFlowError` subclass naming what was refused. Pure: no
    store, no clock, no mutation of its arguments. ``lean`` (an engine in simulation mode,
    writing to a :class:`~qaflow.store.SimulationStore`): every check runs and state, data
    and deadlines are computed as usual, but the event carries no hash (``hash`` and
    ``prev_hash`` empty) and no notification or task rows are built.
    """
    return live_step(
        spec,
        snapshot,
        command.trigger,
        command.actor,
        command.at,
        dict(command.payload),
        command.idempotency_key,
        command.target,
        directory,
        lean=lean,
    )


def live_step(
    spec: MachineSpec,
    snapshot: WorkflowSnapshot,
    trigger: str,
    actor: Actor,
    at: datetime,
    payload: dict[str, Any],
    idempotency_key: str | None = None,
    target: MachineSpec | None = None,
    directory: Directory | None = None,
    *,
    lean: bool = False,
) -> Step:
    """:func:`compute` of a command given field by field, as the engine's facade calls it.

    ``payload`` becomes the event's own: the caller hands over a dict nobody else holds
    (the facade's checked copy), so it is not copied again. Same checks, same step.
    """
    last = snapshot.updated_at
    if last is not None and at < last:
        raise ValidationError(
            field="at",
            value=at.isoformat(),
            expected=f"not earlier than the last event ({last.isoformat()})",
            quote=True,
        )
    state = snapshot.state
    plan = spec._plans.get((state, trigger)) or plan_of(spec, state, trigger)
    if plan is None:
        if trigger == DEADLINE_MISSED:
            _refuse_in_terminal(spec, snapshot, trigger)
            check_system_miss(snapshot, trigger, actor, payload.get("deadline_id"))
            return _finish(
                spec, snapshot, trigger, actor, at, idempotency_key, payload, None, state,
                lean=lean,
            )  # fmt: skip
        if trigger == POLICY_MIGRATED:
            if target is None:
                raise ValidationError(
                    field="target", value=None, expected="the spec a migration moves to"
                )
            _check_migration(spec, snapshot, target)
            moving = _context(
                spec, snapshot, trigger, actor, at, payload, state, dict(snapshot.data)
            )
            return _migrated(spec, moving, idempotency_key, target, lean=lean)
        raise TransitionNotAllowed(
            workflow_id=snapshot.workflow_id,
            state=state,
            trigger=trigger,
            allowed=spec.allowed_triggers(state),
        )
    single = plan.single
    if single is not None and not (plan.breachable and _is_system(actor)):
        # One candidate: the checks choose() makes of it, in its order.
        if directory is not None or actor.role not in single.roles:
            authorise(snapshot, trigger, actor, single.roles, directory)
        key = single.actor_key
        if key is not None and snapshot.data.get(key) != actor.id:  # check_holder's test
            check_holder(snapshot, single.transition, actor)  # raises, naming the holder
        required = single.required
        if payload or required:  # an empty payload where none is required fits
            check_fields(single.fields, required, trigger, payload, False)
        ctx = None
        guards = single.guards
        if guards:
            # (spec, snapshot, trigger, source, dest, actor, at, payload, data, seq)
            ctx = _NEW_CONTEXT(
                spec, snapshot, trigger, state, single.dest, actor, at, payload, snapshot.data,
                snapshot.version + 1,
            )  # fmt: skip
            for fn, arg, guard in guards:
                if not fn(ctx, arg):
                    raise GuardFailed(
                        workflow_id=snapshot.workflow_id,
                        trigger=trigger,
                        condition=guard.condition,
                        clause=guard.clause,
                    )
        return _run(spec, snapshot, single, ctx, trigger, actor, at, payload, idempotency_key, lean)
    route, ctx = choose(spec, plan, snapshot, trigger, actor, at, payload, directory)
    return _run(spec, snapshot, route, ctx, trigger, actor, at, payload, idempotency_key, lean)


def _run(
    spec: MachineSpec,
    snapshot: WorkflowSnapshot,
    route: Route,
    ctx: Context | None,
    trigger: str,
    actor: Actor,
    at: datetime,
    payload: dict[str, Any],
    idempotency_key: str | None,
    lean: bool,
) -> Step:
    """The step of a chosen route: its compiled effects (:mod:`qaflow._program`) run.

    What :func:`_finish` and :func:`~qaflow._effects.collect` make of the same command,
    with nothing built that the route does not use: no context or outputs for a route
    without effects, no outputs for one that only updates data (unless the command is a
    breach, whose deadline is marked).
    """
    ops, only_updates = (
        (route.lean, route.lean_updates) if lean else (route.full, route.full_updates)
    )
    seq = snapshot.version + 1
    state, dest = snapshot.state, route.dest
    data = dict(snapshot.data)
    out = None
    breach = "deadline_id" in payload
    if ops or breach:
        if ctx is None:
            # (spec, snapshot, trigger, source, dest, actor, at, payload, data, seq)
            ctx = _NEW_CONTEXT(spec, snapshot, trigger, state, dest, actor, at, payload, data, seq)
        else:
            ctx.data = data
        if only_updates and not breach:
            for _, fn, arg in ops:
                data.update(fn(ctx, arg))
        else:
            # collect()'s outputs, a breach's deadline marked (a route has a transition: a
            # breach writes no notice of its own), then the compiled steps
            deadlines = snapshot.deadlines
            out = Outputs(seq, at, {d.id: d for d in deadlines} if deadlines else {}, not lean)
            if breach and _is_system(actor):
                breach_id = payload["deadline_id"]
                if breach_id is not None and breach_id in out.open_now:
                    del out.open_now[breach_id]
                    out.breached.append(breach_id)
            run_program(
                (route.breach_lean if lean else route.breach_full) if breach else ops, ctx, out
            )
    if lean:  # chained_event's lean case: no hash chain (the maker converts ``at`` to UTC)
        wid = snapshot.workflow_id
        event = _NEW_EVENT(wid, seq, trigger, state, dest, actor, at, payload, "", "",
                           idempotency_key)  # fmt: skip
        return _step_of(event, snapshot, dest, data, seq, at, out, "")
    event = chained_event(snapshot, seq, trigger, state, dest, actor, at, payload, idempotency_key)
    return _step_of(event, snapshot, dest, data, seq, at, out, event.hash)


def replay_step(
    spec: MachineSpec,
    snapshot: WorkflowSnapshot,
    event: Event,
    *,
    target: MachineSpec | None = None,
    hash_checked: bool = False,
) -> Step:
    """The step a stored event made of ``snapshot``, without the live command's checks.

    ``target``: for a ``policy_migrated`` event, the spec it moved to. When the replay
    reproduces the event (every hashed field, the hash included) the step's event is the
    stored one, not a copy. ``hash_checked``: the caller has checked the event's hash against
    its content (``verify`` does, on the chain), so it is not computed a second time.
    """
    payload = event.payload  # the stored event's own: read, never changed
    trigger, actor, at, key = event.trigger, event.actor, event.at, event.idempotency_key
    if trigger == DEADLINE_MISSED:
        return _finish(
            spec, snapshot, trigger, actor, at, key, payload, None, snapshot.state, event,
            hash_checked,
        )  # fmt: skip
    if trigger == POLICY_MIGRATED:
        if target is None:
            raise ValidationError(
                field="target", value=None, expected="the spec a migration moves to"
            )
        ctx = _context(spec, snapshot, trigger, actor, at, payload, snapshot.state,
                       dict(snapshot.data))  # fmt: skip
        return _migrated(spec, ctx, key, target, event, hash_checked)
    candidates = _candidates(spec, snapshot, trigger)
    transition = candidates[0]
    if len(candidates) > 1:
        transition = _first_passing(spec, snapshot, candidates, event, payload)
    dest = transition.dest_from(snapshot.state)
    return _finish(
        spec, snapshot, trigger, actor, at, key, payload, transition, dest, event, hash_checked
    )


# --- choosing the transition ---------------------------------------------------------------


def _candidates(
    spec: MachineSpec, snapshot: WorkflowSnapshot, trigger: str
) -> tuple[TransitionSpec, ...]:
    candidates = spec.candidates(snapshot.state, trigger)
    if not candidates:
        raise TransitionNotAllowed(
            workflow_id=snapshot.workflow_id,
            state=snapshot.state,
            trigger=trigger,
            allowed=spec.allowed_triggers(snapshot.state),
        )
    return candidates


def _refuse_in_terminal(spec: MachineSpec, snapshot: WorkflowSnapshot, trigger: str) -> None:
    if spec.state(snapshot.state).terminal:
        raise TransitionNotAllowed(
            workflow_id=snapshot.workflow_id, state=snapshot.state, trigger=trigger, allowed=()
        )


def _check_migration(spec: MachineSpec, snapshot: WorkflowSnapshot, target: MachineSpec) -> None:
    _refuse_in_terminal(spec, snapshot, POLICY_MIGRATED)
    if target.key == spec.key:
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


def _context(
    spec: MachineSpec,
    snapshot: WorkflowSnapshot,
    trigger: str,
    actor: Actor,
    at: datetime,
    payload: Mapping[str, Any],
    dest: str,
    data: dict[str, Any],
) -> Context:
    # (spec, snapshot, trigger, source, dest, actor, at, payload, data, seq), by position
    return _NEW_CONTEXT(
        spec,
        snapshot,
        trigger,
        snapshot.state,
        dest,
        actor,
        at,
        payload,
        data,
        snapshot.version + 1,
    )


def _first_passing(
    spec: MachineSpec,
    snapshot: WorkflowSnapshot,
    candidates: tuple[TransitionSpec, ...],
    event: Event,
    payload: dict[str, Any],
) -> TransitionSpec:
    """Replay's choice among transitions sharing a trigger: as the live command chose."""
    trigger, actor = event.trigger, event.actor
    breach = is_breach(trigger, actor, spec.breach_triggers)
    for t in candidates:
        if not breach and actor.role not in t.roles:
            continue
        dest = t.dest_from(snapshot.state)
        ctx = _context(spec, snapshot, trigger, actor, event.at, payload, dest, snapshot.data)
        if all(g.check(ctx) for g in t.guards):
            return t
    raise IntegrityError(
        workflow_id=snapshot.workflow_id,
        seq=snapshot.version + 1,
        problem=f"no transition for replayed {event.trigger!r} passes its guards",
    )


# --- building the step ---------------------------------------------------------------------


def _migrated(
    target_spec: MachineSpec,
    ctx: Context,
    idempotency_key: str | None,
    target: MachineSpec,
    stored: Event | None = None,
    hash_checked: bool = False,
    *,
    lean: bool = False,
) -> Step:
    """A migration keeps state, data and deadlines; the target spec governs from here."""
    snapshot = ctx.snapshot
    step = _step(target, ctx, None, idempotency_key, stored, hash_checked, lean)
    moved = attrs.evolve(
        step.snapshot,
        policy=target.policy,
        policy_version=target.policy_version,
        fingerprint=target.fingerprint if snapshot.fingerprint else "",
    )
    return attrs.evolve(step, snapshot=moved)


def _finish(
    spec: MachineSpec,
    snapshot: WorkflowSnapshot,
    trigger: str,
    actor: Actor,
    at: datetime,
    idempotency_key: str | None,
    payload: dict[str, Any],
    transition: TransitionSpec | None,
    dest: str,
    stored: Event | None = None,
    hash_checked: bool = False,
    *,
    lean: bool = False,
) -> Step:
    ctx = _context(spec, snapshot, trigger, actor, at, payload, dest, dict(snapshot.data))
    return _step(spec, ctx, transition, idempotency_key, stored, hash_checked, lean)


def _step(
    spec: MachineSpec,
    ctx: Context,
    transition: TransitionSpec | None,
    idempotency_key: str | None,
    stored: Event | None,
    hash_checked: bool,
    lean: bool = False,
) -> Step:
    snapshot = ctx.snapshot
    bare = (  # an internal transition without effects: only the event and data are new
        transition is not None
        and transition.dest is None
        and not transition.effects
        and "deadline_id" not in ctx.payload
        and not spec.rolling
    )
    out = None if bare else collect(spec, ctx, transition, not lean)
    if stored is None:
        payload = ctx.payload if type(ctx.payload) is dict else dict(ctx.payload)
        event = chained_event(
            snapshot, ctx.seq, ctx.trigger, ctx.source, ctx.dest, ctx.actor, ctx.at, payload,
            idempotency_key, lean=lean,
        )  # fmt: skip
    else:
        event = _replayed_event(ctx, stored, hash_checked)
    return _step_of(event, snapshot, ctx.dest, ctx.data, ctx.seq, ctx.at, out, event.hash)


def _step_of(
    event: Event,
    snapshot: WorkflowSnapshot,
    dest: str,
    data: dict[str, Any],
    seq: int,
    at: datetime,
    out: Outputs | None,
    digest: str,
) -> Step:
    """The step of ``event`` (whose hash is ``digest``): the new snapshot, and the rows
    ``out`` gathered (none when the command ran no effects)."""
    if out is None:
        return _NEW_STEP(
            event, _NEW_SNAPSHOT(snapshot, dest, data, seq, at, digest, snapshot.deadlines)
        )
    new = _NEW_SNAPSHOT(snapshot, dest, data, seq, at, digest, tuple(out.open_now.values()))
    return _NEW_STEP(
        event,
        new,
        tuple(out.opened),
        tuple(out.closed),
        tuple(out.breached),
        tuple(out.notifications),
        tuple(out.tasks),
    )


def _replayed_event(ctx: Context, stored: Event, hash_checked: bool) -> Event:
    """The event of a replayed command: ``stored``, if the replay reproduces it.

    (Trigger, actor, time, payload and key are the stored event's own.) If the replay
    reproduces the rest of what the hash covers (sequence, source, destination, previous
    hash) and the hash itself, the stored event is the result; with ``hash_checked`` its
    hash is trusted rather than computed again.
    """
    snapshot = ctx.snapshot
    reproduced = (
        stored.seq == ctx.seq
        and stored.source == ctx.source
        and stored.dest == ctx.dest
        and stored.prev_hash == snapshot.last_hash
        and stored.workflow_id == snapshot.workflow_id
    )
    if reproduced and hash_checked:
        return stored
    payload = ctx.payload if type(ctx.payload) is dict else dict(ctx.payload)
    args = (snapshot, ctx.seq, ctx.trigger, ctx.source, ctx.dest, ctx.actor, ctx.at, payload)
    digest = event_digest(*args, stored.idempotency_key)
    if reproduced and stored.hash == digest:
        return stored
    return chained_event(*args, stored.idempotency_key, digest)
