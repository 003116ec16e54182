"""A made-up council for simulation: people, teams, services and cases as opaque ids.

:func:`generate_council` makes up a council: services, teams, managers, practitioners, their
cases (each a child in need, on a child protection plan or in care), foster carers, CP
chairs, IROs, fostering IROs, PSQA and business support, all as opaque ids (``"T01"``,
``"P017"``, ``"C0042"``), with an :class:`~qaflow.directory.InMemoryDirectory` that says who
holds which role.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Literal

import attrs

from qaflow.directory import InMemoryDirectory, Person, Service, Team
from qaflow.errors import ValidationError
from qaflow.policies import shipped_audit_procedures

__all__ = ["CaseStatus", "Council", "CouncilCase", "generate_council"]

CaseStatus = Literal["cin", "cp", "cla"]
"""A case's status: child in need, child protection plan, child we care for."""

# --- the council ------------------------------------------------------------------------------


@attrs.frozen
class CouncilCase:
    """An open case: the child, the allocated practitioner and team, and its status."""

    child_id: str
    worker_id: str
    team_id: str
    status: CaseStatus


@attrs.frozen(kw_only=True)
class Council:
    """A generated council: every person, team, service and case as an opaque id.

    ``directory`` answers the engine's role checks and the managers of each practitioner;
    it is left out of equality (two councils of the same seed are equal).
    """

    seed: int
    services: tuple[str, ...]
    teams: tuple[str, ...]
    team_managers: tuple[str, ...]
    service_managers: tuple[str, ...]
    heads_of_service: tuple[str, ...]
    practitioners: tuple[str, ...]
    cases: tuple[CouncilCase, ...]
    foster_carers: tuple[str, ...]
    cp_chairs: tuple[str, ...]
    iros: tuple[str, ...]
    firos: tuple[str, ...]
    consultant_social_workers: tuple[str, ...]
    fostering_team: str
    fostering_manager: str
    supervising_social_workers: tuple[str, ...]
    assistant_director: str
    director: str
    psqa: str
    business_support: str
    directory: InMemoryDirectory = attrs.field(eq=False, repr=False)

    def summary(self) -> dict[str, int]:
        """How many of each there are (for result records and the CLI)."""
        return {
            "services": len(self.services),
            "teams": len(self.teams),
            "managers": len(self.team_managers) + len(self.service_managers),
            "practitioners": len(self.practitioners),
            "cases": len(self.cases),
            "foster_carers": len(self.foster_carers),
        }


