"""Row helpers of the SQLite store: ids bound in SQL, timestamps, and rows decoded to records."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from qaflow.errors import ValidationError
from qaflow.records import Actor, Deadline, Event, Notification
from qaflow.store._sqlite_schema import guarded

__all__ = [
    "Inspection",
    "deadline_row",
    "dt",
    "event_row",
    "notification_row",
    "text_id",
    "ts",
]


def text_id(workflow_id: object, field: str = "workflow_id") -> str:
    """An id to bind in SQL: text SQLite can store (no lone surrogates)."""
    if not isinstance(workflow_id, str):
        raise ValidationError(field=field, value=workflow_id, expected="text")
    try:
        workflow_id.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            field=field, value=workflow_id, expected="text encodable as UTF-8"
        ) from None
    return workflow_id


def ts(value: datetime) -> str:
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def event_row(row: tuple[Any, ...], actors: dict[tuple[str, str], Actor] | None = None) -> Event:
    """An event from its row; ``actors`` shares one (validated) Actor per person and role
    across the rows of one read (issue 14: re-validating it was a cost of every event)."""
    (wid, seq, trigger, source, dest, actor_id, role, at, payload, prev_hash, hash_, key) = row
    actor = None if actors is None else actors.get((actor_id, role))
    if actor is None:
        actor = Actor(actor_id, role)
        if actors is not None:
            actors[(actor_id, role)] = actor
    return Event(
        wid, seq, trigger, source, dest, actor, dt(at), json.loads(payload), prev_hash, hash_, key
    )


def deadline_row(row: tuple[Any, ...]) -> Deadline:
    did, wid, name, state, opened, due, rule, breach, clause, notify, seq = row
    return Deadline(
        id=did,
        workflow_id=wid,
        name=name,
        state=state,
        opened_at=dt(opened),
        due_at=dt(due),
        rule=rule,
        breach_trigger=breach,
        clause=clause,
        notify=tuple(json.loads(notify)),
        opened_seq=seq,
    )


def notification_row(row: tuple[Any, ...]) -> Notification:
    nid, wid, seq, role, rid, reason, clause, created = row
    return Notification(
        id=nid,
        workflow_id=wid,
        seq=seq,
        recipient_role=role,
        recipient_id=rid,
        reason=reason,
        clause=clause,
        created_at=dt(created),
    )


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
