"""Hostile input (issue 16, #1, #3, #11, #13, #14): every public entry point and command line
command answers bad input with a QAFlowError (one line on the command line) and writes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from conftest import MANAGER, T0, WORKER, populate
from qaflow import (
    Actor,
    Engine,
    MachineSpec,
    ManualClock,
    MemoryStore,
    PolicyError,
    QAFlowError,
    SQLiteStore,
    ValidationError,
)
from qaflow.cli import main
from qaflow.policies.ladders import loads_ladders
from qaflow.records import HASH_FORMAT, hash_fields
from qaflow.testing import store_content
from review_machine import review_spec


def _deep(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


HOSTILE_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30, max_value=10**40),
    st.builds(pow, st.just(10), st.just(5000)),  # repr-safe: the value has 5,001 digits
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1),
    st.sampled_from(["", "[/]", "\x1b[2J", "\u202e", "a" * 5000, "R2", "comment", "x\n"]),
    st.binary(max_size=5),
    st.just(object()),
    st.just(datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))),
    st.just(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))),
    st.just(datetime(2025, 12, 20)),
)
HOSTILE = st.one_of(
    HOSTILE_SCALARS,
    st.lists(HOSTILE_SCALARS, max_size=3),
    st.dictionaries(
        HOSTILE_SCALARS.filter(lambda v: v.__hash__ is not None), HOSTILE_SCALARS, max_size=3
    ),
    st.builds(_deep, st.just(5000)),
    st.builds(dict, text=st.builds(_deep, st.just(5000))),
    st.just({"text": {1: "x"}}),
    st.just({"text": "\ud800"}),
    st.builds(dict, text=st.builds(pow, st.just(10), st.just(5000))),
    st.just(["not", "a", "mapping"]),
    st.just("payload"),
)


def _engine(kind: str) -> Engine:
    store = (
        MemoryStore()
        if kind == "memory"
        else SQLiteStore(Path(tempfile.mkdtemp(prefix="qaflow-hostile-")) / "q.db")
    )
    engine = Engine(store, [review_spec()], clock=ManualClock(T0))
    populate(engine)
    return engine


ENGINES = {kind: _engine(kind) for kind in ("memory", "sqlite")}
CALLS: dict[str, Callable[[Engine, Any], object]] = {
    "start.workflow_id": lambda e, v: e.start(
        "example.review", v, "submit", WORKER, {"document_ref": "D"}
    ),
    "start.machine": lambda e, v: e.start(v, "N1", "submit", WORKER, {"document_ref": "D"}),
    "start.payload": lambda e, v: e.start("example.review", "N1", "submit", WORKER, v),
    "start.key": lambda e, v: e.start(
        "example.review", "N1", "submit", WORKER, {"document_ref": "D"}, idempotency_key=v
    ),
    "fire.workflow_id": lambda e, v: e.fire(v, "comment", MANAGER, {"text": "t"}),
    "fire.trigger": lambda e, v: e.fire("R2", v, MANAGER, {"text": "t"}),
    "fire.actor": lambda e, v: e.fire("R2", "comment", v, {"text": "t"}),
    "fire.actor.id": lambda e, v: e.fire("R2", "comment", Actor(v, "manager"), {"text": "t"}),
    "fire.actor.role": lambda e, v: e.fire("R2", "comment", Actor("M-1", v), {"text": "t"}),
    "fire.payload": lambda e, v: e.fire("R2", "comment", MANAGER, v),
    "fire.text": lambda e, v: e.fire("R2", "comment", MANAGER, {"text": v}),
    "fire.at": lambda e, v: e.fire("R2", "comment", MANAGER, {"text": "t"}, at=v),
    "fire.key": lambda e, v: e.fire("R2", "comment", MANAGER, {"text": "t"}, idempotency_key=v),
    "fire.version": lambda e, v: e.fire(
        "R2", "comment", MANAGER, {"text": "t"}, expected_version=v
    ),
    "migrate.to": lambda e, v: e.migrate("R2", v, MANAGER, reason="r"),
    "migrate.reason": lambda e, v: e.migrate("R2", e.spec("example.review"), MANAGER, reason=v),
    "tick.now": lambda e, v: e.tick(v),
    "get": lambda e, v: e.get(v),
    "history": lambda e, v: e.history(v),
    "allowed_triggers": lambda e, v: e.allowed_triggers(v),
    "replay": lambda e, v: e.replay(v),
    "verify": lambda e, v: e.verify(v),
    "register": lambda e, v: e.register(v),
    "spec": lambda e, v: e.spec(v),
    "mark_sent.ids": lambda e, v: e.store.mark_sent(v, T0),
    "mark_sent.at": lambda e, v: e.store.mark_sent(["R2:1:n1"], v),
    "complete_tasks.ids": lambda e, v: e.store.complete_tasks(v, T0),
    "load": lambda e, v: e.store.load(v),
    "events": lambda e, v: e.store.events(v),
    "due_deadlines": lambda e, v: e.store.due_deadlines(v),
    "actor": lambda e, v: Actor(v, v),
}


@pytest.mark.parametrize("kind", sorted(ENGINES))
@pytest.mark.parametrize("entry", sorted(CALLS))
@given(value=HOSTILE)
def test_public_entry_points_raise_only_qaflow_errors(kind: str, entry: str, value: Any) -> None:
    """#11: every failure is a QAFlowError with a short message, and writes nothing."""
    engine = ENGINES[kind]
    before = store_content(engine.store)
    try:
        CALLS[entry](engine, value)
    except QAFlowError as error:
        message = str(error)
        assert len(message) < 600, message
        assert "\x1b" not in message and "\u202e" not in message
        assert store_content(engine.store) == before
        message.encode("utf-8")  # no lone surrogate reaches a log or a terminal


