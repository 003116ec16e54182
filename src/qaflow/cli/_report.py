"""``qaflow report``: the QA report for a period."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from qaflow.cli._common import DB_OPTION, fail_cleanly, open_engine, output_file, plain
from qaflow.cli._main import main
from qaflow.cli._progress import progress_bar
from qaflow.errors import ValidationError


def _before(first: date, stop: date) -> date:
    """The start of the period of the same length just before ``[first, stop)``: whole
    months (a quarter) when the period is whole months, else the same number of days."""
    if first.day == 1 and stop.day == 1:
        months = (stop.year - first.year) * 12 + stop.month - first.month
        index = first.year * 12 + first.month - 1 - months
        return date(index // 12, index % 12 + 1, 1)
    return first - (stop - first)


def _flagged(error: ValidationError) -> ValidationError:
    """The library's error with the argument named as its CLI flag."""
    flag = {"team": "--team", "service": "--service", "policy": "--policy"}.get(error.field)
    if flag is None:
        return error
    return ValidationError(field=flag, value=error.value, expected=error.expected, quote=True)


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
    "--policy",
    help="Only this council's audits and moderations (a shipped policy name, as listed by "
    "'qaflow diagram'); its report targets are used.",
)
@click.option("--team", help="Only this team's work (a team id, as recorded on the audits).")
@click.option(
    "--service", help="Only the work of this service's teams (a service id; needs --directory)."
)
@click.option(
    "--directory",
    "directory_path",
    type=click.Path(dir_okay=False),
    help="A directory file (JSON) placing people in teams and teams in services: adds the "
    "breakdown by service and escalations by team.",
)
@click.option(
    "--trends",
    "trend_months",
    type=click.IntRange(0, 60),
    default=15,
    show_default=True,
    help="Months of monthly trend ending with the period's last month (15: the quarter and "
    "the four quarters before it; 0: none).",
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
    policy: str | None,
    team: str | None,
    service: str | None,
    directory_path: str | None,
    trend_months: int,
    compare: bool,
) -> None:
    """Build the QA report for a period from the database (reads; writes only --out).

    The period runs from the start of --from to the end of --to, both days included, in
    Europe/London time.
    """
    from qaflow import report as qa_report
    from qaflow.directory import InMemoryDirectory
    from qaflow.registry import shipped_report_policies
    from qaflow.report._filters import check_filters

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
    directory = None
    if directory_path is not None:
        if not Path(directory_path).is_file():
            raise ValidationError(
                field="--directory", value=directory_path, expected="an existing directory file"
            )
        directory = InMemoryDirectory.load_json(directory_path)
    known = shipped_report_policies(policy)
    check_filters(
        known,
        qa_report.Filters(policy, team, service),
        directory,
        names=("--policy", "--team", "--service"),
    )
    stop = last + timedelta(days=1)
    previous = None
    steps = 1 + trend_months + (1 if compare and fmt != "json" else 0)
    with open_engine(db) as engine, progress_bar("report", unit="periods") as progress:

        def build(begin: date, finish: date, months: int, offset: int = 0) -> Any:
            return qa_report.build_report(
                engine.store,
                start=begin,
                end=finish,
                policies=known,
                policy=policy,
                team=team,
                service=service,
                directory=directory,
                trend_months=months,
                progress=lambda done: progress(offset + done, steps),
            )

        progress(0, steps)
        try:
            built = build(first, stop, trend_months)
        except ValidationError as error:
            raise _flagged(error) from None
        if compare and fmt != "json":
            try:
                before = build(_before(first, stop), first, 0, offset=1 + trend_months)
            except ValidationError:  # the --team had no work then: nothing to compare with
                before = None
            previous = before if before is not None and before.workflows_read else None
        progress(steps, steps)
    if fmt == "json":
        text = qa_report.to_json(built)
    elif fmt == "md":
        text = qa_report.to_markdown(built, previous=previous, templates=templates, policies=known)
    else:
        text = qa_report.to_html(built, previous=previous, templates=templates, policies=known)
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
