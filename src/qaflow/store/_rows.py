"""The rows both SQL stores write and read: one column list, encoder and decoder per table.

SQLite stores times as ISO text and PostgreSQL as ``timestamptz``: each store passes its
``out`` (datetime to the value it binds) and ``back`` (stored value to datetime), and its
placeholder mark; everything else about a row, its columns and their order, is here once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from qaflow.errors import ValidationError
from qaflow.records import Actor, Deadline, Event, Notification, Step, Task, WorkflowSnapshot
from qaflow.store._codec import deadlines_from_json

__all__ = [
    "CLOSE_DEADLINE",
    "DEADLINE_COLS",
    "EVENT_COLS",
    "NOTE_COLS",
    "SNAP_COLS",
    "TASK_COLS",
    "DerivedRows",
    "advance_sql",
    "advance_values",
    "canonical_text",
    "closing_rows",
    "deadline_from",
    "deadline_rows",
    "derived_by_workflow",
    "event_from",
    "event_values",
    "insert_sql",
    "note_rows",
    "notification_from",
    "snapshot_from",
    "snapshot_values",
    "sorted_json",
    "task_from",
    "task_rows",
    "tasks_sql",
    "text_id",
]

Out = Callable[[datetime], Any]
Back = Callable[[Any], datetime]

SNAP_COLS = (
    "workflow_id, machine, policy, policy_version, state, version, created_at, updated_at, "
    "last_hash, data, deadlines, fingerprint"
)
EVENT_COLS = (
    "workflow_id, seq, trigger, source, dest, actor_id, actor_role, at, payload, prev_hash, "
    "hash, idempotency_key"
)
DEADLINE_COLS = (
    "id, workflow_id, name, state, opened_at, due_at, rule, breach_trigger, clause, notify, "
    "opened_seq"
)
NOTE_COLS = "id, workflow_id, seq, recipient_role, recipient_id, reason, clause, created_at"
TASK_COLS = "id, workflow_id, seq, kind, owner_role, owner_id, due_at, clause, created_at"
CLOSE_DEADLINE = (
    "UPDATE deadlines SET status = %s, closed_at = %s, closed_seq = %s "
    "WHERE id = %s AND status = 'open'"
)
"""Close or breach an open deadline, from a :func:`closing_rows` row (``%s`` marks)."""


DerivedRows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]
"""One workflow's stored deadline, notification and task rows, undecoded (for ``verify``)."""


def derived_by_workflow(tables: list[list[tuple[Any, ...]]]) -> dict[str, DerivedRows]:
    """The deadline, notification and task rows of many workflows (``tables``, in that
    order, each row's second column its workflow id) grouped by workflow; a workflow with
    no rows is absent."""
    out: dict[str, DerivedRows] = {}
    for k, rows in enumerate(tables):
        for row in rows:
            mine = out.get(row[1])
            if mine is None:
                mine = out[row[1]] = ([], [], [])
            mine[k].append(row)
    return out


def insert_sql(table: str, columns: str, mark: str, *, status: str | None = None) -> str:
    """``INSERT INTO table (columns) VALUES (mark, …)`` (with a literal ``status``)."""
    marks = ", ".join([mark] * (columns.count(",") + 1))
    if status is not None:
        return f"INSERT INTO {table} ({columns}, status) VALUES ({marks}, '{status}')"
    return f"INSERT INTO {table} ({columns}) VALUES ({marks})"


def advance_sql(mark: str) -> str:
    """Move a workflow's snapshot on if it is still at the expected version (the values are
    :func:`advance_values`; no row changes when the version moved)."""
    return (
        f"UPDATE workflows SET state = {mark}, version = {mark}, updated_at = {mark}, "
        f"last_hash = {mark}, data = {mark}, deadlines = {mark}, policy = {mark}, "
        f"policy_version = {mark}, fingerprint = {mark} "
        f"WHERE workflow_id = {mark} AND version = {mark}"
    )


def tasks_sql(mark: str, workflow_id: str | None, open_only: bool) -> tuple[str, list[str]]:
    """The query and arguments listing tasks, of one workflow or all, open ones or all."""
    sql = f"SELECT {TASK_COLS} FROM tasks WHERE 1=1"
    args: list[str] = []
    if workflow_id is not None:
        sql += f" AND workflow_id = {mark}"
        args.append(workflow_id)
    if open_only:
        sql += " AND done_at IS NULL"
    return sql + " ORDER BY created_at, id", args


def text_id(value: object, field: str = "workflow_id") -> str:
    """An id to bind in SQL: text both databases can store (UTF-8, no lone surrogates)."""
    if not isinstance(value, str):
        raise ValidationError(field=field, value=value, expected="text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            field=field, value=value, expected="text encodable as UTF-8"
        ) from None
    return value


# --- writing --------------------------------------------------------------------------------


def snapshot_values(
    snap: WorkflowSnapshot, created: Any, updated: Any, data: str, deadlines: str
) -> tuple[Any, ...]:
    """A new workflow's row, in :data:`SNAP_COLS` order (times in the store's form)."""
    return (
        snap.workflow_id,
        snap.machine,
        snap.policy,
        snap.policy_version,
        snap.state,
        snap.version,
        created,
        updated,
        snap.last_hash,
        data,
        deadlines,
        snap.fingerprint,
    )


