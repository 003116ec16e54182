"""The tamper suite (issue 16 #2, invariants I14 and I16): each kind of edit, named by verify.

Every test edits a real SQLite database behind qaflow's back, as someone with write access
to the file would, and expects ``verify`` to name the workflow, the event where it can, and
what is wrong. The last tests play the strongest attacker the anchor alone cannot stop (one
who rewrites the events *and* the anchor with qaflow's own hashes) against a checkpoint.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from conftest import T0
from qaflow import (
    Actor,
    Engine,
    IntegrityError,
    ManualClock,
    Problem,
    SQLiteStore,
    make_checkpoint,
)
from qaflow.cli import main
from qaflow.machines.escalation import escalation_machine
from qaflow.policies import bexley
from qaflow.records import GENESIS_HASH, anchor_head, event_hash


def _conn(engine: Engine) -> sqlite3.Connection:
    store = engine.store
    assert isinstance(store, SQLiteStore)
    return store.conn


def _problems(engine: Engine, **kwargs: object) -> list[Problem]:
    return engine.verify_report(**kwargs).problems  # type: ignore[arg-type]


def _named(problems: list[Problem], wid: str | None, text: str, seq: int | None = None) -> bool:
    return any(
        p.workflow_id == wid and text in p.what and (seq is None or p.seq == seq) for p in problems
    )


def rehash(engine: Engine, wid: str) -> None:
    """Recompute a workflow's chain with qaflow's own hash (the attacker has the library)."""
    conn = _conn(engine)
    prev = GENESIS_HASH
    for event in engine.store.events(wid):
        fixed = attrs.evolve(event, prev_hash=prev, hash="")
        digest = event_hash(fixed)
        conn.execute(
            "UPDATE events SET prev_hash = ?, hash = ? WHERE workflow_id = ? AND seq = ?",
            (prev, digest, wid, event.seq),
        )
        prev = digest
    conn.execute("UPDATE workflows SET last_hash = ? WHERE workflow_id = ?", (prev, wid))


def reanchor(engine: Engine) -> None:
    """Rebuild the anchor from the events left, heads recomputed (the strongest attacker)."""
    conn = _conn(engine)
    rows = conn.execute("SELECT workflow_id, seq FROM anchor ORDER BY position").fetchall()
    conn.execute("DELETE FROM anchor")
    head, position = GENESIS_HASH, 0
    for wid, seq in rows:
        found = conn.execute(
            "SELECT hash FROM events WHERE workflow_id = ? AND seq = ?", (wid, seq)
        ).fetchone()
        if found is None:
            continue
        position += 1
        head = anchor_head(head, wid, seq, found[0])
        conn.execute(
            "INSERT INTO anchor VALUES (?, ?, ?, ?, ?)", (position, wid, seq, found[0], head)
        )


def _rollback_last_event(engine: Engine, wid: str) -> None:
    """Delete a workflow's last event with its snapshot rolled back to match."""
    conn = _conn(engine)
    events = engine.store.events(wid)
    before = engine.replay_steps(wid)[-2].snapshot
    conn.execute("DELETE FROM events WHERE workflow_id = ? AND seq = ?", (wid, events[-1].seq))
    conn.execute(
        "UPDATE workflows SET version = ?, state = ?, last_hash = ?, updated_at = ?, data = ?, "
        "deadlines = ? WHERE workflow_id = ?",
        (
            before.version,
            before.state,
            before.last_hash,
            before.updated_at.isoformat(timespec="microseconds") if before.updated_at else None,
            json.dumps(before.data, sort_keys=True),
            json.dumps([attrs.asdict(d) for d in before.deadlines], default=str),
            wid,
        ),
    )


def _delete_workflow(engine: Engine, wid: str) -> None:
    conn = _conn(engine)
    for table in ("workflows", "events", "deadlines", "notifications", "tasks"):
        conn.execute(f"DELETE FROM {table} WHERE workflow_id = ?", (wid,))


