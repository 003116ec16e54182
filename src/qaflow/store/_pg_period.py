"""PostgresStore's period reads (the QA report): one query per table, as SQLite's."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from qaflow.calendar import ensure_aware
from qaflow.records import Event, Notification, Task, WorkflowSnapshot
from qaflow.store._period_rows import PeriodDeadline, period_order, team_group_order
from qaflow.store._pg_sql import event_from, same, snapshot_from, task_from
from qaflow.store._rows import EVENT_COLS, NOTE_COLS, SNAP_COLS, TASK_COLS, notification_from

__all__ = ["PeriodReads"]

_PERIOD = "created_at < %(end)s AND updated_at >= %(start)s"


_DEADLINE_READ = (
    "SELECT d.workflow_id, d.name, d.clause, d.opened_at, d.due_at, d.opened_seq, d.status, "
    "d.closed_at, d.closed_seq, e.trigger, e.source, e.dest, e.actor_id, e.actor_role, "
    "e.payload, (SELECT w.machine FROM workflows w WHERE w.workflow_id = d.workflow_id) "
    "FROM deadlines d LEFT JOIN events e ON d.status = 'closed' "
    "AND e.workflow_id = d.workflow_id AND e.seq = d.closed_seq WHERE "
)
"""Each row's machine by key (a subquery per row): a join lets the planner hash a machine's
every workflow, which grows with the store's age."""


_TEXT_KEY = (
    "CASE WHEN jsonb_typeof((data::jsonb) -> '{key}') = 'string' THEN (data::jsonb) ->> '{key}' END"
)


def _only(machines: Iterable[str] | None, args: dict[str, Any]) -> str:
    """`` AND machine = ANY(…)`` for ``machines`` (added to ``args``), or ""."""
    if machines is None:
        return ""
    args["machines"] = sorted(set(machines))
    return " AND machine = ANY(%(machines)s)"


