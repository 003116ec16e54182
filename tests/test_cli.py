"""The ``qaflow`` command line: each command over a real SQLite file, errors as one line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from qaflow import Actor, Engine, ManualClock, SQLiteStore
from qaflow.cli import main
from qaflow.policies import bexley
from qaflow.registry import shipped_spec, shipped_specs

FIRO = "escalation.bexley_firo"


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "cli.db"
    with SQLiteStore(path) as store:
        engine = Engine(
            store, shipped_specs(), clock=ManualClock(datetime(2025, 12, 19, 10, tzinfo=UTC))
        )
        engine.start(
            FIRO,
            "ESC-1",
            "raise",
            Actor("FIRO-1", "firo"),
            {"subject_id": "CARER-1", "reason": bexley.FIRO_LADDER.reasons[0], "to": "stage_1"},
        )
    return str(path)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_history_lists_events_without_payloads(db: str) -> None:
    code, out = run("history", "ESC-1", "--db", db)
    assert code == 0 and "raise" in out and "stage_1" in out and "CARER-1" not in out
    code, out = run("history", "ESC-1", "--db", db, "--json")
    assert code == 0 and '"trigger": "raise"' in out


def test_tick_fires_due_deadlines_once(db: str) -> None:
    code, out = run("tick", "--db", db, "--now", "2025-12-31T09:00:00+00:00")
    assert code == 0 and "breach: response" in out and "response_overdue" in out
    assert "1 deadline breach(es), 0 period(s) ended (1 step(s) written)" in out
    code, out = run("tick", "--db", db, "--now", "2025-12-31T09:00:00+00:00")
    assert code == 0 and "0 deadline breach(es), 0 period(s) ended" in out


def test_verify_and_outbox(db: str) -> None:
    code, out = run("verify", "--db", db)
    assert code == 0 and "verified 1 workflow(s)" in out
    code, out = run("outbox", "--db", db)
    assert code == 0 and "BX-ESC-FIRO" in out


def test_verify_lists_every_problem_on_tampering(db: str) -> None:
    with SQLiteStore(db) as store:
        store.conn.execute("UPDATE events SET actor_id = 'FIRO-9' WHERE seq = 1")
    code, out = run("verify", "--db", db)
    assert code == 1
    assert out.strip().splitlines() == [
        "workflow 'ESC-1', event 1: hash does not match the event's content",
        "workflow 'ESC-1', event 1: replaying the events does not reproduce the snapshot "
        "(data, last_hash)",
        "Error: IntegrityError: 2 problem(s) found in 1 workflow(s) checked",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("history", "NOPE"), "UnknownWorkflow: no workflow with id 'NOPE'"),
        (("tick", "--now", "next tuesday"), "'--now' must be a date (2026-04-15)"),
        (("diagram", "audit"), "machine 'audit' is shipped for several policies"),
        (("policy", "show", "nowhere"), "'NAME' must be one of"),
    ],
)
def test_errors_are_one_clear_line(db: str, args: tuple[str, ...], message: str) -> None:
    extra = ("--db", db) if args[0] in ("history", "tick") else ()
    code, out = run(*args, *extra)
    assert code == 1 and message in out and len(out.strip().splitlines()) == 1


def test_missing_database_is_refused(tmp_path: Path) -> None:
    code, out = run("verify", "--db", str(tmp_path / "none.db"))
    assert code == 1 and "'--db' must be an existing qaflow database" in out
    assert not (tmp_path / "none.db").exists()


def test_diagram_lists_and_draws_every_state() -> None:
    code, out = run("diagram")
    assert code == 0 and FIRO in out
    code, out = run("diagram", "audit", "--policy", "buckinghamshire")
    assert code == 0 and out.startswith("---")
    for state in shipped_spec("audit", "buckinghamshire").state_names:
        assert state in out


def test_policy_show_and_docs(tmp_path: Path) -> None:
    code, out = run("policy", "show", "bexley")
    assert code == 0 and "BX-ESC-FIRO-02" in out
    tests_dir = Path(__file__).parent
    code, out = run("policy", "docs", "--out", str(tmp_path), "--tests", str(tests_dir))
    assert code == 0 and "bexley.md" in out
    page = (tmp_path / "bexley.md").read_text()
    assert "### BX-ESC-FIRO-02" in page and "test_BX_ESC_FIRO_02_stage_deadlines" in page
    assert "```mermaid" in page
    assert "timescale `supervision`" in page and "BX-SUP-01" in page


def test_policy_show_lists_the_rolling_timescales() -> None:
    code, out = run("policy", "show", "buckinghamshire")
    assert code == 0 and "case_timescales: timescales" in out and "BK-TS-07" in out


@pytest.mark.slow
def test_demo_end_to_end_through_the_entry_point(tmp_path: Path) -> None:
    """``qaflow demo`` as a user runs it: a fresh process, a temporary folder."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "from qaflow.cli import main; main()", "demo", "--out", "d"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "verified" in done.stdout and "qa-report.html" in done.stdout
    db = tmp_path / "d" / "qaflow-demo.db"
    assert db.exists() and (tmp_path / "d" / "qa-report.html").exists()
    code, out = run("verify", "--db", str(db))
    assert code == 0
    code, out = run(
        "report", "--db", str(db), "--from", "2026-01-01", "--to", "2026-04-01", "--format", "json"
    )
    assert code == 0 and '"audits_allocated"' in out
    code, out = run("tick", "--db", str(db), "--now", "2026-04-01T00:00:00+01:00")
    assert code == 0


