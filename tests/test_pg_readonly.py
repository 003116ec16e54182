"""PostgreSQL opened read-only, and the demo written to PostgreSQL (issue 13), on a real server.

Read-only is what the read commands use: it must never write (no schema created or
upgraded, no seal, no command), refuse every write with a ``StoreError``, and refuse a
database that is not qaflow's current one. ``qaflow demo --db postgresql://…`` writes its
quarter to an empty database and refuses one that already holds workflows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from qaflow import (
    Actor,
    Engine,
    ManualClock,
    MemoryStore,
    PostgresStore,
    StoreError,
    open_store,
)
from qaflow.cli import main
from qaflow.machines.escalation import escalation_machine
from qaflow.policies import bexley
from qaflow.store import SCHEMA_VERSION
from review_machine import review_spec

T0 = datetime(2025, 12, 19, 10, tzinfo=UTC)
WORKER, MANAGER = Actor("P-1", "worker"), Actor("M-1", "manager")


def _tables(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


def _written(dsn: str) -> PostgresStore:
    store = PostgresStore(dsn)
    engine = Engine(store, [review_spec()], clock=ManualClock(T0))
    engine.start("example.review", "A", "submit", WORKER, {"document_ref": "D"})
    engine.fire("A", "send_back", MANAGER, {"reason": "r"})
    return store


def test_a_read_only_store_reads_and_refuses_every_write(pg_dsn: str) -> None:
    with _written(pg_dsn) as writer:
        before = writer.dump()
        note = writer.notifications()[0].id
        task = writer.tasks()[0].id
    # A real step, computed on a scratch store, for a workflow the database does not have.
    scratch = Engine(MemoryStore(), [review_spec()], clock=ManualClock(T0))
    step = scratch.start("example.review", "Z", "submit", WORKER, {"document_ref": "D"})
    with open_store(pg_dsn, readonly=True) as store:
        assert isinstance(store, PostgresStore) and store.readonly
        engine = Engine(store, [review_spec()], clock=ManualClock(T0))
        assert store.load("A").version == 2 and engine.verify_report().ok
        assert store.anchor_tip() is not None
        for write in (
            lambda: store.commit(step, expected_version=0),
            lambda: store.commit_many([step]),
            lambda: store.mark_sent([note], T0),
            lambda: store.complete_tasks([task], T0),
            lambda: engine.tick(T0),
            lambda: engine.fire("A", "submit", WORKER, {"document_ref": "D2"}),
        ):
            with pytest.raises(StoreError, match="is open read-only"):
                write()
        # The server holds the session read-only too, below qaflow's own check.
        with (
            store.pool.connection() as conn,
            pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
        ):
            conn.execute("DELETE FROM events")
        assert store.dump() == before


def test_read_only_never_creates_or_upgrades_a_schema(pg_dsn: str) -> None:
    with pytest.raises(StoreError, match="has no qaflow schema"):
        PostgresStore(pg_dsn, readonly=True)
    assert _tables(pg_dsn) == []
    _written(pg_dsn).close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match=f"schema version 2, older than {SCHEMA_VERSION}"):
        PostgresStore(pg_dsn, readonly=True)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT value FROM meta").fetchone() == ("2",)
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 999, newer than"):
        PostgresStore(pg_dsn, readonly=True)


def test_read_commands_open_postgres_read_only(pg_dsn: str) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["verify", "--db", pg_dsn])
    assert result.exit_code == 1 and "has no qaflow schema" in result.output
    assert _tables(pg_dsn) == []  # a read command on an empty database wrote nothing
    firo = escalation_machine(bexley.FIRO_LADDER, bexley.POLICY)
    with PostgresStore(pg_dsn) as store:
        Engine(store, [firo], clock=ManualClock(T0)).start(
            firo.name,
            "ESC-1",
            "raise",
            Actor("FIRO-1", "firo"),
            {"subject_id": "CARER-1", "reason": bexley.FIRO_LADDER.reasons[0], "to": "stage_1"},
        )
        before = store.dump()
    result = runner.invoke(main, ["history", "ESC-1", "--db", pg_dsn])
    assert result.exit_code == 0 and "raise" in result.output
    result = runner.invoke(main, ["verify", "--db", pg_dsn])
    assert result.exit_code == 0, result.output
    with PostgresStore(pg_dsn, readonly=True) as store:
        assert store.dump() == before


@pytest.mark.slow
def test_the_demo_writes_to_postgres_and_refuses_a_used_database(
    pg_dsn: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    out = tmp_path / "demo"
    result = runner.invoke(
        main, ["demo", "--months", "1", "--out", str(out), "--db", pg_dsn], env={"QAFLOW_DB": ""}
    )
    assert result.exit_code == 0, result.output
    assert not (out / "qaflow-demo.db").exists()  # the workflows went to PostgreSQL
    assert (out / "qa-report.html").is_file()
    with PostgresStore(pg_dsn, readonly=True) as store:
        workflows = sum(1 for _ in store.workflow_ids())
        before = store.counts()
    assert workflows > 10
    assert f"{workflows} workflows" in result.output
    verify = runner.invoke(main, ["verify", "--db", pg_dsn])
    assert verify.exit_code == 0 and f"{workflows}" in verify.output
    again = runner.invoke(main, ["demo", "--months", "1", "--out", str(out), "--db", pg_dsn])
    assert again.exit_code == 1 and "'--db' must be an empty database" in again.output
    with PostgresStore(pg_dsn, readonly=True) as store:
        assert store.counts() == before