class PeriodReads:
    """Reads of one period: workflows touched in it, the others counted, its tasks and outbox."""

    def _select(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def period_workflows(
        self, start: datetime, end: datetime, machines: Iterable[str] | None = None
    ) -> Iterator[tuple[WorkflowSnapshot, list[Event]]]:
        """Reads the workflows touched since ``start`` (of ``machines``, if given) and their
        events before ``end``."""
        args: dict[str, Any] = {
            "start": ensure_aware(start, "start"),
            "end": ensure_aware(end, "end"),
        }
        where = _PERIOD + _only(machines, args)
        snaps = self._select(
            f"SELECT {SNAP_COLS} FROM workflows WHERE {where} ORDER BY workflow_id", args
        )
        # The events of the workflows just read, by key: a subquery on workflows again let
        # the planner (misjudging the two correlated time ranges) hash the workflows and
        # walk every event of the store.
        rows = self._select(
            f"SELECT {EVENT_COLS} FROM events WHERE workflow_id = ANY(%(ids)s) "
            "AND at < %(end)s ORDER BY workflow_id, seq",
            {"ids": [row[0] for row in snaps], "end": args["end"]},
        )
        by_workflow: dict[str, list[Event]] = {}
        for row in rows:
            by_workflow.setdefault(row[0], []).append(event_from(row))
        for row in snaps:
            yield snapshot_from(row), by_workflow.get(row[0], [])

    def period_snapshots(
        self, start: datetime, end: datetime, machines: Iterable[str] | None = None
    ) -> list[WorkflowSnapshot]:
        """Snapshots a period's compliance needs, in ``snapshots()`` order: of the workflows
        created by ``end`` (or undated), those updated since ``start`` (or undated) and those
        quiet since before it that hold an open deadline (as SQLite's)."""
        args: dict[str, Any] = {
            "start": ensure_aware(start, "start"),
            "end": ensure_aware(end, "end"),
        }
        only = _only(machines, args)
        created = "(created_at IS NULL OR created_at <= %(end)s)"
        rows = self._select(
            f"SELECT {SNAP_COLS} FROM workflows WHERE (updated_at >= %(start)s OR "
            f"updated_at IS NULL) AND {created}{only} UNION ALL "
            f"SELECT {SNAP_COLS} FROM workflows WHERE workflow_id IN "
            "(SELECT workflow_id FROM deadlines WHERE status = 'open') "
            f"AND updated_at < %(start)s AND {created}{only} ORDER BY workflow_id",
            args,
        )
        return [snapshot_from(row) for row in rows]

    def period_deadlines(
        self, start: datetime, end: datetime, machines: Iterable[str] | None = None
    ) -> list[PeriodDeadline]:
        """The deadline rows a period's compliance counts, with their closing events (as
        SQLite's)."""
        args = {"start": ensure_aware(start, "start"), "end": ensure_aware(end, "end")}
        wanted = None if machines is None else set(machines)
        rows = self._select(
            f"{_DEADLINE_READ}d.closed_at >= %(start)s AND d.opened_at <= %(end)s "
            f"UNION ALL {_DEADLINE_READ}d.status = 'open' AND d.opened_at <= %(end)s",
            args,
        )
        return sorted(
            (
                PeriodDeadline(*row[:-1])
                for row in rows
                if row[-1] is not None and (wanted is None or row[-1] in wanted)
            ),
            key=period_order,
        )

    def events_after(self, after: dict[str, int], end: datetime) -> list[tuple[str, str]]:
        """``(workflow_id, trigger)`` of each event later than ``end`` among those numbered
        after ``after[workflow_id]`` (as SQLite's): each workflow searched by key."""
        if not after:
            return []
        pairs = sorted(after.items())
        rows = self._select(
            "SELECT e.workflow_id, e.trigger FROM unnest(%(ids)s::text[], %(after)s::int[]) "
            "AS w(id, after) JOIN events e ON e.workflow_id = w.id AND e.seq > w.after "
            "WHERE e.at > %(end)s",
            {
                "ids": [p[0] for p in pairs],
                "after": [p[1] for p in pairs],
                "end": ensure_aware(end, "end"),
            },
        )
        return sorted((str(w), str(t)) for w, t in rows)

    def quiet_workflows(
        self, start: datetime, end: datetime
    ) -> Iterator[tuple[str, str, str, int]]:
        yield from self._select(
            "SELECT machine, policy, state, count(*) FROM workflows "
            "WHERE updated_at < %s AND created_at < %s GROUP BY machine, policy, state "
            "ORDER BY machine, policy, state",
            (ensure_aware(start, "start"), ensure_aware(end, "end")),
        )

    def quiet_teams(
        self, start: datetime, end: datetime
    ) -> list[tuple[str, str, str, str | None, str | None, int]]:
        """As :meth:`quiet_workflows`, by the text ``team_id`` and ``raiser_id`` (as SQLite's)."""
        rows = self._select(
            f"SELECT machine, policy, state, {_TEXT_KEY.format(key='team_id')}, "
            f"{_TEXT_KEY.format(key='raiser_id')}, count(*) FROM workflows "
            "WHERE updated_at < %s AND created_at < %s GROUP BY 1, 2, 3, 4, 5",
            (ensure_aware(start, "start"), ensure_aware(end, "end")),
        )
        return sorted(((m, p, s, t, r, int(n)) for m, p, s, t, r, n in rows), key=team_group_order)

    def tasks_created(self, start: datetime, end: datetime) -> list[tuple[Task, datetime | None]]:
        rows = self._select(
            f"SELECT {TASK_COLS}, done_at FROM tasks "
            "WHERE created_at >= %s AND created_at < %s ORDER BY created_at, id",
            (ensure_aware(start, "start"), ensure_aware(end, "end")),
        )
        return [(task_from(r[:-1]), r[-1]) for r in rows]

    def notifications_created(self, start: datetime, end: datetime) -> list[Notification]:
        rows = self._select(
            f"SELECT {NOTE_COLS} FROM notifications "
            "WHERE created_at >= %s AND created_at < %s ORDER BY created_at, id",
            (ensure_aware(start, "start"), ensure_aware(end, "end")),
        )
        return [notification_from(r, same) for r in rows]
