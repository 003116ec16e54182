"""The workflow checks every machine must pass: sequence, replay, deadlines, tick, round trip.

Public through :mod:`qaflow.testing`. Each ``check_*`` raises ``AssertionError`` naming the
workflow that breaks the rule and what it found.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from hypothesis import strategies as st

from qaflow.calendar import LONDON
from qaflow.engine import Engine
from qaflow.errors import IntegrityError
from qaflow.records import GENESIS_HASH, Event, WorkflowSnapshot, converter, event_hash
from qaflow.store import MemoryStore, PostgresStore, SQLiteStore, Store

__all__ = [
    "aware_datetimes",
    "check_deadlines",
    "check_integrity_detects_tampering",
    "check_record_round_trip",
    "check_replay",
    "check_sequence",
    "check_terminal_absorbing",
    "check_tick",
    "check_workflow",
    "store_content",
]


def aware_datetimes(min_year: int = 2020, max_year: int = 2030) -> st.SearchStrategy[datetime]:
    """Aware UTC datetimes (to the second) in a year range."""
    return st.datetimes(
        min_value=datetime(min_year, 1, 1),
        max_value=datetime(max_year, 12, 31, 23, 59, 59),
    ).map(lambda d: d.replace(microsecond=0, tzinfo=UTC))


def store_content(store: Store) -> Any:
    """Everything a store holds, comparable with ``==`` (so a test sees a refusal wrote
    nothing)."""
    if isinstance(store, (SQLiteStore, PostgresStore)):
        return store.dump()
    if isinstance(store, MemoryStore):
        return (
            {w: store.load(w) for w in store.workflow_ids()},
            {w: tuple(store.events(w)) for w in store.workflow_ids()},
            tuple(store.open_deadlines()),
            tuple(store.notifications()),
            tuple(store.tasks()),
            store.counts(),
        )
    raise TypeError(f"no content view for {type(store).__name__}")


def check_sequence(engine: Engine, workflow_id: str) -> None:
    """Sequence numbers are 1..n with no gap and the snapshot's version is n."""
    events = engine.history(workflow_id)
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(events) + 1)), (
        f"{workflow_id}: sequence numbers {seqs} are not 1..n"
    )
    version = engine.get(workflow_id).version
    assert version == len(events), f"{workflow_id}: version {version} != {len(events)} events"


def check_replay(engine: Engine, workflow_id: str) -> None:
    """Replaying the stored events reproduces the snapshot (state, data, deadlines)."""
    stored = engine.get(workflow_id)
    replayed = engine.replay(workflow_id)
    assert replayed == stored and replayed.data == stored.data, (
        f"{workflow_id}: replay gives {replayed.state!r} v{replayed.version}, "
        f"stored {stored.state!r} v{stored.version}"
    )


def _wd_rule(rule: str) -> bool:
    return all(part.strip().endswith("WD") for part in rule.split("+"))


def check_deadlines(engine: Engine, workflow_id: str) -> None:
    """Open deadlines belong to the current state or the workflow, never end before they
    were opened, and a working-day deadline ends on a working day."""
    snap = engine.get(workflow_id)
    spec = engine.spec_for(snap)
    rows = {d.id: d for d in engine.store.open_deadlines(workflow_id)}
    assert set(rows) == {d.id for d in snap.deadlines}, (
        f"{workflow_id}: stored open deadlines differ from the snapshot's"
    )
    for d in snap.deadlines:
        assert d.state is None or d.state == snap.state, (
            f"{workflow_id}: deadline {d.name!r} of state {d.state!r} open in {snap.state!r}"
        )
        assert d.due_at >= d.opened_at, f"{workflow_id}: {d.name!r} due before opened"
        if _wd_rule(d.rule):
            local = d.due_at.astimezone(LONDON).date()
            assert spec.calendar.is_working_day(local), (
                f"{workflow_id}: WD deadline {d.name!r} ends on {local}, not a working day"
            )
    if spec.state(snap.state).terminal:
        assert not snap.deadlines, f"{workflow_id}: terminal state with open deadlines"


def check_terminal_absorbing(engine: Engine, workflow_id: str, before: WorkflowSnapshot) -> None:
    """A workflow that was in a terminal state has not moved."""
    spec = engine.spec_for(before)
    if spec.state(before.state).terminal:
        assert engine.get(workflow_id) == before, f"{workflow_id}: left terminal state"


def check_tick(engine: Engine, now: datetime) -> None:
    """After ``tick(now)`` nothing due by ``now`` is open and a second tick writes nothing."""
    engine.tick(now)
    due = engine.store.due_deadlines(now)
    assert not due, f"still open after tick: {[d.id for d in due]}"
    assert engine.tick(now) == [], "a second tick wrote steps"


def check_record_round_trip(record: object) -> None:
    """A record survives cattrs unstructure, JSON and structure unchanged."""
    data = json.loads(json.dumps(converter.unstructure(record)))
    back = converter.structure(data, type(record))
    assert back == record, f"{type(record).__name__} changed in a JSON round trip"


def check_integrity_detects_tampering(engine: Engine, workflow_id: str) -> None:
    """Changing or deleting any event of the workflow breaks its chain or its head.

    Checked on copies in memory, with the same rules :meth:`Engine.verify` applies: each
    event's hash, the chain of ``prev_hash``, and the snapshot's ``last_hash`` and version.
    """
    events = engine.history(workflow_id)
    head = engine.get(workflow_id)

    def breaks(copy: list[Event]) -> bool:
        return _chain_breaks(copy, head.last_hash, head.version)

    for i, event in enumerate(events):
        for tampered in (
            _evolve(event, trigger=event.trigger + "_x"),
            _evolve(event, at=event.at + timedelta(seconds=1)),
            _evolve(event, payload={**event.payload, "tampered": True}),
        ):
            copy = [*events[:i], tampered, *events[i + 1 :]]
            assert breaks(copy), f"altering event {event.seq} went unnoticed"
        if events:
            assert breaks(events[:i] + events[i + 1 :]), (
                f"deleting event {event.seq} went unnoticed"
            )


def _evolve(event: Event, **changes: Any) -> Event:
    return attrs.evolve(event, **changes)


def _chain_breaks(events: list[Event], last_hash: str, version: int) -> bool:
    prev = GENESIS_HASH
    for n, e in enumerate(events, start=1):
        if e.seq != n or e.prev_hash != prev or event_hash(e) != e.hash:
            return True
        prev = e.hash
    return prev != last_hash or len(events) != version


def check_workflow(engine: Engine, workflow_id: str) -> None:
    """Sequence, replay, open deadlines and the hash chain of one workflow."""
    check_sequence(engine, workflow_id)
    check_replay(engine, workflow_id)
    check_deadlines(engine, workflow_id)
    try:
        engine.verify(workflow_id)
    except IntegrityError as error:  # pragma: no cover - reported as an assertion
        raise AssertionError(f"{workflow_id}: {error}") from error