def test_huge_values_are_described_not_formatted() -> None:
    """#11: ``ValidationError`` itself used to raise for an integer of over 4,300 digits."""
    error = ValidationError(field="score", value=10**5000, expected="a number")
    assert "an integer of" in str(error) and "bits" in str(error)


@pytest.mark.parametrize("value", ["Good ", "my secret words", "x" * 39])
def test_messages_never_quote_free_text(value: str) -> None:
    """#11: values up to 40 characters used to be quoted back from choice/dict/time fields."""
    engine = Engine(MemoryStore(), [review_spec()], clock=ManualClock(T0))
    populate(engine)
    for payload in ({"text": {"k": value}}, {"text": [value]}, {"score": value}):
        with pytest.raises(ValidationError) as info:
            engine.fire("R2", "approve" if "score" in payload else "comment", MANAGER, payload)
        assert value not in str(info.value)


def test_a_non_text_idempotency_key_is_refused_before_it_breaks_the_chain(tmp_path: Path) -> None:
    """#1: the int key 5 was stored as '5' and verify then reported a broken chain."""
    engine = Engine(SQLiteStore(tmp_path / "q.db"), [review_spec()], clock=ManualClock(T0))
    populate(engine)
    before = store_content(engine.store)
    with pytest.raises(ValidationError, match="'idempotency_key' must be non-empty text"):
        engine.fire("R2", "comment", MANAGER, {"text": "t"}, idempotency_key=5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="'extra' must be a JSON value"):
        engine.fire("R2", "comment", MANAGER, {"text": "t", "extra": (1, 2)})
    assert store_content(engine.store) == before
    assert engine.verify_report().ok


def test_the_hash_encoding_is_pinned() -> None:
    """The documented encoding (records.HASH_FORMAT 1) gives exactly this digest: a change
    of encoding must change the format version, not silently break every stored chain."""
    digest = hash_fields(
        "W-1",
        1,
        "raise",
        "new",
        "stage_1",
        Actor("P-1", "firo"),
        datetime(2025, 12, 19, 10, tzinfo=UTC),
        {"b": [1, 2.5, None, True], "a": "é"},
        "0" * 64,
        None,
    )
    documented = (
        '["W-1",1,"raise","new","stage_1","P-1","firo","2025-12-19T10:00:00+00:00",'
        '{"a":"é","b":[1,2.5,null,true]},"' + "0" * 64 + '",null]'
    )
    assert HASH_FORMAT == 1
    assert digest == hashlib.sha256(documented.encode("utf-8")).hexdigest()
    assert digest == "bc006efe62c93e93925ce107e4782f03c6234a8023b25946c70c9e7d4aa3d692"


def test_a_conflicting_registration_is_refused_naming_the_mismatch(tmp_path: Path) -> None:
    """#3: a different spec under the same (machine, policy, version) used to replace it."""
    v1 = review_spec("5 WD")
    engine = Engine(SQLiteStore(tmp_path / "q.db"), [v1], clock=ManualClock(T0))
    populate(engine)
    other = review_spec("2 WD")  # same key, other rules
    assert other.key == v1.key and other.fingerprint != v1.fingerprint
    assert review_spec("5 WD").fingerprint == v1.fingerprint  # stable content, same print
    with pytest.raises(PolicyError, match="already registered with other content"):
        engine.register(other)
    engine.register(review_spec("5 WD"))  # the same content again is fine
    assert engine.get("R1").fingerprint == v1.fingerprint
    # Another process registering the other rules under the same key is refused per workflow:
    elsewhere = Engine(SQLiteStore(tmp_path / "q.db"), [other], clock=ManualClock(T0))
    with pytest.raises(PolicyError, match="pinned to spec fingerprint"):
        elsewhere.fire("R2", "comment", MANAGER, {"text": "t"})
    assert not elsewhere.verify_report().ok


def test_a_description_does_not_change_the_fingerprint() -> None:
    v1 = review_spec()
    renamed = MachineSpec(
        v1.name,
        v1.policy,
        v1.policy_version,
        v1.initial,
        v1.states,
        v1.transitions,
        migration_roles=v1.migration_roles,
        description="words only",
    )
    assert renamed.fingerprint == v1.fingerprint


