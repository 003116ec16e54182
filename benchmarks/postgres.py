"""PostgreSQL store benchmarks: every figure is a ratio against a baseline run in the same run.

    python benchmarks/postgres.py            # starts its own server (fsync on), ~2-3 min
    python benchmarks/postgres.py --quick    # shorter windows, fewer deadlines
    python benchmarks/postgres.py --dsn "host=... dbname=..."   # an existing server

Figures (see benchmarks/README.md):
1. durable commands/s, Engine + PostgresStore on random workflows out of 10,000 with a
   realistic mix of commands, vs raw psycopg single-row UPDATE + INSERT transactions on copies
   of the same tables, same server, same settings (target >= 0.5x): plain (BEGIN, UPDATE,
   INSERT, COMMIT: four round trips) and pipelined (one statement, two round trips, as
   qaflow sends a step);
2. the same with 1, 2 and 4 writer processes (each owns a slice of the workflows): the curve;
3. ``Engine.tick`` from 1 process vs 4 processes on N due deadlines (each fired once,
   checked), time per deadline. The issue asks for 100,000; the default is 20,000 (the
   machine is two shared cores): ``--deadlines 100000`` runs the full size.
Not part of the test suite; nothing asserts a target, it reports whether each was met.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "tests"))

import psycopg  # noqa: E402

from qaflow import SYSTEM, Actor, Engine, ManualClock, PostgresStore, QAFlowError  # noqa: E402
from review_machine import review_spec  # noqa: E402

T0 = datetime(2025, 6, 2, 9, tzinfo=UTC)
NOW = T0 + timedelta(days=3)  # before any 5 WD review is due: commands, not breaches
WORKER, MANAGER = Actor("P-1", "worker"), Actor("M-1", "manager")

# What a command does to a review workflow, by its state: mostly comments, with the moves
# that close and open deadlines, write outbox rows and tasks (escalate, send_back, submit).
MIX: dict[str, list[tuple[int, str, Actor, dict[str, Any]]]] = {
    "submitted": [
        (50, "comment", MANAGER, {"text": "looked at section 2"}),
        (10, "comment", WORKER, {"text": "added the plan"}),
        (15, "escalate", WORKER, {}),
        (20, "send_back", MANAGER, {"reason": "needs the chronology"}),
        (5, "approve", MANAGER, {"score": 8}),
    ],
    "escalated": [
        (60, "comment", MANAGER, {"text": "chased"}),
        (30, "send_back", MANAGER, {"reason": "needs the chronology"}),
        (10, "approve", MANAGER, {"score": 7}),
    ],
    "returned": [
        (70, "submit", WORKER, {"document_ref": "DOC-2"}),
        (30, "comment", WORKER, {"text": "working on it"}),
    ],
}


def pick(rng: random.Random, state: str) -> tuple[str, Actor, dict[str, Any]]:
    options = MIX[state]
    _, trigger, actor, payload = rng.choices(options, weights=[o[0] for o in options])[0]
    return trigger, actor, payload


def schema_dsn(base: str, schema: str) -> str:
    return f"{base} options='-c search_path={schema}'"


def fresh_schema(base: str, name: str) -> str:
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")  # type: ignore[arg-type]
        conn.execute(f"CREATE SCHEMA {name}")  # type: ignore[arg-type]
    return schema_dsn(base, name)


def populate(dsn: str, n: int, at: datetime = T0) -> None:
    """``n`` review workflows started through the engine, 1,000 per batch commit."""
    with PostgresStore(dsn) as store:
        engine = Engine(store, [review_spec()], clock=ManualClock(at))
        for start in range(0, n, 1000):
            with engine.batch():
                for i in range(start, min(n, start + 1000)):
                    engine.start("example.review", f"W{i}", "submit", WORKER, {"document_ref": "D"})


def make_raw_tables(dsn: str) -> None:
    """Copies of qaflow's workflows and events tables (same columns and indexes, same rows)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE raw_workflows (LIKE workflows INCLUDING ALL)")
        conn.execute("CREATE TABLE raw_events (LIKE events INCLUDING ALL)")
        conn.execute("INSERT INTO raw_workflows SELECT * FROM workflows")
        conn.execute("INSERT INTO raw_events SELECT * FROM events")
        conn.execute("ANALYZE")


# --- writer processes -----------------------------------------------------------------------


