"""Rolling deadlines: the cost of the engine keeping a case's timescales, as ratios.

    python benchmarks/rolling.py

Runs the same stream of practice events (visits, reviews, status changes) through the case
timescales machine twice in one process, alternating batches: once under Buckinghamshire's
15 rolling rules, once under the same machine with no rules (the baseline: identical events,
updates and hashing, no timescales). The ratio is commands/s with rules over commands/s
without; the tick figure is the cost of a tick that breaches one rolling instance and opens
the next. In-memory store; not part of the test suite.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import attrs

from qaflow import Actor, Engine, ManualClock, MemoryStore
from qaflow.machines.timescales import case_spec, shipped_case_timescales

WORKER = Actor("SW-1", "social_worker")
EVENTS = ("visit", "plan_review", "significant_event", "significant_event_recorded", "visit")
STATUSES = ("cin", "cp_plan", "looked_after")


def _run(spec: object, workflows: int, events: int, seed: int) -> float:
    rng = random.Random(seed)
    clock = ManualClock(datetime(2026, 1, 5, 9, tzinfo=UTC))
    engine = Engine(MemoryStore(), [spec], clock=clock)  # type: ignore[list-item]
    for w in range(workflows):
        engine.start(
            "case_timescales",
            f"C{w}",
            "referral_received",
            WORKER,
            {"team_id": "T", "social_worker_id": "SW-1", "status": rng.choice(STATUSES)},
        )
    gc.collect()
    gc.disable()
    started = time.perf_counter()
    for n in range(events):
        clock.advance(timedelta(minutes=7))
        wid = f"C{rng.randrange(workflows)}"
        if n % 25 == 0:
            engine.fire(wid, "status_changed", WORKER, {"status": rng.choice(STATUSES)})
        else:
            engine.fire(wid, rng.choice(EVENTS), WORKER)
    elapsed = time.perf_counter() - started
    gc.enable()
    return events / elapsed


def main() -> None:
    spec = case_spec(shipped_case_timescales("buckinghamshire"))
    bare = attrs.evolve(spec, rolling=())
    ratios, with_rules, without = [], [], []
    for batch in range(5):
        a = _run(spec, 200, 4000, batch)
        b = _run(bare, 200, 4000, batch)
        with_rules.append(a)
        without.append(b)
        ratios.append(a / b)
    print(f"commands/s with 15 rolling rules: {statistics.median(with_rules):,.0f}")
    print(f"commands/s without rules:         {statistics.median(without):,.0f}")
    print(f"ratio (target >= 0.5x):           {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
