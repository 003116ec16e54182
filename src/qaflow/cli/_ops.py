"""``qaflow tick``, ``history``, ``verify`` and ``outbox``: operate on a database."""

from __future__ import annotations

import json

import click
from rich.table import Table

from qaflow.cli._common import (
    DB_OPTION,
    NOW_FORMATS,
    console,
    fail_cleanly,
    local_time,
    open_engine,
    parse_now,
)
from qaflow.cli._main import main
from qaflow.records import Step, converter
from qaflow.spec import DEADLINE_MISSED


def is_breach(step: Step) -> bool:
    """Whether a step ``tick`` wrote records a missed deadline, not a period that ended.

    A deadline fires either because someone did not act in time (the engine records
    ``deadline_missed``, or the policy's breach trigger tells the people concerned) or
    because a period simply ran out and the policy moves the workflow on (a moderation window
    closing fires ``close`` and tells no one). The step itself says which.
    """
    return step.event.trigger == DEADLINE_MISSED or bool(step.notifications)


@main.command(short_help="Fire every deadline due by NOW (writes).")
@DB_OPTION
@click.option(
    "--now",
    help=f"Fire what is due by this moment: {NOW_FORMATS}; without an offset it is "
    "Europe/London time, a date alone its midnight (default: the real time).",
)
@fail_cleanly
def tick(db: str, now: str | None) -> None:
    """Fire every deadline due by NOW (writes; safe to run from several processes).

    Each line is one step written: a breach (someone did not act in time; the people
    concerned are told) or a period that ended (e.g. a moderation window closing).
    """
    moment = parse_now(now)
    with open_engine(db) as engine:
        steps = engine.tick(moment)
    breaches = 0
    for step in steps:
        e = step.event
        kind = "breach" if is_breach(step) else "period ended"
        breaches += kind == "breach"
        deadline = e.payload.get("deadline", "?")
        click.echo(
            f"{e.workflow_id}  {kind}: {deadline}  {e.trigger}  {e.source} -> {e.dest}"
            f"  (event {e.seq})"
        )
    click.echo(
        f"{breaches} deadline breach(es), {len(steps) - breaches} period(s) ended "
        f"({len(steps)} step(s) written)"
    )


@main.command(short_help="Print a workflow's events (reads only).")
@click.argument("workflow_id")
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON (times in UTC).")
@fail_cleanly
def history(workflow_id: str, db: str, as_json: bool) -> None:
    """Print a workflow's events (reads only; payload contents are not shown in the table).

    Times are Europe/London wall time with their UTC offset.
    """
    with open_engine(db) as engine:
        events = engine.history(workflow_id)
        snapshot = engine.get(workflow_id)
    if as_json:
        click.echo(json.dumps(converter.unstructure(events), indent=2))
        return
    table = Table(
        title=f"{workflow_id}: {snapshot.machine} ({snapshot.policy} v"
        f"{snapshot.policy_version}), now {snapshot.state}"
    )
    for column in ("#", "at (London)", "trigger", "from", "to", "actor", "role"):
        table.add_column(column, no_wrap=column == "at (London)")
    for e in events:
        table.add_row(
            str(e.seq),
            local_time(e.at),
            e.trigger,
            e.source,
            e.dest,
            e.actor.id,
            e.actor.role,
        )
    console.print(table)


@main.command(short_help="Check every hash chain and replay (reads only).")
@click.argument("workflow_id", required=False)
@DB_OPTION
@fail_cleanly
def verify(workflow_id: str | None, db: str) -> None:
    """Check every hash chain and replay (reads only); exit 1 on the first failure."""
    with open_engine(db) as engine:
        count = engine.verify(workflow_id)
    click.echo(f"verified {count} workflow(s): hash chains intact, replays match")


@main.group(invoke_without_command=True, short_help="List pending notifications (reads only).")
@DB_OPTION
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Show at most this many, oldest first.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {pending, shown, notifications} as JSON (times in UTC).",
)
@click.pass_context
@fail_cleanly
def outbox(ctx: click.Context, db: str, limit: int, as_json: bool) -> None:
    """List pending notifications (reads only): who is to be told what, under which clause."""
    if ctx.invoked_subcommand is not None:
        return
    with open_engine(db) as engine:
        total = len(engine.store.pending_notifications())
        pending = engine.store.pending_notifications(limit=limit)
    if as_json:
        document = {
            "pending": total,
            "shown": len(pending),
            "notifications": converter.unstructure(pending),
        }
        click.echo(json.dumps(document, indent=2))
        return
    shown = f"{len(pending)} of {total}" if len(pending) < total else f"{total}"
    table = Table(title=f"{shown} pending notification(s)")
    table.add_column("id", overflow="fold")  # ids are copied: wrap them, never cut them
    for column in ("to role", "to id", "reason", "clause"):
        table.add_column(column)
    for n in pending:
        table.add_row(n.id, n.recipient_role, n.recipient_id or "", n.reason, n.clause or "")
    console.print(table)
