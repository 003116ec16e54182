"""Who may fire what: the role, directory, holder and system-actor checks of a command.

Every check only reads its arguments and raises :class:`~qaflow.errors.PermissionDenied`
(or :class:`~qaflow.errors.TransitionNotAllowed` for a miss recorded in a terminal state);
nothing here writes. The engine's pure :func:`qaflow._compute.compute` calls them before any
effect runs, so a refused command writes nothing.
"""

from __future__ import annotations

from typing import Protocol

from qaflow.errors import PermissionDenied, ValidationError, shown
from qaflow.records import SYSTEM, Actor, WorkflowSnapshot
from qaflow.spec import TransitionSpec

__all__ = ["Directory", "authorise", "check_holder", "check_system_miss", "is_breach"]


class Directory(Protocol):
    """Who holds which role: supplied by the host system, which alone knows its staff."""

    def has_role(self, person_id: str, role: str) -> bool: ...


def authorise(
    snapshot: WorkflowSnapshot,
    trigger: str,
    actor: Actor,
    roles: frozenset[str],
    directory: Directory | None,
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
    if directory is not None and not directory.has_role(actor.id, actor.role):
        raise PermissionDenied(
            workflow_id=snapshot.workflow_id,
            trigger=trigger,
            actor_id=actor.id,
            role=actor.role,
            allowed_roles=roles,
            reason=f"the directory does not list them as {shown(actor.role)}",
        )


def check_holder(snapshot: WorkflowSnapshot, transition: TransitionSpec, actor: Actor) -> None:
    """Refuse anyone but the person the workflow records under the transition's ``actor_key``.

    (A transition without ``actor_key`` is open to every holder of its roles.)
    """
    key = transition.actor_key
    if key is not None and snapshot.data.get(key) != actor.id:
        raise PermissionDenied(
            workflow_id=snapshot.workflow_id,
            trigger=transition.trigger,
            actor_id=actor.id,
            role=actor.role,
            allowed_roles=transition.roles,
            reason=f"only the person recorded as {key!r} may",
        )


def is_breach(trigger: str, actor: Actor, breach_triggers: frozenset[str]) -> bool:
    """Whether a command is a deadline's breach fired by ``tick`` (exempt from role checks)."""
    return actor == SYSTEM and trigger in breach_triggers


def check_system_miss(
    snapshot: WorkflowSnapshot, trigger: str, actor: Actor, deadline_id: object
) -> None:
    """A recorded miss comes only from the system actor, for an open deadline of the workflow."""
    if actor != SYSTEM:
        raise PermissionDenied(
            workflow_id=snapshot.workflow_id,
            trigger=trigger,
            actor_id=actor.id,
            role=actor.role,
            allowed_roles=(SYSTEM.role,),
        )
    if all(d.id != deadline_id for d in snapshot.deadlines):
        raise ValidationError(
            field="deadline_id",
            value=deadline_id,
            expected="the id of an open deadline of this workflow",
        )
