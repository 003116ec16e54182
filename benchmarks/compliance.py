"""Compliance by period: a quarter's timescale compliance on a store with years of history.

    python benchmarks/compliance.py [--quick]

A store of case workflows opened month by month over ``years`` (each a few weeks of visits,
then quiet, as closed cases are); the figure is ``compliance(engine, start, end)`` for the
last quarter. Baseline, in the same run: the same counts the way the view read them before,
replaying every workflow's whole history up to the end of the quarter. The ratio is period
over whole history (lower is better); a second line checks that the two agree. In-memory
store; not part of the test suite.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta

from _common import Row, header, line, ms, paired, summary
from qaflow import Actor, Engine, ManualClock, MemoryStore
from qaflow.compliance import compliance, instances
from qaflow.machines.timescales import case_spec, shipped_case_timescales

WORKER = Actor("SW-1", "social_worker")
T0 = datetime(2023, 1, 2, 9, tzinfo=UTC)


def _store(years: int, per_month: int, seed: int) -> tuple[Engine, datetime]:
    rng = random.Random(seed)
    spec = case_spec(shipped_case_timescales("buckinghamshire"))
    clock = ManualClock(T0)
    engine = Engine(MemoryStore(), [spec], clock=clock)
    plans: list[tuple[datetime, str, str]] = []
    for month in range(years * 12):
        for k in range(per_month):
            opened = T0 + timedelta(days=30 * month + rng.randrange(28))
            wid = f"C{month}-{k}"
            plans.append((opened, wid, "open"))
            for v in range(rng.randrange(2, 5)):
                plans.append((opened + timedelta(days=3 + 20 * v), wid, "visit"))
    for at, wid, what in sorted(plans):
        clock.set(max(at, clock.now()))
        if what == "open":
            payload = {"team_id": f"T{hash(wid) % 4}", "social_worker_id": "SW-1", "status": "cin"}
            engine.start(spec.name, wid, "referral_received", WORKER, payload)
        else:
            engine.fire(wid, "visit", WORKER)
    return engine, clock.now()


def _whole(engine: Engine, start: datetime, end: datetime) -> int:
    n = 0
    for inst in instances(engine, until=end):
        if inst.closed_at is None and inst.opened_at >= end:
            continue
        if inst.closed_at is not None and not start <= inst.closed_at < end:
            continue
        n += 1
    return n


def main() -> None:
    quick = "--quick" in sys.argv
    years, per_month, reps = (2, 6, 3) if quick else (4, 12, 5)
    engine, end = _store(years, per_month, seed=7)
    start = end - timedelta(days=91)
    header(f"compliance for a quarter, {years} years of cases ({per_month} a month)")
    counted = sum(r.counted + r.superseded for r in compliance(engine, start, end))
    agree = counted == _whole(engine, start, end)

    def period() -> float:
        t = time.perf_counter()
        compliance(engine, start, end)
        return time.perf_counter() - t

    def whole() -> float:
        t = time.perf_counter()
        _whole(engine, start, end)
        return time.perf_counter() - t

    result = paired(period, whole, reps)
    line("period read (compliance)", ms(result.subject))
    line("whole history replayed (baseline)", ms(result.baseline))
    line("ratio period / whole", f"{result.ratio:.2f}x")
    line("same counts", "yes" if agree else "NO")
    summary(
        [
            Row(
                "quarter vs whole history",
                ms(result.subject),
                f"{result.ratio:.2f}x",
                "< 1x",
                result.ratio < 1,
            ),
            Row("counts agree", str(counted), "-", "equal", agree),
        ]
    )


if __name__ == "__main__":
    main()
