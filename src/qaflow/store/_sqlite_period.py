"""SQLiteStore's period reads (the QA report, issue 14): one query per table, in SQL.

A mixin so the store module stays readable; :class:`~qaflow.store.SQLiteStore` provides
the connection and the row decoders declared here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from qaflow.calendar import ensure_aware
from qaflow.records import Actor, Event, Notification, Task, WorkflowSnapshot
from qaflow.store._period_rows import PeriodDeadline, period_order, team_group_order
from qaflow.store._sqlite_rows import dt, task_row, text_id, ts
from qaflow.store._sqlite_schema import guarded

__all__ = ["PeriodReads"]


_CHUNK = 8000
"""(workflow, seq) pairs bound per ``events_after`` query at most: two parameters each, and
never more than the build's limit allows (32,766 since SQLite 3.32, 999 before)."""

_DEADLINE_READ = (
    "SELECT d.workflow_id, d.name, d.clause, d.opened_at, d.due_at, d.opened_seq, d.status, "
    "d.closed_at, d.closed_seq, e.trigger, e.source, e.dest, e.actor_id, e.actor_role, "
    "e.payload FROM deadlines d JOIN workflows w ON w.workflow_id = d.workflow_id "
    "LEFT JOIN events e ON d.status = 'closed' AND e.workflow_id = d.workflow_id "
    "AND e.seq = d.closed_seq WHERE "
)


_TEXT_KEY = "CASE WHEN json_type(data, '$.{key}') = 'text' THEN json_extract(data, '$.{key}') END"


def _deadline(row: tuple[Any, ...]) -> PeriodDeadline:
    """A period deadline row with its times decoded (SQLite keeps them as ISO text)."""
    wid, name, clause, opened, due, seq, status, closed, *rest = row
    return PeriodDeadline(
        wid, name, clause, dt(opened), dt(due), seq, status, dt(closed) if closed else None, *rest
    )


def _only(machines: Iterable[str] | None, args: dict[str, str], table: str = "") -> str:
    """`` AND +machine IN (…)`` for ``machines`` (their names added to ``args``), or "".

    The ``+`` keeps the planner on the period's updated_at range: the machine index would
    walk every workflow of a machine, which grows with the store's age."""
    if machines is None:
        return ""
    names = sorted(set(machines))
    args.update({f"m{i}": name for i, name in enumerate(names)})
    marks = ", ".join(f":m{i}" for i in range(len(names)))
    return f" AND +{table}machine IN ({marks})"


