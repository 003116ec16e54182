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
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs

from qaflow._authorise import (
    Directory,
    authorise,
    check_holder,
    check_system_miss,
    is_breach,
)
from qaflow._build import new_event, new_snapshot, new_step
from qaflow._effects import collect
from qaflow._plans import plan_of
from qaflow.calendar import ensure_aware
from qaflow.errors import (
    GuardFailed,
    IntegrityError,
    PermissionDenied,
    PolicyError,
    TransitionNotAllowed,
    ValidationError,
)
from qaflow.records import SYSTEM, Actor, Event, Step, WorkflowSnapshot, hash_fields
from qaflow.spec import (
    DEADLINE_MISSED,
    POLICY_MIGRATED,
    Context,
    Field,
    Guard,
    MachineSpec,
    TransitionSpec,
)

__all__ = ["BREACH_FIELDS", "Command", "CommandLike", "compute", "live_step", "replay_step"]

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
    if snapshot.updated_at is not None and at < snapshot.updated_at:
        raise ValidationError(
            field="at",
            value=at.isoformat(),
            expected=f"not earlier than the last event ({snapshot.updated_at.isoformat()})",
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
            ctx = _context(spec, snapshot, trigger, actor, at, payload, state, dict(snapshot.data))
            return _migrated(spec, ctx, idempotency_key, target, lean=lean)
        raise TransitionNotAllowed(
            workflow_id=snapshot.workflow_id,
            state=state,
            trigger=trigger,
            allowed=spec.allowed_triggers(state),
        )
    single = plan.single
    if single is not None and not (plan.breachable and actor == SYSTEM):
        # One candidate without guards: the checks _choose makes of it, in its order.
        if directory is not None or actor.role not in single.roles:
            authorise(snapshot, trigger, actor, single.roles, directory)
        if single.actor_key is not None:
            check_holder(snapshot, single, actor)
        _check_payload(plan.fields, plan.required, trigger, payload, False)
        if plan.bare and "deadline_id" not in payload:
            return _bare(snapshot, trigger, actor, at, payload, idempotency_key, lean)
        transition = single
        dest = plan.dest
    else:
        transition = _choose(
            spec, snapshot, plan.candidates, trigger, actor, at, payload, directory
        )
        dest = transition.dest_from(state)
    return _finish(
        spec, snapshot, trigger, actor, at, idempotency_key, payload, transition, dest, lean=lean
    )


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
    return Context(
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


def _choose(
    spec: MachineSpec,
    snapshot: WorkflowSnapshot,
    candidates: tuple[TransitionSpec, ...],
    trigger: str,
    actor: Actor,
    at: datetime,
    payload: dict[str, Any],
    directory: Directory | None,
) -> TransitionSpec:
    """The first candidate the actor may fire whose payload fits and whose guards pass."""
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
        fields = spec.fields_of(t)
        required = tuple(name for name, f in fields.items() if f.required)
        _check_payload(fields, required, trigger, payload, breach)
        if not t.guards:
            return t
        dest = t.dest_from(snapshot.state)
        ctx = _context(spec, snapshot, trigger, actor, at, payload, dest, snapshot.data)
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


def _check_payload(
    fields: dict[str, Field],
    required: tuple[str, ...],
    trigger: str,
    payload: dict[str, Any],
    breach: bool,
) -> None:
    for name, value in payload.items():
        field = fields.get(name)
        if field is None:
            if breach and name in BREACH_FIELDS:
                continue
            raise ValidationError(
                field=name,
                value=value,
                expected=f"a field {trigger!r} accepts: "
                + (", ".join(map(repr, fields)) or "none"),
            )
        field.check(value)
    for name in required:
        if name not in payload:
            raise ValidationError(field=name, value=None, expected=f"given ({fields[name].kind})")


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


def _bare(
    snapshot: WorkflowSnapshot,
    trigger: str,
    actor: Actor,
    at: datetime,
    payload: dict[str, Any],
    idempotency_key: str | None,
    lean: bool = False,
) -> Step:
    """The step of an internal transition without effects: a new event and a new version."""
    state, seq = snapshot.state, snapshot.version + 1
    event = _new_event(
        snapshot, seq, trigger, state, state, actor, at, payload, idempotency_key, lean=lean
    )
    new = new_snapshot(
        snapshot, state, dict(snapshot.data), seq, at, event.hash, snapshot.deadlines
    )
    return new_step(event, new)


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
        event = _new_event(
            snapshot, ctx.seq, ctx.trigger, ctx.source, ctx.dest, ctx.actor, ctx.at, payload,
            idempotency_key, lean=lean,
        )  # fmt: skip
    else:
        event = _replayed_event(ctx, stored, hash_checked)
    deadlines = snapshot.deadlines if out is None else tuple(out.open_now.values())
    new = new_snapshot(snapshot, ctx.dest, ctx.data, ctx.seq, ctx.at, event.hash, deadlines)
    if out is None:
        return new_step(event, new)
    return new_step(
        event,
        new,
        tuple(out.opened),
        tuple(out.closed),
        tuple(out.breached),
        tuple(out.notifications),
        tuple(out.tasks),
    )


def _new_event(
    snapshot: WorkflowSnapshot,
    seq: int,
    trigger: str,
    source: str,
    dest: str,
    actor: Actor,
    at: datetime,
    payload: dict[str, Any],
    idempotency_key: str | None,
    digest: str | None = None,
    *,
    lean: bool = False,
) -> Event:
    """A command's event, its hash chained to the workflow's last one (``digest`` if known).

    ``lean``: no hash chain (``prev_hash`` and ``hash`` empty), for a
    :class:`~qaflow.store.SimulationStore`, which keeps no event log.
    """
    prev = snapshot.last_hash
    if lean:
        prev = digest = ""
    elif digest is None:
        digest = _digest(snapshot, seq, trigger, source, dest, actor, at, payload, idempotency_key)
    return new_event(
        snapshot.workflow_id,
        seq,
        trigger,
        source,
        dest,
        actor,
        at if at.tzinfo is UTC else ensure_aware(at).astimezone(UTC),  # Event's converter
        payload,
        prev,
        digest,
        idempotency_key,
    )


def _digest(
    snapshot: WorkflowSnapshot,
    seq: int,
    trigger: str,
    source: str,
    dest: str,
    actor: Actor,
    at: datetime,
    payload: dict[str, Any],
    idempotency_key: str | None,
) -> str:
    try:
        return hash_fields(
            snapshot.workflow_id, seq, trigger, source, dest, actor, at, payload,
            snapshot.last_hash, idempotency_key,
        )  # fmt: skip
    except (TypeError, ValueError, RecursionError):
        raise ValidationError(
            field="payload", value=payload, expected="JSON-compatible values"
        ) from None


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
    digest = _digest(*args, stored.idempotency_key)
    if reproduced and stored.hash == digest:
        return stored
    return _new_event(*args, stored.idempotency_key, digest)
