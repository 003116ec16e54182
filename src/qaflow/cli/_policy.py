"""``qaflow diagram`` and ``qaflow policy``: read the shipped machines and policies."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from qaflow.cli._common import console, fail_cleanly
from qaflow.cli._main import main
from qaflow.errors import ValidationError
from qaflow.spec import MachineSpec


@main.command()
@click.argument("machine", required=False)
@click.option("--policy", help="The council policy, where several ship MACHINE.")
@click.option("--show-missed", is_flag=True, help="Also draw the built-in deadline_missed loops.")
@click.option("--file", "file", help="A procedure file to read instead of the shipped ones.")
@fail_cleanly
def diagram(machine: str | None, policy: str | None, show_missed: bool, file: str | None) -> None:
    """Print a machine as a mermaid state diagram (without MACHINE: list them)."""
    from qaflow.diagram import mermaid
    from qaflow.registry import shipped_spec, shipped_specs

    specs = _specs(file) if file else shipped_specs()
    if machine is None:
        for spec in specs:
            click.echo(f"{spec.name}  --policy {spec.policy}  (version {spec.policy_version})")
        return
    if file:
        chosen = [s for s in specs if s.name == machine]
        if not chosen:
            names = sorted(s.name for s in specs)
            raise ValidationError(field="MACHINE", value=machine, expected=f"one of {names}")
        click.echo(mermaid(chosen[0], show_missed=show_missed))
        return
    click.echo(mermaid(shipped_spec(machine, policy), show_missed=show_missed))


def _specs(file: str) -> list[MachineSpec]:
    from qaflow.cli._check import file_specs

    return [s for s in file_specs(file) if isinstance(s, MachineSpec)]


@main.group()
def policy() -> None:
    """Read the shipped policies: their values, clauses and tests."""


@policy.command("show")
@click.argument("name", required=False)
@click.option("--file", "file", help="A procedure file to read instead of the shipped ones.")
@fail_cleanly
def policy_show(name: str | None, file: str | None) -> None:
    """Print a policy's machines with their deadlines, roles and clauses (reads only)."""
    from qaflow.registry import shipped_specs

    every = _specs(file) if file else shipped_specs()
    specs = [s for s in every if name in (None, s.policy)]
    if not specs:
        policies = sorted({s.policy for s in every})
        raise ValidationError(field="NAME", value=name, expected=f"one of {policies}")
    for spec in specs:
        table = Table(title=f"{spec.name} ({spec.policy} v{spec.policy_version})")
        for column in ("state", "deadlines (clause)", "end?"):
            table.add_column(column)
        for state in spec.states:
            rules = "; ".join(
                f"{r.name}: {r.duration if not callable(r.duration) else 'computed'}"
                + (f" ({r.clause})" if r.clause else "")
                for r in state.deadlines
            )
            table.add_row(state.name, rules, "yes" if state.terminal else "")
        console.print(table)
        triggers = Table(title=f"{spec.name}: commands")
        for column in ("trigger", "from", "to", "roles", "guards (clause)"):
            triggers.add_column(column)
        for t in spec.transitions:
            guards = "; ".join(
                g.condition + (f" ({g.clause})" if g.clause else "") for g in t.guards
            )
            triggers.add_row(
                t.trigger,
                ", ".join(t.sources),
                t.dest or "(stays)",
                ", ".join(sorted(t.roles)),
                guards,
            )
        console.print(triggers)


@policy.command("docs")
@click.option("--out", default="policy-docs", show_default=True, help="Folder to write into.")
@click.option(
    "--tests",
    "tests_dir",
    default="tests",
    show_default=True,
    help="Where the tests that name clause IDs live.",
)
@click.option("--file", "file", help="A procedure file to document instead of the shipped ones.")
@fail_cleanly
def policy_docs(out: str, tests_dir: str, file: str | None) -> None:
    """Write a Markdown page per policy: clauses, values, diagrams, tests (writes)."""
    from qaflow.policydocs import write_policy_docs
    from qaflow.registry import shipped_specs

    if not Path(tests_dir).is_dir():
        raise ValidationError(field="--tests", value=tests_dir, expected="an existing folder")
    specs = _specs(file) if file else shipped_specs()
    for path in write_policy_docs(out, specs, tests_dir):
        click.echo(f"wrote {path}")
