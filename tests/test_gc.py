"""freeze_loaded: the explicit option that keeps loaded workflows out of later collections."""

from __future__ import annotations

import gc
from datetime import UTC, datetime

from qaflow import Actor, Engine, ManualClock, MemoryStore, freeze_loaded
from review_machine import review_spec


def test_loaded_workflows_leave_the_collector_and_stay_usable() -> None:
    engine = Engine(
        MemoryStore(), [review_spec()], clock=ManualClock(datetime(2025, 3, 3, tzinfo=UTC))
    )
    worker = Actor("P-1", "worker")
    for i in range(50):
        engine.start("example.review", f"R-{i}", "submit", worker, {"document_ref": "D"})
    data = engine.get("R-7")  # a snapshot: a container the collector tracks
    assert gc.is_tracked(data)
    try:
        frozen = freeze_loaded()
        assert frozen == gc.get_freeze_count() > 0
        assert all(o is not data for o in gc.get_objects())  # no generation holds it now
        engine.fire("R-7", "comment", worker, {"text": "after the freeze"})
        assert engine.verify() == 50
        assert all(o is not data for o in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(o is data for o in gc.get_objects())
