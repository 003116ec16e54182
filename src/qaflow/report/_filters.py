"""Checking the report's filters (``policy``, ``team``, ``service``) before anything is read.

A value the report cannot honour is refused with a :class:`~qaflow.errors.ValidationError`
naming the argument (or the CLI flag, via ``names``) and what is accepted.
"""

from __future__ import annotations

from qaflow.directory import InMemoryDirectory
from qaflow.errors import ValidationError
from qaflow.report._policies import ReportPolicies
from qaflow.report._read import Period
from qaflow.report._records import Filters

__all__ = ["check_filters", "check_team_seen"]


def _choices(values: list[str]) -> str:
    return "one of " + ", ".join(values) if values else "none known"


def check_filters(
    policies: ReportPolicies,
    filters: Filters,
    directory: InMemoryDirectory | None,
    *,
    names: tuple[str, str, str],
) -> Filters:
    """``filters`` if the report can honour them; ``names`` are what the caller calls them."""
    policy_name, team_name, service_name = names
    if filters.policy is not None:
        known = sorted({p.name for p in policies.audits})
        if filters.policy not in known:
            raise ValidationError(
                field=policy_name, value=filters.policy, expected=_choices(known), quote=True
            )
    if directory is not None and filters.team is not None:
        teams = sorted(t.id for t in directory.teams())
        if filters.team not in teams:
            raise ValidationError(
                field=team_name, value=filters.team, expected=_choices(teams), quote=True
            )
    if filters.service is not None:
        if directory is None:
            raise ValidationError(
                field=service_name,
                value=filters.service,
                expected="a directory placing teams in services (--directory)",
                quote=True,
            )
        services = sorted(s.id for s in directory.services())
        if filters.service not in services:
            raise ValidationError(
                field=service_name, value=filters.service, expected=_choices(services), quote=True
            )
    return filters


def check_team_seen(p: Period, team_name: str) -> None:
    """Without a directory, a team is known only by the work that records it: refuse a team
    no workflow of the period names (listing those that do)."""
    team = p.filters.team
    if team is None or p.directory is not None or team in p.teams_seen:
        return
    raise ValidationError(
        field=team_name,
        value=team,
        expected="a team with work in the period: " + _choices(sorted(p.teams_seen)),
        quote=True,
    )
