"""``qaflow copy``: move every workflow, with its whole history, from one store to another."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import click

from qaflow.cli._common import fail_cleanly
from qaflow.cli._main import main
from qaflow.cli._progress import progress_bar
from qaflow.errors import IntegrityError, ValidationError
from qaflow.records import Step

_CHUNK = 100


def copy_workflows(
    source: Any,
    target: Any,
    *,
    chunk: int = _CHUNK,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Copy every workflow of engine ``source`` into store ``target``; return (workflows, events).

    Each workflow's events are replayed on the source's machines, which re-derives its
    snapshot, deadlines, notifications and tasks exactly as the engine first wrote them; a
    replayed event that differs from the stored one stops the copy (the source fails
    verification). Workflows are written ``chunk`` at a time with ``commit_many``, so each
    chunk lands whole or not at all. Delivered notifications and completed tasks are marked
    so in the target with their original times, and the webhook deliverer's retry state
    (table ``webhook_deliveries``: attempts, next attempt, given up) is copied row for row
    and read back. ``progress(done, total)`` follows each chunk written (workflows).
    """
    from qaflow.service._delivery_log import delivery_rows, restore_delivery_rows

    ids = list(source.store.workflow_ids())
    present = set(target.workflow_ids())
    clash = sorted(present.intersection(ids))
    if clash:
        raise ValidationError(
            field="--to", value=clash[0], expected="a database holding none of the workflows"
        )
    deliveries = delivery_rows(source.store)
    held = {row[0] for row in delivery_rows(target)}
    taken = sorted(held.intersection(row[0] for row in deliveries))
    if taken:
        raise ValidationError(
            field="--to",
            value=taken[0],
            expected="a database holding no webhook retry state of the notifications",
        )
    events = 0
    for start in range(0, len(ids), chunk):
        steps: list[Step] = []
        for wid in ids[start : start + chunk]:
            stored = source.store.events(wid)
            replayed = source.replay_steps(wid)
            for n, (event, step) in enumerate(zip(stored, replayed, strict=True), start=1):
                if step.event != event:
                    raise IntegrityError(
                        workflow_id=wid, seq=n, problem="replay differs from the stored event"
                    )
            steps.extend(replayed)
            events += len(stored)
        target.commit_many(steps)
        if progress is not None:
            progress(min(start + chunk, len(ids)), len(ids))
    sent, done = _marks(source.store)
    for at, group in _by_time(sent):
        target.mark_sent(group, at)
    for at, group in _by_time(done):
        target.complete_tasks(group, at)
    if not present and target.counts() != source.store.counts():
        raise IntegrityError(workflow_id="*", seq=None, problem="row counts differ after the copy")
    if deliveries:
        restore_delivery_rows(target, deliveries)
        if not set(deliveries) <= set(delivery_rows(target)):
            raise IntegrityError(
                workflow_id="*", seq=None, problem="webhook retry state differs after the copy"
            )
    return len(ids), events


def _marks(store: Any) -> tuple[dict[str, datetime], dict[str, datetime]]:
    """When each delivered notification was sent and each completed task was done."""
    rows = store.dump()
    return _last_column(rows["notifications"]), _last_column(rows["tasks"])


def _last_column(rows: list[tuple[Any, ...]]) -> dict[str, datetime]:
    out: dict[str, datetime] = {}
    for row in rows:
        mark = row[-1]
        if mark is not None:
            out[row[0]] = datetime.fromisoformat(mark) if isinstance(mark, str) else mark
    return out


def _by_time(marks: dict[str, datetime]) -> Iterator[tuple[datetime, list[str]]]:
    groups: dict[datetime, list[str]] = {}
    for rid, at in marks.items():
        groups.setdefault(at, []).append(rid)
    yield from groups.items()


@main.command()
@click.option("--from", "source_url", required=True, help="Source store URL or SQLite file.")
@click.option("--to", "target_url", required=True, help="Target store URL or SQLite file.")
@fail_cleanly
def copy(source_url: str, target_url: str) -> None:
    """Copy every workflow to another store.

    Writes --to: every workflow with its full history, verified on arrival, and the webhook
    deliverer's retry state (outbox deliver). Stores are named
    as by --db: a SQLite file, sqlite:///PATH or postgresql://USER@HOST/DB.
    The target must hold none of the source's workflows.
    """
    from qaflow.engine import Engine
    from qaflow.registry import shipped_specs
    from qaflow.service._delivery_log import delivery_rows
    from qaflow.store import open_store

    source = open_store(source_url, create=False, field="--from")
    try:
        target = open_store(target_url, field="--to")
        try:
            engine = Engine(source, shipped_specs())
            with progress_bar("copying workflows", unit="copied") as progress:
                workflows, events = copy_workflows(engine, target, progress=progress)
            retries = len(delivery_rows(source))
            checked = Engine(target, shipped_specs())
            ids = list(source.workflow_ids())
            verified = 0
            with progress_bar("verifying the copy", unit="checked") as progress:
                for n, wid in enumerate(ids, 1):
                    verified += checked.verify(wid)
                    progress(n, len(ids))
        finally:
            target.close()
    finally:
        source.close()
    click.echo(
        f"copied {workflows} workflow(s), {events} event(s), {retries} webhook retry state(s); "
        f"verified {verified} on arrival"
    )
