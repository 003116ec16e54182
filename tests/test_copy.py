"""Store URLs and ``qaflow copy``: every workflow with its full history, verified on arrival,
and the webhook deliverer's retry state."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from qaflow import PostgresStore, SQLiteStore, ValidationError, open_store
from qaflow.cli import main
from qaflow.demo import run_demo
from qaflow.service import DeliveryLog, RetryState
from qaflow.service._delivery_log import delivery_rows


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A demo database with some notifications delivered and some tasks done."""
    run_demo(tmp_path / "demo", months=2, seed=7)
    path = tmp_path / "demo" / "qaflow-demo.db"
    with SQLiteStore(path) as store:
        notes = store.notifications()
        assert store.mark_sent([n.id for n in notes[::3]], datetime(2026, 4, 1, tzinfo=UTC)) > 0
        tasks = store.tasks()
        store.complete_tasks([t.id for t in tasks[::2]], datetime(2026, 4, 2, tzinfo=UTC))
    return path


def test_copy_sqlite_to_postgres_and_back_is_exact(
    source: Path, tmp_path: Path, pg_dsn: str
) -> None:
    code, out = run("copy", "--from", f"sqlite:///{source}", "--to", pg_dsn)
    assert code == 0, out
    with SQLiteStore(source) as original:
        n = original.counts()["workflows"]
        before = original.dump()
    assert f"copied {n} workflow(s)" in out and f"verified {n} on arrival" in out
    code, out = run("verify", "--db", pg_dsn)
    assert code == 0 and f"verified {n} workflow(s)" in out
    back = tmp_path / "back.db"
    code, out = run("copy", "--from", pg_dsn, "--to", str(back))
    assert code == 0, out
    with SQLiteStore(back) as copied:
        after = copied.dump()
    # Every row, delivery and completion times included; the anchor logs the copy's own
    # commit order (workflow by workflow), which verify checked on arrival.
    assert {t: rows for t, rows in after.items() if t != "anchor"} == {
        t: rows for t, rows in before.items() if t != "anchor"
    }
    assert len(after["anchor"]) == len(before["anchor"])
    code, out = run("copy", "--from", str(source), "--to", pg_dsn)
    assert code == 1 and "'--to' must be a database holding none of the workflows" in out


def test_copy_refuses_a_tampered_source_and_writes_nothing(source: Path, tmp_path: Path) -> None:
    with sqlite3.connect(source) as conn:
        conn.execute("UPDATE events SET payload = '{\"x\": 1}' WHERE seq = 2")
    target = tmp_path / "t.db"
    code, out = run("copy", "--from", str(source), "--to", str(target))
    assert code == 1 and "IntegrityError" in out and "Traceback" not in out
    with SQLiteStore(target) as t:
        assert t.counts()["workflows"] == 0


def test_every_db_option_accepts_urls(source: Path, pg_dsn: str) -> None:
    for db in (str(source), f"sqlite:///{source}"):
        code, out = run("verify", "--db", db)
        assert code == 0 and "verified" in out
    run("copy", "--from", str(source), "--to", pg_dsn)
    for command in (["tick", "--now", "2026-06-01T09:00:00+00:00"], ["outbox"]):
        code, out = run(*command, "--db", pg_dsn)
        assert code == 0, out
    code, out = run("report", "--db", pg_dsn, "--from", "2026-01-01", "--to", "2026-03-01")
    assert code == 0 and "#" in out


def test_open_store_names_what_it_accepts(tmp_path: Path, pg_dsn: str) -> None:
    with open_store(f"sqlite:///{tmp_path / 'a.db'}") as a:
        assert isinstance(a, SQLiteStore) and a.path == str(tmp_path / "a.db")
    with open_store(str(tmp_path / "b.db")) as b:
        assert isinstance(b, SQLiteStore)
    with open_store(pg_dsn) as p:
        assert isinstance(p, PostgresStore)
    for bad in ("mysql://h/db", "sqlite://relative.db", "", str(tmp_path)):
        with pytest.raises(ValidationError, match="'url' must be"):
            open_store(bad)
    with pytest.raises(ValidationError, match="'--db' must be an existing qaflow database"):
        open_store(str(tmp_path / "missing.db"), create=False, field="--db")
    code, out = run("history", "X", "--db", "mysql://h/db")
    assert code == 1 and "'--db' must be" in out and "Traceback" not in out


def _retry_states(path: Path) -> dict[str, RetryState]:
    """Retry state for three pending notifications, one given up, as a deliverer keeps it."""
    with SQLiteStore(path) as store:
        pending = [n.id for n in store.pending_notifications()][:3]
        assert len(pending) == 3
        log = DeliveryLog(store)
        try:
            at = datetime(2026, 4, 3, 9, tzinfo=UTC)
            for n, nid in enumerate(pending, start=1):
                state = RetryState(n, at + timedelta(minutes=5 * n), given_up=n == 3)
                log.failed(nid, state, at)
            return log.states()
        finally:
            log.close()


def _states(url: str) -> dict[str, RetryState]:
    with open_store(url) as store:
        log = DeliveryLog(store)
        try:
            return log.states()
        finally:
            log.close()


def test_copy_carries_the_webhook_retry_state_both_ways(
    source: Path, tmp_path: Path, pg_dsn: str
) -> None:
    """A deliverer pointed at the copy resumes where the one on the original stopped: the
    same attempts, next attempt times and given-up marks, SQLite -> PostgreSQL -> SQLite."""
    states = _retry_states(source)
    with SQLiteStore(source) as original:
        rows = delivery_rows(original)
    assert len(rows) == 3
    code, out = run("copy", "--from", str(source), "--to", pg_dsn)
    assert code == 0 and "3 webhook retry state(s)" in out, out
    with open_store(pg_dsn) as pg:
        assert delivery_rows(pg) == rows  # row for row, update times included
    assert _states(pg_dsn) == states
    back = tmp_path / "back.db"
    code, out = run("copy", "--from", pg_dsn, "--to", str(back))
    assert code == 0 and "3 webhook retry state(s)" in out, out
    with SQLiteStore(back) as copied:
        assert delivery_rows(copied) == rows
    assert _states(str(back)) == states


def test_copy_refuses_a_target_holding_retry_state_of_the_same_notifications(
    source: Path, tmp_path: Path
) -> None:
    _retry_states(source)
    target = tmp_path / "t.db"
    with SQLiteStore(source) as original:
        nid = delivery_rows(original)[0][0]
    with SQLiteStore(target) as t:
        log = DeliveryLog(t)
        log.failed(nid, RetryState(9, datetime(2026, 5, 1, tzinfo=UTC)), datetime.now(UTC))
        log.close()
    code, out = run("copy", "--from", str(source), "--to", str(target))
    assert code == 1 and "no webhook retry state" in out and "Traceback" not in out
    with SQLiteStore(target) as t:
        assert t.counts()["workflows"] == 0  # nothing written
        assert [r[1] for r in delivery_rows(t)] == [9]


def test_copy_reads_a_source_without_retry_state_and_creates_none(
    source: Path, tmp_path: Path
) -> None:
    target = tmp_path / "t.db"
    code, out = run("copy", "--from", str(source), "--to", str(target))
    assert code == 0 and "0 webhook retry state(s)" in out, out
    for path in (source, target):
        with sqlite3.connect(path) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "webhook_deliveries" not in tables
