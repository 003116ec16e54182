"""``qaflow tick``, ``history``, ``verify`` and ``outbox``: operate on a database."""

from __future__ import annotations

import json

import click
from rich.table import Table

from qaflow.cli._common import DB_OPTION, console, fail_cleanly, open_engine, parse_now
from qaflow.cli._main import main
from qaflow.records import converter


@main.command()
@DB_OPTION
@click.option("--now", help="Fire what is due by this ISO time (default: the real time).")
@fail_cleanly
def tick(db: str, now: str | None) -> None:
    """Fire every deadline due by NOW (writes; safe to run from several processes)."""
    moment = parse_now(now)
    with open_engine(db) as engine:
        steps = engine.tick(moment)
    for step in steps:
        e = step.event
        click.echo(f"{e.workflow_id}  {e.trigger}  {e.source} -> {e.dest}  (event {e.seq})")
    click.echo(f"{len(steps)} deadline breach(es) fired")


@main.command()
@click.argument("workflow_id")
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
@fail_cleanly
def history(workflow_id: str, db: str, as_json: bool) -> None:
    """Print a workflow's events (reads only; payload contents are not shown in the table)."""
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
    for column in ("#", "at (UTC)", "trigger", "from", "to", "actor", "role"):
        table.add_column(column)
    for e in events:
        table.add_row(
            str(e.seq),
            f"{e.at:%Y-%m-%d %H:%M}",
            e.trigger,
            e.source,
            e.dest,
            e.actor.id,
            e.actor.role,
        )
    console.print(table)


@main.command()
@click.argument("workflow_id", required=False)
@DB_OPTION
@fail_cleanly
def verify(workflow_id: str | None, db: str) -> None:
    """Check every hash chain and replay (reads only); exit 1 on the first failure."""
    with open_engine(db) as engine:
        count = engine.verify(workflow_id)
    click.echo(f"verified {count} workflow(s): hash chains intact, replays match")


@main.group(invoke_without_command=True)
@DB_OPTION
@click.option("--limit", type=int, default=50, show_default=True)
@click.pass_context
@fail_cleanly
def outbox(ctx: click.Context, db: str, limit: int) -> None:
    """List pending notifications (reads only): who is to be told what, under which clause."""
    if ctx.invoked_subcommand is not None:
        return
    with open_engine(db) as engine:
        pending = engine.store.pending_notifications(limit=limit)
    table = Table(title=f"{len(pending)} pending notification(s)")
    for column in ("id", "to role", "to id", "reason", "clause"):
        table.add_column(column)
    for n in pending:
        table.add_row(n.id, n.recipient_role, n.recipient_id or "", n.reason, n.clause or "")
    console.print(table)
