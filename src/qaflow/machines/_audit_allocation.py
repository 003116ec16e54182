"""Helping a host allocate audits under a policy: the ``allocate`` payload and the rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from qaflow.allocation import AllocationRules
from qaflow.directory import InMemoryDirectory
from qaflow.errors import ValidationError
from qaflow.machines._audit_parts import _id_fields
from qaflow.procedure import AuditPolicy

__all__ = ["allocation_payload", "allocation_rules"]


def allocation_payload(
    policy: AuditPolicy,
    *,
    child_id: str,
    worker_id: str,
    auditor_id: str,
    directory: InMemoryDirectory,
    allocated_at: datetime | None = None,
    practice_week: bool | None = None,
    **extra_ids: str,
) -> dict[str, Any]:
    """The ``allocate`` payload for one audit, with every notified role's id looked up.

    ``directory`` supplies the teams and managers (a host's own directory needs its
    ``team_of``, ``service_of``, ``management_chain`` and ``holder_of``): the case's team is
    the worker's, the managers are the worker's chain, organisation-wide roles (assistant
    director, PSQA, ...) their single holders. Only the ids the policy's ``allocate`` accepts
    are kept: under a policy that notifies no service manager (BK) the worker's chain gives
    no ``service_manager_id``.

    BX-AUD-01 compares the auditor's team with the case's. An auditor with no team of their
    own (a service manager) is given the service they manage as ``auditor_team_id``; under a
    policy that does not compare them, an auditor with neither is allocated without one.
    ``extra_ids`` (``staying_together_worker_id=...``, ``auditor_team_id=...``) are passed as
    given and override what was looked up. Raises :class:`~qaflow.errors.ValidationError`
    when the worker has no team, or the auditor neither team nor service, and ``extra_ids``
    does not give one.
    """
    team = extra_ids.get("team_id") or directory.team_of(worker_id)
    auditor_team = (
        extra_ids.get("auditor_team_id")
        or directory.team_of(auditor_id)
        or directory.service_of(auditor_id)
    )
    for key, found, whose in (
        ("team_id", team, f"the team of {worker_id!r}"),
        ("auditor_team_id", auditor_team, f"the team or service of {auditor_id!r}"),
    ):
        if not found and (key == "team_id" or policy.auditor_from_other_team):
            raise ValidationError(
                field=key, value=found, expected=f"{whose} in the directory, or given as {key}=..."
            )
    payload: dict[str, Any] = {
        "child_id": child_id,
        "worker_id": worker_id,
        "auditor_id": auditor_id,
        "team_id": team,
    }
    if auditor_team:
        payload["auditor_team_id"] = auditor_team
    payload.update(directory.management_chain(worker_id))
    for role in policy.roles():
        key = f"{role}_id"
        if key not in payload:
            holder = directory.holder_of(role)
            if holder is not None:
                payload[key] = holder
    accepted = {f.name for f in _id_fields(policy)}
    payload = {k: v for k, v in payload.items() if k in accepted}
    if allocated_at is not None:
        payload["allocated_at"] = allocated_at.astimezone(UTC).isoformat()
    if practice_week is not None and policy.practice_week_action is not None:
        payload["practice_week"] = practice_week
    payload.update(extra_ids)
    return payload


def allocation_rules(policy: AuditPolicy) -> AllocationRules:
    """The constraints :func:`qaflow.allocation.allocate_audits` applies under ``policy``.

    Read from the policy's allocation rules: whether the auditor must be from another team
    than the case's (and the clause that says so), how long before an auditor and a worker
    are paired again, and the clause of one audit per auditor a month.
    """
    return AllocationRules(
        exclude_own_team=policy.auditor_from_other_team,
        own_team_clause=policy.other_team_clause,
        pair_window_months=policy.pair_window_months,
        audits_per_month_clause=policy.monthly_clause,
    )
