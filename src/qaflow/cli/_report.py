"""``qaflow report``: the QA report for a period."""

from __future__ import annotations

from datetime import datetime, timedelta

import click

from qaflow.cli._common import DB_OPTION, fail_cleanly, open_engine, output_file, plain
from qaflow.cli._main import main
from qaflow.errors import ValidationError


@main.command(short_help="The QA report for a period, from --from to --to inclusive.")
@DB_OPTION
@click.option(
    "--from",
    "start",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="First day of the period, included (a Europe/London date).",
)
@click.option(
    "--to",
    "end",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="Last day of the period, included (a Europe/London date): --to 2026-03-31 ends the "
    "first quarter of 2026.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "json", "html"]),
    default="md",
    show_default=True,
    help="Markdown, JSON or a self-contained HTML page.",
)
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file (else print).")
@fail_cleanly
def report(db: str, start: datetime, end: datetime, fmt: str, out: str | None) -> None:
    """Build the QA report for a period from the database (reads; writes only --out).

    The period runs from the start of --from to the end of --to, both days included, in
    Europe/London time.
    """
    from qaflow import report as qa_report

    target = None if out is None else output_file("--out", out)
    first, last = start.date(), end.date()
    if last < first:
        raise ValidationError(
            field="--to",
            value=last.isoformat(),
            expected=f"on or after --from {first}",
            quote=True,
        )
    with open_engine(db) as engine:
        built = qa_report.build_report(engine.store, start=first, end=last + timedelta(days=1))
    render = {"md": qa_report.to_markdown, "json": qa_report.to_json, "html": qa_report.to_html}[
        fmt
    ]
    text = render(built)
    if target is None:
        click.echo(text)
    else:
        target.write_text(text, encoding="utf-8")
        click.echo(plain(f"wrote {out}"))
