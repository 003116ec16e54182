"""Shared pieces of the adversarial tests: a small store with every kind of row in it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from qaflow import Actor, Engine, ManualClock, MemoryStore, SQLiteStore
from review_machine import review_spec

T0 = datetime(2025, 12, 19, 10, tzinfo=UTC)
WORKER = Actor("P-1", "worker")
MANAGER = Actor("M-1", "manager")


def populate(engine: Engine) -> None:
    """Three workflows with open and closed deadlines, notifications and a task."""
    clock = engine.clock
    assert isinstance(clock, ManualClock)
    engine.start("example.review", "R1", "submit", WORKER, {"document_ref": "D-1"})
    engine.fire("R1", "comment", MANAGER, {"text": "first look"})
    engine.fire("R1", "send_back", MANAGER, {"reason": "needs a plan"})
    clock.advance(timedelta(hours=1))
    engine.fire("R1", "submit", WORKER, {"document_ref": "D-1b"})
    engine.start("example.review", "R2", "submit", WORKER, {"document_ref": "D-2"})
    engine.fire("R2", "comment", WORKER, {"text": "note"})
    engine.start("example.review", "R3", "submit", WORKER, {"document_ref": "D-3"})


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    store = SQLiteStore(tmp_path / "q.db")
    engine = Engine(store, [review_spec()], clock=ManualClock(T0))
    populate(engine)
    yield engine
    store.close()


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "q.db")
    engine = Engine(store, [review_spec()], clock=ManualClock(T0))
    populate(engine)
    yield engine
    if isinstance(store, SQLiteStore):
        store.close()
