"""The engine's command path: ``start``, ``fire`` and a breach, from boundary checks to commit.

:class:`qaflow.Engine`'s command methods are a thin facade over these functions, so that a
compiled build (``qaflow._compiled.HOT_MODULES``) compiles the whole command path while
``Engine`` keeps its precise public annotations. Compiled code checks every argument against
its annotation and raises ``TypeError``, so everything a caller supplies is taken here as
``object`` and checked by hand (:func:`command_payload`, :func:`check_version`,
:func:`~qaflow._checks.check_at`): bad input raises the same
:class:`~qaflow.errors.ValidationError` in both builds, before anything is read or written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from qaflow._build import snapshot_of
from qaflow._checks import check_at, check_id, check_payload, ids_fit
from qaflow._compute import live_step
from qaflow.clock import ManualClock
from qaflow.errors import (
    ConcurrencyError,
    GuardFailed,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationError,
)
from qaflow.records import GENESIS_HASH, SYSTEM, Actor, Deadline, Step, WorkflowSnapshot
from qaflow.spec import DEADLINE_MISSED, POLICY_MIGRATED, MachineSpec
from qaflow.store._simulation import SimulationStore, commit_to, load_from

if TYPE_CHECKING:
    from qaflow.engine import Engine
    from qaflow.store import Store

__all__ = [
    "Breaches",
    "breach_step",
    "check_version",
    "command_payload",
    "commit_step",
    "compute_step",
    "fire",
    "start",
]

log = logging.getLogger("qaflow.engine")

_DEBUG: Final = logging.DEBUG
_INFO: Final = logging.INFO
_memo = getattr(log, "_cache", None)
_log_cache: Final[dict[int, bool]] = _memo if type(_memo) is dict else {}
"""The logger's own memo of ``isEnabledFor`` answers, the same dict object (``logging`` clears
it in place whenever a level changes). A command calls ``isEnabledFor`` unless the memo holds
``False`` for DEBUG: a memoised ``False`` is exactly what ``isEnabledFor`` would return, so the
debug line is logged exactly when it was before, without a Python-level call per command while
DEBUG is off. (An empty stand-in on a ``logging`` without the memo: every command asks.) The
line each start logs at INFO is skipped the same way, when the memo holds ``False`` for INFO."""

_SYSTEM_ID: Final = SYSTEM.id
_SYSTEM_ROLE: Final = SYSTEM.role
# bound once: a compiled build reads a Final as a C static, an imported name from the dict
_SNAPSHOT_OF: Final = snapshot_of
_MANUAL_CLOCK: Final = ManualClock
_ACTOR: Final = Actor
_MACHINE_SPEC: Final = MachineSpec
_GENESIS: Final = GENESIS_HASH
_MIGRATED: Final = POLICY_MIGRATED
_MISSED: Final = DEADLINE_MISSED
_SIMULATION_STORE: Final = SimulationStore

_live_step: Callable[..., Step] = live_step
"""The interpreter every command calls, looked up here at each call rather than bound at
compile time, so a test can run a reference interpreter beside it (``tests/test_plans.py``).
While it is :func:`~qaflow._compute.live_step` itself, that is called directly (a compiled
build calls it as C, its keyword parsed by nobody)."""

_LIVE_STEP: Final = live_step


def start(
    engine: Engine,
    machine: object,
    workflow_id: object,
    trigger: object,
    actor: object,
    payload: object,
    at: object,
    idempotency_key: object,
) -> Step:
    """:meth:`qaflow.Engine.start`: the workflow's first event, from its initial state."""
    registry = engine._registry
    spec = machine if isinstance(machine, _MACHINE_SPEC) else registry.latest(machine)
    registry.ensure(spec)
    body = command_payload(workflow_id, trigger, actor, payload, idempotency_key)
    # checked above: bound to their types without a call (typing.cast is one in pure Python)
    wid: str = workflow_id  # type: ignore[assignment]
    name: str = trigger  # type: ignore[assignment]
    who: Actor = actor  # type: ignore[assignment]
    key: str | None = idempotency_key  # type: ignore[assignment]
    if key is not None:
        found = engine._resend(wid, name, key, who, body)
        if found is not None:
            return found
    if name in (_MIGRATED, _MISSED):
        raise ValidationError(
            field="trigger", value=name, expected="a trigger of the machine", quote=True
        )
    # WorkflowSnapshot(workflow_id, machine, policy, version, initial state, fingerprint)
    # with every other field at its default, built through its slots (qaflow._build)
    blank = _SNAPSHOT_OF(
        wid, spec.name, spec.policy, spec.policy_version, spec.initial, {}, 0,
        None, None, _GENESIS, (), spec._fingerprint or spec.fingerprint,
    )  # fmt: skip
    step = compute_step(engine, spec, blank, name, who, body, at, key)
    return commit_step(engine, engine.store, step, 0, name, who, body)


