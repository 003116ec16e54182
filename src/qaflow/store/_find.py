"""The query behind ``find_workflows``, shared by the SQL stores in their own dialects."""

from __future__ import annotations

from typing import Any

__all__ = ["find_query"]


def find_query(
    *,
    columns: str,
    placeholder: str,
    team_expr: str,
    machine: str | None,
    policy: str | None,
    state: str | None,
    team: str | None,
    overdue_at: object | None,
    after: str | None,
    limit: int,
) -> tuple[str, list[Any]]:
    """The SELECT of workflow rows matching every given filter, in id order, and its arguments.

    ``placeholder`` is the dialect's parameter mark, ``team_expr`` its expression for the
    ``team_id`` data key, and ``overdue_at`` already in the form its deadlines store.
    """
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("machine", machine), ("policy", policy), ("state", state)):
        if value is not None:
            where.append(f"{column} = {placeholder}")
            args.append(value)
    if team is not None:
        where.append(f"{team_expr} = {placeholder}")
        args.append(team)
    if overdue_at is not None:
        where.append(
            "EXISTS (SELECT 1 FROM deadlines d WHERE d.workflow_id = workflows.workflow_id "
            f"AND d.status = 'open' AND d.due_at <= {placeholder})"
        )
        args.append(overdue_at)
    if after is not None:
        where.append(f"workflow_id > {placeholder}")
        args.append(after)
    sql = f"SELECT {columns} FROM workflows"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return f"{sql} ORDER BY workflow_id LIMIT {placeholder}", [*args, max(limit, 0)]
