"""Whose work a caller's QA report may count: every team's, or only the teams they manage.

The report lists no case, but its counts are still about cases; a count over a handful of
audits can point at one worker or one child. So the report follows per-case access
(``_access``) at the level of the report's own filters (``team``, ``service``):

* a caller who sees every case (:meth:`AccessRule.sees_all`: by default ``qa_lead`` and the
  operator role) gets the store-wide report, or any team's or service's they ask for;
* a team manager gets their team's report; a service manager or head of service gets their
  service's, or one of its teams'. Each of them sees every workflow that report counts
  (the team's audits by ``team_id``, the escalations its members raised, as they manage
  the raiser), so the counts tell them nothing they could not read case by case. Without
  ``team`` or ``service`` the report is of the one team or service they manage; one who
  manages several names which (a 422 lists them);
* anyone else (a worker, a raiser, an auditor) is refused with 403 ``report-scope``: a
  practitioner sees only some of their team's cases, so a team's counts would count cases
  hidden from them.

The anonymous reader of ``insecure_local`` (loopback only) sees every case, as elsewhere.
"""

from __future__ import annotations

from qaflow.directory import InMemoryDirectory
from qaflow.errors import QAFlowError, ValidationError, shown_value
from qaflow.service._access import AccessRule

__all__ = ["ReportScopeRefused", "managed_units", "report_filters"]


class ReportScopeRefused(QAFlowError, PermissionError):
    """The caller may not have the report they asked for (HTTP 403): it would count cases
    they may not see. ``teams`` and ``services`` are the ids they may report on."""

    def __init__(
        self, *, person_id: str, teams: tuple[str, ...], services: tuple[str, ...]
    ) -> None:
        self.person_id = person_id
        self.teams = teams
        self.services = services
        if teams or services:
            allowed = ", ".join(
                [
                    *(f"team {shown_value(t)}" for t in teams),
                    *(f"service {shown_value(s)}" for s in services),
                ]
            )
            what = f"only the report of {allowed}"
        else:
            what = "no report: they manage no team or service"
        super().__init__(
            f"person {shown_value(person_id)} may have {what}; a store-wide report needs a "
            "role that sees every case"
        )


def managed_units(
    directory: InMemoryDirectory, person_id: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The teams and services whose every case ``person_id`` sees by management: the
    services they manage or head, and the teams they manage or that lie in those services."""
    services = tuple(
        s.id for s in directory.services() if person_id in (s.manager_id, s.head_of_service_id)
    )
    teams = tuple(
        t.id for t in directory.teams() if t.manager_id == person_id or t.service_id in services
    )
    return teams, services


def report_filters(
    access: AccessRule,
    directory: InMemoryDirectory,
    person_id: str | None,
    team: str | None,
    service: str | None,
) -> tuple[str | None, str | None]:
    """The ``(team, service)`` filters of the report ``person_id`` asked for with ``team``
    and ``service``, limited to what they may see (see the module docstring); raises
    :class:`ReportScopeRefused` or, for a manager of several units who named none,
    :class:`~qaflow.errors.ValidationError`."""
    if person_id is None or access.sees_all(person_id):
        return team, service
    teams, services = managed_units(directory, person_id)
    refused = ReportScopeRefused(person_id=person_id, teams=teams, services=services)
    if not teams and not services:
        raise refused
    if team not in (None, *teams) or service not in (None, *services):
        raise refused
    if team is not None or service is not None:
        return team, service
    if len(services) == 1 and all(directory.team(t).service_id == services[0] for t in teams):
        return None, services[0]
    if not services and len(teams) == 1:
        return teams[0], None
    choices = [*(f"team={t}" for t in teams), *(f"service={s}" for s in services)]
    raise ValidationError(
        field="team",
        value=None,
        expected="a team or service to report on, one of " + ", ".join(choices),
    )
