"""The engine's interpreter: one command against one snapshot, computed into one Step.

:func:`compute` is pure: it reads the spec, the snapshot, the command and (for the role
check) the directory, and returns the :class:`~qaflow.records.Step` the store would commit.
It touches no store and reads no clock: the command carries its time, the calendar is the
spec's own (``spec.calendar``). The same inputs give an equal step every time, which is what
makes replay reproduce a snapshot and a refused command write nothing: the facade in
:mod:`qaflow.engine` loads, calls this, and commits.

A live command is checked in order: time not before the last event, trigger allowed in the
state, role and directory, the holder named by ``actor_key``, payload fields, guards.
:func:`replay_step` applies a stored event without those checks, choosing among transitions
that share a trigger exactly as the live command did (roles first, then guards).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

import attrs

from qaflow._authorise import (
    Directory,
    authorise,
    check_holder,
    check_system_miss,
    is_breach,
)
from qaflow._effects import collect
from qaflow.errors import (
    GuardFailed,
    IntegrityError,
    PermissionDenied,
    PolicyError,
    TransitionNotAllowed,
    ValidationError,
)
from qaflow.records import Actor, Event, Step, WorkflowSnapshot, hash_fields
from qaflow.spec import (
    DEADLINE_MISSED,
    POLICY_MIGRATED,
    Context,
    Guard,
    MachineSpec,
    TransitionSpec,
)

__all__ = ["BREACH_FIELDS", "Command", "CommandLike", "compute", "replay_step"]

BREACH_FIELDS = frozenset({"deadline", "deadline_id"})
"""Payload fields every breach carries besides the trigger's own."""


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
    if snapshot.updated_at is not None and command.at < snapshot.updated_at:
        raise ValidationError(
            field="at",
            value=command.at.isoformat(),
            expected=f"not earlier than the last event ({snapshot.updated_at.isoformat()})",
            quote=True,
        )
    payload = dict(command.payload)
    trigger = command.trigger
    if trigger == DEADLINE_MISSED:
        _refuse_in_terminal(spec, snapshot, trigger)
        check_system_miss(snapshot, trigger, command.actor, payload.get("deadline_id"))
        return _finish(spec, snapshot, command, payload, None, snapshot.state, lean=lean)
    if trigger == POLICY_MIGRATED:
        if command.target is None:
            raise ValidationError(
                field="target", value=None, expected="the spec a migration moves to"
            )
        _check_migration(spec, snapshot, command.target)
        return _migrated(spec, snapshot, command, payload, command.target, lean=lean)
    candidates = _candidates(spec, snapshot, trigger)
    transition = _choose(spec, snapshot, candidates, command, payload, directory)
    dest = transition.dest_from(snapshot.state)
    return _finish(spec, snapshot, command, payload, transition, dest, lean=lean)


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
    trigger = event.trigger
    if trigger == DEADLINE_MISSED:
        return _finish(spec, snapshot, event, payload, None, snapshot.state, event, hash_checked)
    if trigger == POLICY_MIGRATED:
        if target is None:
            raise ValidationError(
                field="target", value=None, expected="the spec a migration moves to"
            )
        return _migrated(spec, snapshot, event, payload, target, event, hash_checked)
    candidates = _candidates(spec, snapshot, trigger)
    transition = candidates[0]
    if len(candidates) > 1:
        transition = _first_passing(spec, snapshot, candidates, event, payload)
    dest = transition.dest_from(snapshot.state)
    return _finish(spec, snapshot, event, payload, transition, dest, event, hash_checked)


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
    command: CommandLike,
    payload: Mapping[str, Any],
    dest: str,
    data: dict[str, Any],
) -> Context:
    return Context(
        spec=spec,
        snapshot=snapshot,
        trigger=command.trigger,
        source=snapshot.state,
        dest=dest,
        actor=command.actor,
        at=command.at,
        payload=payload,
        data=data,
        seq=snapshot.version + 1,
    )


def _choose(
    spec: MachineSpec,
    snapshot: WorkflowSnapshot,
    candidates: tuple[TransitionSpec, ...],
    command: Command,
    payload: dict[str, Any],
    directory: Directory | None,
) -> TransitionSpec:
    """The first candidate the actor may fire whose payload fits and whose guards pass."""
    actor, trigger = command.actor, command.trigger
    breach = is_breach(trigger, actor, spec.breach_triggers)
    first = candidates[0]
    if not breach:
        roles = (
            first.roles
            if len(candidates) == 1
            else frozenset().union(*(t.roles for t in candidates))
        )
        authorise(snapshot, trigger, actor, roles, directory)
    failures: list[tuple[int, Guard]] = []
    for t in candidates:
        if not breach:
            if actor.role not in t.roles:
                continue
            check_holder(snapshot, t, actor)
        _check_payload(spec, t, payload, breach)
        if not t.guards:
            return t
        ctx = _context(spec, snapshot, command, payload, t.dest_from(snapshot.state), snapshot.data)
        for passed, guard in enumerate(t.guards):
            if not guard.check(ctx):
                failures.append((passed, guard))
                break
        else:
            return t
    if not failures:  # pragma: no cover - the union of roles was checked above
        raise PermissionDenied(
            workflow_id=snapshot.workflow_id,
            trigger=trigger,
            actor_id=actor.id,
            role=actor.role,
            allowed_roles=first.roles,
        )
    # Report the candidates that got furthest: their unmet condition is the news.
    furthest = max(n for n, _ in failures)
    best = list({g.condition: g for n, g in failures if n == furthest}.values())
    raise GuardFailed(
        workflow_id=snapshot.workflow_id,
        trigger=trigger,
        condition=" or ".join(g.condition for g in best),
        clause=best[0].clause if len(best) == 1 else first.clause,
    )