EDITS: list[tuple[str, Callable[[Engine], None], str | None, int | None, str]] = [
    (
        "payload changed",
        lambda e: _conn(e).execute(
            "UPDATE events SET payload = '{\"text\": \"z\"}' WHERE workflow_id = 'R2' AND seq = 2"
        ),
        "R2",
        2,
        "hash does not match the event's content",
    ),
    (
        "last event deleted, snapshot rolled back",
        lambda e: _rollback_last_event(e, "R1"),
        "R1",
        4,
        "event recorded in the anchor is missing",
    ),
    (
        "whole workflow deleted",
        lambda e: _delete_workflow(e, "R2"),
        "R2",
        None,
        "in the anchor (2 event(s)) but missing from the store",
    ),
    (
        "snapshot row deleted",
        lambda e: _conn(e).execute("DELETE FROM workflows WHERE workflow_id = 'R3'"),
        "R3",
        None,
        "missing from the store",
    ),
    (
        "chain rewritten with the library's hash",
        lambda e: (
            _conn(e).execute(
                'UPDATE events SET payload = \'{"text": "z"}\' '
                "WHERE workflow_id = 'R2' AND seq = 2"
            ),
            rehash(e, "R2"),
        ),
        "R2",
        2,
        "event differs from the one the anchor recorded",
    ),
    (
        "open deadline moved to 2099",
        lambda e: _conn(e).execute(
            "UPDATE deadlines SET due_at = '2099-01-01T00:00:00.000000+00:00' "
            "WHERE workflow_id = 'R3'"
        ),
        "R3",
        1,
        "deadline row 'R3:1:review' differs from the replay (due_at)",
    ),
    (
        "breach trigger changed",
        lambda e: _conn(e).execute(
            "UPDATE deadlines SET breach_trigger = NULL WHERE workflow_id = 'R3'"
        ),
        "R3",
        1,
        "differs from the replay (breach_trigger)",
    ),
    (
        "deadline row deleted",
        lambda e: _conn(e).execute("DELETE FROM deadlines WHERE workflow_id = 'R3'"),
        "R3",
        1,
        "deadline row 'R3:1:review' is missing",
    ),
    (
        "deadline marked closed",
        lambda e: _conn(e).execute(
            "UPDATE deadlines SET status = 'closed' WHERE id = 'R3:1:review'"
        ),
        "R3",
        1,
        "status 'closed', expected 'open'",
    ),
    (
        "notification deleted",
        lambda e: _conn(e).execute("DELETE FROM notifications WHERE workflow_id = 'R2'"),
        "R2",
        1,
        "notification row 'R2:1:n1' is missing",
    ),
    (
        "notification re-routed",
        lambda e: _conn(e).execute(
            "UPDATE notifications SET recipient_role = 'worker' WHERE workflow_id = 'R2'"
        ),
        "R2",
        1,
        "differs from the replay (recipient_role)",
    ),
    (
        "task deleted",
        lambda e: _conn(e).execute("DELETE FROM tasks"),
        "R1",
        3,
        "task row 'R1:3:t1' is missing",
    ),
    (
        "task re-routed",
        lambda e: _conn(e).execute("UPDATE tasks SET owner_id = 'P-9'"),
        "R1",
        3,
        "differs from the replay (owner_id)",
    ),
    (
        "extra notification forged",
        lambda e: _conn(e).execute(
            "INSERT INTO notifications (id, workflow_id, seq, recipient_role, recipient_id, "
            "reason, clause, created_at) VALUES ('R2:2:n9', 'R2', 2, 'manager', 'M-1', 'x', "
            "NULL, '2025-12-19T10:00:00.000000+00:00')"
        ),
        "R2",
        2,
        "was not produced by any event",
    ),
    (
        "row of a workflow that does not exist",
        lambda e: _conn(e).execute(
            "INSERT INTO tasks (id, workflow_id, seq, kind, owner_role, created_at) "
            "VALUES ('X:1:t1', 'X', 1, 'k', 'worker', '2025-12-19T10:00:00.000000+00:00')"
        ),
        "X",
        None,
        "belongs to no workflow in the store",
    ),
    (
        "event inserted outside qaflow",
        lambda e: (
            _conn(e).execute(
                "INSERT INTO events SELECT workflow_id, 3, trigger, source, dest, actor_id, "
                "actor_role, at, payload, hash, hash, NULL FROM events "
                "WHERE workflow_id = 'R2' AND seq = 2"
            ),
        ),
        "R2",
        3,
        "event is not in the anchor",
    ),
]


