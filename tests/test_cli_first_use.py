"""The command line as a new user first meets it: finding the data, dates read as London
time, honest summaries, output that survives a pipe, help for every option."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import qaflow
from qaflow import Actor, Engine, ManualClock, SQLiteStore
from qaflow.cli import main
from qaflow.cli._common import parse_now
from qaflow.cli._demo import next_commands
from qaflow.demo import DemoResult, run_demo
from qaflow.policies import bexley
from qaflow.registry import shipped_specs

FIRO = "escalation.bexley_firo"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


def raise_firo(path: Path, at: datetime, workflow_id: str = "ESC-1") -> str:
    """A database holding one FIRO escalation raised at ``at`` (straight to stage 1)."""
    with SQLiteStore(path) as store:
        engine = Engine(store, shipped_specs(), clock=ManualClock(at))
        engine.start(
            FIRO,
            workflow_id,
            "raise",
            Actor("FIRO-1", "firo"),
            {"subject_id": "CARER-1", "reason": bexley.FIRO_LADDER.reasons[0], "to": "stage_1"},
        )
    return str(path)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return raise_firo(tmp_path / "cli.db", datetime(2025, 12, 19, 10, tzinfo=UTC))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    """The demo's quarter, written once for this module (tests copy it before writing)."""
    return run_demo(tmp_path_factory.mktemp("demo") / "qaflow-demo")


# --- finding your data ------------------------------------------------------------------


def test_QAFLOW_DB_is_the_default_of_every_db_option(db: str, tmp_path: Path) -> None:
    env = {"QAFLOW_DB": db}
    for args in (("verify",), ("history", "ESC-1"), ("outbox",), ("tick", "--now", "2025-12-20")):
        code, out = run(*args, env=env)
        assert code == 0, (args, out)
    code, out = run("report", "--from", "2025-12-01", "--to", "2025-12-31", env=env)
    assert code == 0 and "# Quality assurance report" in out
    # --db still wins over the environment.
    code, out = run("verify", "--db", str(tmp_path / "other.db"), env=env)
    assert code == 1 and "'--db' must be an existing qaflow database" in out


def test_a_missing_database_names_where_the_demo_is_and_how_to_choose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = run("history", "X")
    assert code == 1 and len(out.strip().splitlines()) == 1
    assert "'--db' must be an existing qaflow database" in out
    assert "`qaflow demo` writes qaflow-demo/qaflow-demo.db" in out
    assert "--db PATH" in out and "QAFLOW_DB=PATH" in out and "(got 'qaflow.db')" in out
    code, out = run("verify", env={"QAFLOW_DB": "elsewhere.db"})
    assert code == 1 and "'QAFLOW_DB' must be an existing qaflow database" in out
    assert not Path("qaflow.db").exists() and not Path("elsewhere.db").exists()
    (tmp_path / "qaflow-demo").mkdir()
    (tmp_path / "qaflow-demo" / "qaflow-demo.db").touch()
    code, out = run("verify")
    assert code == 1 and "the demo's is qaflow-demo/qaflow-demo.db here" in out


def test_the_demo_ends_with_next_commands_that_run(demo: DemoResult, tmp_path: Path) -> None:
    lines = next_commands(demo)
    assert lines[0].startswith("next (or `export QAFLOW_DB=")
    commands = [shlex.split(line) for line in lines[1:]]
    assert all(c[0] == "qaflow" for c in commands)  # not run as an installed script here
    histories = [c for c in commands if c[1] == "history"]
    assert [c[2] for c in histories] == list(demo.samples) and len(demo.samples) == 2
    with SQLiteStore(demo.database) as store:
        machines = [store.load(w).machine.split(".")[0] for w in demo.samples]
    assert machines == ["escalation", "audit"]
    assert commands[-1][-4:] == ["--from", "2026-01-01", "--to", "2026-03-31"]
    for command in commands:
        code, out = run(*command[1:])
        assert code == 0, (command, out)
        if command[1] == "history":
            assert command[2] in out and "+00:00" in out


# --- dates ------------------------------------------------------------------------------


def test_report_to_is_inclusive_and_a_reversed_period_names_the_options(tmp_path: Path) -> None:
    """An escalation raised at 23:30 on 31 March (London, BST) belongs to a period that ends
    --to 2026-03-31, and not to one that ends the day before."""
    db = raise_firo(tmp_path / "r.db", datetime(2026, 3, 31, 22, 30, tzinfo=UTC))

    def raised(to: str) -> int:
        code, out = run(
            "report", "--db", db, "--from", "2026-03-01", "--to", to, "--format", "json"
        )
        assert code == 0, out
        return int(json.loads(out)["activity"]["escalations_raised"])

    assert raised("2026-03-31") == 1
    assert raised("2026-03-30") == 0
    code, out = run("report", "--db", db, "--from", "2026-03-31", "--to", "2026-03-31")
    assert code == 0 and "report: 31 March 2026 to 31 March 2026" in out
    code, out = run("report", "--db", db, "--from", "2026-04-01", "--to", "2026-03-01")
    assert code == 1 and len(out.strip().splitlines()) == 1
    assert "'--to' must be on or after --from 2026-04-01 (got '2026-03-01')" in out
    assert "T00:00" not in out and "+00:00" not in out