def _first_passing(
    spec: MachineSpec,
    snapshot: WorkflowSnapshot,
    candidates: tuple[TransitionSpec, ...],
    event: CommandLike,
    payload: dict[str, Any],
) -> TransitionSpec:
    """Replay's choice among transitions sharing a trigger: as the live command chose."""
    breach = is_breach(event.trigger, event.actor, spec.breach_triggers)
    for t in candidates:
        if not breach and event.actor.role not in t.roles:
            continue
        ctx = _context(spec, snapshot, event, payload, t.dest_from(snapshot.state), snapshot.data)
        if all(g.check(ctx) for g in t.guards):
            return t
    raise IntegrityError(
        workflow_id=snapshot.workflow_id,
        seq=snapshot.version + 1,
        problem=f"no transition for replayed {event.trigger!r} passes its guards",
    )


def _check_payload(
    spec: MachineSpec, t: TransitionSpec, payload: dict[str, Any], breach: bool
) -> None:
    fields = spec.fields_of(t)
    for name, value in payload.items():
        field = fields.get(name)
        if field is None:
            if breach and name in BREACH_FIELDS:
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


# --- building the step ---------------------------------------------------------------------


def _migrated(
    spec: MachineSpec,
    snapshot: WorkflowSnapshot,
    command: CommandLike,
    payload: dict[str, Any],
    target: MachineSpec,
    stored: Event | None = None,
    hash_checked: bool = False,
    *,
    lean: bool = False,
) -> Step:
    """A migration keeps state, data and deadlines; the target spec governs from here."""
    ctx = _context(spec, snapshot, command, payload, snapshot.state, dict(snapshot.data))
    step = _step(target, ctx, None, command.idempotency_key, stored, hash_checked, lean)
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
    command: CommandLike,
    payload: dict[str, Any],
    transition: TransitionSpec | None,
    dest: str,
    stored: Event | None = None,
    hash_checked: bool = False,
    *,
    lean: bool = False,
) -> Step:
    ctx = _context(spec, snapshot, command, payload, dest, dict(snapshot.data))
    return _step(spec, ctx, transition, command.idempotency_key, stored, hash_checked, lean)


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
    event = (
        _unhashed(ctx, idempotency_key)
        if lean
        else _event(ctx, idempotency_key, stored, hash_checked)
    )
    new = WorkflowSnapshot(
        workflow_id=snapshot.workflow_id,
        machine=snapshot.machine,
        policy=snapshot.policy,
        policy_version=snapshot.policy_version,
        state=ctx.dest,
        data=ctx.data,
        version=ctx.seq,
        created_at=snapshot.created_at or ctx.at,
        updated_at=ctx.at,
        last_hash=event.hash,
        deadlines=snapshot.deadlines if out is None else tuple(out.open_now.values()),
        fingerprint=snapshot.fingerprint,
    )
    if out is None:
        return Step(event=event, snapshot=new)
    return Step(
        event=event,
        snapshot=new,
        opened=tuple(out.opened),
        closed=tuple(out.closed),
        breached=tuple(out.breached),
        notifications=tuple(out.notifications),
        tasks=tuple(out.tasks),
    )


def _event(
    ctx: Context, idempotency_key: str | None, stored: Event | None, hash_checked: bool
) -> Event:
    """The command's event, its hash chained to the workflow's last one.

    ``stored``: on replay, the stored event the command came from (trigger, actor, time,
    payload and key are its own). If the replay reproduces the rest of what the hash covers
    (sequence, source, destination, previous hash) and the hash itself, the stored event is
    the result; with ``hash_checked`` its hash is trusted rather than computed again.
    """
    snapshot = ctx.snapshot
    reproduced = (
        stored is not None
        and stored.seq == ctx.seq
        and stored.source == ctx.source
        and stored.dest == ctx.dest
        and stored.prev_hash == snapshot.last_hash
        and stored.workflow_id == snapshot.workflow_id
    )
    if stored is not None and reproduced and hash_checked:
        return stored
    payload = ctx.payload if type(ctx.payload) is dict else dict(ctx.payload)
    try:
        digest = hash_fields(
            snapshot.workflow_id,
            ctx.seq,
            ctx.trigger,
            ctx.source,
            ctx.dest,
            ctx.actor,
            ctx.at,
            payload,
            snapshot.last_hash,
            idempotency_key,
        )
    except (TypeError, ValueError):
        raise ValidationError(
            field="payload", value=payload, expected="JSON-compatible values"
        ) from None
    if reproduced and stored is not None and stored.hash == digest:
        return stored
    return Event(
        workflow_id=snapshot.workflow_id,
        seq=ctx.seq,
        trigger=ctx.trigger,
        source=ctx.source,
        dest=ctx.dest,
        actor=ctx.actor,
        at=ctx.at,
        payload=payload,
        prev_hash=snapshot.last_hash,
        hash=digest,
        idempotency_key=idempotency_key,
    )


def _unhashed(ctx: Context, idempotency_key: str | None) -> Event:
    """A lean command's event: every field but the hash chain (``prev_hash`` and ``hash``
    empty), for a :class:`~qaflow.store.SimulationStore`, which keeps no event log."""
    payload = ctx.payload if type(ctx.payload) is dict else dict(ctx.payload)
    return Event(
        workflow_id=ctx.snapshot.workflow_id,
        seq=ctx.seq,
        trigger=ctx.trigger,
        source=ctx.source,
        dest=ctx.dest,
        actor=ctx.actor,
        at=ctx.at,
        payload=payload,
        prev_hash="",
        hash="",
        idempotency_key=idempotency_key,
    )
