"""``qaflow report``: the QA report for a period."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import click

from qaflow.cli._common import DB_OPTION, fail_cleanly, open_engine, output_file, plain
from qaflow.cli._main import main
from qaflow.errors import ValidationError


def _before(first: date, stop: date) -> date:
    """The start of the period of the same length just before ``[first, stop)``: whole
    months (a quarter) when the period is whole months, else the same number of days."""
    if first.day == 1 and stop.day == 1:
        months = (stop.year - first.year) * 12 + stop.month - first.month
        index = first.year * 12 + first.month - 1 - months
        return date(index // 12, index % 12 + 1, 1)
    return first - (stop - first)


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
    type=click.Choice(["md", "json", "html", "pdf"]),
    default="md",
    show_default=True,
    help="Markdown, JSON, a self-contained HTML page, or PDF (printed by headless Chromium; "
    "needs --out).",
)
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file (else print).")
@click.option(
    "--templates",
    type=click.Path(file_okay=False),
    help="A folder of templates replacing the shipped ones of the same name (report.html.j2, "
    "macros.html.j2, report.css.j2, report.md.j2): a council's branding and wording.",
)
@click.option(
    "--compare/--no-compare",
    default=True,
    show_default=True,
    help="Compare with the period of the same length just before (md, html, pdf).",
)
@fail_cleanly
def report(
    db: str,
    start: datetime,
    end: datetime,
    fmt: str,
    out: str | None,
    templates: str | None,
    compare: bool,
) -> None:
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
    if templates is not None and not Path(templates).is_dir():
        raise ValidationError(
            field="--templates", value=templates, expected="an existing folder of templates"
        )
    if fmt == "pdf" and target is None:
        raise ValidationError(field="--out", value=None, expected="a file to write the PDF to")
    stop = last + timedelta(days=1)
    previous = None
    with open_engine(db) as engine:
        built = qa_report.build_report(engine.store, start=first, end=stop)
        if compare and fmt != "json":
            before = qa_report.build_report(engine.store, start=_before(first, stop), end=first)
            previous = before if before.workflows_read else None  # nothing to compare with
    if fmt == "json":
        text = qa_report.to_json(built)
    elif fmt == "md":
        text = qa_report.to_markdown(built, previous=previous, templates=templates)
    else:
        text = qa_report.to_html(built, previous=previous, templates=templates)
    if fmt == "pdf":
        assert target is not None
        qa_report.html_to_pdf(text, target)
        click.echo(plain(f"wrote {out}"))
        return
    if target is None:
        click.echo(text)
    else:
        target.write_text(text, encoding="utf-8")
        click.echo(plain(f"wrote {out}"))