class PeriodReads:
    """Reads of one period: workflows touched in it, the others counted, its tasks and outbox."""

    conn: sqlite3.Connection
    _SNAP_COLS: str
    _EVENT_COLS: str
    _TASK_COLS: str
    _NOTE_COLS: str

    def _snapshot(self, row: tuple[Any, ...]) -> WorkflowSnapshot:
        raise NotImplementedError

    @staticmethod
    def _event(row: tuple[Any, ...], actors: dict[tuple[str, str], Actor] | None = None) -> Event:
        raise NotImplementedError

    @staticmethod
    def _notification(row: tuple[Any, ...]) -> Notification:
        raise NotImplementedError

    _PERIOD = "created_at < :end AND updated_at >= :start"

    def period_workflows(
        self, start: datetime, end: datetime, machines: Iterable[str] | None = None
    ) -> Iterator[tuple[WorkflowSnapshot, list[Event]]]:
        """Reads the workflows touched since ``start`` (of ``machines``, if given) and their
        events before ``end``."""
        args: dict[str, str] = {
            "start": ts(ensure_aware(start, "start")),
            "end": ts(ensure_aware(end, "end")),
        }
        where = self._PERIOD + _only(machines, args)
        # Sorted here, not in SQL: an ORDER BY workflow_id would lead the planner to walk
        # the whole table in key order instead of the updated_at index's range.
        snaps = sorted(
            self.conn.execute(f"SELECT {self._SNAP_COLS} FROM workflows WHERE {where}", args)
        )
        rows = self.conn.execute(
            f"SELECT {self._EVENT_COLS} FROM events WHERE at < :end AND workflow_id IN "
            f"(SELECT workflow_id FROM workflows WHERE {where}) ORDER BY workflow_id, seq",
            args,
        ).fetchall()
        by_workflow: dict[str, list[Event]] = {}
        actors: dict[tuple[str, str], Actor] = {}
        for row in rows:
            by_workflow.setdefault(row[0], []).append(self._event(row, actors))
        for row in snaps:
            yield self._snapshot(row), by_workflow.get(row[0], [])

    def period_snapshots(
        self, start: datetime, end: datetime, machines: Iterable[str] | None = None
    ) -> list[WorkflowSnapshot]:
        """Snapshots a period's compliance needs, in ``snapshots()`` order: of the workflows
        created by ``end`` (or undated), those updated since ``start`` (or undated) and those
        quiet since before it that hold an open deadline (not in the Store protocol:
        :func:`qaflow.compliance.instances` uses it when the store has it)."""
        args: dict[str, str] = {
            "start": ts(ensure_aware(start, "start")),
            "end": ts(ensure_aware(end, "end")),
        }
        only = _only(machines, args)
        created = "(created_at IS NULL OR created_at <= :end)"
        rows = self.conn.execute(
            f"SELECT {self._SNAP_COLS} FROM workflows WHERE (updated_at >= :start OR "
            f"updated_at IS NULL) AND {created}{only} UNION ALL "
            f"SELECT {self._SNAP_COLS} FROM workflows WHERE workflow_id IN "
            "(SELECT workflow_id FROM deadlines WHERE status = 'open') "
            f"AND updated_at < :start AND {created}{only}",
            args,
        ).fetchall()
        return [self._snapshot(row) for row in sorted(rows)]

    def period_deadlines(
        self, start: datetime, end: datetime, machines: Iterable[str] | None = None
    ) -> list[PeriodDeadline]:
        """The deadline rows a period's compliance counts (of ``machines``' workflows, if
        given), each with the event that closed it: those opened by ``end`` and settled
        since ``start`` (closed or breached then: in the period, or open at its end and
        settled later) or still open (not in the Store protocol: :mod:`qaflow.compliance`
        uses it when the store has it). Two index range searches, one on ``closed_at`` and
        one on open rows; the closing events are read by key."""
        args: dict[str, str] = {
            "start": ts(ensure_aware(start, "start")),
            "end": ts(ensure_aware(end, "end")),
        }
        only = _only(machines, args, "w.")
        rows = self.conn.execute(
            f"{_DEADLINE_READ}d.closed_at >= :start AND d.opened_at <= :end{only} UNION ALL "
            f"{_DEADLINE_READ}d.status = 'open' AND d.opened_at <= :end{only}",
            args,
        ).fetchall()
        return sorted((_deadline(row) for row in rows), key=period_order)

    def events_after(self, after: dict[str, int], end: datetime) -> list[tuple[str, str]]:
        """``(workflow_id, trigger)`` of each event later than ``end`` among those numbered
        after ``after[workflow_id]`` (not in the Store protocol: compliance checks with it
        what a workflow did after a period; each workflow is searched by key from its seq)."""
        moment = ts(ensure_aware(end, "end"))
        pairs = sorted(after.items())
        found: list[tuple[str, str]] = []
        size = min(_CHUNK, (self.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - 1) // 2)
        for first in range(0, len(pairs), size):
            chunk = pairs[first : first + size]
            values = ", ".join("(?, ?)" for _ in chunk)
            found.extend(
                self.conn.execute(
                    f"WITH w(id, after) AS (VALUES {values}) SELECT e.workflow_id, e.trigger "
                    "FROM w JOIN events e ON e.workflow_id = w.id AND e.seq > w.after "
                    "WHERE e.at > ?",
                    [*(v for pair in chunk for v in pair), moment],
                ).fetchall()
            )
        return sorted(found)

    def quiet_workflows(
        self, start: datetime, end: datetime
    ) -> Iterator[tuple[str, str, str, int]]:
        yield from self.conn.execute(
            "SELECT machine, policy, state, count(*) FROM workflows "
            "WHERE updated_at < ? AND created_at < ? GROUP BY machine, policy, state "
            "ORDER BY machine, policy, state",
            (ts(ensure_aware(start, "start")), ts(ensure_aware(end, "end"))),
        ).fetchall()

    def quiet_teams(
        self, start: datetime, end: datetime
    ) -> list[tuple[str, str, str, str | None, str | None, int]]:
        """As :meth:`quiet_workflows`, by the ``team_id`` and ``raiser_id`` the data records
        as text too (``None`` otherwise), so a team- or service-scoped report can count the
        quiet workflows it keeps (not in the Store protocol: the report uses it)."""
        rows = self.conn.execute(
            f"SELECT machine, policy, state, {_TEXT_KEY.format(key='team_id')}, "
            f"{_TEXT_KEY.format(key='raiser_id')}, count(*) FROM workflows "
            "WHERE updated_at < ? AND created_at < ? GROUP BY 1, 2, 3, 4, 5",
            (ts(ensure_aware(start, "start")), ts(ensure_aware(end, "end"))),
        ).fetchall()
        return sorted(rows, key=team_group_order)

    def tasks_created(self, start: datetime, end: datetime) -> list[tuple[Task, datetime | None]]:
        rows = self.conn.execute(
            f"SELECT {self._TASK_COLS}, done_at FROM tasks "
            "WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id",
            (ts(ensure_aware(start, "start")), ts(ensure_aware(end, "end"))),
        ).fetchall()
        return [(task_row(r[:-1]), dt(r[-1]) if r[-1] else None) for r in rows]

    def notifications_created(self, start: datetime, end: datetime) -> list[Notification]:
        rows = self.conn.execute(
            f"SELECT {self._NOTE_COLS} FROM notifications "
            "WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id",
            (ts(ensure_aware(start, "start")), ts(ensure_aware(end, "end"))),
        ).fetchall()
        return [self._notification(r) for r in rows]

    @guarded
    def events_page(
        self, workflow_id: str, after: int = 0, limit: int | None = None
    ) -> list[Event]:
        """Events numbered after ``after``, at most ``limit`` of them (reads one page only;
        not in the Store protocol: ``qaflow history`` uses it when the store has it)."""
        rows = self.conn.execute(
            f"SELECT {self._EVENT_COLS} FROM events WHERE workflow_id = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (text_id(workflow_id), after, -1 if limit is None else limit),
        ).fetchall()
        actors: dict[tuple[str, str], Actor] = {}
        return [self._event(r, actors) for r in rows]
