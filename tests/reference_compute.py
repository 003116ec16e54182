"""The engine's general interpreter for a live command, as it was before plans were compiled
(issue 14, c14): the reference :mod:`qaflow._plans` and :mod:`qaflow._program` must match.

:func:`reference_live_step` takes the same arguments as :func:`qaflow._compute.live_step` and
decides the command the general way, every time: it looks up the candidates, checks roles,
holder and payload against the spec's tables, evaluates each guard through
:meth:`~qaflow.spec.Guard.check` on a fresh :class:`~qaflow.spec.Context`, and runs the
effects through :func:`qaflow._effects.collect` (the dispatch table, one handler per effect).
:func:`checked_live_step` runs both and asserts they agree: the same step, or the same
refusal (type and message).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from qaflow._authorise import Directory, authorise, check_holder, is_breach
from qaflow._compute import _context, _finish, live_step
from qaflow.errors import GuardFailed, PermissionDenied, TransitionNotAllowed, ValidationError
from qaflow.records import Actor, Step, WorkflowSnapshot
from qaflow.spec import DEADLINE_MISSED, POLICY_MIGRATED, Field, Guard, MachineSpec, TransitionSpec

BREACH_FIELDS = frozenset({"deadline", "deadline_id"})


def reference_live_step(
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
    """A live command decided by the general interpreter (no plan, no compiled effects)."""
    if snapshot.updated_at is not None and at < snapshot.updated_at:
        raise ValidationError(
            field="at",
            value=at.isoformat(),
            expected=f"not earlier than the last event ({snapshot.updated_at.isoformat()})",
            quote=True,
        )
    candidates = spec.candidates(snapshot.state, trigger)
    if not candidates:
        if trigger in (DEADLINE_MISSED, POLICY_MIGRATED):  # never planned: one code path
            return live_step(
                spec, snapshot, trigger, actor, at, payload, idempotency_key, target,
                directory, lean=lean,
            )  # fmt: skip
        raise TransitionNotAllowed(
            workflow_id=snapshot.workflow_id,
            state=snapshot.state,
            trigger=trigger,
            allowed=spec.allowed_triggers(snapshot.state),
        )
    transition = _choose(spec, snapshot, candidates, trigger, actor, at, payload, directory)
    dest = transition.dest_from(snapshot.state)
    return _finish(
        spec, snapshot, trigger, actor, at, idempotency_key, payload, transition, dest, lean=lean
    )


def checked_live_step(
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
    """:func:`live_step`, asserted equal to :func:`reference_live_step` (refusals included)."""
    args = (spec, snapshot, trigger, actor, at)
    rest = (idempotency_key, target, directory)
    want: Step | Exception
    try:
        want = reference_live_step(*args, dict(payload), *rest, lean=lean)
    except Exception as error:
        want = error
    try:
        got = live_step(*args, payload, *rest, lean=lean)
    except Exception as error:
        assert isinstance(want, Exception), f"{trigger}: compiled refused, reference did not"
        assert (type(error), str(error)) == (type(want), str(want)), trigger
        raise
    assert not isinstance(want, Exception), f"{trigger}: reference refused ({want!r})"
    assert got == want, trigger
    return got


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
