"""``qaflow diagram`` and ``qaflow policy``: read the shipped machines and policies."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from qaflow.cli._common import console, fail_cleanly
from qaflow.cli._main import main
from qaflow.errors import ValidationError

if TYPE_CHECKING:
    from qaflow.spec import MachineSpec


@main.command(short_help="List the shipped machines, or draw one as mermaid.")
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
    """The machines of every procedure in a council's file."""
    from qaflow.cli._check import file_specs
    from qaflow.spec import MachineSpec

    return [s for s in file_specs(file) if isinstance(s, MachineSpec)]


@main.group(short_help="Read the shipped policies: values, clauses and tests.")
def policy() -> None:
    """Read the shipped policies: their values, clauses and tests."""


@policy.command("show", short_help="A policy's states, deadlines, roles and guards.")
@click.argument("name", required=False)
@click.option(
    "--machine",
    help="Only this machine (e.g. audit, or escalation for every ladder, or "
    "escalation.<ladder> for one).",
)
@click.option(
    "--state",
    help="Only this state: its deadlines and the commands that leave or enter it.",
)
@click.option("--file", "file", help="A procedure file to read instead of the shipped ones.")
@fail_cleanly
def policy_show(name: str | None, machine: str | None, state: str | None, file: str | None) -> None:
    """Print a policy's machines with their deadlines, roles and clauses (reads only).

    NAME, --machine and --state are matched without regard to case.
    """
    from qaflow.registry import shipped_specs

    every = _specs(file) if file else shipped_specs()
    specs = [s for s in every if name is None or s.policy == name.lower()]
    if not specs:
        policies = sorted({s.policy for s in every})
        raise ValidationError(field="NAME", value=name, expected=f"one of {policies}")
    if machine is not None:
        wanted = machine.lower()
        names = sorted({s.name for s in specs})
        specs = [s for s in specs if wanted in (s.name, s.name.split(".")[0])]
        if not specs:
            raise ValidationError(field="--machine", value=machine, expected=f"one of {names}")
    if state is not None:
        wanted_state = state.lower()
        states = sorted({n for s in specs for n in s.state_names})
        specs = [s for s in specs if wanted_state in s.state_names]
        if not specs:
            raise ValidationError(field="--state", value=state, expected=f"one of {states}")
    for spec in specs:
        _print_spec(spec, None if state is None else state.lower())
        if spec.rolling and state is None:
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


def _print_spec(spec: MachineSpec, only: str | None) -> None:
    from qaflow.policydocs import duration_text

    table = Table(title=f"{spec.name} ({spec.policy} v{spec.policy_version})")
    for column in ("state", "deadlines (clause)", "end?"):
        table.add_column(column)
    for state in spec.states:
        if only is not None and state.name != only:
            continue
        rules = "; ".join(
            f"{r.name}: {duration_text(r.duration)}" + (f" ({r.clause})" if r.clause else "")
            for r in state.deadlines
        )
        table.add_row(state.name, rules, "yes" if state.terminal else "")
    console.print(table)
    triggers = Table(title=f"{spec.name}: commands")
    for column in ("trigger", "from", "to", "roles", "guards (clause)"):
        triggers.add_column(column)
    for t in spec.transitions:
        if only is not None and only not in t.sources and t.dest != only:
            continue
        guards = "; ".join(g.condition + (f" ({g.clause})" if g.clause else "") for g in t.guards)
        triggers.add_row(
            t.trigger,
            ", ".join(t.sources),
            t.dest or "(stays)",
            ", ".join(sorted(t.roles)),
            guards,
        )
    console.print(triggers)


def _repository_tests() -> Path | None:
    """The tests folder of the source tree qaflow runs from (a clone, installed with
    ``pip install -e .``), or None when qaflow is installed without its tests."""
    import qaflow

    candidate = Path(qaflow.__file__).resolve().parent.parent.parent / "tests"
    return candidate if any(candidate.glob("test_*.py")) else None


@policy.command("docs", short_help="Write a Markdown page per shipped policy (writes).")
@click.option("--out", default="policy-docs", show_default=True, help="Folder to write into.")
@click.option(
    "--tests",
    "tests_dir",
    type=click.Path(file_okay=False),
    help="Where the tests that name clause IDs live (default: the tests folder of the clone "
    "qaflow is installed from; without one the pages list no tests and say so).",
)
@click.option("--file", "file", help="A procedure file to document instead of the shipped ones.")
@fail_cleanly
def policy_docs(out: str, tests_dir: str | None, file: str | None) -> None:
    """Write a Markdown page per shipped policy: clauses, values, diagrams, tests (writes).

    Works from any folder: the tests are found next to qaflow's own source when it is
    installed from a clone; otherwise give --tests, or the pages say no tests were searched.
    """
    from qaflow.policies import shipped_defaults
    from qaflow.policydocs import write_policy_docs
    from qaflow.registry import shipped_specs

    tests: Path | None
    if tests_dir is not None:
        tests = Path(tests_dir)
        if not tests.is_dir():
            raise ValidationError(field="--tests", value=tests_dir, expected="an existing folder")
    else:
        tests = _repository_tests()
    specs = _specs(file) if file else shipped_specs()
    defaults = None if file else shipped_defaults()
    for path in write_policy_docs(out, specs, tests, defaults):
        click.echo(f"wrote {path}")
    if tests is None:
        click.echo("tests not found (give --tests DIR): the pages list no tests")
    else:
        click.echo(f"tests read from {tests}")
