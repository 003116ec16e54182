"""The row a period's deadline read returns (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

__all__ = ["PeriodDeadline"]


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
