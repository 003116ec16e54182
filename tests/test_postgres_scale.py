"""Four processes fire commands at 1,000 workflows on one PostgreSQL server and tick at the
same time: no lost update, every deadline breached exactly once, verify passes, and the
counts add up (principles 3 and 5, I7, I12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import qaflow
from qaflow import SYSTEM, Actor, Engine, ManualClock, PostgresStore
from review_machine import review_spec

ROOT = Path(__file__).resolve().parent.parent
# The child processes import the qaflow this process imported (the source tree, or in CI's
# compiled leg the installed compiled wheel).
QAFLOW_HOME = str(Path(qaflow.__file__).resolve().parent.parent)
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([QAFLOW_HOME, str(ROOT / "examples")])}
T0 = datetime(2025, 6, 2, 9, tzinfo=UTC)
WORKFLOWS = 1000
ROUNDS = 150

NODE = textwrap.dedent("""
    import json, random, sys
    from datetime import UTC, datetime, timedelta
    from review_machine import review_spec
    from qaflow import Actor, ConcurrencyError, Engine, ManualClock, PostgresStore, QAFlowError
    dsn, seed, workflows, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(seed)
    t0 = datetime(2025, 6, 2, 9, tzinfo=UTC)
    clock = ManualClock(t0)
    engine = Engine(PostgresStore(dsn, max_size=2), [review_spec()], clock=clock)
    worker, manager = Actor("P-1", "worker"), Actor("M-1", "manager")
    commands = [
        ("comment", manager, {"text": "t"}), ("comment", worker, {"text": "t"}),
        ("comment", manager, {"text": "t"}), ("send_back", manager, {"reason": "r"}),
        ("submit", worker, {"document_ref": "D2"}), ("approve", manager, {"score": 7}),
    ]
    acked, breached, outcome = [], [], {"conflict": 0, "refused": 0}
    for j in range(rounds):
        now = t0 + timedelta(days=30) * (j + 1) / rounds
        wid = f"W{rng.randrange(workflows)}"
        trigger, actor, payload = rng.choice(commands)
        clock.set(now)
        try:
            step = engine.fire(wid, trigger, actor, payload, at=now)
            acked.append([wid, step.event.seq, step.event.hash])
        except ConcurrencyError:
            outcome["conflict"] += 1
        except QAFlowError:
            outcome["refused"] += 1
        if j % 10 == 0:
            for step in engine.tick(now):
                breached.append(step.event.payload["deadline_id"])
    print(json.dumps({"acked": acked, "breached": breached, **outcome}))
""")


@pytest.mark.slow
def test_four_nodes_fire_and_tick_on_one_server(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn)
    clock = ManualClock(T0 + timedelta(days=30))
    engine = Engine(store, [review_spec()], clock=clock)
    worker = Actor("P-1", "worker")
    with engine.batch():  # 1,000 workflows in one transaction
        for n in range(WORKFLOWS):
            at = T0 + timedelta(minutes=37 * n)  # their deadlines fall due over three weeks
            engine.start("example.review", f"W{n}", "submit", worker, {"document_ref": "D"}, at=at)
    assert store.counts()["workflows"] == WORKFLOWS
    nodes = [
        subprocess.Popen(
            [sys.executable, "-c", NODE, pg_dsn, str(seed), str(WORKFLOWS), str(ROUNDS)],
            stdout=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for seed in range(4)
    ]
    reports = [json.loads(node.communicate(timeout=600)[0]) for node in nodes]
    assert all(node.returncode == 0 for node in nodes)
    end = T0 + timedelta(days=40)
    clock.set(end)
    final = [s.event.payload["deadline_id"] for s in engine.tick(end)]

    # No lost update: every acknowledged command is stored exactly as acknowledged.
    events = {(e.workflow_id, e.seq): e for w in store.workflow_ids() for e in store.events(w)}
    acked = [tuple(a) for r in reports for a in r["acked"]]
    assert acked and all(events[(w, seq)].hash == h for w, seq, h in acked)
    # Every deadline breached exactly once, by exactly one ticker.
    fired = [d for r in reports for d in r["breached"]] + final
    assert len(fired) == len(set(fired)), "a breach fired twice"
    by_system = [e for e in events.values() if e.actor == SYSTEM]
    assert sorted(e.payload["deadline_id"] for e in by_system) == sorted(fired)
    assert store.due_deadlines(end) == []
    counts = store.counts()
    statuses = Counter(row[11] for row in store.dump()["deadlines"])
    assert statuses["breached"] == len(fired)
    # The counts add up: starts + acknowledged commands + breaches = events.
    assert counts["events"] == WORKFLOWS + len(acked) + len(fired)
    tried = sum(len(r["acked"]) + r["conflict"] + r["refused"] for r in reports)
    assert tried == 4 * ROUNDS
    assert engine.verify() == WORKFLOWS
    store.close()


CLAIMER = textwrap.dedent("""
    import sys
    from datetime import datetime
    from qaflow import PostgresStore
    store = PostgresStore(sys.argv[1], max_size=1)
    def hold(deadline):
        print("claimed", deadline.id, store._local.conn.info.backend_pid, flush=True)
        sys.stdin.readline()  # blocks, holding the claim, until killed
    store.fire_due(datetime.fromisoformat(sys.argv[2]), hold, limit=3)
""")


@pytest.mark.slow
def test_a_ticker_killed_mid_claim_releases_it_and_nothing_fires_twice(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn)
    engine = Engine(store, [review_spec()], clock=ManualClock(T0))
    worker = Actor("P-1", "worker")
    with engine.batch():
        for n in range(8):
            engine.start("example.review", f"W{n}", "submit", worker, {"document_ref": "D"})
    now = store.open_deadlines()[0].due_at + timedelta(hours=1)
    engine.clock = ManualClock(now)
    claimer = subprocess.Popen(
        [sys.executable, "-c", CLAIMER, pg_dsn, now.isoformat()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert claimer.stdout is not None
    _, held, backend = claimer.stdout.readline().split()  # its claim holds three rows
    first = {s.event.payload["deadline_id"] for s in engine.tick(now)}
    assert held not in first and len(first) == 5, "a claimed deadline was fired by another ticker"
    claimer.kill()
    claimer.wait()
    # The server ends the dead client's transaction when it sees the socket close: wait for
    # that (bounded), as a node's tick would simply find the rows free on its next round.
    for _ in range(400):
        with store.pool.connection() as conn:
            alive = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (int(backend),)
            ).fetchone()
        if alive == (0,):
            break
        time.sleep(0.05)
    second = {s.event.payload["deadline_id"] for s in engine.tick(now)}
    assert held in second and len(second) == 3 and not first & second
    assert store.due_deadlines(now) == [] and engine.verify() == 8
    store.close()
