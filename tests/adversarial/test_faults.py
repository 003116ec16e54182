"""Faults (issue 16, #9, #10, #12, #15, #16): tick isolation, a busy or foreign database,
schema versions, threads. Real SQLite files throughout; no sleeps (timeouts are short)."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import MANAGER, T0, WORKER, populate
from qaflow import (
    Actor,
    Engine,
    ManualClock,
    QAFlowError,
    SQLiteStore,
    StoreBusy,
    StoreError,
)
from qaflow.cli import main
from qaflow.machines.escalation import escalation_machine
from qaflow.policies import bexley
from qaflow.store import SCHEMA_VERSION
from review_machine import review_spec

FIRO = escalation_machine(bexley.FIRO_LADDER, bexley.POLICY)


def _raise(engine: Engine, wid: str) -> None:
    payload = {"subject_id": "C-7", "reason": bexley.FIRO_LADDER.reasons[0], "to": "stage_1"}
    engine.start(FIRO.name, wid, "raise", Actor("FIRO-1", "firo"), payload)


def _mixed(path: Path) -> tuple[Engine, ManualClock]:
    """FIRO escalations (shipped) and review workflows (not shipped) in one database."""
    clock = ManualClock(T0)
    engine = Engine(SQLiteStore(path), [FIRO, review_spec()], clock=clock)
    _raise(engine, "ESC-1")
    populate(engine)
    _raise(engine, "ESC-2")
    return engine, clock


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tick_isolates_a_workflow_pinned_to_an_unregistered_spec(tmp_path: Path) -> None:
    """#9: one unusable workflow used to make tick raise before any other breach fired."""
    _, clock = _mixed(tmp_path / "q.db")
    clock.advance(timedelta(days=30))
    engine = Engine(SQLiteStore(tmp_path / "q.db"), [FIRO], clock=clock)
    steps = engine.tick()
    assert {s.event.workflow_id for s in steps} == {"ESC-1", "ESC-2"}
    assert {f.workflow_id for f in engine.tick_failures} == {"R1", "R2", "R3"}
    assert all("PolicyError" in f.error for f in engine.tick_failures)
    report = engine.verify_report()
    assert {p.workflow_id for p in report.problems} == {"R1", "R2", "R3"}


def test_tick_isolates_a_deadline_without_its_snapshot(tmp_path: Path) -> None:
    engine, clock = _mixed(tmp_path / "q.db")
    store = engine.store
    assert isinstance(store, SQLiteStore)
    store.conn.execute("DELETE FROM workflows WHERE workflow_id = 'ESC-1'")
    store.forget_cached()
    clock.advance(timedelta(days=30))
    steps = engine.tick()
    assert "ESC-2" in {s.event.workflow_id for s in steps}
    assert [f.workflow_id for f in engine.tick_failures] == ["ESC-1"]
    assert "UnknownWorkflow" in engine.tick_failures[0].error


def test_cli_tick_and_verify_report_unknown_policies_instead_of_failing(tmp_path: Path) -> None:
    """#9: ``qaflow tick``/``verify`` used to fail outright on a council's own ladder."""
    db = tmp_path / "q.db"
    _mixed(db)
    runner = CliRunner()
    tick = runner.invoke(main, ["tick", "--db", str(db), "--now", "2026-02-01T00:00:00+00:00"])
    assert tick.exception is None or isinstance(tick.exception, SystemExit)
    assert tick.exit_code == 1
    assert "ESC-1  breach: response  response_overdue" in tick.output
    assert "skipped R1: PolicyError" in tick.output
    assert "3 workflow(s) could not be ticked" in tick.output
    verify = runner.invoke(main, ["verify", "--db", str(db)])
    assert verify.exit_code == 1 and "workflow 'R1': its events cannot be replayed" in verify.output


def test_cli_loads_a_councils_own_ladders(tmp_path: Path) -> None:
    from qaflow.policies.ladders import load_ladders

    toml = Path(__file__).resolve().parents[2] / "examples" / "ladders" / "example_council.toml"
    book = load_ladders(toml)
    spec = escalation_machine(book.ladders[0], book.policy)
    db = tmp_path / "q.db"
    engine = Engine(SQLiteStore(db), [spec], clock=ManualClock(T0))
    raise_cmd = next(t for t in spec.transitions if t.trigger == "raise")
    payload = {
        f.name: (book.ladders[0].reasons[0] if f.name == "reason" else "C-1")
        for f in raise_cmd.fields
        if f.required
    }
    engine.start(spec.name, "E-1", "raise", Actor("IRO-1", book.ladders[0].raiser), payload)
    runner = CliRunner()
    assert runner.invoke(main, ["verify", "--db", str(db)]).exit_code == 1
    ok = runner.invoke(main, ["verify", "--db", str(db), "--ladders", str(toml)])
    assert ok.exit_code == 0, ok.output


