"""An in-memory directory of people, teams and services: who holds which role.

The engine asks a directory one question, ``has_role(person_id, role)``, before it lets a
person fire a trigger in a role. Machines ask more: the workflow's
notifications go to "the worker's team manager", so whoever starts a workflow looks the
managers up here and passes their ids in the payload (the engine only ever reads ids from
workflow data, which keeps replay independent of later changes to the directory).

Everything is an opaque id (no names): a person has roles, a team and optionally an
explicit line manager; a team belongs to a service and has a team manager; a service has a
service manager and a head of service. Some roles follow from the structure (whoever
manages a team holds ``team_manager``) and a policy may declare aliases (``moderator`` is
held by anyone who is a CP chair, an IRO, ...), so the directory data never repeats what
the organisation chart already says.

The directory is built once and never changes; load it from a JSON document
(:meth:`InMemoryDirectory.from_json`) or from CSV files (:meth:`InMemoryDirectory.from_csv`).
Bad data (an unknown team, a manager who is not a person, a management cycle) raises
:class:`DirectoryError` naming the offending ids.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from qaflow.errors import QAFlowError

__all__ = [
    "DERIVED_ROLES",
    "DirectoryError",
    "InMemoryDirectory",
    "Person",
    "Service",
    "Team",
    "UnknownPerson",
]

#: Roles a person holds because of the structure, whether or not their record lists them.
DERIVED_ROLES = ("team_manager", "service_manager", "head_of_service")


class DirectoryError(QAFlowError, ValueError):
    """The directory data is inconsistent (unknown reference, duplicate id, cycle)."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"invalid directory: {problem}")


class UnknownPerson(QAFlowError, LookupError):
    """No person with that id is in the directory."""

    def __init__(self, *, person_id: str) -> None:
        self.person_id = person_id
        super().__init__(f"no person with id {person_id!r} in the directory")

    def __str__(self) -> str:  # LookupError would quote the args tuple
        return str(self.args[0])


def _roles(value: Iterable[str] | str) -> tuple[str, ...]:
    """Roles as a sorted tuple of unique names (so a directory survives a JSON round trip);
    text is split on ``;`` or ``,`` (the CSV form)."""
    if isinstance(value, str):
        value = [r.strip() for r in value.replace(",", ";").split(";")]
    roles = set(value)
    for role in roles:
        if not isinstance(role, str):
            raise DirectoryError(f"a role must be text, got {role!r}")
    return tuple(sorted(r for r in roles if r))


