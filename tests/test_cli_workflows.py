"""``qaflow list``, ``start``, ``fire`` and ``outbox ack`` on a real SQLite file and a real
PostgreSQL server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from qaflow import open_store
from qaflow.cli import main
from qaflow.policies import bexley
from service_support import DIRECTORY

FIRO = "escalation.bexley_firo"
RAISE = json.dumps(
    {"subject_id": "CARER-1", "reason": bexley.FIRO_LADDER.reasons[0], "to": "stage_1"}
)


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    return result.exit_code, result.output


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_start_fire_list_and_ack(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    db = str(request.getfixturevalue("pg_dsn")) if kind == "postgres" else str(tmp_path / "w.db")
    actor = ("--as", "FIRO-1", "--role", "firo")
    code, out = run("start", FIRO, "ESC-1", "raise", RAISE, "--db", db, *actor)
    assert code == 0, out
    started = json.loads(out)
    assert started["workflow"]["state"] == "stage_1" and started["event"]["seq"] == 1
    code, out = run("start", FIRO, "ESC-2", "raise", "-", "--db", db, *actor, stdin=RAISE)
    assert code == 0, out

    # The payload from standard input; the stage holder responds.
    holder = ("--as", "TM-1", "--role", "team_manager")
    code, out = run(
        "fire", "ESC-1", "respond", "-", "--db", db, *holder, stdin='{"response": "Seen."}'
    )
    assert code == 0, out
    assert json.loads(out)["workflow"]["version"] == 2

    # A stale expected version is refused with one line, and nothing is written.
    code, out = run("fire", "ESC-1", "escalate", "--db", db, *actor, "--expected-version", "1")
    assert code == 1 and out.startswith("Error: ConcurrencyError:") and len(out.splitlines()) == 1
    code, out = run("fire", "ESC-1", "escalate", "--db", db, *actor, "--idempotency-key", "k1")
    assert code == 0 and json.loads(out)["workflow"]["state"] == "stage_2"
    code, again = run("fire", "ESC-1", "escalate", "--db", db, *actor, "--idempotency-key", "k1")
    assert code == 0 and json.loads(again)["event"] == json.loads(out)["event"]

    code, out = run("list", "--db", db)
    assert code == 0 and "ESC-1" in out and "ESC-2" in out and "2 workflow(s)" in out
    code, out = run("list", "--db", db, "--state", "stage_2", "--json")
    assert [w["workflow_id"] for w in json.loads(out)] == ["ESC-1"]
    code, out = run("list", "--db", db, "--limit", "1", "--after", "ESC-1")
    assert "ESC-2" in out and "ESC-1 " not in out
    code, out = run("list", "--db", db, "--overdue", "--now", "2099-01-01T00:00:00+00:00")
    assert "2 workflow(s)" in out

    # The outbox: the group still lists; `ack` marks sent, twice is harmless.
    code, out = run("outbox", "--db", db)
    assert code == 0 and "pending notification(s)" in out
    with open_store(db) as store:
        first = store.pending_notifications()[0].id
        total = len(store.pending_notifications())
    code, out = run("outbox", "ack", first, "--db", db)
    assert code == 0 and out.startswith("1 notification(s) newly marked sent; 0 already")
    code, out = run("outbox", "--db", db, "ack", first)
    assert code == 0 and out.startswith("0 notification(s) newly marked sent; 1 already")
    code, out = run("outbox", "ack", "--all", "--db", db)
    assert code == 0 and out.startswith(f"{total - 1} notification(s) newly marked sent")
    with open_store(db) as store:
        assert store.pending_notifications() == []


def test_refusals_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    db = str(tmp_path / "w.db")
    directory = tmp_path / "directory.json"
    directory.write_text(json.dumps(DIRECTORY))
    actor = ("--as", "FIRO-1", "--role", "firo")
    code, out = run("start", FIRO, "ESC-1", "raise", "{not json", "--db", db, *actor)
    assert code == 1 and "'PAYLOAD' must be a JSON object" in out
    code, out = run("start", FIRO, "ESC-1", "raise", "[1]", "--db", db, *actor)
    assert code == 1 and "'PAYLOAD' must be a JSON object" in out
    assert not Path(db).exists()
    code, out = run("start", "nope", "ESC-1", "raise", RAISE, "--db", db, *actor)
    assert code == 1 and "PolicyError: no shipped machine 'nope'" in out
    # With a directory, a role the person does not hold is refused.
    claimed = ("--as", "SW-1", "--role", "firo", "--directory", str(directory))
    code, out = run("start", FIRO, "ESC-1", "raise", RAISE, "--db", db, *claimed)
    assert code == 1 and "PermissionDenied" in out and "does not list them" in out
    assert not Path(db).exists()
    code, out = run("start", FIRO, "ESC-1", "raise", RAISE, "--db", db, *actor)
    assert code == 0
    code, out = run("fire", "NOPE", "accept", "--db", db, *actor)
    assert code == 1 and "UnknownWorkflow: no workflow with id 'NOPE'" in out
    code, out = run("outbox", "ack", "--db", db)
    assert code == 1 and "'IDS' must be notification ids, or --all" in out