def advance_values(
    snap: WorkflowSnapshot, updated: Any, data: str, deadlines: str, expected: int
) -> tuple[Any, ...]:
    """The values of :func:`advance_sql` for ``snap``, expected at version ``expected``."""
    return (
        snap.state,
        snap.version,
        updated,
        snap.last_hash,
        data,
        deadlines,
        snap.policy,
        snap.policy_version,
        snap.fingerprint,
        snap.workflow_id,
        expected,
    )


sorted_json: Callable[[Any], str] = json.JSONEncoder(sort_keys=True).encode
"""``json.dumps(value, sort_keys=True)``, byte for byte, without building a new encoder per
call (``json.dumps`` does for any non-default option; a store writes two per command)."""


canonical_text: Callable[[Any], str] = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode
"""``records.canonical_json`` (the hashing form: sorted keys, no spaces, UTF-8 kept), with
one encoder built once. An event's payload is stored in this form, so the replay fold can
hash the stored text itself once it has proven it canonical (:mod:`qaflow._fold`)."""


def event_values(event: Event, at: Any) -> tuple[Any, ...]:
    """The event's row (``at`` already in the store's form; the payload in the canonical
    form its hash was computed over, :data:`canonical_text`)."""
    return (
        event.workflow_id,
        event.seq,
        event.trigger,
        event.source,
        event.dest,
        event.actor.id,
        event.actor.role,
        at,
        canonical_text(event.payload),
        event.prev_hash,
        event.hash,
        event.idempotency_key,
    )


def deadline_rows(step: Step, out: Out) -> list[tuple[Any, ...]]:
    """The rows of the deadlines ``step`` opens (their status is written as 'open')."""
    return [
        (
            d.id,
            d.workflow_id,
            d.name,
            d.state,
            out(d.opened_at),
            out(d.due_at),
            d.rule,
            d.breach_trigger,
            d.clause,
            json.dumps(list(d.notify)),
            d.opened_seq,
        )
        for d in step.opened
    ]


def closing_rows(step: Step, at: Any) -> list[tuple[Any, ...]]:
    """``(status, closed_at, closed_seq, id)`` of each deadline ``step`` closes or breaches."""
    seq = step.event.seq
    return [("closed", at, seq, i) for i in step.closed] + [
        ("breached", at, seq, i) for i in step.breached
    ]


def note_rows(step: Step, out: Out) -> list[tuple[Any, ...]]:
    return [
        (
            n.id,
            n.workflow_id,
            n.seq,
            n.recipient_role,
            n.recipient_id,
            n.reason,
            n.clause,
            out(n.created_at),
        )
        for n in step.notifications
    ]


def task_rows(step: Step, out: Out) -> list[tuple[Any, ...]]:
    return [
        (
            t.id,
            t.workflow_id,
            t.seq,
            t.kind,
            t.owner_role,
            t.owner_id,
            out(t.due_at) if t.due_at else None,
            t.clause,
            out(t.created_at),
        )
        for t in step.tasks
    ]


# --- reading --------------------------------------------------------------------------------


def snapshot_from(row: tuple[Any, ...], back: Back) -> WorkflowSnapshot:
    wid, machine, policy, pver, state, version, created, updated, last, data, dls, spec = row
    return WorkflowSnapshot(
        workflow_id=wid,
        machine=machine,
        policy=policy,
        policy_version=pver,
        state=state,
        data=json.loads(data),
        version=version,
        created_at=back(created),
        updated_at=back(updated),
        last_hash=last,
        deadlines=deadlines_from_json(dls),
        fingerprint=spec or "",
    )


def event_from(
    row: tuple[Any, ...], back: Back, actors: dict[tuple[str, str], Actor] | None = None
) -> Event:
    """An event from its row; ``actors`` shares one (validated) Actor per person and role
    across the rows of one read (issue 14: re-validating it was a cost of every event)."""
    (wid, seq, trigger, source, dest, actor_id, role, at, payload, prev_hash, hash_, key) = row
    actor = None if actors is None else actors.get((actor_id, role))
    if actor is None:
        actor = Actor(actor_id, role)
        if actors is not None:
            actors[(actor_id, role)] = actor
    return Event(
        wid, seq, trigger, source, dest, actor, back(at), json.loads(payload), prev_hash, hash_, key
    )


def deadline_from(row: tuple[Any, ...], back: Back) -> Deadline:
    did, wid, name, state, opened, due, rule, breach, clause, notify, seq = row
    return Deadline(
        id=did,
        workflow_id=wid,
        name=name,
        state=state,
        opened_at=back(opened),
        due_at=back(due),
        rule=rule,
        breach_trigger=breach,
        clause=clause,
        notify=tuple(json.loads(notify)),
        opened_seq=seq,
    )


def notification_from(row: tuple[Any, ...], back: Back) -> Notification:
    nid, wid, seq, role, rid, reason, clause, created = row
    return Notification(
        id=nid,
        workflow_id=wid,
        seq=seq,
        recipient_role=role,
        recipient_id=rid,
        reason=reason,
        clause=clause,
        created_at=back(created),
    )


def task_from(row: tuple[Any, ...], back: Back) -> Task:
    tid, wid, seq, kind, role, owner, due, clause, created = row
    return Task(tid, wid, seq, kind, role, owner, back(due) if due else None, clause, back(created))