def test_a_locked_database_raises_a_typed_retryable_error(tmp_path: Path) -> None:
    """#10: ``database is locked`` used to escape as sqlite3.OperationalError."""
    path = tmp_path / "q.db"
    engine = Engine(SQLiteStore(path, timeout=0.05), [review_spec()], clock=ManualClock(T0))
    populate(engine)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    before = engine.history("R2")
    with pytest.raises(StoreBusy, match="retry later") as info:
        engine.fire("R2", "comment", MANAGER, {"text": "x"})
    assert isinstance(info.value, TimeoutError) and info.value.retryable
    assert isinstance(engine.clock, ManualClock)
    engine.clock.advance(timedelta(days=30))
    with pytest.raises(StoreBusy):
        engine.tick()
    with pytest.raises(StoreBusy):
        SQLiteStore(path, timeout=0.05)
    holder.execute("ROLLBACK")
    assert engine.history("R2") == before
    engine.fire("R2", "comment", MANAGER, {"text": "x"})  # the retry goes through
    engine.verify()


def test_one_store_shared_by_threads_loses_nothing(tmp_path: Path) -> None:
    """#16: a store shared across threads used to report committed commands as failed."""
    store = SQLiteStore(tmp_path / "q.db", synchronous="NORMAL")
    engine = Engine(store, [review_spec()], clock=ManualClock(T0))
    for n in range(4):
        engine.start("example.review", f"T{n}", "submit", WORKER, {"document_ref": "D"})
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(25):
                engine.fire(f"T{n}", "comment", MANAGER, {"text": f"c{i}"})
        except BaseException as error:  # pragma: no cover - the failure being tested for
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [len(engine.history(f"T{n}")) for n in range(4)] == [26] * 4
    assert engine.verify_report().ok


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: sqlite3.connect(p).execute("CREATE TABLE people (name)"), "no meta table"),
        (lambda p: p.write_bytes(b""), "is empty"),
        (lambda p: p.write_bytes(b"not a database at all" * 100), "damaged or not a SQLite"),
        (lambda p: p.mkdir(), "is a folder"),
    ],
    ids=["foreign", "empty", "corrupt", "folder"],
)
def test_read_commands_refuse_what_is_not_qaflows_and_change_nothing(
    tmp_path: Path, setup: object, message: str
) -> None:
    """#12: ``qaflow verify --db foreign.db`` used to add qaflow's tables and switch to WAL."""
    path = tmp_path / "other.db"
    setup(path)  # type: ignore[operator]
    before = _digest(path) if path.is_file() else None
    for command in (["verify"], ["outbox"], ["history", "X"], ["tick"]):
        result = CliRunner().invoke(main, [*command, "--db", str(path)])
        assert result.exit_code == 1 and message in result.output, result.output
        assert result.output.count("\n") == 1 and "Traceback" not in result.output
    if before is not None:
        assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]  # no -wal, no -shm
    with pytest.raises(StoreError, match=message):
        SQLiteStore(path, readonly=True)
    if message != "is empty":  # an empty file opened for writing becomes a new database
        with pytest.raises(StoreError, match=message):
            SQLiteStore(path)


def test_a_newer_schema_version_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    SQLiteStore(path).close()
    sqlite3.connect(path, isolation_level=None).execute(
        "UPDATE meta SET value = '999' WHERE key = 'schema_version'"
    )
    for readonly in (True, False):
        with pytest.raises(
            StoreError, match=f"schema version 999, newer than {SCHEMA_VERSION}"
        ) as info:
            SQLiteStore(path, readonly=readonly)
        assert info.value.version == 999


