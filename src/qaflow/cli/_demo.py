"""``qaflow demo`` and ``qaflow simulate``: simulations on the real machines."""

from __future__ import annotations

import shlex
import shutil
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from qaflow.calendar import LONDON
from qaflow.cli._common import DB_ENV, console, fail_cleanly
from qaflow.cli._main import main
from qaflow.errors import ValidationError

if TYPE_CHECKING:
    from qaflow.demo import DemoResult
    from qaflow.simulate import EscalationSimulation


@main.command(short_help="Simulate a council's quarter and report on it (writes).")
@click.option("--out", default="qaflow-demo", show_default=True, help="Folder for its files.")
@click.option(
    "--months",
    type=click.IntRange(1, 24),
    default=3,
    show_default=True,
    help="How many months of work to simulate (1 to 24).",
)
@click.option(
    "--seed",
    type=int,
    default=2026,
    show_default=True,
    help="The random seed: the same seed writes the same database and report.",
)
@click.option(
    "--db",
    "db",
    default=None,
    metavar="URL",
    help="Write the workflows to this empty store (e.g. postgresql://...) instead of "
    "OUT/qaflow-demo.db. Not read from QAFLOW_DB.",
)
@fail_cleanly
def demo(out: str, months: int, seed: int, db: str | None) -> None:
    """Simulate a council's audit programme into SQLite, tick, and write the QA report.

    Writes OUT/qaflow-demo.db (replacing an earlier demo), or the empty store --db names,
    and the report as HTML, Markdown and JSON; then prints the commands to explore the
    database (history, outbox, report).
    """
    from pathlib import Path

    from qaflow.demo import run_demo

    if Path(out).exists() and not Path(out).is_dir():
        raise ValidationError(field="--out", value=out, expected="a folder, not a file", quote=True)
    from qaflow.cli._progress import progress_bar

    with progress_bar(f"simulating {months} month(s) of QA work", unit="days") as progress:
        result = run_demo(out, months=months, seed=seed, progress=progress, db=db)
    for line in result.lines():
        click.echo(line)
    click.echo("")
    for line in next_commands(result):
        click.echo(line)


def _program() -> str:
    """``qaflow`` as the user can type it again: the path they ran (``.venv/bin/qaflow``)
    unless that is the ``qaflow`` their PATH finds."""
    typed = sys.argv[0]
    if Path(typed).name != "qaflow":
        return "qaflow"
    found = shutil.which("qaflow")
    if found is not None and Path(found).resolve() == Path(typed).resolve():
        return "qaflow"
    return shlex.quote(typed)


def next_commands(result: DemoResult) -> list[str]:
    """What to run next on the demo's database, ready to copy (the paths shell-quoted)."""
    qaflow = _program()
    db = shlex.quote(str(result.database))
    first = result.summary.start.astimezone(LONDON).date()
    last = (result.summary.end - timedelta(microseconds=1)).astimezone(LONDON).date()
    lines = [f"next (or `export {DB_ENV}={db}` and leave out --db):"]
    lines += [f"  {qaflow} history {shlex.quote(wid)} --db {db}" for wid in result.samples]
    lines += [
        f"  {qaflow} outbox --db {db}",
        f"  {qaflow} report --db {db} --from {first} --to {last}",
    ]
    return lines


@main.group(short_help="Simulate procedures on the real machines (in memory).")
def simulate() -> None:
    """Simulate procedures on the real machines and policies (in memory)."""


@simulate.command("escalations", short_help="Run N escalations on a shipped ladder.")
@click.option(
    "--ladder",
    type=click.Choice(["cp_chair", "iro", "firo"]),
    default="firo",
    show_default=True,
    help="Which of the demo council's shipped ladders.",
)
@click.option(
    "-n",
    "--paths",
    type=click.IntRange(1, 1_000_000),
    default=1000,
    show_default=True,
    help="How many escalations to play.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="The same seed gives the same result."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes to spread the paths over (the same seed gives the same result).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (no paths).")
