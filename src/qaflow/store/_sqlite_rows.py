"""Row helpers of the SQLite store: ids bound in SQL, timestamps, and rows decoded to records."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from qaflow.records import Actor, Deadline, Event, Notification, Task
from qaflow.store._rows import deadline_from, event_from, notification_from, task_from, text_id
from qaflow.store._sqlite_schema import guarded

__all__ = [
    "Inspection",
    "deadline_row",
    "dt",
    "event_row",
    "notification_row",
    "task_row",
    "text_id",
    "ts",
]


def ts(value: datetime) -> str:
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def event_row(row: tuple[Any, ...], actors: dict[tuple[str, str], Actor] | None = None) -> Event:
    """An event from its SQLite row (see :func:`qaflow.store._rows.event_from`)."""
    return event_from(row, dt, actors)


def deadline_row(row: tuple[Any, ...]) -> Deadline:
    return deadline_from(row, dt)


def notification_row(row: tuple[Any, ...]) -> Notification:
    return notification_from(row, dt)


def task_row(row: tuple[Any, ...]) -> Task:
    return task_from(row, dt)


class Inspection:
    """Whole-store views for tests and tools (row counts, every row): read-only helpers."""

    conn: sqlite3.Connection
    db: sqlite_utils.Database
    path: str

    @guarded
    def counts(self) -> dict[str, int]:
        """Row counts per table (for tests that check a refused command wrote nothing)."""
        out = {
            t: self.db[t].count
            for t in ("workflows", "events", "deadlines", "notifications", "tasks")
        }
        out["open_deadlines"] = self.conn.execute(
            "SELECT count(*) FROM deadlines WHERE status = 'open'"
        ).fetchone()[0]
        return out

    @guarded
    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, sorted: the store's whole content, for comparisons."""
        return {
            t: sorted(self.conn.execute(f"SELECT * FROM [{t}]").fetchall(), key=repr)
            for t in ("workflows", "events", "deadlines", "notifications", "tasks", "anchor")
        }