def test_mark_sent_refuses_one_text_and_non_text_ids(engine: Engine) -> None:
    """#14: ``mark_sent("id")`` used to iterate the characters of the id."""
    before = store_content(engine.store)
    for ids in ("R2:1:n1", [["R2:1:n1"]], [1]):
        with pytest.raises(ValidationError, match="'ids' must be"):
            engine.store.mark_sent(ids, T0)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="'ids' must be"):
            engine.store.complete_tasks(ids, T0)  # type: ignore[arg-type]
    assert store_content(engine.store) == before
    assert engine.store.mark_sent(["R2:1:n1"], T0) == 1


@given(text=st.text(max_size=300))
def test_malformed_toml_is_a_policy_error(text: str) -> None:
    """#11: a ladders file that is not TOML, or not a ladders file, is a PolicyError."""
    with contextlib.suppress(QAFlowError):
        loads_ladders(text)


@pytest.mark.parametrize(
    "document",
    [
        '[policy\nname = "x"',
        "policy = 5",
        '[policy]\nname = 5\nversion = "1"',
        "\x00",
        "[[ladders]]\nx=1",
    ],
)
def test_malformed_toml_examples(document: str) -> None:
    with pytest.raises(QAFlowError):
        loads_ladders(document)


# --- the command line ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    from qaflow.machines.escalation import escalation_machine
    from qaflow.policies import bexley

    spec = escalation_machine(bexley.FIRO_LADDER, bexley.POLICY)
    path = tmp_path_factory.mktemp("hostile") / "q.db"
    engine = Engine(SQLiteStore(path), [spec], clock=ManualClock(T0))
    payload = {"subject_id": "C-7", "reason": bexley.FIRO_LADDER.reasons[0], "to": "stage_1"}
    engine.start(spec.name, "ESC-[/]", "raise", Actor("FIRO-[bold]1[/]", "firo"), payload)
    store = engine.store
    assert isinstance(store, SQLiteStore)
    # Ids the boundary now refuses, written straight into the file as an attacker would:
    store.conn.execute("UPDATE events SET actor_role = 'firo\x1b[2J\u202e' WHERE seq = 1")
    store.conn.execute("UPDATE notifications SET reason = 'x\x1b]0;owned\x07[/]'")
    return str(path)


def test_stored_markup_and_escape_sequences_never_reach_the_terminal(db: str) -> None:
    """#13: ``qaflow history`` used to crash on an actor id containing ``[/]``."""
    runner = CliRunner()
    for args in (["history", "ESC-[/]"], ["outbox"], ["verify"], ["history", "ESC-[/]", "--json"]):
        result = runner.invoke(main, [*args, "--db", db])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert (
            "\x1b" not in result.output
            and "\u202e" not in result.output
            and "\x07" not in result.output
        )
    history = runner.invoke(main, ["history", "ESC-[/]", "--db", db]).output
    assert "[bold]" in history and "\\x1b" in history  # shown, not interpreted


CLI_ARGS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from("\x1b[/]\u202e\ud800"),
    max_size=20,
)


def _content(db: str) -> Any:
    with SQLiteStore(db, readonly=True) as store:
        return store.dump()


@given(value=CLI_ARGS)
def test_cli_commands_print_one_line_errors_for_hostile_arguments(db: str, value: str) -> None:
    """#13, #15: no traceback, no escape sequence; a refused command writes nothing."""
    runner = CliRunner()
    before = _content(db)
    for args in (
        ["history", value, "--db", db],
        ["verify", value, "--db", db],
        ["tick", "--db", db, "--now", value],
        ["outbox", "--db", db, "--limit", value],
        ["report", "--db", db, "--from", value, "--to", "2026-01-01"],
        ["diagram", value],
        ["policy", "show", value],
        ["verify", "--db", value],
        ["export-checkpoint", "--db", db, "--key-file", value],
        ["verify", "--db", db, "--checkpoint", value],
    ):
        result = runner.invoke(main, args)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args,
            result.exception,
        )
        assert "Traceback" not in result.output
        assert "\x1b" not in result.output and "\u202e" not in result.output
        if args[0] == "tick" and result.exit_code != 0:
            assert _content(db) == before


def test_cli_fire_refuses_a_payload_nested_past_the_parser(db: str) -> None:
    """A JSON payload nested 100,000 deep used to end in a RecursionError traceback."""
    deep = '{"text":' + "[" * 100_000 + "]" * 100_000 + "}"
    before = _content(db)
    result = CliRunner().invoke(
        main, ["fire", "ESC-[/]", "respond", deep, "--as", "P-1", "--role", "firo", "--db", db]
    )
    assert result.exit_code == 1 and "'PAYLOAD' must be a JSON object" in result.output
    assert _content(db) == before
