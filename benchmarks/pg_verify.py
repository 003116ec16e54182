"""PostgreSQL verify of the whole store, and the write path with and without prepared
statements: ratios against baselines measured in the same run.

    python benchmarks/pg_verify.py                 # starts its own server (fsync off)
    python benchmarks/pg_verify.py --workflows 5000 --dsn "host=... dbname=..."

Figures (see benchmarks/README.md, "round 5 (pg14)"):
1. ``Engine.verify()`` of every workflow of a PostgresStore (review machine, a mix of
   commands: 2-6 events, deadlines, outbox rows and tasks per workflow), against a raw read
   and decode of the same rows with psycopg (every events, workflows, deadlines,
   notifications and tasks row fetched, payloads and data decoded with ``json.loads``);
3. verify of all and its check for rows of no workflow (``_check_orphans``) with the
   store's undecoded ``derived_ids`` (round 6) against the old path, which decoded every
   deadline, notification and task row (``derived_ids`` hidden), alternated in one run;
2. durable commands/s of the same mix with psycopg's default ``prepare_threshold`` (5)
   against ``prepare_threshold=None`` (no server-side prepares), alternated in one run: what
   disabling prepares would cost, had the prepared-statement desync not been fixable.
Run it with ``PYTHONPATH=<another checkout>/src`` to measure that checkout's code. Not part
of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "tests"))

import psycopg  # noqa: E402

import qaflow  # noqa: E402
from qaflow import Actor, Engine, ManualClock, PostgresStore, QAFlowError  # noqa: E402
from review_machine import review_spec  # noqa: E402

T0 = datetime(2025, 6, 2, 9, tzinfo=UTC)
WORKER, MANAGER = Actor("P-1", "worker"), Actor("M-1", "manager")
MIX = [
    ("comment", MANAGER, {"text": "looked at section 2"}),
    ("send_back", MANAGER, {"reason": "needs the chronology"}),
    ("submit", WORKER, {"document_ref": "DOC-2"}),
    ("escalate", WORKER, {}),
    ("comment", WORKER, {"text": "working on it"}),
]


def fresh(base: str, name: str) -> str:
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")  # type: ignore[arg-type]
        conn.execute(f"CREATE SCHEMA {name}")  # type: ignore[arg-type]
    return f"{base} options='-c search_path={name}'"


def build(dsn: str, workflows: int, seed: int = 7) -> None:
    """``workflows`` review workflows, each with a few commands of the mix (batched)."""
    rng = random.Random(seed)
    store = PostgresStore(dsn)
    engine = Engine(store, [review_spec()], clock=ManualClock(T0))
    for start in range(0, workflows, 500):
        with engine.batch():
            for n in range(start, min(workflows, start + 500)):
                wid = f"W{n:06d}"
                engine.start("example.review", wid, "submit", WORKER, {"document_ref": "D"})
                for _ in range(rng.randrange(1, 6)):
                    trigger, actor, payload = rng.choice(MIX)
                    with contextlib.suppress(QAFlowError):
                        engine.fire(wid, trigger, actor, payload)
    store.close()


def raw_read(dsn: str) -> int:
    """Every row verify reads, fetched and decoded with psycopg alone."""
    n = 0
    with psycopg.connect(dsn) as conn:
        for (payload,) in conn.execute("SELECT payload FROM events ORDER BY workflow_id, seq"):
            json.loads(payload)
            n += 1
        for (data,) in conn.execute("SELECT data FROM workflows"):
            json.loads(data)
        for table in ("deadlines", "notifications", "tasks"):
            conn.execute(f"SELECT * FROM {table}").fetchall()  # type: ignore[arg-type]
    return n


def timed(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def verify_figure(dsn: str, workflows: int, repeats: int) -> None:
    store = PostgresStore(dsn)
    engine = Engine(store, [review_spec()], clock=ManualClock(T0))
    events = raw_read(dsn)
    t_verify = timed(engine.verify, repeats)
    t_raw = timed(lambda: raw_read(dsn), repeats)
    store.close()
    print(
        f"1. verify of all, {workflows} workflows, {events} events: verify {t_verify:.3f} s "
        f"({t_verify / workflows * 1e6:.0f} us/workflow), raw read and decode {t_raw:.3f} s: "
        f"{t_raw / t_verify:.3f}x a raw read"
    )


def orphans_figure(dsn: str, repeats: int) -> None:
    """Verify and its orphan check, with ``derived_ids`` and with it hidden (the old path)."""
    from qaflow import _integrity
    from qaflow._integrity import VerifyReport

    store = PostgresStore(dsn)
    engine = Engine(store, [review_spec()], clock=ManualClock(T0))
    known = set(store.workflow_ids())

    def check(hidden: bool) -> None:
        if hidden:
            store.derived_ids = None  # type: ignore[assignment,method-assign]
        try:
            _integrity._check_orphans(VerifyReport(), store, known)
        finally:
            if hidden:
                del store.derived_ids

    def verify(hidden: bool) -> None:
        if hidden:
            store.derived_ids = None  # type: ignore[assignment,method-assign]
        try:
            engine.verify()
        finally:
            if hidden:
                del store.derived_ids

    # hidden: an instance attribute None, so _check_orphans' getattr takes the old path
    t: dict[tuple[str, bool], list[float]] = {}
    for _ in range(repeats):  # alternated, so that the load drifts on both alike
        for hidden in (True, False):
            t.setdefault(("orphans", hidden), []).append(timed(lambda h=hidden: check(h), 1))
            t.setdefault(("verify", hidden), []).append(timed(lambda h=hidden: verify(h), 1))
    store.close()
    med = {k: statistics.median(v) for k, v in t.items()}
    o_old, o_new = med[("orphans", True)], med[("orphans", False)]
    v_old, v_new = med[("verify", True)], med[("verify", False)]
    print(
        f"3. orphan check: decoding every row {o_old * 1e3:.1f} ms, derived_ids "
        f"{o_new * 1e3:.1f} ms ({o_old / o_new:.2f}x faster); verify of all: "
        f"{v_old:.3f} s -> {v_new:.3f} s ({v_old / v_new:.3f}x); the orphan check was "
        f"{o_old / v_old:.1%} of verify, now {o_new / v_new:.1%}"
    )


def commands(dsn: str, threshold: int | None, count: int, seed: int) -> float:
    """Seconds for ``count`` commands on random workflows, one writer."""
    store = PostgresStore(dsn, min_size=1, max_size=1)
    with store.pool.connection() as conn:
        conn.prepare_threshold = threshold
    engine = Engine(store, [review_spec()], clock=ManualClock(T0 + timedelta(days=1)))
    ids = list(store.workflow_ids())
    rng = random.Random(seed)
    t = time.perf_counter()
    for _ in range(count):
        trigger, actor, payload = rng.choice(MIX)
        with contextlib.suppress(QAFlowError):
            engine.fire(rng.choice(ids), trigger, actor, payload)
    spent = time.perf_counter() - t
    store.close()
    return spent


def prepare_figure(dsn: str, count: int, rounds: int) -> None:
    on: list[float] = []
    off: list[float] = []
    for r in range(rounds):  # alternated, so that the load drifts on both alike
        on.append(count / commands(dsn, 5, count, r))
        off.append(count / commands(dsn, None, count, r))
    a, b = statistics.median(on), statistics.median(off)
    print(
        f"2. commands/s, one writer: prepared (threshold 5) {a:.0f}, no prepares {b:.0f}: "
        f"no prepares runs at {b / a:.3f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="an existing server (default: start one)")
    parser.add_argument("--workflows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--commands", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", type=int, choices=(1, 2, 3))
    args = parser.parse_args()
    print(f"qaflow from {Path(qaflow.__file__).parent}")
    server = None
    base = args.dsn
    if base is None:
        from pg_support import PgServer, find_pg_bin

        bindir = find_pg_bin()
        if bindir is None:
            sys.exit("no PostgreSQL server binaries")
        server = PgServer(bindir)
        server.start()
        base = server.dsn
    try:
        dsn = fresh(base, "bench_pg_verify")
        build(dsn, args.workflows)
        if args.only in (None, 1):
            verify_figure(dsn, args.workflows, args.repeats)
        if args.only in (None, 3):
            orphans_figure(dsn, max(args.repeats, 5))
        if args.only in (None, 2):
            prepare_figure(dsn, args.commands, args.rounds)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