def test_a_missing_meta_table_is_not_recreated(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    SQLiteStore(path).close()
    sqlite3.connect(path, isolation_level=None).execute("DROP TABLE meta")
    for readonly in (True, False):
        with pytest.raises(StoreError, match="no meta table"):
            SQLiteStore(path, readonly=readonly)
    tables = sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall()
    assert ("meta",) not in tables


def test_an_older_table_layout_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    SQLiteStore(path).close()
    sqlite3.connect(path, isolation_level=None).execute("ALTER TABLE events DROP COLUMN payload")
    with pytest.raises(StoreError, match="table 'events' lacks column"):
        SQLiteStore(path)
    result = CliRunner().invoke(main, ["verify", "--db", str(path)])
    assert result.exit_code == 1 and result.output.startswith("Error: StoreError")


def test_a_version_1_database_is_upgraded_when_opened_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    engine = Engine(SQLiteStore(path), [review_spec()], clock=ManualClock(T0))
    populate(engine)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TABLE anchor")
    conn.execute("DROP TABLE schema_version")
    conn.execute("ALTER TABLE workflows DROP COLUMN fingerprint")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match=f"schema version 1, older than {SCHEMA_VERSION}") as info:
        SQLiteStore(path, readonly=True)
    assert info.value.version == 1
    clock = ManualClock(T0 + timedelta(hours=2))
    upgraded = Engine(SQLiteStore(path), [review_spec()], clock=clock)
    report = upgraded.verify_report()
    assert report.ok and report.anchor_position == 7
    upgraded.fire("R2", "comment", MANAGER, {"text": "after the upgrade"})
    assert upgraded.verify_report().ok
    # The shared runner ran every missing step in order and recorded each one.
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    history = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert history == [(v,) for v in range(2, SCHEMA_VERSION + 1)]


def test_every_store_error_is_a_qaflow_error() -> None:
    assert issubclass(StoreBusy, StoreError) and issubclass(StoreError, QAFlowError)
    assert issubclass(StoreError, OSError)


def test_tick_goes_on_past_a_damaged_deadline_row(tmp_path: Path) -> None:
    """A deadline row that cannot be decoded neither stops tick nor decides the breach:
    the snapshot's copy (which replay vouches for) does."""
    engine, clock = _mixed(tmp_path / "q.db")
    store = engine.store
    assert isinstance(store, SQLiteStore)
    store.conn.execute("UPDATE deadlines SET notify = 'not json' WHERE workflow_id = 'ESC-1'")
    clock.advance(timedelta(days=30))
    steps = engine.tick()
    assert {"ESC-1", "ESC-2"} <= {s.event.workflow_id for s in steps}
    breach = next(s for s in steps if s.event.workflow_id == "ESC-1")
    assert breach.event.payload["deadline"] == "response"
    report = engine.verify_report()
    assert any(
        p.workflow_id == "ESC-1" and "rows cannot be read" in p.what for p in report.problems
    )


def test_writing_through_a_read_only_store_is_a_store_error(tmp_path: Path) -> None:
    """#15: a database that cannot be written (read-only file system, read-only open)."""
    path = tmp_path / "q.db"
    engine = Engine(SQLiteStore(path), [review_spec()], clock=ManualClock(T0))
    populate(engine)
    reader = Engine(SQLiteStore(path, readonly=True), [review_spec()], clock=engine.clock)
    with pytest.raises(StoreError, match="cannot be written"):
        reader.fire("R2", "comment", MANAGER, {"text": "x"})
    assert len(engine.history("R2")) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tick", "--now", "9999-12-31T23:00-05:00"], "'now' must be a moment between"),
        (["tick", "--now", "2999-01-01T00:00+00:00"], "'now' must be not later than the clock"),
        (
            ["report", "--from", "2026-01-01", "--to", "2026-02-01", "--out", "{tmp}/no/r.md"],
            "'--out' must be a file in an existing folder",
        ),
        (["export-checkpoint", "--out", "{tmp}/no/cp.json"], "'--out' must be a file in an"),
    ],
    ids=[
        "year 9999",
        "far future",
        "report into a missing folder",
        "checkpoint into a missing folder",
    ],
)
def test_cli_faults_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    """#15: each of these used to print a traceback."""
    db = tmp_path / "q.db"
    _mixed(db)
    filled = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = CliRunner().invoke(main, [*filled, "--db", str(db)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output.startswith("Error: ValidationError: " + message), result.output
    assert result.output.count("\n") == 1


def test_demo_out_onto_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    result = CliRunner().invoke(main, ["demo", "--out", str(target)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ValidationError: '--out' must be a folder, not a file")
