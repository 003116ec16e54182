"""Per-case access: which workflows a caller may see, and so read, list and act on.

Roles say what a person may do to a workflow; access says which workflows
they may touch at all. The service checks access before every read or command on one
workflow and filters every list, and answers a workflow the caller may not see exactly as
one that does not exist (404, the same body), so the answer leaks nothing about it.

The default rule, :class:`CaseAccess`, lets a person see a workflow when any of these holds:

1. they hold a role that sees every case (by default the operator role and ``qa_lead``);
2. they are named in it: their id is the value of one of its data's ``*_id`` fields (the
   raiser, the auditor, the worker, the team manager recorded for the case, ...);
3. its data's ``team_id`` is their team, a team they manage, or a team of a service they
   manage or head (allocation by the Directory's structure);
4. they manage someone named in it (that person's team manager, service manager or head of
   service);
5. they may act on it now: they hold a role one of its current state's triggers names,
   and the trigger is not kept for someone else (``actor_key``: "only the raiser");
   so the stage holder of an escalation sees it, another raiser's colleague does not;
6. they have acted on it before (an event of its history is theirs);
7. an explicit grant names them for it (``grants``: person id -> workflow ids).

A host with its own rule passes any object with the :class:`AccessRule` method instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from qaflow.directory import InMemoryDirectory
from qaflow.errors import ValidationError
from qaflow.records import Event, WorkflowSnapshot
from qaflow.spec import MachineSpec

__all__ = ["SEE_ALL_ROLES", "AccessRule", "CaseAccess"]

#: Roles that see every case unless the host says otherwise: the host system's integration
#: account and the QA lead the pages are for.
SEE_ALL_ROLES = frozenset({"qaflow_operator", "qa_lead"})

History = Callable[[str], Sequence[Event]]


class AccessRule(Protocol):
    """Decides whether a person may see a workflow (and so read, list and act on it)."""

    def sees_all(self, person_id: str) -> bool:
        """Whether the person sees every workflow (store-wide operations need this)."""
        ...

    def may_see(
        self,
        person_id: str,
        snapshot: WorkflowSnapshot,
        spec: MachineSpec | None,
        history: History,
    ) -> bool:
        """``history(workflow_id)`` reads the workflow's events, for rules that need them."""
        ...


class CaseAccess:
    """The default rule (see the module docstring): role, naming, team, management, holder,
    past actor, or an explicit grant."""

    def __init__(
        self,
        directory: InMemoryDirectory,
        *,
        see_all_roles: Iterable[str] = SEE_ALL_ROLES,
        grants: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.directory = directory
        self.see_all_roles = frozenset(see_all_roles)
        self.grants = {person: frozenset(ids) for person, ids in (grants or {}).items()}

    @classmethod
    def from_mapping(cls, directory: InMemoryDirectory, data: Mapping[str, Any]) -> CaseAccess:
        """From ``{"see_all_roles": [role, ...], "grants": {person_id: [workflow_id, ...]}}``
        (both optional; without ``see_all_roles`` the default roles see every case)."""
        if not isinstance(data, Mapping) or set(data) - {"see_all_roles", "grants"}:
            raise ValidationError(
                field="access", value=None, expected="an object with see_all_roles and grants"
            )
        roles = data.get("see_all_roles", sorted(SEE_ALL_ROLES))
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ValidationError(field="see_all_roles", value=None, expected="a list of roles")
        grants = data.get("grants", {})
        if not isinstance(grants, Mapping) or not all(
            isinstance(ids, list) and all(isinstance(i, str) for i in ids)
            for ids in grants.values()
        ):
            raise ValidationError(
                field="grants", value=None, expected="person ids, each with a list of workflow ids"
            )
        unknown = sorted(p for p in grants if p not in directory)
        if unknown:
            raise ValidationError(
                field="grants", value=unknown[0], expected="people in the directory"
            )
        return cls(directory, see_all_roles=roles, grants=grants)

    @classmethod
    def load_json(cls, directory: InMemoryDirectory, path: str | Path) -> CaseAccess:
        """Read :meth:`from_mapping`'s shape from a JSON file (``qaflow serve --access``)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValidationError(
                field="--access", value=str(path), expected="an existing access file"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValidationError(
                field="--access", value=str(path), expected="a JSON access file"
            ) from None
        return cls.from_mapping(directory, data)

    def sees_all(self, person_id: str) -> bool:
        """Whether the person sees every case (lists then need no per-row check)."""
        return any(self.directory.has_role(person_id, r) for r in self.see_all_roles)

    def may_see(
        self,
        person_id: str,
        snapshot: WorkflowSnapshot,
        spec: MachineSpec | None,
        history: History,
    ) -> bool:
        if person_id not in self.directory:
            return False
        named = _named(snapshot)  # cheapest first: most callers are named in their cases
        if person_id in named or snapshot.workflow_id in self.grants.get(person_id, ()):
            return True
        if self.sees_all(person_id) or self._team_access(person_id, snapshot):
            return True
        if any(self._manages(person_id, other) for other in named):
            return True
        if spec is not None and self._holds_a_current_role(person_id, snapshot, spec):
            return True
        return any(e.actor.id == person_id for e in history(snapshot.workflow_id))

    def _team_access(self, person_id: str, snapshot: WorkflowSnapshot) -> bool:
        team_id = snapshot.data.get("team_id")
        if not isinstance(team_id, str):
            return False
        directory = self.directory
        if directory.team_of(person_id) == team_id:
            return True
        teams = {t.id: t for t in directory.teams()}
        team = teams.get(team_id)
        if team is None:
            return False
        if team.manager_id == person_id:
            return True
        services = {s.id: s for s in directory.services()}
        service = services.get(team.service_id) if team.service_id else None
        return service is not None and person_id in (service.manager_id, service.head_of_service_id)

    def _manages(self, person_id: str, other: str) -> bool:
        if other not in self.directory or other == person_id:
            return False
        return person_id in self.directory.management_chain(other).values()

    def _holds_a_current_role(
        self, person_id: str, snapshot: WorkflowSnapshot, spec: MachineSpec
    ) -> bool:
        if snapshot.state not in spec.state_names:
            return False
        roles: set[str] = set()
        for trigger in spec.allowed_triggers(snapshot.state):
            for transition in spec.candidates(snapshot.state, trigger):
                key = transition.actor_key
                if key is None or snapshot.data.get(key) == person_id:
                    roles.update(transition.roles)
        roles.discard("system")
        return any(self.directory.has_role(person_id, r) for r in roles)


def _named(snapshot: WorkflowSnapshot) -> frozenset[str]:
    """The ids a workflow's data names in its top-level ``*_id`` fields."""
    return frozenset(
        value
        for key, value in snapshot.data.items()
        if key.endswith("_id") and key != "team_id" and isinstance(value, str)
    )
