"""``qaflow list``, ``start``, ``fire`` and ``outbox ack``: the library's commands, as JSON.

These are library calls on the database file, not HTTP: the person and role are given on
the command line (``--as``, ``--role``), as a host system passes an ``Actor`` to the engine;
``--directory`` checks them against a directory file. Payloads are JSON, from the argument
or from standard input (``-``); results are JSON on standard output.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from qaflow.cli._common import DB_OPTION, fail_cleanly, open_engine, parse_now
from qaflow.cli._main import main
from qaflow.cli._ops import outbox
from qaflow.errors import ValidationError
from qaflow.records import Actor


def _payload(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    raw = sys.stdin.read() if text == "-" else text
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # malformed, or nested past what the parser takes
        raise ValidationError(field="PAYLOAD", value=None, expected="a JSON object") from None
    if not isinstance(value, dict):
        raise ValidationError(field="PAYLOAD", value=None, expected="a JSON object")
    return value


def _echo(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


@contextmanager
def _engine(db: str, directory: str | None, *, create: bool = False) -> Iterator[Any]:
    from pathlib import Path

    from qaflow.directory import InMemoryDirectory
    from qaflow.engine import Engine
    from qaflow.registry import shipped_specs
    from qaflow.store import SQLiteStore

    people = InMemoryDirectory.load_json(directory) if directory else None
    from qaflow.store._url import is_url

    if not create or Path(db).exists() or is_url(db):  # URLs open as every --db does
        with open_engine(db, write=True) as engine:
            engine.directory = people
            yield engine
        return
    store = SQLiteStore(db)
    try:
        yield Engine(store, shipped_specs(), directory=people)
    except BaseException:
        store.close()
        for suffix in ("", "-wal", "-shm"):  # a refused first command leaves no new file
            Path(db + suffix).unlink(missing_ok=True)
        raise
    store.close()


ACTOR_OPTIONS = [
    click.option("--as", "person", required=True, help="The person id firing the command."),
    click.option("--role", required=True, help="The role they act in."),
    click.option("--directory", help="A directory file (JSON) to check the role against."),
    click.option("--idempotency-key", help="Resending the same key returns the first result."),
]


def _actor_options(func: Any) -> Any:
    for option in reversed(ACTOR_OPTIONS):
        func = option(func)
    return func


@main.command("list", short_help="List workflows, filtered (reads only).")
@DB_OPTION
@click.option("--machine", help="Only this machine.")
@click.option("--policy", help="Only this council policy.")
@click.option("--state", help="Only workflows in this state.")
@click.option("--team", help="Only workflows whose data names this team_id (audits).")
@click.option("--overdue", is_flag=True, help="Only those with an open deadline past due.")
@click.option("--now", help="'Now' for --overdue (ISO time with offset; default: real time).")
@click.option("--after", help="Start after this workflow id (paging).")
@click.option(
    "--limit", type=click.IntRange(1, 10_000), default=100, show_default=True, help="Page size."
)
@click.option("--json", "as_json", is_flag=True, help="Print the workflows as JSON.")
@fail_cleanly
def list_workflows(
    db: str,
    machine: str | None,
    policy: str | None,
    state: str | None,
    team: str | None,
    overdue: bool,
    now: str | None,
    after: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List workflows, filtered and paged by id (reads only)."""
    from qaflow.service import workflow_view

    moment = parse_now(now)
    with open_engine(db) as engine:
        found = engine.store.find_workflows(
            machine=machine,
            policy=policy,
            state=state,
            team=team,
            overdue_at=moment if overdue else None,
            after=after,
            limit=limit,
        )
    if as_json:
        _echo([workflow_view(s, moment) for s in found])
        return
    for s in found:
        due = min((d.due_at for d in s.deadlines), default=None)
        shown = f"  next due {due:%Y-%m-%d %H:%M}" if due else ""
        click.echo(f"{s.workflow_id}  {s.machine} ({s.policy})  {s.state}  v{s.version}{shown}")
    click.echo(f"{len(found)} workflow(s)")


@main.command(short_help="Start a workflow; prints JSON (writes).")
@click.argument("machine")
@click.argument("workflow_id")
@click.argument("trigger")
@click.argument("payload", required=False)
@DB_OPTION
@click.option("--policy", help="The council policy, where several ship MACHINE.")
@_actor_options
@fail_cleanly
def start(
    machine: str,
    workflow_id: str,
    trigger: str,
    payload: str | None,
    db: str,
    policy: str | None,
    person: str,
    role: str,
    directory: str | None,
    idempotency_key: str | None,
) -> None:
    """Start WORKFLOW_ID of MACHINE by firing TRIGGER with PAYLOAD (JSON, or - for stdin).

    Writes (creates the database if needed); prints the result as JSON.
    """
    from qaflow.registry import shipped_spec
    from qaflow.service import step_view

    spec = shipped_spec(machine, policy)
    body = _payload(payload)
    with _engine(db, directory, create=True) as engine:
        step = engine.start(
            spec, workflow_id, trigger, Actor(person, role), body, idempotency_key=idempotency_key
        )
    _echo(step_view(step, datetime.now(UTC), spec))


@main.command(short_help="Fire a trigger; prints JSON (writes).")
@click.argument("workflow_id")
@click.argument("trigger")
@click.argument("payload", required=False)
@DB_OPTION
@click.option("--expected-version", type=int, help="Refuse unless the workflow is at it.")
@_actor_options
@fail_cleanly
def fire(
    workflow_id: str,
    trigger: str,
    payload: str | None,
    db: str,
    expected_version: int | None,
    person: str,
    role: str,
    directory: str | None,
    idempotency_key: str | None,
) -> None:
    """Fire TRIGGER on WORKFLOW_ID with PAYLOAD (JSON, or - for stdin); prints JSON (writes)."""
    from qaflow.service import step_view

    body = _payload(payload)
    with _engine(db, directory) as engine:
        step = engine.fire(
            workflow_id,
            trigger,
            Actor(person, role),
            body,
            expected_version=expected_version,
            idempotency_key=idempotency_key,
        )
        spec = engine.spec_for(step.snapshot)
    _echo(step_view(step, datetime.now(UTC), spec))


@outbox.command("ack", short_help="Mark notifications sent (writes).")
@click.argument("ids", nargs=-1)
@click.option("--db", default=None, help="The SQLite database file (default: outbox's --db).")
@click.option("--all", "ack_all", is_flag=True, help="Acknowledge every pending notification.")
@click.pass_context
@fail_cleanly
def outbox_ack(ctx: click.Context, ids: tuple[str, ...], db: str | None, ack_all: bool) -> None:
    """Mark notifications sent (writes; acknowledging one twice changes nothing)."""
    db = db or (ctx.parent.params["db"] if ctx.parent else "qaflow.db")
    if not ids and not ack_all:
        raise ValidationError(field="IDS", value=None, expected="notification ids, or --all")
    with open_engine(db, write=True) as engine:
        chosen = list(ids) or [n.id for n in engine.store.pending_notifications()]
        count = engine.store.mark_sent(chosen, engine.clock.now())
    click.echo(f"{count} notification(s) newly marked sent; {len(chosen) - count} already were")