def qaflow_writer(dsn: str, ids: list[str], seconds: float, go: Any, out: Any) -> None:
    rng = random.Random(len(ids))
    states = dict.fromkeys(ids, "submitted")
    live = list(ids)
    with PostgresStore(dsn, max_size=1) as store:
        engine = Engine(store, [review_spec()], clock=ManualClock(NOW))
        go.wait()
        done = refused = 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end and live:
            wid = live[rng.randrange(len(live))]
            trigger, actor, payload = pick(rng, states[wid])
            try:
                step = engine.fire(wid, trigger, actor, payload)
            except QAFlowError:
                refused += 1
                continue
            done += 1
            states[wid] = step.snapshot.state
            if step.snapshot.state == "approved":
                live.remove(wid)
        out.put((done, refused, seconds))


def raw_writer(dsn: str, ids: list[str], seconds: float, go: Any, out: Any) -> None:
    """BEGIN; UPDATE the workflow row (version + 1, new hash and data); INSERT the event; COMMIT."""
    rng = random.Random(len(ids))
    data = '{"document_ref": "D", "worker_id": "P-1"}'
    with psycopg.connect(dsn, autocommit=True) as conn:
        go.wait()
        done = 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            wid = ids[rng.randrange(len(ids))]
            digest = f"{rng.getrandbits(256):064x}"
            with conn.transaction():
                (seq,) = conn.execute(
                    "UPDATE raw_workflows SET version = version + 1, updated_at = %s, "
                    "last_hash = %s, data = %s WHERE workflow_id = %s RETURNING version",
                    (NOW, digest, data, wid),
                ).fetchone()  # type: ignore[misc]
                conn.execute(
                    "INSERT INTO raw_events (workflow_id, seq, trigger, source, dest, actor_id, "
                    "actor_role, at, payload, prev_hash, hash, idempotency_key) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (wid, seq, "comment", "submitted", "submitted", "M-1", "manager", NOW,
                     '{"text": "looked at section 2"}', digest, digest, None),
                )  # fmt: skip
            done += 1
        out.put((done, 0, seconds))


def raw_pipelined_writer(dsn: str, ids: list[str], seconds: float, go: Any, out: Any) -> None:
    """The same transaction with its statements in one pipeline (two round trips, as qaflow's)."""
    rng = random.Random(len(ids))
    data = '{"document_ref": "D", "worker_id": "P-1"}'
    with psycopg.connect(dsn, autocommit=True) as conn:
        go.wait()
        done = 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            wid = ids[rng.randrange(len(ids))]
            digest = f"{rng.getrandbits(256):064x}"
            with conn.pipeline():
                conn.execute("BEGIN")
                conn.execute(
                    "WITH moved AS (UPDATE raw_workflows SET version = version + 1, "
                    "updated_at = %s, last_hash = %s, data = %s WHERE workflow_id = %s "
                    "RETURNING version) INSERT INTO raw_events (workflow_id, seq, trigger, source, "
                    "dest, actor_id, actor_role, at, payload, prev_hash, hash, idempotency_key) "
                    "SELECT %s, version, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM moved",
                    (NOW, digest, data, wid, wid, "comment", "submitted", "submitted", "M-1",
                     "manager", NOW, '{"text": "looked at section 2"}', digest, digest, None),
                )  # fmt: skip
                conn.execute("COMMIT")
            done += 1
        out.put((done, 0, seconds))


def run_writers(target: Callable[..., None], dsn: str, n: int, procs: int, secs: float) -> float:
    """Commands per second of ``procs`` processes, each owning every procs-th workflow."""
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    ids = [f"W{i}" for i in range(n)]
    workers = [
        ctx.Process(target=target, args=(dsn, ids[k::procs], secs, go, out)) for k in range(procs)
    ]
    for w in workers:
        w.start()
    time.sleep(1.5)  # let every process connect before the window opens
    go.set()
    results = [out.get(timeout=secs + 120) for _ in workers]
    for w in workers:
        w.join()
    return sum(r[0] for r in results) / secs


# --- tick -------------------------------------------------------------------------------------


def ticker(dsn: str, now: datetime, go: Any, out: Any) -> None:
    with PostgresStore(dsn, max_size=1) as store:
        engine = Engine(store, [review_spec()], clock=ManualClock(now))
        go.wait()
        start = time.perf_counter()
        fired = [s.event.payload["deadline_id"] for s in engine.tick(now)]
        out.put((fired, time.perf_counter() - start))