def fire(
    engine: Engine,
    workflow_id: object,
    trigger: object,
    actor: object,
    payload: object,
    at: object,
    expected_version: object,
    idempotency_key: object,
) -> Step:
    """:meth:`qaflow.Engine.fire`: one command on a workflow, committed."""
    body = command_payload(workflow_id, trigger, actor, payload, idempotency_key)
    # checked above: bound to their types without a call (typing.cast is one in pure Python)
    wid: str = workflow_id  # type: ignore[assignment]
    name: str = trigger  # type: ignore[assignment]
    who: Actor = actor  # type: ignore[assignment]
    key: str | None = idempotency_key  # type: ignore[assignment]
    if name == _MIGRATED:
        raise ValidationError(
            field="trigger",
            value=name,
            expected="a trigger of the machine (Engine.migrate changes policy)",
            quote=True,
        )
    if key is not None:
        found = engine._resend(wid, name, key, who, body)
        if found is not None:
            return found
    store = engine.store
    # an exact SimulationStore's snapshot read without a method call (its load's answer)
    snapshot = load_from(store, wid) if type(store) is _SIMULATION_STORE else store.load(wid)
    version = snapshot.version
    if expected_version is not None:
        check_version(snapshot, expected_version)
    spec = engine._registry.pinned(snapshot)
    step = compute_step(engine, spec, snapshot, name, who, body, at, key)
    step = commit_step(engine, store, step, version, name, who, body)
    if _log_cache.get(_DEBUG, True) and log.isEnabledFor(_DEBUG):
        event = step.event
        log.debug(
            "workflow %s: %s %s -> %s (v%d)",
            wid,
            name,
            event.source,
            event.dest,
            step.snapshot.version,
        )
    return step


def compute_step(
    engine: Engine,
    spec: MachineSpec,
    snapshot: WorkflowSnapshot,
    trigger: str,
    actor: Actor,
    payload: Mapping[str, Any] | None,
    at: object,
    idempotency_key: str | None,
) -> Step:
    """The step of a live command: ``at`` checked against the clock, then the interpreter.

    (:func:`qaflow._compute.live_step` is :func:`~qaflow._compute.compute` given the command
    field by field; ``payload`` is the checked copy the boundary made, or qaflow's own.)
    """
    source = engine.clock
    # a ManualClock (simulation's and tests') read without a Python-level call; a subclass
    # or any other clock is asked
    clock = source._now if type(source) is _MANUAL_CLOCK else source.now()
    body = payload if type(payload) is dict else dict(payload or {})
    when = clock if at is None else check_at(at, "at", clock)
    target = engine._registry.migration_target(snapshot, body) if trigger == _MIGRATED else None
    interpreter = _live_step
    if interpreter is not _LIVE_STEP:  # a test's reference interpreter (see _live_step)
        return interpreter(spec, snapshot, trigger, actor, when, body, idempotency_key, target,
                           engine.directory, lean=engine.simulation)  # fmt: skip
    return live_step(spec, snapshot, trigger, actor, when, body, idempotency_key, target,
                     engine.directory, lean=engine.simulation)  # fmt: skip


