"""``find_workflows``: its public signature once, and the query the SQL stores share.

Every store inherits :class:`FindWorkflows` (the keyword signature the :class:`Store`
protocol documents) and implements ``_find(filters)``; the SQL stores build their SELECT
with :func:`find_query` in their own dialects.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from qaflow.records import WorkflowSnapshot

__all__ = ["Filters", "FindWorkflows", "find_query"]


class Filters(NamedTuple):
    """The filters of one ``find_workflows`` call (see :meth:`Store.find_workflows`)."""

    machine: str | None
    policy: str | None
    state: str | None
    team: str | None
    overdue_at: datetime | None
    after: str | None
    limit: int


class FindWorkflows:
    """The public ``find_workflows``; a store supplies ``_find``."""

    def find_workflows(
        self,
        *,
        machine: str | None = None,
        policy: str | None = None,
        state: str | None = None,
        team: str | None = None,
        overdue_at: datetime | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[WorkflowSnapshot]:
        """Snapshots matching every filter given, by workflow id, at most ``limit`` of them
        (see :meth:`qaflow.store.Store.find_workflows`). Reads only."""
        return self._find(Filters(machine, policy, state, team, overdue_at, after, limit))

    def _find(self, filters: Filters) -> list[WorkflowSnapshot]:
        raise NotImplementedError


def find_query(
    filters: Filters, *, columns: str, placeholder: str, team_expr: str, overdue_at: object
) -> tuple[str, list[Any]]:
    """The SELECT of workflow rows matching every given filter, in id order, and its arguments.

    ``placeholder`` is the dialect's parameter mark, ``team_expr`` its expression for the
    ``team_id`` data key, and ``overdue_at`` the filter's time already in the form its
    deadlines store (``None``: no such filter).
    """
    where: list[str] = []
    args: list[Any] = []
    for column, value in (
        ("machine", filters.machine),
        ("policy", filters.policy),
        ("state", filters.state),
    ):
        if value is not None:
            where.append(f"{column} = {placeholder}")
            args.append(value)
    if filters.team is not None:
        where.append(f"{team_expr} = {placeholder}")
        args.append(filters.team)
    if overdue_at is not None:
        where.append(
            "EXISTS (SELECT 1 FROM deadlines d WHERE d.workflow_id = workflows.workflow_id "
            f"AND d.status = 'open' AND d.due_at <= {placeholder})"
        )
        args.append(overdue_at)
    if filters.after is not None:
        where.append(f"workflow_id > {placeholder}")
        args.append(filters.after)
    sql = f"SELECT {columns} FROM workflows"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return f"{sql} ORDER BY workflow_id LIMIT {placeholder}", [*args, max(filters.limit, 0)]