def test_now_without_an_offset_is_london_time() -> None:
    assert parse_now("2026-04-15T09:00") == datetime(2026, 4, 15, 8, 0, tzinfo=UTC)  # BST
    assert parse_now("2026-01-15T09:00") == datetime(2026, 1, 15, 9, 0, tzinfo=UTC)  # GMT
    assert parse_now("2026-04-15") == datetime(2026, 4, 14, 23, 0, tzinfo=UTC)  # its midnight
    assert parse_now("2026-04-15T09:00+00:00") == datetime(2026, 4, 15, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "fires"),
    [
        ("2025-12-30", 0),  # midnight at the start of the due day: not due yet
        ("2025-12-30T23:59", 0),  # due at the end of Tue 30 Dec 2025
        ("2025-12-31", 1),
        ("2025-12-31T09:00", 1),
    ],
)
def test_tick_accepts_a_date_or_a_local_time(db: str, now: str, fires: int) -> None:
    code, out = run("tick", "--db", db, "--now", now)
    assert code == 0 and f"{fires} deadline breach(es)" in out


def test_history_shows_london_time_with_its_offset(tmp_path: Path) -> None:
    """Raised at 23:59 BST on 30 June: the table says so, not 22:59."""
    db = raise_firo(tmp_path / "h.db", datetime(2026, 6, 30, 22, 59, tzinfo=UTC))
    code, out = run("history", "ESC-1", "--db", db)
    assert code == 0 and "2026-06-30 23:59 +01:00" in out and "22:59" not in out
    code, out = run("history", "ESC-1", "--db", db, "--json")
    assert code == 0 and json.loads(out)[0]["at"].startswith("2026-06-30T22:59")


# --- honest summaries -------------------------------------------------------------------


def test_outbox_title_says_shown_of_pending_and_json_has_both(demo: DemoResult) -> None:
    with SQLiteStore(demo.database) as store:
        pending = store.pending_notifications()
    assert len(pending) > 3
    code, out = run("outbox", "--db", str(demo.database), "--limit", "3")
    assert code == 0 and f"3 of {len(pending)} pending notification(s)" in out
    code, out = run("outbox", "--db", str(demo.database), "--limit", str(len(pending) + 5))
    title = out.splitlines()[0].strip()
    assert code == 0 and title == f"{len(pending)} pending notification(s)"
    code, out = run("outbox", "--db", str(demo.database), "--limit", "2", "--json")
    document = json.loads(out)
    assert document["pending"] == len(pending) and document["shown"] == 2
    assert [n["id"] for n in document["notifications"]] == [n.id for n in pending[:2]]
    assert set(document["notifications"][0]) >= {"workflow_id", "recipient_role", "clause"}


def test_tick_tells_breaches_from_periods_that_ended(demo: DemoResult, tmp_path: Path) -> None:
    """Half a year on, the demo's moderation windows close (no one is told: a period ended)
    and missed deadlines are breaches; the summary counts each kind as listed."""
    copy = tmp_path / "demo.db"
    shutil.copy(demo.database, copy)
    code, out = run("tick", "--db", str(copy), "--now", "2026-12-31", "--allow-future")
    assert code == 0, out
    lines = out.strip().splitlines()
    steps, summary = lines[:-1], lines[-1]
    ended = [s for s in steps if "period ended: moderation_window  close" in s]
    breaches = [s for s in steps if "  breach: " in s]
    assert ended and breaches and len(ended) + len(breaches) == len(steps)
    assert not any("moderation_window" in s for s in breaches)
    assert summary == (
        f"{len(breaches)} deadline breach(es), {len(ended)} period(s) ended "
        f"({len(steps)} step(s) written)"
    )


# --- output -----------------------------------------------------------------------------


def test_tables_are_not_cut_when_piped(demo: DemoResult) -> None:
    """CliRunner's output is not a terminal: no cell is cut to 80 columns with an ellipsis."""
    code, out = run("outbox", "--db", str(demo.database), "--limit", "500")
    assert code == 0 and "…" not in out and "allocated for audit" in out
    code, out = run("policy", "show", "bexley", "--machine", "audit")
    assert code == 0 and "…" not in out and max(len(line) for line in out.splitlines()) > 80


def test_simulate_prints_rich_tables_with_a_row_per_month() -> None:
    code, out = run("simulate", "escalations", "--ladder", "firo", "-n", "60", "--seed", "3")
    assert code == 0 and "┃ month" in out and "│ total" in out
    months = [line for line in out.splitlines() if line.startswith("│ 20")]
    assert len(months) >= 12  # a row per month, so the table does not grow sideways
    load = out[out.index("per holder role") :]
    assert max(len(line) for line in load.splitlines()) < 160


