"""``qaflow report``: the QA report for a period."""

from __future__ import annotations

from datetime import datetime

import click

from qaflow.cli._common import DB_OPTION, fail_cleanly, open_engine, output_file, plain
from qaflow.cli._main import main


@main.command()
@DB_OPTION
@click.option(
    "--from",
    "start",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="First day of the period (Europe/London).",
)
@click.option(
    "--to",
    "end",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="Day after the last day of the period.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["md", "json", "html"]), default="md", show_default=True
)
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file (else print).")
@fail_cleanly
def report(db: str, start: datetime, end: datetime, fmt: str, out: str | None) -> None:
    """Build the QA report for a period from the database (reads; writes only --out)."""
    from qaflow import report as qa_report

    target = None if out is None else output_file("--out", out)
    with open_engine(db) as engine:
        built = qa_report.build_report(engine.store, start=start.date(), end=end.date())
    render = {"md": qa_report.to_markdown, "json": qa_report.to_json, "html": qa_report.to_html}[
        fmt
    ]
    text = render(built)
    if target is None:
        click.echo(text)
    else:
        target.write_text(text, encoding="utf-8")
        click.echo(plain(f"wrote {out}"))
