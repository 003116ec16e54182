"""Progress on long work: the library reports ``progress(done, total)``; the CLI draws a bar
with counts and time left on a terminal, and stays quiet when its output is not one."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from qaflow.cli import main
from qaflow.policies import bexley
from qaflow.programme import generate_council, run_programme
from qaflow.simulate import simulate_escalations


def test_a_simulation_reports_each_escalation_that_ends() -> None:
    calls: list[tuple[int, int]] = []
    result = simulate_escalations(
        bexley.FIRO_LADDER, n=1000, seed=3, progress=lambda d, t: calls.append((d, t))
    )
    assert len(result.paths) == 1000
    assert calls[-1] == (1000, 1000)
    assert all(t == 1000 for _, t in calls) and len(calls) <= 201
    done = [d for d, _ in calls]
    assert done == sorted(done) and len(set(done)) == len(done)


def test_a_programme_reports_the_days_as_they_pass() -> None:
    calls: list[tuple[int, int]] = []
    run_programme(
        generate_council(5),
        months=1,
        start=date(2026, 1, 1),
        seed=5,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls[-1] == (31, 31)
    done = [d for d, _ in calls]
    assert done == sorted(done) and len(calls) > 10


def test_the_cli_is_quiet_when_not_a_terminal() -> None:
    result = CliRunner().invoke(main, ["simulate", "escalations", "-n", "200", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["n"] == 200  # nothing but the JSON


@pytest.mark.slow
def test_the_cli_draws_counts_and_time_left_on_a_terminal(tmp_path: Path) -> None:
    qaflow = Path(sys.executable).with_name("qaflow")
    master, slave = pty.openpty()
    env = dict(os.environ, COLUMNS="120", TERM="xterm")
    env.pop("NO_COLOR", None)
    child = subprocess.Popen(
        [str(qaflow), "simulate", "escalations", "-n", "3000", "--json"],
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=tmp_path,
    )
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert child.wait(timeout=120) == 0
    text = out.decode(errors="replace")
    counts = [int(n) for n in re.findall(r"(\d+)/3000", text)]
    assert len(counts) >= 2 and counts == sorted(counts), counts[:10]
    assert "left" in text and "simulating firo escalations" in text


def test_verify_reports_the_workflows_it_checks() -> None:
    from qaflow.engine import Engine
    from qaflow.registry import shipped_specs
    from qaflow.store import MemoryStore

    store = MemoryStore()
    run_programme(generate_council(6), months=1, start=date(2026, 1, 1), seed=6, store=store)
    total = sum(1 for _ in store.workflow_ids())
    calls: list[tuple[int, int]] = []
    report = Engine(store, shipped_specs()).verify_report(
        progress=lambda d, t: calls.append((d, t))
    )
    assert report.workflows == total > 0
    assert calls[-1] == (total, total) and [d for d, _ in calls] == sorted(d for d, _ in calls)


def _on_a_terminal(args: list[str], cwd: Path) -> str:
    """Run ``qaflow`` with its output on a pseudo-terminal; return what it drew."""
    qaflow = Path(sys.executable).with_name("qaflow")
    master, slave = pty.openpty()
    env = dict(os.environ, COLUMNS="120", TERM="xterm")
    env.pop("NO_COLOR", None)
    child = subprocess.Popen([str(qaflow), *args], stdout=slave, stderr=slave, env=env, cwd=cwd)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert child.wait(timeout=120) == 0, out[-2000:]
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode(errors="replace"))  # colours off


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from qaflow.store import SQLiteStore

    path = tmp_path_factory.mktemp("progress") / "p.db"
    with SQLiteStore(path, synchronous="NORMAL") as store:
        run_programme(generate_council(3, teams=2), months=1, start=date(2026, 1, 1), seed=3,
                      store=store)  # fmt: skip
    return path


def test_report_and_copy_draw_counts_on_a_terminal(small_db: Path, tmp_path: Path) -> None:
    period = ["--from", "2026-01-01", "--to", "2026-01-31", "--trends", "3"]
    text = _on_a_terminal(["report", "--db", str(small_db), *period, "--format", "json"], tmp_path)
    counts = [int(n) for n in re.findall(r"(\d+)/4 periods", text)]  # 1 + 3 months, no compare
    assert counts and counts == sorted(counts) and counts[-1] <= 4, text[-500:]
    target = tmp_path / "copy.db"
    text = _on_a_terminal(["copy", "--from", str(small_db), "--to", str(target)], tmp_path)
    assert re.search(r"\d+/\d+ copied", text) and "copied " in text


def test_report_and_copy_are_quiet_when_piped(small_db: Path, tmp_path: Path) -> None:
    period = ["--from", "2026-01-01", "--to", "2026-01-31", "--trends", "3"]
    result = CliRunner().invoke(
        main, ["report", "--db", str(small_db), *period, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["trends"]) == 3  # nothing but the JSON
    target = tmp_path / "copy.db"
    result = CliRunner().invoke(main, ["copy", "--from", str(small_db), "--to", str(target)])
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("copied ")


def test_copy_reports_each_chunk(small_db: Path, tmp_path: Path) -> None:
    from qaflow.cli._copy import copy_workflows
    from qaflow.engine import Engine
    from qaflow.registry import shipped_specs
    from qaflow.store import SQLiteStore

    calls: list[tuple[int, int]] = []
    with SQLiteStore(small_db) as source, SQLiteStore(tmp_path / "c.db") as target:
        total = sum(1 for _ in source.workflow_ids())
        copied, _ = copy_workflows(
            Engine(source, shipped_specs()),
            target,
            chunk=7,
            progress=lambda d, t: calls.append((d, t)),
        )
    assert copied == total and calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) == -(-total // 7)
