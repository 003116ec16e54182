"""Garbage-collector pauses in a long-lived process holding many workflows in memory.

    python benchmarks/gc_pauses.py           # 1,000,000 workflows (~2-4 min, ~3 GB)
    python benchmarks/gc_pauses.py --quick   # 100,000 workflows, well under a minute

Loads N review workflows into a MemoryStore through ``engine.start`` (the collector paused
during the load, as a bulk loader would), then fires 20,000 (``--quick``: 10,000) commands
at random workflows with the collector on and records every collection's pause
(``gc.callbacks`` start/stop).
Once as loaded, once after ``qaflow.freeze_loaded()``. Figures: the time of one full
``gc.collect()`` (the pause a full collection imposes whenever the collector decides to run
one: the worst case), target ≤ 10 ms frozen, and the longest pause seen during the commands
(young collections only, for information); frozen vs not, in the same run.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from _common import Row, header, line, ms, summary
from qaflow import Actor, Engine, ManualClock, MemoryStore, freeze_loaded
from review_machine import review_spec

WORKER = Actor("P-001", "worker")
T0 = datetime(2025, 3, 3, 9, tzinfo=UTC)


class Pauses:
    """Every collection's duration, from the collector's own start/stop callbacks."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._t = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.times.append(time.perf_counter() - self._t)


def commands(engine: Engine, n: int, k: int, seed: int) -> Pauses:
    rng = random.Random(seed)
    pauses = Pauses()
    gc.callbacks.append(pauses)
    try:
        for _ in range(k):
            engine.fire(f"W-{rng.randrange(n):07d}", "comment", WORKER, {"text": "noted"})
    finally:
        gc.callbacks.remove(pauses)
    return pauses


def full_collection() -> float:
    t = time.perf_counter()
    gc.collect()
    return time.perf_counter() - t


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="100,000 workflows")
    args = parser.parse_args(argv)
    n = 100_000 if args.quick else 1_000_000
    k = 10_000 if args.quick else 20_000
    started = time.perf_counter()
    print(f"qaflow GC pause benchmark; Python {sys.version.split()[0]}")
    spec = review_spec()
    engine = Engine(MemoryStore(), [spec], clock=ManualClock(T0))
    gc.disable()
    t = time.perf_counter()
    for i in range(n):
        engine.start(spec, f"W-{i:07d}", "submit", WORKER, {"document_ref": "D"})
    gc.enable()
    header(f"{n:,} workflows in a MemoryStore, then {k:,} commands with the collector on")
    line("setup: load", f"{time.perf_counter() - t:,.1f} s", f"{len(gc.get_objects()):,} tracked")
    plain_full = min(full_collection() for _ in range(3))
    plain = commands(engine, n, k, 1)
    frozen_count = freeze_loaded()
    frozen_full = min(full_collection() for _ in range(3))
    frozen = commands(engine, n, k, 2)
    gc.unfreeze()
    for label, p, full in (("as loaded", plain, plain_full), ("frozen", frozen, frozen_full)):
        line(f"{label}: longest pause during the commands", ms(max(p.times, default=0.0)))
        line(f"{label}: collections, total pause", f"{len(p.times)}, {ms(sum(p.times))}")
        line(f"{label}: one full gc.collect()", ms(full))
    line("objects frozen by freeze_loaded()", f"{frozen_count:,}")
    worst = max(frozen.times, default=0.0) / max(max(plain.times, default=1e-9), 1e-9)
    full_ratio = frozen_full / plain_full
    line("  longest pause, frozen / as loaded", f"{worst:.4f}x")
    line("  full collection, frozen / as loaded", f"{full_ratio:.4f}x")
    longest = max(frozen.times, default=0.0)
    rows = [
        Row(
            f"GC full collection, {n:,} wf",
            ms(frozen_full),
            f"{full_ratio:.4f}x unfrozen",
            "≤ 10 ms",
            frozen_full <= 0.010,
        ),
        Row(f"GC longest pause in {k:,} cmds", ms(longest), f"{worst:.2f}x unfrozen", "—", None),
    ]
    summary(rows)
    print(f"\ntotal {time.perf_counter() - started:,.0f} s")


if __name__ == "__main__":
    main()