def _optional_id(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise DirectoryError(f"an id must be text, got {value!r}")
    return value


def _required_id(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DirectoryError(f"an id must be non-empty text, got {value!r}")
    return value


@attrs.frozen
class Person:
    """A member of staff: their roles, their team and (optionally) an explicit manager.

    ``manager_id`` overrides the manager the structure implies (see
    :meth:`InMemoryDirectory.manager_of`).
    """

    id: str = attrs.field(converter=_required_id)
    roles: tuple[str, ...] = attrs.field(default=(), converter=_roles)
    team_id: str | None = attrs.field(default=None, converter=_optional_id)
    manager_id: str | None = attrs.field(default=None, converter=_optional_id)


@attrs.frozen
class Team:
    """A team: the service it belongs to and its team manager."""

    id: str = attrs.field(converter=_required_id)
    service_id: str | None = attrs.field(default=None, converter=_optional_id)
    manager_id: str | None = attrs.field(default=None, converter=_optional_id)


@attrs.frozen
class Service:
    """A service: its service manager and its head of service."""

    id: str = attrs.field(converter=_required_id)
    manager_id: str | None = attrs.field(default=None, converter=_optional_id)
    head_of_service_id: str | None = attrs.field(default=None, converter=_optional_id)


def _index(kind: str, items: Iterable[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if item.id in out:
            raise DirectoryError(f"{kind} id {item.id!r} is listed twice")
        out[item.id] = item
    return out


class InMemoryDirectory:
    """People, teams and services held in memory; implements the engine's ``Directory``.

    ``aliases`` maps a role to the roles that grant it, e.g.
    ``{"moderator": ["cp_chair", "iro"]}``: anyone holding one of those holds ``moderator``.
    """

    __slots__ = (
        "_aliases",
        "_head_of",
        "_manages_service",
        "_manages_team",
        "_members",
        "_people",
        "_services",
        "_teams",
    )

    def __init__(
        self,
        people: Iterable[Person],
        teams: Iterable[Team] = (),
        services: Iterable[Service] = (),
        *,
        aliases: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self._people: dict[str, Person] = _index("person", people)
        self._teams: dict[str, Team] = _index("team", teams)
        self._services: dict[str, Service] = _index("service", services)
        self._aliases: dict[str, frozenset[str]] = {
            role: frozenset(grants) for role, grants in (aliases or {}).items()
        }
        self._check()
        self._members: dict[str, tuple[str, ...]] = {}
        for person in sorted(self._people.values(), key=lambda p: p.id):
            if person.team_id is not None:
                self._members[person.team_id] = (*self._members.get(person.team_id, ()), person.id)
        self._manages_team = {t.manager_id for t in self._teams.values() if t.manager_id}
        self._manages_service = {s.manager_id for s in self._services.values() if s.manager_id}
        self._head_of = {
            s.head_of_service_id for s in self._services.values() if s.head_of_service_id
        }
        self._check_cycles()

    def __repr__(self) -> str:
        return (
            f"InMemoryDirectory(<{len(self._people)} people, {len(self._teams)} teams, "
            f"{len(self._services)} services>)"
        )

    # --- validation -------------------------------------------------------------------

    def _check(self) -> None:
        def person(pid: str | None, where: str) -> None:
            if pid is not None and pid not in self._people:
                raise DirectoryError(f"{where} names {pid!r}, who is not a person")

        for p in self._people.values():
            if p.team_id is not None and p.team_id not in self._teams:
                raise DirectoryError(f"person {p.id!r} is in unknown team {p.team_id!r}")
            person(p.manager_id, f"person {p.id!r}'s manager")
            if p.manager_id == p.id:
                raise DirectoryError(f"person {p.id!r} is their own manager")
        for t in self._teams.values():
            if t.service_id is not None and t.service_id not in self._services:
                raise DirectoryError(f"team {t.id!r} is in unknown service {t.service_id!r}")
            person(t.manager_id, f"team {t.id!r}'s manager")
        for s in self._services.values():
            person(s.manager_id, f"service {s.id!r}'s manager")
            person(s.head_of_service_id, f"service {s.id!r}'s head of service")
        for role, grants in self._aliases.items():
            if role in grants:
                raise DirectoryError(f"role {role!r} is an alias of itself")

    def _check_cycles(self) -> None:
        for pid in self._people:
            seen = {pid}
            current = self.manager_of(pid)
            while current is not None:
                if current in seen:
                    raise DirectoryError(
                        f"management cycle through {', '.join(map(repr, sorted(seen)))}"
                    )
                seen.add(current)
                current = self.manager_of(current)

    # --- the engine's Directory protocol -----------------------------------------------

    def has_role(self, person_id: str, role: str) -> bool:
        """Whether ``person_id`` holds ``role``: listed, implied by the structure or aliased.

        An unknown person holds no role (the engine then refuses the command).
        """
        person = self._people.get(person_id)
        if person is None:
            return False
        held = self.roles_of(person_id)
        return role in held or bool(self._aliases.get(role, frozenset()) & held)

    # --- lookups ------------------------------------------------------------------------

    def person(self, person_id: str) -> Person:
        """The person with this id (raises :class:`UnknownPerson`)."""
        try:
            return self._people[person_id]
        except KeyError:
            raise UnknownPerson(person_id=person_id) from None

    def __contains__(self, person_id: object) -> bool:
        return person_id in self._people

    def people(self) -> Iterator[Person]:
        """Every person, by id."""
        return iter(sorted(self._people.values(), key=lambda p: p.id))

    def teams(self) -> Iterator[Team]:
        """Every team, by id."""
        return iter(sorted(self._teams.values(), key=lambda t: t.id))

    def services(self) -> Iterator[Service]:
        """Every service, by id."""
        return iter(sorted(self._services.values(), key=lambda s: s.id))

    def team(self, team_id: str) -> Team:
        """The team with this id (raises :class:`DirectoryError` if there is none)."""
        try:
            return self._teams[team_id]
        except KeyError:
            raise DirectoryError(f"no team {team_id!r}") from None

    def roles_of(self, person_id: str) -> frozenset[str]:
        """The roles a person holds directly or through the structure (not through aliases)."""
        person = self.person(person_id)
        derived = {
            "team_manager": person_id in self._manages_team,
            "service_manager": person_id in self._manages_service,
            "head_of_service": person_id in self._head_of,
        }
        return frozenset(person.roles) | {role for role, held in derived.items() if held}

    def team_of(self, person_id: str) -> str | None:
        """The id of the person's team, if they are in one."""
        return self.person(person_id).team_id

    def service_of(self, person_id: str) -> str | None:
        """The id of the service the person's team belongs to, or the one they manage."""
        team_id = self.team_of(person_id)
        if team_id is not None:
            return self._teams[team_id].service_id
        for service in self.services():
            if person_id in (service.manager_id, service.head_of_service_id):
                return service.id
        return None

    def members(self, team_id: str) -> tuple[str, ...]:
        """Ids of the people in a team, sorted."""
        self.team(team_id)
        return self._members.get(team_id, ())

    def holders(self, role: str) -> tuple[str, ...]:
        """Ids of everyone who holds ``role`` (aliases included), sorted."""
        return tuple(p.id for p in self.people() if self.has_role(p.id, role))

    def team_manager_of(self, person_id: str) -> str | None:
        """The manager of the person's team (``None`` if no team or the post is vacant)."""
        team_id = self.team_of(person_id)
        return None if team_id is None else self._teams[team_id].manager_id

    def service_manager_of(self, person_id: str) -> str | None:
        """The manager of the service the person works in."""
        service_id = self.service_of(person_id)
        return None if service_id is None else self._services[service_id].manager_id

    def head_of_service_of(self, person_id: str) -> str | None:
        """The head of the service the person works in."""
        service_id = self.service_of(person_id)
        return None if service_id is None else self._services[service_id].head_of_service_id

    def manager_of(self, person_id: str) -> str | None:
        """The person's line manager.

        An explicit ``manager_id`` wins; otherwise the team manager, or for the team manager
        the service manager, or for the service manager the head of service. ``None`` at
        the top of the structure.
        """
        person = self.person(person_id)
        if person.manager_id is not None:
            return person.manager_id
        chain = (
            self.team_manager_of(person_id),
            self.service_manager_of(person_id),
            self.head_of_service_of(person_id),
        )
        # Start above the person's own post in the chain, if they hold one.
        start = max((i + 1 for i, holder in enumerate(chain) if holder == person_id), default=0)
        return next((c for c in chain[start:] if c is not None and c != person_id), None)

    def management_chain(self, person_id: str) -> dict[str, str]:
        """The managers of a person's case by role, as workflow data keys.

        For a worker: ``{"team_manager_id": ..., "service_manager_id": ...,
        "head_of_service_id": ...}``, leaving out vacant posts. Pass it in the payload that
        starts a workflow so notifications reach "the worker's team manager".
        """
        found = {
            "team_manager_id": self.team_manager_of(person_id),
            "service_manager_id": self.service_manager_of(person_id),
            "head_of_service_id": self.head_of_service_of(person_id),
        }
        return {key: value for key, value in found.items() if value is not None}

    def holder_of(self, role: str) -> str | None:
        """The one person holding an organisation-wide role (e.g. ``assistant_director``).

        ``None`` if nobody holds it; :class:`DirectoryError` if several do, because then
        the caller must choose.
        """
        found = self.holders(role)
        if len(found) > 1:
            raise DirectoryError(f"role {role!r} is held by several people: {', '.join(found)}")
        return found[0] if found else None

    # --- loading and saving -------------------------------------------------------------

    def to_mapping(self) -> dict[str, Any]:
        """The directory as JSON-ready data (the format :meth:`from_mapping` reads)."""
        return {
            "people": [
                {
                    "id": p.id,
                    "roles": sorted(p.roles),
                    "team_id": p.team_id,
                    "manager_id": p.manager_id,
                }
                for p in self.people()
            ],
            "teams": [attrs.asdict(t) for t in self.teams()],
            "services": [attrs.asdict(s) for s in self.services()],
            "aliases": {role: sorted(grants) for role, grants in sorted(self._aliases.items())},
        }

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> InMemoryDirectory:
        """Build from ``{"people": [...], "teams": [...], "services": [...], "aliases": {}}``."""
        if not isinstance(data, Mapping):
            raise DirectoryError("the document must be a JSON object")
        unknown = set(data) - {"people", "teams", "services", "aliases"}
        if unknown:
            raise DirectoryError(f"unknown section(s) {', '.join(map(repr, sorted(unknown)))}")
        try:
            people = [Person(**row) for row in data.get("people", [])]
            teams = [Team(**row) for row in data.get("teams", [])]
            services = [Service(**row) for row in data.get("services", [])]
        except TypeError as error:
            raise DirectoryError(f"a row has an unknown or missing column ({error})") from None
        return cls(people, teams, services, aliases=data.get("aliases") or {})

    @classmethod
    def from_json(cls, text: str) -> InMemoryDirectory:
        """Build from JSON text (see :meth:`from_mapping` for the shape)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise DirectoryError(f"not JSON: {error.msg} at line {error.lineno}") from None
        return cls.from_mapping(data)

    @classmethod
    def load_json(cls, path: str | Path) -> InMemoryDirectory:
        """Build from a JSON file."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    @classmethod
    def from_csv(
        cls,
        people: str | Path | io.TextIOBase,
        teams: str | Path | io.TextIOBase | None = None,
        services: str | Path | io.TextIOBase | None = None,
        *,
        aliases: Mapping[str, Iterable[str]] | None = None,
    ) -> InMemoryDirectory:
        """Build from CSV files (paths or open text streams) with a header row.

        ``people``: ``id,roles,team_id,manager_id`` (roles separated by ``;``);
        ``teams``: ``id,service_id,manager_id``; ``services``:
        ``id,manager_id,head_of_service_id``. Empty cells mean "none".
        """
        return cls(
            [Person(**row) for row in _read_csv(people, ("id", "roles", "team_id", "manager_id"))],
            [Team(**row) for row in _read_csv(teams, ("id", "service_id", "manager_id"))],
            [
                Service(**row)
                for row in _read_csv(services, ("id", "manager_id", "head_of_service_id"))
            ],
            aliases=aliases,
        )


def _read_csv(
    source: str | Path | io.TextIOBase | None, columns: tuple[str, ...]
) -> list[dict[str, str]]:
    if source is None:
        return []
    if isinstance(source, (str, Path)):
        text = Path(source).read_text(encoding="utf-8")
    else:
        text = source.read()
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(reader.fieldnames or ())
    if "id" not in header or set(header) - set(columns):
        raise DirectoryError(
            f"CSV header {', '.join(header) or '(none)'} must be drawn from "
            f"{', '.join(columns)} and include id"
        )
    return [{k: (v or "").strip() for k, v in row.items()} for row in reader]
