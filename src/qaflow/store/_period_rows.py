"""The row a period's deadline read returns (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

__all__ = ["PeriodDeadline", "period_order", "team_group_order"]


class PeriodDeadline(NamedTuple):
    """A deadline row of a period's compliance, with the event that closed it, if any.

    ``trigger``, ``source``, ``dest``, ``actor_id``, ``actor_role`` and ``payload`` (its JSON
    text, decoded only where a rule's condition reads it) are the closing event's for a row
    ``closed`` by a command, else ``None``.
    """

    workflow_id: str
    name: str
    clause: str | None
    opened_at: datetime
    due_at: datetime
    opened_seq: int
    status: str
    closed_at: datetime | None
    closed_seq: int | None
    trigger: str | None
    source: str | None
    dest: str | None
    actor_id: str | None
    actor_role: str | None
    payload: str | None


def period_order(row: PeriodDeadline) -> tuple[str, int, str]:
    """The order both SQL stores return period deadline rows in: by workflow, then as opened
    (sorted in Python: an ORDER BY would move SQLite's planner off the period's index)."""
    return (row.workflow_id, row.opened_seq, row.name)


def team_group_order(row: tuple[str, str, str, str | None, str | None, int]) -> tuple[Any, ...]:
    """The order both SQL stores return quiet team groups in (``None`` first)."""
    return tuple((value is not None, value or "") for value in row[:5])
