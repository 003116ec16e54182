"""``qaflow tick``, ``history``, ``verify`` and ``outbox``: operate on a database."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import click
from rich.table import Table

from qaflow.cli._common import (
    DB_OPTION,
    LADDERS_OPTION,
    NOW_FORMATS,
    console,
    fail_cleanly,
    local_time,
    open_engine,
    output_file,
    parse_now,
    plain,
    safe,
)
from qaflow.cli._main import main
from qaflow.errors import ValidationError
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
@click.option(
    "--allow-future",
    is_flag=True,
    help="Let --now be later than the real time (a simulated database such as the demo's): "
    "the steps written carry that time, and later real-time commands on those workflows are "
    "refused until it has passed.",
)
@LADDERS_OPTION
@fail_cleanly
def tick(db: str, now: str | None, allow_future: bool, ladders: tuple[str, ...]) -> None:
    """Fire every deadline due by NOW (writes; safe to run from several processes).

    Each line is one step written: a breach (someone did not act in time; the people
    concerned are told) or a period that ended (e.g. a moderation window closing). A
    workflow that cannot be ticked (e.g. pinned to a policy this command does not know) is
    skipped and reported; the others are ticked; the exit status is then 1.
    """
    moment = parse_now(now)
    with open_engine(db, write=True, ladders=ladders) as engine:
        if allow_future:
            from qaflow._checks import to_utc
            from qaflow.clock import ManualClock

            engine.clock = ManualClock(max(to_utc(moment, "--now"), engine.clock.now()))
        steps = engine.tick(moment)
        failures = engine.tick_failures
    breaches = 0
    for step in steps:
        e = step.event
        kind = "breach" if is_breach(step) else "period ended"
        breaches += kind == "breach"
        deadline = e.payload.get("deadline", "?")
        click.echo(
            plain(
                f"{e.workflow_id}  {kind}: {deadline}  {e.trigger}  {e.source} -> {e.dest}"
                f"  (event {e.seq})"
            )
        )
    click.echo(
        f"{breaches} deadline breach(es), {len(steps) - breaches} period(s) ended "
        f"({len(steps)} step(s) written)"
    )
    for failure in failures:
        click.echo(plain(f"skipped {failure.workflow_id}: {failure.error}"), err=True)
    if failures:
        raise click.ClickException(f"{len(failures)} workflow(s) could not be ticked")


@main.command(short_help="Print a workflow's events (reads only).")
@click.argument("workflow_id")
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON (times in UTC).")
@click.option("--limit", type=int, default=None, help="Print at most this many events.")
@click.option("--after", type=int, default=0, help="Start after this event number.")
@fail_cleanly
def history(workflow_id: str, db: str, as_json: bool, limit: int | None, after: int) -> None:
    """Print a workflow's events (reads only; payload contents are not shown in the table).

    Times are Europe/London wall time with their UTC offset. Pages with ``--limit`` and
    ``--after``: the last line names the ``--after`` of the next page when events remain.
    """
    if limit is not None and limit < 1:
        raise ValidationError(field="--limit", value=limit, expected="a whole number >= 1")
    if after < 0:
        raise ValidationError(field="--after", value=after, expected="a whole number >= 0")
    with open_engine(db) as engine:
        snapshot = engine.get(workflow_id)
        reader = getattr(engine.store, "events_page", None)
        if callable(reader):  # one page read, not the whole history
            page = reader(workflow_id, after, limit)
        else:
            page = engine.history(workflow_id)[after : None if limit is None else after + limit]
    remaining = max(0, snapshot.version - after - len(page))
    if as_json:
        click.echo(json.dumps(converter.unstructure(page), indent=2))
        return
    rows = [
        (
            str(e.seq),
            local_time(e.at),
            plain(e.trigger),
            plain(e.source),
            plain(e.dest),
            plain(e.actor.id),
            plain(e.actor.role),
        )
        for e in page
    ]
    title = plain(
        f"{workflow_id}: {snapshot.machine} ({snapshot.policy} v"
        f"{snapshot.policy_version}), now {snapshot.state}"
    )
    head = ("#", "at (London)", "trigger", "from", "to", "actor", "role")
    click.echo(_text_table(title, head, rows))
    if remaining > 0:
        click.echo(f"{remaining} more event(s): --after {page[-1].seq if page else after}")


def _text_table(title: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned plain-text table, built as one string.

    A rich ``Table`` measured every cell and cost about 0.7 ms an event (65 s for 100,000,
    issue 14); this costs microseconds an event and prints the same cells.
    """
    widths = [len(h) for h in head]
    for row in rows:
        for i, cell in enumerate(row):
            if len(cell) > widths[i]:
                widths[i] = len(cell)
    pad = [f"{{:<{w}}}" for w in widths]
    fmt = "  ".join(pad)
    lines = [title, fmt.format(*head).rstrip(), "  ".join("-" * w for w in widths)]
    lines.extend(fmt.format(*row).rstrip() for row in rows)
    return "\n".join(lines)


