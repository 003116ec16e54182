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
@fail_cleanly
def diagram(machine: str | None, policy: str | None, show_missed: bool) -> None:
    """Print a shipped machine as a mermaid state diagram (without MACHINE: list them)."""
    from qaflow.diagram import mermaid
    from qaflow.registry import shipped_spec, shipped_specs

    if machine is None:
        for spec in shipped_specs():
            click.echo(f"{spec.name}  --policy {spec.policy}  (version {spec.policy_version})")
        return
    click.echo(mermaid(shipped_spec(machine, policy), show_missed=show_missed))


@main.group()
def policy() -> None:
    """Read the shipped policies: their values, clauses and tests."""


@policy.command("show")
@click.argument("name", required=False)
@fail_cleanly
def policy_show(name: str | None) -> None:
    """Print a policy's machines with their deadlines, roles and clauses (reads only)."""
    from qaflow.registry import shipped_specs

    specs = [s for s in shipped_specs() if name in (None, s.policy)]
    if not specs:
        policies = sorted({s.policy for s in shipped_specs()})
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
        if spec.rolling:
            console.print(_timescales_table(spec))


def _timescales_table(spec: MachineSpec) -> Table:
    """The spec's rolling timescales: cadence entries, what meets and what opens them."""
    table = Table(title=f"{spec.name}: timescales")
    for column in ("timescale", "when", "length", "met by", "opened by", "clause"):
        table.add_column(column)
    for r in spec.rolling:
        for c in r.cadence:
            lengths = [f"first {c.first}"] if c.first else []
            lengths += [f"{w.every} until {w.until} after {c.since}" for w in c.windows]
            lengths += [f"every {c.every}"] if c.every else []
            table.add_row(
                r.name,
                c.when or "always",
                ", ".join(lengths),
                ", ".join(r.met_by) + (f" if {r.met_when}" if r.met_when else ""),
                ", ".join(r.restart_by) + (f" if {r.restart_when}" if r.restart_when else ""),
                c.clause or r.clause or "",
            )
    return table


@policy.command("docs")
@click.option("--out", default="policy-docs", show_default=True, help="Folder to write into.")
@click.option(
    "--tests",
    "tests_dir",
    default="tests",
    show_default=True,
    help="Where the tests that name clause IDs live.",
)
@fail_cleanly
def policy_docs(out: str, tests_dir: str) -> None:
    """Write a Markdown page per shipped policy: clauses, values, diagrams, tests (writes)."""
    from qaflow.policydocs import write_policy_docs
    from qaflow.registry import shipped_specs

    if not Path(tests_dir).is_dir():
        raise ValidationError(field="--tests", value=tests_dir, expected="an existing folder")
    for path in write_policy_docs(out, shipped_specs(), tests_dir):
        click.echo(f"wrote {path}")