def breach_step(
    engine: Engine, snapshot: WorkflowSnapshot, deadline: Deadline, now: datetime
) -> Step:
    """The step a due deadline fires: its breach trigger if it can, else ``deadline_missed``."""
    spec = engine._registry.pinned(snapshot)
    due = deadline.due_at
    last = snapshot.updated_at
    at = last if last is not None and last > due else due  # max(due, last): due if equal
    payload = {"deadline": deadline.name, "deadline_id": deadline.id}
    key = f"breach:{deadline.id}"
    if deadline.breach_trigger:
        try:
            return compute_step(
                engine, spec, snapshot, deadline.breach_trigger, SYSTEM, payload, at, key
            )
        except (TransitionNotAllowed, GuardFailed):
            log.info(
                "workflow %s: breach trigger %s not possible in state %s; recording miss",
                snapshot.workflow_id,
                deadline.breach_trigger,
                snapshot.state,
            )
    return compute_step(engine, spec, snapshot, DEADLINE_MISSED, SYSTEM, payload, at, key)


class Breaches:
    """``engine``'s :func:`breach_step` as the callable :func:`qaflow._tick.run_tick` takes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, snapshot: WorkflowSnapshot, deadline: Deadline, now: datetime) -> Step:
        return breach_step(self.engine, snapshot, deadline, now)


def commit_step(
    engine: Engine,
    store: Store,
    step: Step,
    expected: int,
    trigger: str,
    actor: Actor,
    payload: dict[str, Any],
) -> Step:
    """Commit to ``store`` (the engine's, read once by the caller); a writer that lost a race
    to the same idempotency key gets the first result."""
    try:
        if type(store) is _SIMULATION_STORE:  # its commit itself, called directly
            commit_to(store, step, expected)
        else:
            store.commit(step, expected_version=expected)
    except ConcurrencyError:
        event = step.event
        if event.idempotency_key is None:
            raise
        found = engine._resend(event.workflow_id, trigger, event.idempotency_key, actor, payload)
        if found is None:
            raise
        return found
    if expected == 0 and _log_cache.get(_INFO, True):  # see _log_cache
        log.info("started workflow %s in state %s", step.event.workflow_id, step.snapshot.state)
    return step


def command_payload(
    workflow_id: object, trigger: object, actor: object, payload: object, key: object
) -> dict[str, Any]:
    """Check a caller's command at the boundary; return its payload as a plain dict.

    Every field that goes into the event hash must be valid text or JSON (``_checks``), and
    the system actor is qaflow's own: only ``tick``, for a due deadline, fires as it.
    """
    if isinstance(actor, _ACTOR):
        actor_id, role = actor.id, actor.role
        if not ids_fit(workflow_id, trigger, actor_id, role, key):
            _refuse_ids(workflow_id, trigger, actor_id, role, key)
    else:
        _refuse_ids(workflow_id, trigger, None, None, key)
        raise ValidationError(field="actor", value=actor, expected="an Actor")
    if role == _SYSTEM_ROLE or actor_id == _SYSTEM_ID:
        raise PermissionDenied(
            workflow_id=str(workflow_id),
            trigger=str(trigger),
            actor_id=actor_id,
            role=role,
            allowed_roles=(),
            reason="the system actor is qaflow's own: only tick fires as it, for a due deadline",
        )
    return check_payload(payload)


def _refuse_ids(
    workflow_id: object, trigger: object, actor_id: object, role: object, key: object
) -> None:
    """Raise for the first of a command's ids that does not fit, in the order callers see
    them named (the actor's own are checked only when the actor is an Actor)."""
    check_id("workflow_id", workflow_id)
    check_id("trigger", trigger)
    check_id("idempotency_key", key, optional=True)
    if actor_id is not None or role is not None:
        check_id("actor.id", actor_id)
        check_id("actor.role", role)


def check_version(snapshot: WorkflowSnapshot, expected_version: object) -> None:
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