def _read_key(key_file: str | None) -> bytes | None:
    if key_file is None:
        return None
    if not Path(key_file).is_file():
        raise ValidationError(
            field="--key-file", value=key_file, expected="an existing file", quote=True
        )
    key = Path(key_file).read_bytes().strip()
    if not key:
        raise ValidationError(field="--key-file", value=key_file, expected="a non-empty key")
    return key


def _read_checkpoint(path: str) -> dict[str, object]:
    if not Path(path).is_file():
        raise ValidationError(
            field="--checkpoint", value=path, expected="an existing file", quote=True
        )
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise ValidationError(
            field="--checkpoint", value=path, expected="a checkpoint JSON file", quote=True
        )
    return data


@main.command(short_help="Check chains, replays, rows and the anchor (reads only).")
@click.argument("workflow_id", required=False)
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@click.option(
    "--checkpoint",
    metavar="FILE",
    help="Also check the store against a checkpoint from export-checkpoint.",
)
@click.option("--key-file", metavar="FILE", help="The key the checkpoint was signed with.")
@LADDERS_OPTION
@fail_cleanly
def verify(
    workflow_id: str | None,
    db: str,
    as_json: bool,
    checkpoint: str | None,
    key_file: str | None,
    ladders: tuple[str, ...],
) -> None:
    """Check hash chains, replays, deadline/notification/task rows and the anchor (reads).

    Prints every problem found (workflow, event, what) and exits 1 if there is any.
    """
    key = _read_key(key_file)
    document = None if checkpoint is None else _read_checkpoint(checkpoint)
    if workflow_id is not None and document is not None:
        raise ValidationError(
            field="--checkpoint", value=None, expected="used without a WORKFLOW_ID"
        )
    with open_engine(db, ladders=ladders) as engine:
        report = engine.verify_report(workflow_id, checkpoint=document, key=key)
    if as_json:
        click.echo(report.to_json())
        if not report.ok:
            raise SystemExit(1)
        return
    for p in report.problems:
        where = "the store" if p.workflow_id is None else f"workflow {p.workflow_id!r}"
        at = f", event {p.seq}" if p.seq is not None else ""
        click.echo(plain(f"{where}{at}: {p.what}"))
    if not report.ok:
        raise click.ClickException(
            f"IntegrityError: {len(report.problems)} problem(s) found in "
            f"{report.workflows} workflow(s) checked"
        )
    anchored = (
        ""
        if report.anchor_position is None
        else f"; anchor intact at position {report.anchor_position}"
    )
    checked = "" if report.checkpoint == "none" else f"; checkpoint {report.checkpoint}"
    click.echo(
        f"verified {report.workflows} workflow(s): hash chains intact, replays and rows "
        f"match{anchored}{checked}"
    )


@main.command("export-checkpoint", short_help="The anchor's head as a checkpoint (reads only).")
@DB_OPTION
@click.option("--out", metavar="FILE", help="Write the checkpoint here (else print it).")
@click.option("--key-file", metavar="FILE", help="Sign it with this key (HMAC-SHA256).")
@fail_cleanly
def export_checkpoint(db: str, out: str | None, key_file: str | None) -> None:
    """Print the store's anchor head as a checkpoint to keep outside the database (reads).

    Keep it (and the key, if signed) where whoever can change the database cannot; later,
    verify --checkpoint FILE detects history removed or rewritten before it.
    """
    from qaflow._integrity import make_checkpoint

    key = _read_key(key_file)
    target = None if out is None else output_file("--out", out)
    with open_engine(db) as engine:
        document = make_checkpoint(engine.store, key=key)
    text = json.dumps(document, indent=2)
    if target is None:
        click.echo(text)
    else:
        target.write_text(text + "\n", encoding="utf-8")
        click.echo(plain(f"wrote {out}"))


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
        table.add_row(
            safe(n.id),
            safe(n.recipient_role),
            safe(n.recipient_id or ""),
            safe(n.reason),
            safe(n.clause or ""),
        )
    console.print(table)
