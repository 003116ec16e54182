"""Run the example review procedure on an embedded SQLite file and print what happened.

python examples/quickstart.py [path/to/qaflow.db]
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from qaflow import Actor, Engine, ManualClock, QAFlowError, SQLiteStore
from review_machine import review_spec


def main(path: str = "qaflow-quickstart.db") -> None:
    Path(path).unlink(missing_ok=True)
    clock = ManualClock(datetime(2025, 12, 19, 10, 0, tzinfo=UTC))
    store = SQLiteStore(path)
    engine = Engine(store, [review_spec()], clock=clock)
    worker, manager = Actor("P-001", "worker"), Actor("M-001", "manager")

    step = engine.start("example.review", "R-1", "submit", worker, {"document_ref": "DOC-7"})
    print(f"R-1 is {step.snapshot.state}; review due {step.opened[0].due_at:%a %d %b %Y %H:%M} UTC")
    try:
        engine.fire("R-1", "approve", manager, {"score": 11})
    except QAFlowError as error:
        print(f"refused: {error}")

    clock.advance(timedelta(days=12))
    for breach in engine.tick():
        print(f"tick: {breach.event.trigger} -> {breach.snapshot.state}")
    engine.fire("R-1", "approve", Actor("S-001", "service_manager"), {"score": 8})

    for event in engine.history("R-1"):
        print(
            f"  {event.seq}. {event.at:%Y-%m-%d %H:%M} {event.trigger}: "
            f"{event.source} -> {event.dest} by {event.actor.role}"
        )
    print(f"outbox: {len(store.pending_notifications())} notifications pending")
    print(f"verified {engine.verify()} workflow(s); database at {Path(path).resolve()}")
    store.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
