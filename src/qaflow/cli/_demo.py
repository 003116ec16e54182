"""``qaflow demo`` and ``qaflow simulate``: simulations on the real machines."""

from __future__ import annotations

import click

from qaflow.cli._common import console, fail_cleanly
from qaflow.cli._main import main


@main.command()
@click.option("--out", default="qaflow-demo", show_default=True, help="Folder for its files.")
@click.option("--months", type=click.IntRange(1, 24), default=3, show_default=True)
@click.option("--seed", type=int, default=2026, show_default=True)
@fail_cleanly
def demo(out: str, months: int, seed: int) -> None:
    """Simulate a council's audit programme into SQLite, tick, and write the QA report.

    Writes OUT/qaflow-demo.db (replacing an earlier demo) and the report as HTML, Markdown
    and JSON; then the database can be explored with history, verify, tick and report.
    """
    from qaflow.demo import run_demo

    with console.status(f"simulating {months} month(s) of audits, moderation and escalations"):
        result = run_demo(out, months=months, seed=seed)
    for line in result.lines():
        console.print(line)


@main.group()
def simulate() -> None:
    """Simulate procedures on the real machines and policies (in memory)."""


@simulate.command("escalations")
@click.option(
    "--ladder",
    type=click.Choice(["cp_chair", "iro", "firo"]),
    default="firo",
    show_default=True,
    help="Which shipped Bexley ladder.",
)
@click.option("-n", "--paths", type=click.IntRange(1, 1_000_000), default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (no paths).")
@click.option("--ladder-file", help="A procedure file: simulate its ladder instead.")
@click.option("--name", help="Which ladder of --ladder-file (default: its first).")
@fail_cleanly
def simulate_escalations_command(
    ladder: str, paths: int, seed: int, as_json: bool, ladder_file: str | None, name: str | None
) -> None:
    """Run N escalations on a ladder with a virtual clock; print where they end and when."""
    from qaflow.policies import bexley
    from qaflow.simulate import simulate_escalations

    chosen = {
        "cp_chair": bexley.CP_CHAIR_LADDER,
        "iro": bexley.IRO_LADDER,
        "firo": bexley.FIRO_LADDER,
    }[ladder]
    policy = bexley.POLICY
    if ladder_file is not None:
        from qaflow.cli._check import load_file
        from qaflow.procedure import ProcedureFile

        book = load_file(ladder_file)
        assert isinstance(book, ProcedureFile)
        chosen = book.ladder(name) if name else book.ladders[0]
        policy = book.policy
        ladder = chosen.name
    with console.status(f"simulating {paths} {ladder} escalation(s)"):
        result = simulate_escalations(chosen, policy, n=paths, seed=seed)
    click.echo(result.to_json(paths=False, indent=2) if as_json else result.to_text())
