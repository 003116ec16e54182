"""The ``qaflow`` command line: a thin click layer over the library.

Every command maps to one library call; errors print one line and exit with status 1 (2 for
usage errors, as click does). Commands that write say so in their help.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from qaflow.errors import QAFlowError, ValidationError
from qaflow.records import converter

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])

console = Console(highlight=False)


def _fail_cleanly(func: F) -> F:
    """Turn a qaflow error into one clear line and exit status 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except QAFlowError as error:
            raise click.ClickException(f"{type(error).__name__}: {error}") from None

    return wrapper  # type: ignore[return-value]


def _parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            field="--now", value=text, expected="an ISO 8601 datetime with a UTC offset"
        ) from None
    if moment.tzinfo is None:
        raise ValidationError(
            field="--now", value=text, expected="an ISO 8601 datetime with a UTC offset"
        )
    return moment


@contextmanager
def _engine(db: str) -> Iterator[Any]:
    from qaflow.engine import Engine
    from qaflow.registry import shipped_specs
    from qaflow.store import SQLiteStore

    if not Path(db).exists():
        raise ValidationError(field="--db", value=db, expected="an existing qaflow database")
    store = SQLiteStore(db)
    try:
        yield Engine(store, shipped_specs())
    finally:
        store.close()


DB_OPTION = click.option(
    "--db", default="qaflow.db", show_default=True, help="The SQLite database file."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qaflow")
def main() -> None:
    """Council QA and escalation procedures as durable state machines."""


@main.command()
@click.option("--out", default="qaflow-demo", show_default=True, help="Folder for its files.")
@click.option("--months", type=click.IntRange(1, 24), default=3, show_default=True)
@click.option("--seed", type=int, default=2026, show_default=True)
@_fail_cleanly
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
@_fail_cleanly
def simulate_escalations_command(ladder: str, paths: int, seed: int, as_json: bool) -> None:
    """Run N escalations on a ladder with a virtual clock; print where they end and when."""
    from qaflow.policies import bexley
    from qaflow.simulate import simulate_escalations

    chosen = {
        "cp_chair": bexley.CP_CHAIR_LADDER,
        "iro": bexley.IRO_LADDER,
        "firo": bexley.FIRO_LADDER,
    }[ladder]
    with console.status(f"simulating {paths} {ladder} escalation(s)"):
        result = simulate_escalations(chosen, bexley.POLICY, n=paths, seed=seed)
    click.echo(result.to_json(paths=False, indent=2) if as_json else result.to_text())


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
@_fail_cleanly
def report(db: str, start: datetime, end: datetime, fmt: str, out: str | None) -> None:
    """Build the QA report for a period from the database (reads; writes only --out)."""
    from qaflow import report as qa_report

    with _engine(db) as engine:
        built = qa_report.build_report(engine.store, start=start.date(), end=end.date())
    render = {"md": qa_report.to_markdown, "json": qa_report.to_json, "html": qa_report.to_html}[
        fmt
    ]
    text = render(built)
    if out is None:
        click.echo(text)
    else:
        Path(out).write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}")


@main.command()
@click.argument("machine", required=False)
@click.option("--policy", help="The council policy, where several ship MACHINE.")
@click.option("--show-missed", is_flag=True, help="Also draw the built-in deadline_missed loops.")
@_fail_cleanly
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
@_fail_cleanly
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


@policy.command("docs")
@click.option("--out", default="policy-docs", show_default=True, help="Folder to write into.")
@click.option(
    "--tests",
    "tests_dir",
    default="tests",
    show_default=True,
    help="Where the tests that name clause IDs live.",
)
@_fail_cleanly
def policy_docs(out: str, tests_dir: str) -> None:
    """Write a Markdown page per shipped policy: clauses, values, diagrams, tests (writes)."""
    from qaflow.policydocs import write_policy_docs
    from qaflow.registry import shipped_specs

    if not Path(tests_dir).is_dir():
        raise ValidationError(field="--tests", value=tests_dir, expected="an existing folder")
    for path in write_policy_docs(out, shipped_specs(), tests_dir):
        click.echo(f"wrote {path}")


@main.command()
@DB_OPTION
@click.option("--now", help="Fire what is due by this ISO time (default: the real time).")
@_fail_cleanly
def tick(db: str, now: str | None) -> None:
    """Fire every deadline due by NOW (writes; safe to run from several processes)."""
    moment = _parse_now(now)
    with _engine(db) as engine:
        steps = engine.tick(moment)
    for step in steps:
        e = step.event
        click.echo(f"{e.workflow_id}  {e.trigger}  {e.source} -> {e.dest}  (event {e.seq})")
    click.echo(f"{len(steps)} deadline breach(es) fired")


@main.command()
@click.argument("workflow_id")
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
@_fail_cleanly
def history(workflow_id: str, db: str, as_json: bool) -> None:
    """Print a workflow's events (reads only; payload contents are not shown in the table)."""
    with _engine(db) as engine:
        events = engine.history(workflow_id)
        snapshot = engine.get(workflow_id)
    if as_json:
        click.echo(json.dumps(converter.unstructure(events), indent=2))
        return
    table = Table(
        title=f"{workflow_id}: {snapshot.machine} ({snapshot.policy} v"
        f"{snapshot.policy_version}), now {snapshot.state}"
    )
    for column in ("#", "at (UTC)", "trigger", "from", "to", "actor", "role"):
        table.add_column(column)
    for e in events:
        table.add_row(
            str(e.seq),
            f"{e.at:%Y-%m-%d %H:%M}",
            e.trigger,
            e.source,
            e.dest,
            e.actor.id,
            e.actor.role,
        )
    console.print(table)


@main.command()
@click.argument("workflow_id", required=False)
@DB_OPTION
@_fail_cleanly
def verify(workflow_id: str | None, db: str) -> None:
    """Check every hash chain and replay (reads only); exit 1 on the first failure."""
    with _engine(db) as engine:
        count = engine.verify(workflow_id)
    click.echo(f"verified {count} workflow(s): hash chains intact, replays match")


@main.command()
@DB_OPTION
@click.option("--limit", type=int, default=50, show_default=True)
@_fail_cleanly
def outbox(db: str, limit: int) -> None:
    """List pending notifications (reads only): who is to be told what, under which clause."""
    with _engine(db) as engine:
        pending = engine.store.pending_notifications(limit=limit)
    table = Table(title=f"{len(pending)} pending notification(s)")
    for column in ("id", "to role", "to id", "reason", "clause"):
        table.add_column(column)
    for n in pending:
        table.add_row(n.id, n.recipient_role, n.recipient_id or "", n.reason, n.clause or "")
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