def test_policy_show_narrows_and_ignores_case() -> None:
    code, everything = run("policy", "show", "bexley")
    assert code == 0
    code, out = run("policy", "show", "Bexley")
    assert code == 0 and out == everything
    code, out = run("policy", "show", "BEXLEY", "--machine", "escalation.bexley_firo")
    assert code == 0 and "BX-ESC-FIRO-02" in out and "audit (bexley" not in out
    code, ladders = run("policy", "show", "bexley", "--machine", "Escalation")
    assert code == 0 and all(f"escalation.bexley_{x} (bexley" in ladders for x in bexley_ladders())
    code, out = run("policy", "show", "--machine", "audit", "--state", "Completed")
    assert code == 0 and "audit (bexley" in out and "audit (buckinghamshire" in out
    assert "follow_up: 5 WD (BX-AUD-09)" in out and "│ allocated " not in out
    assert len(out) < len(everything) / 5
    code, out = run("policy", "show", "bexley", "--machine", "nothing")
    assert code == 1 and "'--machine' must be one of" in out
    code, out = run("policy", "show", "bexley", "--state", "limbo")
    assert code == 1 and "'--state' must be one of" in out


def bexley_ladders() -> list[str]:
    return ["cp_chair", "firo", "iro"]


def test_policy_docs_works_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from an empty folder: the tests are found next to qaflow's own source when it runs
    from a clone; an installed wheel (CI's compiled leg) has none beside it, so the pages say
    no tests were searched until ``--tests`` names the folder."""
    tests_dir = Path(__file__).resolve().parent
    from_clone = Path(qaflow.__file__).resolve().is_relative_to(tests_dir.parent / "src")
    monkeypatch.chdir(tmp_path)
    code, out = run("policy", "docs")
    assert code == 0, out
    page = (tmp_path / "policy-docs" / "bexley.md").read_text()
    if from_clone:
        assert f"tests read from {tests_dir}" in out
        assert "test_BX_ESC_FIRO_02_stage_deadlines" in page
    else:
        assert "tests not found (give --tests DIR)" in out
        assert "The tests were not searched" in page and "test_BX_ESC" not in page
        code, out = run("policy", "docs", "--out", "given", "--tests", str(tests_dir))
        assert code == 0 and f"tests read from {tests_dir}" in out, out
        page = (tmp_path / "given" / "bexley.md").read_text()
        assert "test_BX_ESC_FIRO_02_stage_deadlines" in page
    code, out = run("policy", "docs", "--out", "elsewhere", "--tests", "missing")
    assert code == 1 and "'--tests' must be an existing folder" in out


def test_policy_pages_without_tests_say_so_instead_of_calling_clauses_untested() -> None:
    from qaflow.policydocs import policy_page

    page = policy_page("bexley", shipped_specs(), None)
    assert "The tests were not searched" in page and "no test names this clause" not in page
    assert "tested by" not in page


# --- help -------------------------------------------------------------------------------


def walk(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, click.Command]]:
    """Every command under ``group`` with its path (``policy show``), groups included."""
    found: list[tuple[str, click.Command]] = []
    for name, command in sorted(group.commands.items()):
        found.append((" ".join((*path, name)), command))
        if isinstance(command, click.Group):
            found += walk(command, (*path, name))
    return found


@pytest.mark.parametrize(("path", "command"), walk(main), ids=lambda x: str(x))
def test_every_option_has_help_and_no_command_summary_is_cut(
    path: str, command: click.Command
) -> None:
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"qaflow {path} {param.opts[0]} has no help text"
    assert not command.get_short_help_str(limit=45).endswith("..."), path


def test_top_level_help_lists_commands_whole() -> None:
    code, out = run("--help")
    listing = out[out.index("Commands:") :]
    assert code == 0 and "..." not in listing and "…" not in listing
    for name in main.commands:
        assert f"  {name} " in out


# --- no internal jargon -----------------------------------------------------------------

JARGON = re.compile(
    r"invariant I\d|\(I\d{1,2}\)|\bI\d{1,2}:|principles? \d|seed 00\d|DESIGN\.md|POLICIES\.md|"
    r"LAYOUT\.md|\"I\d{1,2}\""
)


def test_no_internal_jargon_in_the_source_or_the_policy_pages() -> None:
    """Docstrings, messages and generated pages say what they mean: no design-document
    numbers (invariant I2, principle 8), no internal document names or seed numbers."""
    import qaflow
    from qaflow.policydocs import policy_page

    source = Path(qaflow.__file__).resolve().parent
    found = [
        f"{path.relative_to(source)}:{n}: {line.strip()}"
        for path in sorted(source.rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if JARGON.search(line)
    ]
    assert found == []
    for name in ("bexley", "buckinghamshire"):
        page = policy_page(name, shipped_specs(), None)
        assert not JARGON.search(page) and "seed" not in page
