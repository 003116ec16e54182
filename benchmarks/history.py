"""CLI ``history`` benchmark: a workflow with 100,000 events, printed by ``qaflow history``.

    python benchmarks/history.py           # 100,000 events
    python benchmarks/history.py --quick   # 20,000 events

Subject: the whole command (``qaflow history ID --db F`` through click's test runner: open
the file, read and decode every event, render the table), seconds for all events and per
event. Baseline: the rendering before issue 14, a ``rich.table.Table`` of the same cells
printed to a console writing to nowhere, measured on the first 2,000 events (per event; a
whole 100,000-event rich table takes over a minute). Target: 100,000 events in seconds.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console
from rich.table import Table

from _common import Row, header, line, summary, us
from qaflow import Actor, Engine, ManualClock, MemoryStore, SQLiteStore
from qaflow.cli import main as cli
from review_machine import review_spec

WORKER = Actor("P-001", "worker")


def build(path: Path, n: int) -> None:
    spec = review_spec()
    clock = ManualClock(datetime(2025, 3, 3, 9, tzinfo=UTC))
    engine = Engine(MemoryStore(), [spec], clock=clock)
    steps = [engine.start(spec, "R-1", "submit", WORKER, {"document_ref": "D"})]
    for _ in range(n - 1):
        clock.advance(minutes=1)
        steps.append(engine.fire("R-1", "comment", WORKER, {"text": "words"}))
    with SQLiteStore(path, synchronous="NORMAL") as store:
        store.conn.execute("PRAGMA synchronous=OFF")  # setup only
        for step in steps:
            store.commit(step, expected_version=step.event.seq - 1)


def rich_table(db: Path, k: int) -> float:
    """Seconds per event for the old rendering of the first ``k`` events."""
    with SQLiteStore(db) as store:
        events = store.events("R-1")[:k]
    t = time.perf_counter()
    table = Table(title="R-1")
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
    Console(file=io.StringIO(), width=120).print(table)
    return (time.perf_counter() - t) / k


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="20,000 events")
    args = parser.parse_args(argv)
    n = 20_000 if args.quick else 100_000
    started = time.perf_counter()
    print(f"qaflow history benchmark; Python {sys.version.split()[0]}")
    tmp = Path(tempfile.mkdtemp(prefix="qaflow-history-"))
    try:
        db = tmp / "h.db"
        build(db, n)
        header(f"qaflow history of one workflow with {n:,} events")
        t = time.perf_counter()
        result = CliRunner().invoke(cli, ["history", "R-1", "--db", str(db)])
        whole = time.perf_counter() - t
        assert result.exit_code == 0 and len(result.output.splitlines()) == n + 3
        t = time.perf_counter()
        page = CliRunner().invoke(cli, ["history", "R-1", "--db", str(db), "--limit", "50"])
        paged = time.perf_counter() - t
        assert page.exit_code == 0 and "--after 50" in page.output
        old = rich_table(db, 2_000)
        line("qaflow history, every event", f"{whole:,.2f} s")
        line("  per event", us(whole / n))
        line("rich Table rendering (before), per event", us(old))
        line("  ratio", f"{whole / n / old:.4f}x")
        line("qaflow history --limit 50", f"{paged:,.2f} s")
        rows = [
            Row(
                f"history, {n:,} events",
                f"{whole:,.2f} s",
                f"{whole / n / old:.4f}x rich Table",
                "seconds",
                whole < 10,
            )
        ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary(rows)
    print(f"\ntotal {time.perf_counter() - started:,.0f} s")


if __name__ == "__main__":
    main()