@pytest.mark.parametrize(
    ("edit", "wid", "seq", "expected"),
    [e[1:] for e in EDITS],
    ids=[e[0] for e in EDITS],
)
def test_verify_names_each_kind_of_tampering(
    sqlite_engine: Engine,
    edit: Callable[[Engine], None],
    wid: str | None,
    seq: int | None,
    expected: str,
) -> None:
    assert sqlite_engine.verify_report().ok
    edit(sqlite_engine)
    problems = _problems(sqlite_engine)
    assert _named(problems, wid, expected, seq), problems
    with pytest.raises(IntegrityError):
        sqlite_engine.verify()


def test_verify_reports_every_problem_not_only_the_first(sqlite_engine: Engine) -> None:
    conn = _conn(sqlite_engine)
    conn.execute("DELETE FROM tasks")
    conn.execute("UPDATE deadlines SET due_at = '2099-01-01T00:00:00+00:00' WHERE workflow_id='R3'")
    conn.execute("UPDATE events SET actor_id = 'X' WHERE workflow_id = 'R2' AND seq = 1")
    problems = _problems(sqlite_engine)
    assert {p.workflow_id for p in problems} == {"R1", "R2", "R3"}
    with pytest.raises(IntegrityError, match=r"and \d+ more problem"):
        sqlite_engine.verify()


@pytest.mark.parametrize(
    "malformed",
    [
        "UPDATE events SET payload = 'not json' WHERE workflow_id = 'R2' AND seq = 2",
        "UPDATE events SET at = 'yesterday' WHERE workflow_id = 'R2' AND seq = 1",
        "UPDATE workflows SET data = '[' WHERE workflow_id = 'R2'",
        "UPDATE workflows SET deadlines = '{}' WHERE workflow_id = 'R3'",
        "UPDATE workflows SET policy_version = '7' WHERE workflow_id = 'R2'",
        "UPDATE deadlines SET notify = 'x' WHERE workflow_id = 'R3'",
        "UPDATE events SET trigger = 'policy_migrated' WHERE workflow_id = 'R2' AND seq = 2",
        "UPDATE anchor SET head = 'x' WHERE position = 2",
        "UPDATE anchor SET position = 99 WHERE position = 3",
    ],
)
def test_verify_never_crashes_on_a_malformed_row(sqlite_engine: Engine, malformed: str) -> None:
    """verify is the tool for malformed rows: it reports them, it does not raise."""
    _conn(sqlite_engine).execute(malformed)
    report = sqlite_engine.verify_report()
    assert not report.ok and report.workflows >= 2
    assert json.loads(report.to_json())["problems"]


def test_the_anchor_alone_misses_a_full_rewrite_but_a_checkpoint_does_not(
    sqlite_engine: Engine,
) -> None:
    """The strongest attacker: events rewritten and the anchor rebuilt with qaflow's hashes."""
    checkpoint = make_checkpoint(sqlite_engine.store)
    _conn(sqlite_engine).execute(
        "UPDATE events SET payload = '{\"text\": \"z\"}' WHERE workflow_id = 'R2' AND seq = 2"
    )
    rehash(sqlite_engine, "R2")
    reanchor(sqlite_engine)
    assert sqlite_engine.verify_report().ok  # what the anchor alone cannot see
    report = sqlite_engine.verify_report(checkpoint=checkpoint)
    assert report.checkpoint == "failed"
    assert _named(report.problems, None, "does not match the checkpoint")