def _positive(name: str, value: object, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise ValidationError(field=name, value=value, expected=f"a whole number in 1..{high}")
    return value


def _status_weights(value: object) -> list[tuple[CaseStatus, float]]:
    expected = "(status, weight) pairs over 'cin', 'cp', 'cla' with a weight > 0"
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValidationError(field="status_weights", value=value, expected=expected)
    pairs: list[tuple[CaseStatus, float]] = []
    for item in value:
        if not isinstance(item, tuple) or len(item) != 2:
            raise ValidationError(field="status_weights", value=item, expected=expected)
        status, weight = item
        if (
            status not in ("cin", "cp", "cla")
            or isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not math.isfinite(weight)
            or weight < 0
        ):
            raise ValidationError(field="status_weights", value=item, expected=expected)
        pairs.append((status, float(weight)))
    if not any(w > 0 for _, w in pairs):
        raise ValidationError(field="status_weights", value=value, expected=expected)
    return pairs


def _moderator_roles() -> tuple[str, ...]:
    """Every role a shipped moderation policy may allocate a moderation to (catalogue order)."""
    roles: dict[str, None] = {}
    for procedure in shipped_audit_procedures():
        roles.update(dict.fromkeys(procedure.moderation.moderator_roles))
    return tuple(roles)


def generate_council(
    seed: int,
    *,
    teams: int = 6,
    practitioners_per_team: int = 6,
    cases_per_practitioner: int = 4,
    teams_per_service: int = 3,
    foster_carers: int | None = None,
    cp_chairs: int = 2,
    iros: int = 2,
    firos: int = 1,
    status_weights: Sequence[tuple[CaseStatus, float]] = (
        ("cin", 0.45),
        ("cp", 0.30),
        ("cla", 0.25),
    ),
    moderator_roles: Sequence[str] | None = None,
) -> Council:
    """Make up a council of opaque ids, reproducibly from ``seed``.

    Teams ``T01..`` are grouped into services ``SV1..`` of ``teams_per_service``, each team
    with a manager ``TM01..`` and ``practitioners_per_team`` practitioners ``P001..`` who hold
    ``cases_per_practitioner`` cases ``C0001..`` each (a child in need, on a plan or in care,
    drawn from ``seed``). Each service has a service manager ``SM1..`` and a head of service
    ``HS1..``; above them an assistant director ``AD1`` (also the form's deputy director) and
    a director ``DR1``. A fostering team ``TF1`` (manager ``FM1``, supervising social workers
    ``SS1..``) supports ``foster_carers`` carers ``FC001..`` (default two per team). CP chairs
    ``CH1..``, IROs ``IR1..``, fostering IROs ``FI1..``, consultant social workers ``CS1..``,
    PSQA ``QA1`` and business support ``BS1`` complete it. ``status_weights`` weights the
    cases' statuses. Managers hold ``auditor``, and ``moderator_roles`` (default: every role
    a shipped moderation policy names, e.g. BX-MOD-01's) hold ``moderator``, through
    directory aliases.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValidationError(field="seed", value=seed, expected="an int")
    n_teams = _positive("teams", teams, 99)
    per_team = _positive("practitioners_per_team", practitioners_per_team, 999 // n_teams)
    per_worker = _positive(
        "cases_per_practitioner", cases_per_practitioner, 9999 // (n_teams * per_team)
    )
    per_service = _positive("teams_per_service", teams_per_service, 99)
    carers = 2 * n_teams if foster_carers is None else foster_carers
    carers = _positive("foster_carers", carers, 999)
    n_chairs = _positive("cp_chairs", cp_chairs, 9)
    n_iros = _positive("iros", iros, 9)
    n_firos = _positive("firos", firos, 9)
    rng = random.Random(f"council:{seed}")

    n_services = math.ceil(n_teams / per_service)
    services = tuple(f"SV{i + 1}" for i in range(n_services))
    service_managers = tuple(f"SM{i + 1}" for i in range(n_services))
    heads = tuple(f"HS{i + 1}" for i in range(n_services))
    team_ids = tuple(f"T{i + 1:02d}" for i in range(n_teams))
    team_managers = tuple(f"TM{i + 1:02d}" for i in range(n_teams))
    people: list[Person] = []
    team_rows = [
        Team(tid, services[i // per_service], team_managers[i]) for i, tid in enumerate(team_ids)
    ]
    practitioners: list[str] = []
    cases: list[CouncilCase] = []
    status_pairs = _status_weights(status_weights)
    statuses = [s for s, _ in status_pairs]
    weights = [w for _, w in status_pairs]
    if moderator_roles is None:
        moderator_roles = _moderator_roles()
    elif isinstance(moderator_roles, str) or not all(
        isinstance(r, str) and r for r in moderator_roles
    ):
        raise ValidationError(
            field="moderator_roles", value=moderator_roles, expected="a sequence of role names"
        )
    for i, tid in enumerate(team_ids):
        people.append(Person(team_managers[i], (), tid))
        for _ in range(per_team):
            pid = f"P{len(practitioners) + 1:03d}"
            practitioners.append(pid)
            people.append(Person(pid, ("worker", "social_worker"), tid))
            for _ in range(per_worker):
                status = rng.choices(statuses, weights)[0]
                cases.append(CouncilCase(f"C{len(cases) + 1:04d}", pid, tid, status))
    fostering_team, fostering_manager = "TF1", "FM1"
    team_rows.append(Team(fostering_team, services[0], fostering_manager))
    people.append(Person(fostering_manager, ("fostering_manager",), fostering_team))
    supervising = tuple(f"SS{i + 1}" for i in range(max(1, carers // 8)))
    people.extend(Person(s, ("supervising_social_worker",), fostering_team) for s in supervising)
    people.extend(Person(s, ()) for s in (*service_managers, *heads))
    assistant_director, director = "AD1", "DR1"
    people.append(Person(assistant_director, ("assistant_director", "deputy_director")))
    people.append(Person(director, ("director", "director_of_childrens_services")))
    chairs = tuple(f"CH{i + 1}" for i in range(n_chairs))
    iro_ids = tuple(f"IR{i + 1}" for i in range(n_iros))
    firo_ids = tuple(f"FI{i + 1}" for i in range(n_firos))
    consultants = tuple(f"CS{i + 1}" for i in range(2))
    people.extend(Person(c, ("cp_chair",)) for c in chairs)
    people.extend(Person(c, ("iro",)) for c in iro_ids)
    people.extend(Person(c, ("firo",)) for c in firo_ids)
    people.extend(Person(c, ("consultant_social_worker",)) for c in consultants)
    psqa, business = "QA1", "BS1"
    people.append(Person(psqa, ("psqa",)))
    people.append(Person(business, ("business_support",)))
    service_rows = [Service(s, service_managers[i], heads[i]) for i, s in enumerate(services)]
    directory = InMemoryDirectory(
        people,
        team_rows,
        service_rows,
        aliases={
            "auditor": ("team_manager", "service_manager"),
            "moderator": tuple(moderator_roles),
        },
    )
    return Council(
        seed=seed,
        services=services,
        teams=team_ids,
        team_managers=team_managers,
        service_managers=service_managers,
        heads_of_service=heads,
        practitioners=tuple(practitioners),
        cases=tuple(cases),
        foster_carers=tuple(f"FC{i + 1:03d}" for i in range(carers)),
        cp_chairs=chairs,
        iros=iro_ids,
        firos=firo_ids,
        consultant_social_workers=consultants,
        fostering_team=fostering_team,
        fostering_manager=fostering_manager,
        supervising_social_workers=supervising,
        assistant_director=assistant_director,
        director=director,
        psqa=psqa,
        business_support=business,
        directory=directory,
    )
