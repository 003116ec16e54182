"""Edits behind qaflow's back against the fast replay fold (issue 14, invariants I14, I16).

The fold (:mod:`qaflow._fold`) must refuse every edited history, so ``verify``'s plain path
names the problem exactly as before; and an edit that changes only the spelling of a value
(the same instant in another form, the same JSON spaced differently) changes nothing either
way. Each test edits a real SQLite file as someone with write access would.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime

import pytest

from qaflow import Engine, SQLiteStore
from qaflow._fold import _PROVEN, fold, rows_match
from qaflow._integrity import VerifyReport, _intact
from qaflow.records import canonical_json, utc_isoformat


def _store(engine: Engine) -> SQLiteStore:
    store = engine.store
    assert isinstance(store, SQLiteStore)
    return store


def _conn(engine: Engine) -> sqlite3.Connection:
    return _store(engine).conn


def _fast(engine: Engine, wid: str) -> bool:
    """Whether the fast check vouches for the workflow (as verify reads it: no cache)."""
    _store(engine).forget_cached()
    return _intact(engine, VerifyReport(), wid) is not None


def _replay_fast(engine: Engine, wid: str) -> bool:
    store = _store(engine)
    store.forget_cached()
    return (
        fold(engine._registry, store.load(wid), store.event_rows(wid), rows_wanted=False)
        is not None
    )


def test_an_intact_store_takes_the_fast_path_for_every_workflow(sqlite_engine: Engine) -> None:
    for wid in ("R1", "R2", "R3"):
        assert _fast(sqlite_engine, wid) and _replay_fast(sqlite_engine, wid)
    assert sqlite_engine.verify_report().ok


EVENT_EDITS = [
    ("payload value", 'UPDATE events SET payload = \'{"text": "z"}\' WHERE seq = 2', "hash"),
    ("actor", "UPDATE events SET actor_id = 'X' WHERE seq = 2", "hash"),
    ("role", "UPDATE events SET actor_role = 'manager' WHERE seq = 2", "hash"),
    ("time", "UPDATE events SET at = '2030-01-01T00:00:00.000000+00:00' WHERE seq = 2", "hash"),
    ("trigger", "UPDATE events SET trigger = 'withdraw' WHERE seq = 2", "hash"),
    ("key", "UPDATE events SET idempotency_key = 'k' WHERE seq = 2", "hash"),
    ("hash", "UPDATE events SET hash = lower(hex(randomblob(32))) WHERE seq = 2", "hash"),
    ("prev_hash", "UPDATE events SET prev_hash = hash WHERE seq = 2", "prev_hash"),
    ("seq", "UPDATE events SET seq = 5 WHERE seq = 2", "expected seq 2"),
    ("payload not an object", "UPDATE events SET payload = '[1]' WHERE seq = 2", ""),
    ("payload NaN", "UPDATE events SET payload = '{\"text\": NaN}' WHERE seq = 2", ""),
    ("naive time", "UPDATE events SET at = '2025-12-19T10:00:00.000000' WHERE seq = 2", ""),
    ("source", "UPDATE events SET source = 'new' WHERE seq = 2", ""),
    ("dest", "UPDATE events SET dest = 'approved' WHERE seq = 2", ""),
    ("last event removed", "DELETE FROM events WHERE seq = 2", ""),
    ("snapshot state", "UPDATE workflows SET state = 'returned'", "snapshot"),
    ("snapshot data", "UPDATE workflows SET data = '{}'", "snapshot"),
    ("snapshot version", "UPDATE workflows SET version = version + 1", "version"),
]


@pytest.mark.parametrize(
    ("sql", "named"), [e[1:] for e in EVENT_EDITS], ids=[e[0] for e in EVENT_EDITS]
)
def test_an_edited_event_or_snapshot_is_left_to_the_plain_check(
    sqlite_engine: Engine, sql: str, named: str
) -> None:
    """R2 is submit then comment; each edit of its rows turns the fast path away, and
    verify (the plain path) names R2."""
    _conn(sqlite_engine).execute(
        sql + " AND workflow_id = 'R2'" if "WHERE" in sql else sql + " WHERE workflow_id = 'R2'"
    )
    assert not _fast(sqlite_engine, "R2")
    report = sqlite_engine.verify_report()
    assert any(p.workflow_id == "R2" and named in p.what for p in report.problems), report.problems
    assert _fast(sqlite_engine, "R1") and _fast(sqlite_engine, "R3")


ROW_EDITS = [
    ("deadline due", "UPDATE deadlines SET due_at = '2099-01-01T00:00:00.000000+00:00'"),
    ("deadline status", "UPDATE deadlines SET status = 'closed'"),
    ("deadline notify", "UPDATE deadlines SET notify = '[\"worker\"]'"),
    ("deadline notify not json", "UPDATE deadlines SET notify = 'x'"),
    ("deadline removed", "DELETE FROM deadlines"),
    ("note recipient", "UPDATE notifications SET recipient_role = 'worker'"),
    ("note time", "UPDATE notifications SET created_at = '2025-12-19T10:00:00.000001+00:00'"),
    ("note removed", "DELETE FROM notifications"),
    ("task owner", "UPDATE tasks SET owner_id = 'P-9'"),
    ("task due", "UPDATE tasks SET due_at = NULL"),
    ("task removed", "DELETE FROM tasks"),
]


@pytest.mark.parametrize("sql", [e[1] for e in ROW_EDITS], ids=[e[0] for e in ROW_EDITS])
def test_an_edited_derived_row_is_left_to_the_plain_check(sqlite_engine: Engine, sql: str) -> None:
    """R1 has every kind of row (a closed and an open deadline, notifications, a task)."""
    _conn(sqlite_engine).execute(sql + " WHERE workflow_id = 'R1'")
    store = _store(sqlite_engine)
    folded = fold(
        sqlite_engine._registry, store.load("R1"), store.event_rows("R1"), rows_wanted=True
    )
    assert folded is not None  # the events are intact: only the rows differ
    assert not rows_match(folded, *store.derived_rows("R1"))
    assert not _fast(sqlite_engine, "R1")
    assert any(p.workflow_id == "R1" for p in sqlite_engine.verify_report().problems)


@pytest.mark.parametrize(
    "forged",
    [
        "INSERT INTO notifications (id, workflow_id, seq, recipient_role, recipient_id, reason, "
        "clause, created_at) VALUES ('R1:2:n9', 'R1', 2, 'manager', 'M-1', 'x', NULL, "
        "'2025-12-19T10:00:00.000000+00:00')",
        "INSERT INTO tasks (id, workflow_id, seq, kind, owner_role, created_at) "
        "VALUES ('R1:2:t9', 'R1', 2, 'k', 'worker', '2025-12-19T10:00:00.000000+00:00')",
    ],
    ids=["notification", "task"],
)
def test_a_forged_derived_row_is_left_to_the_plain_check(
    sqlite_engine: Engine, forged: str
) -> None:
    _conn(sqlite_engine).execute(forged)
    assert not _fast(sqlite_engine, "R1")
    report = sqlite_engine.verify_report()
    assert any("was not produced by any event" in p.what for p in report.problems)


SPELLINGS = [
    ("payload spaced", 'UPDATE events SET payload = \'{ "text" :"note" }\' WHERE seq = 2', True),
    ("time without microseconds", "UPDATE events SET at = substr(at, 1, 19) || '+00:00'", True),
    (
        "time in another offset",
        "UPDATE events SET at = replace(replace(at, 'T11:', 'T12:'), '+00:00', '+01:00')",
        False,
    ),
    ("time with a comma", "UPDATE events SET at = replace(at, '.', ',')", False),
    ("notify spaced", "UPDATE deadlines SET notify = '[ \"manager\" ]'", True),
]


@pytest.mark.parametrize(("sql", "fast"), [e[1:] for e in SPELLINGS], ids=[e[0] for e in SPELLINGS])
def test_the_same_values_spelled_differently_are_still_intact(
    sqlite_engine: Engine, sql: str, fast: bool
) -> None:
    """The hash is over the canonical encoding of the decoded values: a respelled payload is
    not proven canonical, so the fold re-encodes it, and it is intact for both paths; a
    time the fold does not parse itself goes to the plain path, which finds it intact too."""
    _conn(sqlite_engine).execute(
        sql + (" AND" if "WHERE" in sql else " WHERE") + " workflow_id = 'R2'"
    )
    assert sqlite_engine.verify_report().ok
    assert _fast(sqlite_engine, "R2") is fast
    store = _store(sqlite_engine)
    store.forget_cached()
    assert sqlite_engine.replay("R2") == store.load("R2")


RESPELLED_PAYLOADS = [
    ("spaced", '{ "text" : "note" }'),
    ("escaped", '{"text":"n\\u006fte"}'),
    ("key repeated", '{"text":"x","text":"note"}'),
]


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize(
    "text", [e[1] for e in RESPELLED_PAYLOADS], ids=[e[0] for e in RESPELLED_PAYLOADS]
)
def test_a_hash_computed_over_a_respelled_payload_is_reported(
    sqlite_engine: Engine, text: str, warm: bool
) -> None:
    """Someone rewrites R2's last event with the same values respelled, and hashes the body
    with their spelling. The digest matches the stored text, but not the event's content in
    its canonical form (event_hash): the fold must not take it as intact, with or without
    the canonical spelling already proven (warm: R2 folded before the edit), and verify
    names the hash. (Hashing the stored text as it stands would miss this.)"""
    store = _store(sqlite_engine)
    assert json.loads(text) == {"text": "note"}
    if warm:
        assert _replay_fast(sqlite_engine, "R2")
        assert '{"text":"note"}' in _PROVEN
    wid, seq, trigger, source, dest, actor, role, at, _, prev, _, key = store.event_rows("R2")[1]
    strings = [json.dumps(v, ensure_ascii=False) for v in (trigger, source, dest, actor, role)]
    when = json.dumps(utc_isoformat(datetime.fromisoformat(at)))
    body = f'["{wid}",{seq},{",".join(strings)},{when},{text},"{prev}",{json.dumps(key)}]'
    forged = hashlib.sha256(body.encode()).hexdigest()
    _conn(sqlite_engine).execute(
        "UPDATE events SET payload = ?, hash = ? WHERE workflow_id = 'R2' AND seq = 2",
        (text, forged),
    )
    _conn(sqlite_engine).execute(
        "UPDATE workflows SET last_hash = ? WHERE workflow_id = 'R2'", (forged,)
    )
    assert not _fast(sqlite_engine, "R2")
    assert not _replay_fast(sqlite_engine, "R2")
    problems = [(p.seq, p.what) for p in sqlite_engine.verify_report("R2").problems]
    assert (2, "hash does not match the event's content") in problems


def test_payloads_are_stored_in_the_canonical_hashing_form(sqlite_engine: Engine) -> None:
    """What lets the fold hash a stored payload text as it stands once proven."""
    texts = [r[0] for r in _conn(sqlite_engine).execute("SELECT payload FROM events")]
    assert len(texts) == 7
    assert all(t == canonical_json(json.loads(t)) for t in texts)