@pytest.mark.parametrize("cut", ["workflow", "last events", "anchor tail"])
def test_a_checkpoint_detects_truncation_and_deletion(sqlite_engine: Engine, cut: str) -> None:
    checkpoint = make_checkpoint(sqlite_engine.store)
    if cut == "workflow":
        _delete_workflow(sqlite_engine, "R2")
        reanchor(sqlite_engine)
    elif cut == "last events":
        _rollback_last_event(sqlite_engine, "R2")
        reanchor(sqlite_engine)
    else:
        _conn(sqlite_engine).execute("DELETE FROM anchor WHERE position > 5")
    problems = _problems(sqlite_engine, checkpoint=checkpoint)
    assert _named(problems, None, "history was removed") or _named(
        problems, None, "does not match the checkpoint"
    ), problems


def test_a_checkpoint_still_matches_after_later_commits(sqlite_engine: Engine) -> None:
    checkpoint = make_checkpoint(sqlite_engine.store, key=b"held by the host")
    sqlite_engine.fire("R2", "comment", sqlite_engine.history("R2")[0].actor, {"text": "more"})
    report = sqlite_engine.verify_report(checkpoint=checkpoint, key=b"held by the host")
    assert report.ok and report.checkpoint == "matched (signature checked)"


def test_a_signed_checkpoint_cannot_be_forged_without_the_key(sqlite_engine: Engine) -> None:
    checkpoint = make_checkpoint(sqlite_engine.store, key=b"held by the host")
    _delete_workflow(sqlite_engine, "R2")
    reanchor(sqlite_engine)
    forged = make_checkpoint(sqlite_engine.store, key=b"a guess")
    problems = _problems(sqlite_engine, checkpoint=forged, key=b"held by the host")
    assert _named(problems, None, "signature does not match")
    unsigned = {k: v for k, v in make_checkpoint(sqlite_engine.store).items()}
    problems = _problems(sqlite_engine, checkpoint=unsigned, key=b"held by the host")
    assert _named(problems, None, "not signed")
    assert not sqlite_engine.verify_report(checkpoint=checkpoint, key=b"held by the host").ok


def _shipped_db(path: Path) -> Engine:
    """A database of the shipped FIRO ladder, which the command line knows."""
    spec = escalation_machine(bexley.FIRO_LADDER, bexley.POLICY)
    engine = Engine(SQLiteStore(path), [spec], clock=ManualClock(T0))
    raiser = Actor("FIRO-1", "firo")
    for wid in ("ESC-1", "ESC-2"):
        payload = {"subject_id": "C-7", "reason": bexley.FIRO_LADDER.reasons[0], "to": "stage_1"}
        engine.start(spec.name, wid, "raise", raiser, payload)
    return engine


def test_verify_cli_reports_json_and_checks_a_checkpoint(tmp_path: Path) -> None:
    db = str(tmp_path / "q.db")
    engine = _shipped_db(Path(db))
    key = tmp_path / "key"
    key.write_bytes(b"secret-held-elsewhere\n")
    cp = tmp_path / "cp.json"
    runner = CliRunner()
    signed = ["--checkpoint", str(cp), "--key-file", str(key)]
    out = runner.invoke(
        main, ["export-checkpoint", "--db", db, "--out", str(cp), "--key-file", str(key)]
    )
    assert out.exit_code == 0, out.output
    ok = runner.invoke(main, ["verify", "--db", db, "--json", *signed])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["checkpoint"] == "matched (signature checked)"
    _delete_workflow(engine, "ESC-2")
    reanchor(engine)
    bad = runner.invoke(main, ["verify", "--db", db, "--json", *signed])
    assert bad.exit_code == 1
    assert json.loads(bad.output)["checkpoint"] == "failed"
    text = runner.invoke(main, ["verify", "--db", db, *signed])
    assert text.exit_code == 1
    assert "the store: the anchor has 1 position(s) but the checkpoint recorded 2" in text.output
    assert "Error: IntegrityError: 1 problem(s) found in 1 workflow(s) checked" in text.output