def test_simulate_escalations_table_and_json() -> None:
    code, out = run("simulate", "escalations", "--ladder", "firo", "-n", "40", "--seed", "3")
    assert code == 0 and "40 paths, seed 3" in out and "ended at" in out
    code, again = run("simulate", "escalations", "--ladder", "firo", "-n", "40", "--seed", "3")
    assert again == out  # seeded: the same table
    code, out = run("simulate", "escalations", "-n", "20", "--json")
    assert code == 0 and '"accept_probability"' in out
    code, out = run("simulate", "escalations", "-n", "0")
    assert code == 2


def test_history_pages_with_limit_and_after(tmp_path: Path) -> None:
    """Issue 14: --limit and --after page through a long history; the table stays aligned."""
    from review_machine import review_spec

    path = tmp_path / "long.db"
    with SQLiteStore(path) as store:
        engine = Engine(
            store, [review_spec()], clock=ManualClock(datetime(2025, 12, 1, tzinfo=UTC))
        )
        worker = Actor("P-1", "worker")
        engine.start("example.review", "R-1", "submit", worker, {"document_ref": "D"})
        for _ in range(6):
            engine.fire("R-1", "comment", worker, {"text": "private words"})
        total = len(engine.history("R-1"))
    assert total == 7
    db = str(path)
    code, out = run("history", "R-1", "--db", db)
    assert code == 0 and len(out.splitlines()) == 3 + total and "private" not in out
    code, out = run("history", "R-1", "--db", db, "--limit", "2")
    lines = out.splitlines()
    assert code == 0 and lines[1].split() == [
        "#",
        "at",
        "(London)",
        "trigger",
        "from",
        "to",
        "actor",
        "role",
    ]
    assert [ln.split()[0] for ln in lines[3:5]] == ["1", "2"]
    assert lines[-1] == f"{total - 2} more event(s): --after 2"
    code, out = run("history", "R-1", "--db", db, "--after", "2", "--limit", "2")
    assert code == 0 and [ln.split()[0] for ln in out.splitlines()[3:5]] == ["3", "4"]
    code, out = run("history", "R-1", "--db", db, "--after", str(total - 1))
    assert code == 0 and out.splitlines()[-1].split()[0] == str(total) and "more" not in out
    code, out = run("history", "R-1", "--db", db, "--after", "1", "--limit", "1", "--json")
    assert code == 0 and '"seq": 2' in out and '"seq": 3' not in out
    for bad in (("--limit", "0"), ("--after", "-1")):
        code, out = run("history", "R-1", "--db", db, *bad)
        assert code == 1 and out.startswith(f"Error: ValidationError: '{bad[0]}'"), out
        assert "Traceback" not in out