def run_tick(base: str, n: int, procs: int) -> tuple[float, int]:
    dsn = fresh_schema(base, f"bench_tick_{procs}")
    populate(dsn, n)
    with PostgresStore(dsn) as store:
        due = store.open_deadlines()[0].due_at
    now = due + timedelta(hours=1)  # every review due, no senior review yet
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=ticker, args=(dsn, now, go, out)) for _ in range(procs)]
    for w in workers:
        w.start()
    time.sleep(1.5)
    wall = time.perf_counter()
    go.set()
    results = [out.get(timeout=3600) for _ in workers]
    wall = time.perf_counter() - wall
    for w in workers:
        w.join()
    fired = [d for r in results for d in r[0]]
    with PostgresStore(dsn) as store:
        breaches = (
            sum(1 for w in store.workflow_ids() for e in store.events(w) if e.actor == SYSTEM)
            if n <= 20_000
            else len(fired)
        )
        left = len(store.due_deadlines(now))
    assert len(fired) == len(set(fired)) == n == breaches and left == 0, "a breach fired twice"
    return wall, len(fired)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="an existing server (default: start one, fsync on)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--deadlines", type=int, help="due deadlines for the tick figure")
    args = parser.parse_args()
    secs = 4.0 if args.quick else 10.0
    deadlines = args.deadlines or (5_000 if args.quick else 20_000)
    server = None
    base = args.dsn
    if base is None:
        from pg_support import PgServer, find_pg_bin

        bindir = find_pg_bin()
        if bindir is None:
            sys.exit("no PostgreSQL binaries (initdb, pg_ctl): install Debian's postgresql")
        server = PgServer(bindir)
        server.start(durable=True)
        base = server.dsn
    try:
        with psycopg.connect(base) as conn:
            settings = {
                k: conn.execute(f"SHOW {k}").fetchone()[0]  # type: ignore[index]
                for k in ("server_version", "fsync", "synchronous_commit", "wal_sync_method")
            }
        print("server:", ", ".join(f"{k}={v}" for k, v in settings.items()))
        dsn = fresh_schema(base, "bench_cmds")
        populate(dsn, 10_000)
        make_raw_tables(dsn)
        print(f"\n1-2. durable commands/s on random workflows of 10,000 ({secs:.0f} s windows)")
        print(f"{'writers':>8} {'qaflow mix':>11} {'raw plain':>10} {'ratio':>6} "
              f"{'raw pipelined':>14} {'ratio':>6}")  # fmt: skip
        curve: dict[int, tuple[float, float, float]] = {}
        for procs in (1, 2, 4):
            ours, raws, piped = [], [], []
            for _ in range(2 if args.quick else 3):  # alternate, keep the medians
                ours.append(run_writers(qaflow_writer, dsn, 10_000, procs, secs))
                raws.append(run_writers(raw_writer, dsn, 10_000, procs, secs))
                piped.append(run_writers(raw_pipelined_writer, dsn, 10_000, procs, secs))
            curve[procs] = (
                statistics.median(ours), statistics.median(raws), statistics.median(piped)
            )  # fmt: skip
            q, r, p = curve[procs]
            print(f"{procs:>8} {q:>11,.0f} {r:>10,.0f} {q / r:>5.2f}x {p:>14,.0f} {q / p:>5.2f}x")
        one = curve[1][0]
        print("scaling (qaflow, vs 1 writer): " + ", ".join(
            f"{p}: {curve[p][0] / one:.2f}x" for p in (1, 2, 4)
        ))  # fmt: skip
        print(f"\n3. tick on {deadlines:,} due deadlines (each must fire exactly once)")
        one_wall, _ = run_tick(base, deadlines, 1)
        four_wall, _ = run_tick(base, deadlines, 4)
        print(f"1 process : {one_wall:6.1f} s, {one_wall / deadlines * 1e6:7.0f} us/deadline")
        print(f"4 processes: {four_wall:6.1f} s, {four_wall / deadlines * 1e6:7.0f} us/deadline")
        print(f"speed-up of 4 vs 1: {one_wall / four_wall:.2f}x; each fired once (checked)")
        for name, k in (("plain", 1), ("pipelined", 2)):
            ratio = curve[1][0] / curve[1][k]
            verdict = "met" if ratio >= 0.5 else "NOT met"
            print(f"summary: durable mix vs raw psycopg {name}, 1 writer: {ratio:.2f}x "
                  f"(target >= 0.5x: {verdict})")  # fmt: skip
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