@click.option("--ladder-file", help="A procedure file: simulate its ladder instead.")
@click.option("--name", help="Which ladder of --ladder-file (default: its first).")
@fail_cleanly
def simulate_escalations_command(
    ladder: str,
    paths: int,
    seed: int,
    workers: int,
    as_json: bool,
    ladder_file: str | None,
    name: str | None,
) -> None:
    """Run N escalations on a ladder with a virtual clock; print where they end and when."""
    from qaflow.policies import DEMO_COUNCIL, shipped_escalation_procedure
    from qaflow.simulate import simulate_escalations

    shipped = shipped_escalation_procedure(DEMO_COUNCIL)
    chosen = next(lad for lad in shipped.ladders if lad.kind == ladder)
    policy = shipped.policy
    if ladder_file is not None:
        from qaflow.cli._check import load_file
        from qaflow.procedure import ProcedureFile

        book = load_file(ladder_file)
        assert isinstance(book, ProcedureFile)
        chosen = book.ladder(name) if name else book.ladders[0]
        policy = book.policy
        ladder = chosen.name
    from qaflow.cli._progress import progress_bar

    with progress_bar(f"simulating {ladder} escalations", unit="ended") as progress:
        result = simulate_escalations(
            chosen,
            policy,
            n=paths,
            seed=seed,
            progress=progress,
            workers=workers,
            keep_paths=False,  # only the summary is printed: memory stays flat
            gc="pause",  # the CLI process is the host here: no cycles to collect in a run
        )
    if as_json:
        click.echo(result.to_json(paths=False, indent=2))
    else:
        for table in simulation_tables(result):
            console.print(table)


def _pct(count: int, total: int) -> str:
    return f"{100 * count / total:.1f}%" if total else "-"


def _numbers(table: Table, *columns: str) -> None:
    for column in columns:
        table.add_column(column, justify="right")


def simulation_tables(sim: EscalationSimulation) -> list[Table]:
    """A simulation's summary as rich tables; the monthly load has a row per month, so it
    stays as narrow as the ladder has holder roles however long the period."""
    from qaflow.simulate import OUTCOMES

    s = sim.summary
    n = s.paths
    ended = Table(
        title=f"escalation simulation: ladder {sim.ladder!r}, {n:,} paths, seed {sim.seed}, "
        f"raised over {sim.period_days} days from {sim.start.date().isoformat()}"
    )
    ended.add_column("ended at")
    _numbers(ended, *OUTCOMES, "total", "share")
    for stage in sim.stages:
        at = s.ended_at.get(stage, {})
        total = sum(at.values())
        ended.add_row(stage, *(f"{at.get(o, 0):,}" for o in OUTCOMES), f"{total:,}", _pct(total, n))
    ended.add_section()
    ended.add_row("all", *(f"{s.outcomes.get(o, 0):,}" for o in OUTCOMES), f"{n:,}", _pct(n, n))
    days = Table(title="working days")
    days.add_column("")
    _numbers(days, "paths", "p50", "p90", "p95", "max", "mean")
    for label, p in (
        ("raise to end", s.working_days),
        ("to resolution", s.working_days_to_resolution),
    ):
        if p is None:
            days.add_row(label, "0", "-", "-", "-", "-", "-")
        else:
            days.add_row(
                label,
                f"{p.count:,}",
                *(str(v) for v in (p.p50, p.p90, p.p95, p.max)),
                f"{p.mean:.1f}",
            )
    counts = Table(title="events")
    counts.add_column("")
    _numbers(counts, "count", "share")
    for label, count, share in (
        ("external referrals", s.referrals, _pct(s.referrals, n)),
        ("response deadlines breached", s.breaches, ""),
        ("paths with a breach", s.paths_breached, _pct(s.paths_breached, n)),
        ("extensions requested", s.extensions_requested, ""),
        ("extensions granted", s.extensions_granted, ""),
        ("bypasses", s.bypasses, ""),
        ("commands (events written)", s.commands, ""),
    ):
        counts.add_row(label, f"{count:,}", share)
    tables = [ended, days, counts]
    if s.breaches_by_stage:
        by_stage = Table(title="breaches by stage")
        by_stage.add_column("stage")
        _numbers(by_stage, "count")
        for stage, count in s.breaches_by_stage.items():
            by_stage.add_row(stage, f"{count:,}")
        tables.append(by_stage)
    if s.load:
        roles = list(s.load)
        months = sorted({m for per in s.load.values() for m in per})
        load = Table(title="stage entries per holder role, per month")
        load.add_column("month")
        _numbers(load, *(r.replace("_", " ") for r in roles))  # headers may wrap
        for month in months:
            load.add_row(month, *(f"{s.load[r].get(month, 0):,}" for r in roles))
        load.add_section()
        load.add_row("total", *(f"{sum(s.load[r].values()):,}" for r in roles))
        tables.append(load)
    return tables
