"""Engine benchmarks: every figure is a ratio against a baseline measured in the same run.

    python benchmarks/engine.py           # full run (1,000,000 workflows for tick), ~2-3 min
    python benchmarks/engine.py --quick   # smaller sizes and fewer repetitions, ~30-40 s

Machines are shared and noisy, so absolute times vary from run to run; the ratios are what
to compare. Each figure runs the subject and its baseline in alternating batches, several
times over; the times shown are medians of the batches and the ratio is the median of the
per-batch ratios (subject and baseline of one pair ran back to back). Not part of the test
suite; nothing here asserts a target, it only reports whether each one was met.

Figures (see benchmarks/README.md for how to read them):
1. in-memory transition cost: Engine + MemoryStore vs a bare ``transitions.Machine``;
2. durable commands per second: Engine + SQLiteStore vs raw sqlite3 INSERT + UPDATE;
3. ``tick()`` with 1,000,000 open workflows and nothing due vs a raw indexed SELECT;
4. ``WorkingCalendar.add_working_days`` vs ``numpy.busday_offset`` and a naive loop;
5. replay speed vs ``json.loads`` of the same payloads.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from functools import partial
from pathlib import Path
from typing import Any, Literal

import holidays
import numpy as np

from _common import Paired, Row, build, header, line, ms, paired, rate, summary, us
from qaflow import (
    Actor,
    Deadline,
    Engine,
    Event,
    MachineSpec,
    ManualClock,
    MemoryStore,
    Notification,
    SQLiteStore,
    Step,
    Task,
    WorkflowSnapshot,
    WorkingCalendar,
    default_calendar,
)
from qaflow.calendar import LONDON
from qaflow.records import canonical_json, converter, event_hash
from qaflow.store._rows import DEADLINE_COLS, NOTE_COLS, SNAP_COLS, TASK_COLS
from review_machine import review_spec

Sync = Literal["FULL", "NORMAL"]

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday
WORKER = Actor("P-001", "worker")
MANAGER = Actor("M-001", "manager")

# The "realistic mix": a review that is discussed, sent back and resubmitted, for ever.
# send_back closes the 5 WD deadline and opens a 2 WD task; submit reopens the deadline and
# writes an outbox row; the comments are internal transitions (no state change).
MIX: tuple[tuple[str, Actor, dict[str, Any]], ...] = (
    ("comment", WORKER, {"text": "uploaded the signed copy"}),
    ("comment", MANAGER, {"text": "reading it now"}),
    ("send_back", MANAGER, {"reason": "section 3 is missing"}),
    ("submit", WORKER, {"document_ref": "DOC-7"}),
)
COMMENT: dict[str, Any] = {"text": "looks fine so far"}


@dataclass(frozen=True)
class Config:
    quick: bool
    reps: int  # alternating subject/baseline batch pairs
    mem_batch: int  # in-memory commands per batch
    full_batch: int  # durable commands per batch at synchronous=FULL
    normal_batch: int  # durable commands per batch at synchronous=NORMAL
    workflows: int  # open workflows for the tick figure
    ticks: int  # tick calls measured
    cal_inputs: int  # add_working_days calls per batch
    replay_events: int  # events in the replayed workflow
    replay_reps: int
    population: int  # workflows the random commands of figures 1 and 2 are drawn from
    verify_sizes: tuple[int, int]  # databases of figure 6 (the second is 10x the first)

    @classmethod
    def make(cls, quick: bool) -> Config:
        if quick:
            return cls(
                True, 3, 1_000, 30, 300, 50_000, 21, 5_000, 3_000, 3, 10_000, (1_000, 10_000)
            )
        return cls(
            False, 9, 5_000, 150, 1_500, 1_000_000, 21, 20_000, 20_000, 5, 10_000, (10_000, 100_000)
        )


class Model:
    """A bare model for a ``transitions.Machine`` (it adds ``trigger`` and ``state``)."""

    state: str
    trigger: Callable[..., bool]


def wid_of(i: int) -> str:
    return f"W-{i:05d}"


class Workload:
    """The realistic mix fired at random workflows out of ``n``, the same for every side.

    Each workflow cycles through ``MIX`` (comment, comment, send_back, submit) from its own
    position, so every command is legal; the workflow of each command is drawn uniformly
    from the ``n`` started ones with a fixed seed. ``batch(k)`` returns the next ``k``
    commands as (workflow index, mix position) pairs.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.rng = random.Random(seed)
        self.pos = initial_positions(n)

    def batch(self, k: int) -> list[tuple[int, int]]:
        out = []
        pos, randrange, n = self.pos, self.rng.randrange, self.n
        for _ in range(k):
            i = randrange(n)
            out.append((i, pos[i] % len(MIX)))
            pos[i] += 1
        return out


def initial_positions(n: int) -> list[int]:
    """Where each workflow starts in ``MIX`` (seeded): the commands fired are spread evenly
    over the mix from the first batch, not mostly comments until every workflow has moved."""
    rng = random.Random(99)
    return [rng.randrange(len(MIX)) for _ in range(n)]


def start_population(engine: Engine, n: int, *, advance: bool = True) -> None:
    """Start ``n`` review workflows (each open deadline 5 WD after T0; nothing is due), and
    with ``advance`` fire each one's commands of ``MIX`` before its initial position."""
    spec = engine.spec("example.review")
    start, fire = engine.start, engine.fire
    positions = initial_positions(n) if advance else [0] * n
    for i, p in enumerate(positions):
        wid = wid_of(i)
        start(spec, wid, "submit", WORKER, {"document_ref": f"DOC-{i}"}, at=T0)
        for trig, actor, payload in MIX[:p]:
            fire(wid, trig, actor, payload, at=T0)


# --- 1. in-memory transition cost -------------------------------------------------------


def bench_memory(cfg: Config, rows: list[Row]) -> None:
    n = cfg.population
    header(
        f"1. in-memory transition cost on random workflows out of {n:,}: "
        "Engine + MemoryStore vs bare transitions.Machine with one reused model per workflow"
    )
    spec = review_spec()
    engine = Engine(MemoryStore(), [spec], clock=ManualClock(T0))
    start_population(engine, n)
    machine = spec.to_transitions()
    models = []
    for p in initial_positions(n):
        model = Model()
        machine.add_model(model)
        model.trigger("submit", document_ref="DOC-7")
        for trig, _actor, payload in MIX[:p]:
            model.trigger(trig, **payload)
        models.append(model)
    k = cfg.mem_batch
    fire = engine.fire
    rng = random.Random(3)
    comment_ids = [rng.randrange(n) for _ in range(k)]
    ids = [wid_of(i) for i in comment_ids]

    def engine_comment() -> float:
        t = time.perf_counter()
        for wid in ids:
            fire(wid, "comment", WORKER, COMMENT)
        return (time.perf_counter() - t) / k

    def bare_comment() -> float:
        t = time.perf_counter()
        for i in comment_ids:
            models[i].trigger("comment", **COMMENT)
        return (time.perf_counter() - t) / k

    # Engine and transitions each walk their own Workload with the same seed: the same
    # commands on the same workflows in the same order.
    ours, theirs = Workload(n, 11), Workload(n, 11)

    def engine_mix() -> float:
        cmds = [(wid_of(i), *MIX[p]) for i, p in ours.batch(k)]
        t = time.perf_counter()
        for wid, trig, actor, payload in cmds:
            fire(wid, trig, actor, payload)
        return (time.perf_counter() - t) / k

    def bare_mix() -> float:
        cmds = [(models[i].trigger, MIX[p][0], MIX[p][2]) for i, p in theirs.batch(k)]
        t = time.perf_counter()
        for trigger, trig, payload in cmds:
            trigger(trig, **payload)
        return (time.perf_counter() - t) / k

    gc.collect()  # both sides run with the collector on (its default)
    internal = paired(engine_comment, bare_comment, cfg.reps)
    realistic = paired(engine_mix, bare_mix, cfg.reps)
    assert [m.state for m in models] == [engine.get(wid_of(i)).state for i in range(n)]
    line("engine, internal trigger (comment)", us(internal.subject) + "/cmd")
    line("transitions.Machine, same trigger", us(internal.baseline) + "/cmd")
    line("  ratio", f"{internal.ratio:.2f}x", "(target ≤ 3x)")
    line("engine, realistic mix", us(realistic.subject) + "/cmd", _mix_note())
    line("transitions.Machine, same mix", us(realistic.baseline) + "/cmd")
    line("  ratio", f"{realistic.ratio:.2f}x", "(target ≤ 3x)")
    for label, r in (("internal trigger", internal), ("realistic mix", realistic)):
        rows.append(
            Row(
                f"1 in-memory {label}, {n:,} wf",
                us(r.subject),
                f"{r.ratio:.2f}x transitions",
                "≤ 3x",
                r.ratio <= 3,
            )
        )


def _mix_note() -> str:
    return "(" + ", ".join(t for t, _a, _p in MIX) + ")"


# --- 2. durable commands per second -----------------------------------------------------


class RawWriter:
    """The floor: the rows the engine writes for the same commands, with plain sqlite3.

    Same file layout (a copy of the engine's populated database, so same schema, indexes
    and rows), same pragmas, one ``BEGIN IMMEDIATE`` … ``COMMIT`` per command: it reads the
    workflow row (as any writer must, to know the version), inserts the event, updates the
    snapshot row under the version check and writes the same deadline, outbox and task
    rows the engine writes for that trigger. Every value is a string prepared in advance,
    of the size the engine writes (taken from real steps): nothing is encoded per command.
    """

    def __init__(self, path: Path, sync: Sync, samples: dict[str, Step]) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={sync}")
        self.at = T0.isoformat(timespec="microseconds")
        self.hash = samples["comment"].event.hash
        self.values = {}
        for trig, step in samples.items():
            snap = step.snapshot
            self.values[trig] = (
                canonical_json(step.event.payload),  # as the stores write it
                json.dumps(snap.data, sort_keys=True),
                json.dumps(converter.unstructure(list(snap.deadlines))),
                snap.state,
            )
        self.notify = json.dumps(["manager"])

    def run(self, commands: Sequence[tuple[int, int]]) -> float:
        execute, at, h = self.conn.execute, self.at, self.hash
        values, notify = self.values, self.notify
        t = time.perf_counter()
        for i, p in commands:
            wid = wid_of(i)
            trig, actor, _payload = MIX[p]
            payload, data, deadlines, state = values[trig]
            execute("BEGIN IMMEDIATE")
            row = execute(
                "SELECT state, version, data, deadlines FROM workflows WHERE workflow_id = ?",
                (wid,),
            ).fetchone()
            v = row[1]
            seq = v + 1
            execute(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (wid, seq, trig, row[0], state, actor.id, actor.role, at, payload, h, h),
            )
            execute(
                "UPDATE workflows SET state = ?, version = ?, updated_at = ?, last_hash = ?, "
                "data = ?, deadlines = ? WHERE workflow_id = ? AND version = ?",
                (state, seq, at, h, data, deadlines, wid, v),
            )
            if trig == "send_back":
                execute(
                    "UPDATE deadlines SET status = 'closed', closed_at = ?, closed_seq = ? "
                    "WHERE workflow_id = ? AND status = 'open'",
                    (at, seq, wid),
                )
                execute(
                    "INSERT INTO tasks VALUES (?, ?, ?, 'revise document', 'worker', ?, ?, "
                    "'EX-04', ?, NULL)",
                    (f"{wid}:{seq}:t1", wid, seq, actor.id, at, at),
                )
            elif trig == "submit":
                execute(
                    "INSERT INTO deadlines VALUES (?, ?, 'review', 'submitted', ?, ?, '5 WD', "
                    "'escalate', 'EX-01', ?, ?, 'open', NULL, NULL)",
                    (f"{wid}:{seq}:review", wid, at, at, notify, seq),
                )
                execute(
                    "INSERT INTO notifications VALUES (?, ?, ?, 'manager', NULL, "
                    "'document to review', 'EX-01', ?, NULL)",
                    (f"{wid}:{seq}:n1", wid, seq, at),
                )
            execute("COMMIT")
        return (time.perf_counter() - t) / len(commands)

    def close(self) -> None:
        self.conn.close()


def _mix_samples(spec: MachineSpec) -> dict[str, Step]:
    """One real step per trigger of the mix, for the raw writer's value sizes."""
    engine = Engine(MemoryStore(), [spec], clock=ManualClock(T0))
    engine.start(spec, "W-00000", "submit", WORKER, {"document_ref": "DOC-0"})
    return {trig: engine.fire("W-00000", trig, actor, payload) for trig, actor, payload in MIX}


def bench_durable(cfg: Config, rows: list[Row], tmp: Path) -> None:
    n = cfg.population
    header(
        f"2. durable commands/s, realistic mix on random workflows out of {n:,}: "
        "Engine + SQLiteStore vs raw sqlite3 writing the same rows (WAL, same sync)"
    )
    spec = review_spec()
    seed_db = tmp / "durable-seed.db"
    with SQLiteStore(seed_db, synchronous="NORMAL") as store:
        store.conn.execute("PRAGMA synchronous=OFF")  # setup only
        start_population(Engine(store, [spec], clock=ManualClock(T0)), n)
    samples = _mix_samples(spec)
    syncs: tuple[Sync, ...] = ("FULL", "NORMAL")
    for sync in syncs:
        k = cfg.full_batch if sync == "FULL" else cfg.normal_batch
        ours, theirs = tmp / f"engine-{sync}.db", tmp / f"raw-{sync}.db"
        shutil.copyfile(seed_db, ours)
        shutil.copyfile(seed_db, theirs)
        load_ours, load_theirs = Workload(n, 5), Workload(n, 5)

        def engine_run(store: SQLiteStore, k: int = k, load: Workload = load_ours) -> float:
            engine = Engine(store, [spec], clock=ManualClock(T0))
            fire = engine.fire
            cmds = [(wid_of(i), *MIX[p]) for i, p in load.batch(k)]
            t = time.perf_counter()
            for wid, trig, actor, payload in cmds:
                fire(wid, trig, actor, payload)
            return (time.perf_counter() - t) / k

        def raw_run(raw: RawWriter, k: int = k, load: Workload = load_theirs) -> float:
            return raw.run(load.batch(k))

        def cold(sync: Sync = sync, ours: Path = ours, theirs: Path = theirs) -> Paired:
            """A fresh connection (and store) per batch: SQLite's page cache starts empty."""

            def subject() -> float:
                with SQLiteStore(ours, synchronous=sync) as store:
                    return engine_run(store)

            def baseline() -> float:
                raw = RawWriter(theirs, sync, samples)
                try:
                    return raw_run(raw)
                finally:
                    raw.close()

            return paired(subject, baseline, cfg.reps)

        cold_result = cold()
        store = SQLiteStore(ours, synchronous=sync)
        raw = RawWriter(theirs, sync, samples)
        engine_run(store)  # warm both page caches and statement caches
        raw_run(raw)
        warm = paired(partial(engine_run, store), partial(raw_run, raw), cfg.reps)
        store.close()
        raw.close()
        _check_same_rows(ours, theirs)
        for label, result in (("warm", warm), ("cold", cold_result)):
            ratio = 1 / result.ratio  # rate ratio = baseline time / subject time
            line(f"engine, realistic mix, synchronous={sync}, {label}", rate(result.subject))
            line(f"raw sqlite3, same rows, synchronous={sync}, {label}", rate(result.baseline))
            line("  ratio", f"{ratio:.2f}x", "(target ≥ 0.5x)")
            rows.append(
                Row(
                    f"2 durable mix, sync={sync}, {label}",
                    rate(result.subject),
                    f"{ratio:.2f}x raw sqlite3",
                    "≥ 0.5x",
                    ratio >= 0.5,
                )
            )


def _check_same_rows(ours: Path, theirs: Path) -> None:
    """Both sides wrote the same number of rows of each kind (the baseline is the same work)."""
    counts = []
    for path in (ours, theirs):
        conn = sqlite3.connect(path)
        counts.append(
            [conn.execute(f"SELECT count(*) FROM [{t}]").fetchone()[0] for t in TABLES]
            + [conn.execute("SELECT count(*) FROM deadlines WHERE status='open'").fetchone()[0]]
        )
        conn.close()
    assert counts[0] == counts[1], counts


# --- 3. tick with many open workflows ---------------------------------------------------


def _clone(template: Step, wid: str) -> Step:
    """``template`` (a first step computed by the engine) for workflow ``wid``.

    Ids are rewritten and the event hash recomputed, so the clone is exactly the step
    ``engine.start`` would have computed for ``wid`` (the tick benchmark checks that one
    clone passes ``Engine.verify``).
    """
    old = len(template.event.workflow_id)
    opened = tuple(
        Deadline(
            id=wid + d.id[old:],
            workflow_id=wid,
            name=d.name,
            state=d.state,
            opened_at=d.opened_at,
            due_at=d.due_at,
            rule=d.rule,
            breach_trigger=d.breach_trigger,
            clause=d.clause,
            notify=d.notify,
            opened_seq=d.opened_seq,
        )
        for d in template.opened
    )
    notes = tuple(
        Notification(
            id=wid + x.id[old:],
            workflow_id=wid,
            seq=x.seq,
            recipient_role=x.recipient_role,
            recipient_id=x.recipient_id,
            reason=x.reason,
            clause=x.clause,
            created_at=x.created_at,
        )
        for x in template.notifications
    )
    tasks = tuple(
        Task(
            id=wid + t.id[old:],
            workflow_id=wid,
            seq=t.seq,
            kind=t.kind,
            owner_role=t.owner_role,
            owner_id=t.owner_id,
            due_at=t.due_at,
            clause=t.clause,
            created_at=t.created_at,
        )
        for t in template.tasks
    )
    e = template.event
    fields = (wid, e.seq, e.trigger, e.source, e.dest, e.actor, e.at, dict(e.payload), e.prev_hash)
    digest = event_hash(Event(*fields, "", e.idempotency_key))
    event = Event(*fields, digest, e.idempotency_key)
    s = template.snapshot
    snapshot = WorkflowSnapshot(
        workflow_id=wid,
        machine=s.machine,
        policy=s.policy,
        policy_version=s.policy_version,
        state=s.state,
        data=dict(s.data),
        version=s.version,
        created_at=s.created_at,
        updated_at=s.updated_at,
        last_hash=digest,
        deadlines=opened,
    )
    return Step(event=event, snapshot=snapshot, opened=opened, notifications=notes, tasks=tasks)


TABLES = ("workflows", "events", "deadlines", "notifications", "tasks")


def _template_rows(
    store: SQLiteStore, template: Step
) -> dict[str, list[tuple[tuple[Any, ...], list[int]]]]:
    """The rows SQLiteStore.commit wrote for ``template``, with the columns naming it."""
    wid, digest = template.event.workflow_id, template.event.hash
    out: dict[str, list[tuple[tuple[Any, ...], list[int]]]] = {}
    for table in TABLES:
        found = store.conn.execute(
            f"SELECT * FROM [{table}] WHERE workflow_id = ?", (wid,)
        ).fetchall()
        out[table] = [
            (
                row,
                [i for i, v in enumerate(row) if isinstance(v, str) and (wid in v or digest in v)],
            )
            for row in found
        ]
    return out


def _bulk_rows(
    table: str,
    steps: Sequence[Step],
    templates: Sequence[Step],
    rows: Sequence[dict[str, list[tuple[tuple[Any, ...], list[int]]]]],
) -> Iterator[tuple[Any, ...]]:
    k = len(templates)
    for i, step in enumerate(steps):
        t = templates[i % k]
        twid, thash = t.event.workflow_id, t.event.hash
        wid, digest = step.event.workflow_id, step.event.hash
        for row, cols in rows[i % k][table]:
            new = list(row)
            for c in cols:
                new[c] = new[c].replace(twid, wid).replace(thash, digest)
            yield tuple(new)


def bench_tick(cfg: Config, rows: list[Row], tmp: Path) -> None:
    """How long ``tick`` takes when a million workflows are open and nothing is due.

    Starting a million workflows through ``engine.start`` would take minutes, so: 240
    template workflows are started through the engine on both stores (start times spread
    over the 4 days before ``now``); every other workflow is a template's first step with
    its ids rewritten and its event hash recomputed (``_clone``). MemoryStore gets those
    steps through ``MemoryStore.commit``; SQLiteStore gets the template's rows exactly as
    ``SQLiteStore.commit`` wrote them, with ids and hashes substituted, bulk-inserted in one
    transaction (synchronous=OFF, journal in memory, secondary indexes rebuilt after the
    load with their own SQL), then put back to WAL + synchronous=FULL. Checks: row counts,
    ``Engine.verify`` on the last clone (hash chain, replay, deadline rows) and an empty
    first tick.
    """
    n = cfg.workflows
    header(f"3. tick() with {n:,} open workflows and nothing due")
    spec = review_spec()
    now = T0
    # Templates: real engine.start calls on both stores, started over the 4 days before
    # `now`, so every 5 WD review deadline falls after `now` (nothing is due).
    k = 240
    starts = [now - timedelta(days=4) + timedelta(minutes=24 * j) for j in range(k)]
    mem = MemoryStore()
    mem_engine = Engine(mem, [spec], clock=ManualClock(now))
    sql = SQLiteStore(tmp / "tick.db", synchronous="FULL")
    sql_engine = Engine(sql, [spec], clock=ManualClock(now))
    templates: list[Step] = []
    for j, at in enumerate(starts):
        wid, payload = f"tpl-{j:03d}", {"document_ref": f"DOC-{j}"}
        step = mem_engine.start(spec, wid, "submit", WORKER, payload, at=at)
        assert sql_engine.start(spec, wid, "submit", WORKER, payload, at=at) == step
        assert step.snapshot.deadlines == step.opened  # what _clone relies on
        templates.append(step)
    template_rows = [_template_rows(sql, t) for t in templates]

    t0 = time.perf_counter()
    gc.disable()  # setup allocates millions of long-lived objects
    try:
        steps = [_clone(templates[i % k], f"W-{i:07d}") for i in range(n - k)]
    finally:
        gc.enable()
    line("setup: clone engine-computed steps", f"{time.perf_counter() - t0:,.1f} s")
    mem_tick, peek = _memory_tick(mem_engine, mem, steps, now, cfg)
    del mem_engine, mem  # drop the big in-memory store before the SQLite timings
    gc.collect()

    t0 = time.perf_counter()
    conn = sql.conn
    # Bulk-load tricks, setup only: no fsync, no WAL, a big page cache, and the store's
    # secondary indexes dropped during the load and rebuilt (same SQL) afterwards.
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA journal_mode=MEMORY")
    conn.execute("PRAGMA cache_size=-524288")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    ).fetchall()
    conn.execute("BEGIN IMMEDIATE")
    gc.disable()
    try:
        for name, _sql in indexes:
            conn.execute(f"DROP INDEX [{name}]")
        for table in TABLES:
            marks = ", ".join("?" * len(_columns(conn, table)))
            conn.executemany(
                f"INSERT INTO [{table}] VALUES ({marks})",
                _bulk_rows(table, steps, templates, template_rows),
            )
        for _name, create in indexes:
            conn.execute(create)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        gc.enable()
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA cache_size=-2000")
    t_sql = time.perf_counter() - t0
    size = (tmp / "tick.db").stat().st_size / 1e6
    line("setup: bulk INSERT of the same rows (sync OFF)", f"{t_sql:,.1f} s", f"{size:,.0f} MB")
    counts = sql.counts()
    assert counts["workflows"] == n and counts["open_deadlines"] == n, counts
    assert sql_engine.verify(steps[-1].event.workflow_id) == 1
    assert sql_engine.tick(now) == []
    del steps
    gc.collect()

    raw = sqlite3.connect(tmp / "tick.db", isolation_level=None)
    stamp = now.isoformat(timespec="microseconds")
    baseline_sql = "SELECT id FROM deadlines WHERE status = 'open' AND due_at <= ? LIMIT 1"

    def raw_select() -> bool:
        return raw.execute(baseline_sql, (stamp,)).fetchone() is not None

    assert not raw_select()
    plan = raw.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM deadlines WHERE status = 'open' AND due_at <= ? "
        "ORDER BY due_at, id",
        (stamp,),
    ).fetchall()
    pairs = [
        (_median_call(lambda: sql_engine.tick(now), cfg.ticks), _median_call(raw_select, cfg.ticks))
        for _ in range(3)
    ]
    sql_tick = statistics.median(p[0] for p in pairs)
    select = statistics.median(p[1] for p in pairs)
    sql_ratio = statistics.median(p[0] / p[1] for p in pairs)
    raw.close()
    sql.close()

    line("MemoryStore: engine.tick(now)", us(mem_tick), f"median of {cfg.ticks}")
    line("  baseline: peek at a bare heap of the same size", us(peek))
    line("  ratio vs the raw SELECT below", f"{mem_tick / select:.2f}x", "(target < 10 ms)")
    line("SQLiteStore: engine.tick(now)", us(sql_tick), f"median of {cfg.ticks} x 3")
    line("raw SELECT id … status='open' AND due_at<=? LIMIT 1", us(select))
    line("  ratio", f"{sql_ratio:.2f}x", "(target < 10 ms)")
    print("  query plan of the store's due-deadline SELECT: " + "; ".join(str(r[-1]) for r in plan))
    for label, value, ratio in (
        ("MemoryStore", mem_tick, mem_tick / select),
        ("SQLiteStore", sql_tick, sql_ratio),
    ):
        rows.append(
            Row(
                f"3 tick, {n:,} open, {label}",
                us(value),
                f"{ratio:.2f}x raw SELECT",
                "< 10 ms",
                value < 0.010,
            )
        )


def _memory_tick(
    engine: Engine, store: MemoryStore, steps: Sequence[Step], now: datetime, cfg: Config
) -> tuple[float, float]:
    """Commit ``steps`` to ``store``; median engine.tick and bare-heap-peek times."""
    t0 = time.perf_counter()
    gc.disable()
    try:
        for step in steps:
            store.commit(step, expected_version=0)
    finally:
        gc.enable()
    line("setup: MemoryStore.commit of the cloned steps", f"{time.perf_counter() - t0:,.1f} s")
    assert engine.tick(now) == []
    assert engine.verify(steps[-1].event.workflow_id) == 1
    heap = store._heap  # the baseline: peek at a bare heap of the same size

    def heap_peek() -> bool:
        return bool(heap) and heap[0][0] <= now

    return _median_call(lambda: engine.tick(now), cfg.ticks), _median_call(heap_peek, cfg.ticks)


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info([{table}])").fetchall()]


def _median_call(fn: Callable[[], object], calls: int) -> float:
    times: list[float] = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# --- 4. working-day arithmetic ----------------------------------------------------------


END_OF_DAY = dtime(23, 59, 59, 999999)


def naive_add_working_days(start: datetime, n: int, off: frozenset[date]) -> datetime:
    """The day-by-day loop the calendar's precomputed index replaces (n >= 1)."""
    day = start.astimezone(LONDON).date()
    count = 0
    while count < n:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in off:
            count += 1
    return datetime.combine(day, END_OF_DAY, LONDON).astimezone(UTC)


def bench_calendar(cfg: Config, rows: list[Row]) -> None:
    header("4. WorkingCalendar.add_working_days per call")
    cal: WorkingCalendar = default_calendar()
    bank = holidays.country_holidays("GB", subdiv="ENG", years=range(1990, 2101))
    off = frozenset(bank.keys())
    busdays = np.busdaycalendar(holidays=np.array(sorted(off), dtype="datetime64[D]"))
    rng = random.Random(13)
    lo = datetime(1995, 1, 1, tzinfo=UTC).timestamp()
    hi = datetime(2095, 1, 1, tzinfo=UTC).timestamp()
    inputs = [
        (datetime.fromtimestamp(rng.uniform(lo, hi), UTC), rng.randint(1, 30))
        for _ in range(cfg.cal_inputs)
    ]
    local = [(np.datetime64(s.astimezone(LONDON).date().isoformat(), "D"), n) for s, n in inputs]
    for (s, n), (d, _) in list(zip(inputs, local, strict=True))[:2000]:
        due = cal.add_working_days(s, n)
        assert due == naive_add_working_days(s, n, off), (s, n)
        oracle = np.busday_offset(d, n, roll="backward", busdaycal=busdays)
        assert due.astimezone(LONDON).date() == oracle.astype(date), (s, n)

    def ours() -> float:
        add = cal.add_working_days
        t = time.perf_counter()
        for s, n in inputs:
            add(s, n)
        return (time.perf_counter() - t) / len(inputs)

    def numpy_scalar() -> float:
        offset = np.busday_offset
        t = time.perf_counter()
        for d, n in local:
            offset(d, n, roll="backward", busdaycal=busdays)
        return (time.perf_counter() - t) / len(local)

    few = inputs[: max(1, len(inputs) // 10)]

    def naive() -> float:
        t = time.perf_counter()
        for s, n in few:
            naive_add_working_days(s, n, off)
        return (time.perf_counter() - t) / len(few)

    ours()  # fill the end-of-day cache, as a long-running process would have
    vs_numpy = paired(ours, numpy_scalar, cfg.reps)
    vs_naive = paired(ours, naive, cfg.reps)
    line("add_working_days (random dates 1995-2095, n 1-30)", us(vs_numpy.subject) + "/call")
    line("numpy.busday_offset on a scalar date", us(vs_numpy.baseline) + "/call")
    line("  ratio", f"{vs_numpy.ratio:.2f}x", "(target ≤ 2 µs/call)")
    line("naive day-by-day Python loop", us(vs_naive.baseline) + "/call")
    line("  ratio", f"{vs_naive.ratio:.3f}x")
    rows.append(
        Row(
            "4 add_working_days",
            us(vs_numpy.subject),
            f"{vs_numpy.ratio:.2f}x numpy, {vs_naive.ratio:.3f}x naive",
            "≤ 2 µs",
            vs_numpy.subject <= 2e-6,
        )
    )


# --- 5. replay and verify ---------------------------------------------------------------


def bench_replay(cfg: Config, rows: list[Row], tmp: Path) -> None:
    n = cfg.replay_events
    header(
        f"5. replay and verify of one workflow with {n:,} events (events/s) vs a raw read "
        "and decode of the same rows"
    )
    spec = review_spec()
    clock = ManualClock(T0)
    mem = MemoryStore()
    engine = Engine(mem, [spec], clock=clock)
    first = engine.start(spec, "R-1", "submit", WORKER, {"document_ref": "DOC-7"})
    steps: list[Step] = []
    while len(steps) < n - 1:
        for trig, actor, payload in MIX:
            clock.advance(minutes=1)
            steps.append(engine.fire("R-1", trig, actor, payload))
    sql = SQLiteStore(tmp / "replay.db")
    sql.conn.execute("PRAGMA synchronous=OFF")  # setup only: commit the same steps
    sql_engine = Engine(sql, [spec], clock=clock)
    sql.commit(first, expected_version=0)
    for step in steps:
        sql.commit(step, expected_version=step.event.seq - 1)
    sql.conn.execute("PRAGMA synchronous=FULL")
    total = len(steps) + 1
    assert engine.replay("R-1") == mem.load("R-1")
    assert sql_engine.replay("R-1") == sql.load("R-1")
    raw = sqlite3.connect(tmp / "replay.db")
    query = (
        "SELECT workflow_id, seq, trigger, source, dest, actor_id, actor_role, at, payload, "
        "prev_hash, hash, idempotency_key FROM events WHERE workflow_id = ? ORDER BY seq"
    )

    def read_decode() -> float:
        """The floor: fetch the same rows and decode what is not text (payload, time)."""
        loads, parse = json.loads, datetime.fromisoformat
        t = time.perf_counter()
        decoded = [
            (r[:7], parse(r[7]), loads(r[8]), r[9:])
            for r in raw.execute(query, ("R-1",)).fetchall()
        ]
        assert len(decoded) == total
        return (time.perf_counter() - t) / total

    derived_sql = (
        f"SELECT {DEADLINE_COLS}, status FROM deadlines WHERE workflow_id = ?",
        f"SELECT {NOTE_COLS} FROM notifications WHERE workflow_id = ?",
        f"SELECT {TASK_COLS} FROM tasks WHERE workflow_id = ?",
        f"SELECT {SNAP_COLS} FROM workflows WHERE workflow_id = ?",
    )
    derived_count = sum(len(raw.execute(q, ("R-1",)).fetchall()) for q in derived_sql)

    def read_decode_all() -> float:
        """The floor for verify: every row it reads (the events, and the workflow's deadline,
        notification, task and snapshot rows), each decoded where it is not text: times
        parsed, JSON loaded."""
        loads, parse = json.loads, datetime.fromisoformat
        t = time.perf_counter()
        decoded: list[object] = [
            (r[:7], parse(r[7]), loads(r[8]), r[9:])
            for r in raw.execute(query, ("R-1",)).fetchall()
        ]
        dls, notes, tasks, snaps = (raw.execute(q, ("R-1",)).fetchall() for q in derived_sql)
        decoded += [(r[:4], parse(r[4]), parse(r[5]), r[6:]) for r in dls]
        decoded += [(r[:7], parse(r[7])) for r in notes]
        decoded += [(r[:6], r[6] and parse(r[6]), r[7], parse(r[8])) for r in tasks]
        decoded += [
            (r[:6], parse(r[6]), r[7] and parse(r[7]), r[8], loads(r[9]), loads(r[10]), r[11])
            for r in snaps
        ]
        assert len(decoded) == total + derived_count
        return (time.perf_counter() - t) / total

    def timed(fn: Callable[[], object]) -> Callable[[], float]:
        def run() -> float:
            t = time.perf_counter()
            fn()
            return (time.perf_counter() - t) / total

        return run

    line(
        "rows verify reads besides the events",
        f"{derived_count:,} (deadline, notification, task and snapshot rows)",
    )
    for label, eng, target, floor, floor_label in (
        ("Engine.replay, SQLiteStore", sql_engine.replay, 0.4, read_decode, "same rows"),
        ("Engine.verify, SQLiteStore", sql_engine.verify, None, read_decode, "events only"),
        (
            "Engine.verify, SQLiteStore",
            sql_engine.verify,
            0.4,
            read_decode_all,
            "all it reads, per event",
        ),
        ("Engine.replay, MemoryStore", engine.replay, None, read_decode, "same rows"),
    ):
        result = paired(timed(lambda eng=eng: eng("R-1")), floor, cfg.replay_reps)
        ratio = 1 / result.ratio
        line(label, rate(result.subject, "events"))
        line(
            f"raw SELECT + json.loads + fromisoformat, {floor_label}", rate(result.baseline, "rows")
        )
        line("  ratio", f"{ratio:.3f}x", f"(target ≥ {target}x)" if target else "")
        if floor is read_decode and "verify" in label:
            label = f"{label} (vs events only)"
        rows.append(
            Row(
                f"5 {label.removeprefix('Engine.')}",
                rate(result.subject),
                f"{ratio:.3f}x raw read+decode",
                f"≥ {target}x" if target else "—",
                None if target is None else ratio >= target,
            )
        )
    raw.close()
    sql.close()


# --- 6. verify at two database sizes ----------------------------------------------------


def bench_verify_scaling(cfg: Config, rows: list[Row], tmp: Path) -> None:
    small, big = cfg.verify_sizes
    header(
        f"6. Engine.verify on SQLiteStore at {small:,} and {big:,} workflows "
        "(one open deadline each): one workflow, and all of them"
    )
    spec = review_spec()
    engines = []
    for size in (small, big):
        store = SQLiteStore(tmp / f"verify-{size}.db", synchronous="NORMAL")
        store.conn.execute("PRAGMA synchronous=OFF")  # setup only
        engine = Engine(store, [spec], clock=ManualClock(T0))
        gc.disable()
        try:
            start_population(engine, size, advance=False)
        finally:
            gc.enable()
        engines.append(engine)
    rng = random.Random(17)
    picks = [wid_of(rng.randrange(small)) for _ in range(200)]

    def one(engine: Engine) -> Callable[[], float]:
        def run() -> float:
            verify = engine.verify
            t = time.perf_counter()
            for wid in picks:
                verify(wid)
            return (time.perf_counter() - t) / len(picks)

        return run

    single = paired(one(engines[1]), one(engines[0]), cfg.reps)
    line(f"verify(one workflow) at {small:,}", us(single.baseline))
    line(f"verify(one workflow) at {big:,}", us(single.subject))
    line("  ratio", f"{single.ratio:.2f}x", "(target ≈ 1x: independent of size)")
    rows.append(
        Row(
            f"6 verify one, {big:,} vs {small:,} wf",
            us(single.subject),
            f"{single.ratio:.2f}x",
            "≤ 1.5x",
            single.ratio <= 1.5,
        )
    )

    def all_of(engine: Engine, size: int) -> Callable[[], float]:
        def run() -> float:
            t = time.perf_counter()
            assert engine.verify() == size
            return time.perf_counter() - t

        return run

    scale = big / small
    whole = paired(all_of(engines[1], big), all_of(engines[0], small), 2 if cfg.quick else 3)
    line(f"verify() of all at {small:,}", ms(whole.baseline))
    line(f"verify() of all at {big:,}", ms(whole.subject))
    line(
        f"  ratio / {scale:.0f}",
        f"{whole.ratio / scale:.2f}x",
        "(target ≤ 2x: linear in the number of workflows)",
    )
    rows.append(
        Row(
            f"6 verify all, {big:,} vs {scale:.0f}x {small:,} wf",
            ms(whole.subject),
            f"{whole.ratio / scale:.2f}x",
            "≤ 2x",
            whole.ratio / scale <= 2,
        )
    )
    for engine in engines:
        assert isinstance(engine.store, SQLiteStore)
        engine.store.close()


# --- main -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the SQLite files")
    parser.add_argument(
        "--only",
        type=int,
        action="append",
        choices=range(1, 7),
        help="run only this figure (repeatable)",
    )
    args = parser.parse_args(argv)
    cfg = Config.make(args.quick)
    started = time.perf_counter()
    print(
        f"qaflow engine benchmarks ({'quick' if cfg.quick else 'full'}); Python "
        f"{sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, numpy {np.__version__}"
    )
    print(build())
    tmp = Path(tempfile.mkdtemp(prefix="qaflow-bench-", dir=args.dir))
    rows: list[Row] = []
    figures: dict[int, Callable[[], None]] = {
        1: lambda: bench_memory(cfg, rows),
        2: lambda: bench_durable(cfg, rows, tmp),
        3: lambda: bench_tick(cfg, rows, tmp),
        4: lambda: bench_calendar(cfg, rows),
        5: lambda: bench_replay(cfg, rows, tmp),
        6: lambda: bench_verify_scaling(cfg, rows, tmp),
    }
    try:
        for number, run in figures.items():
            if not args.only or number in args.only:
                t = time.perf_counter()
                run()
                print(f"  (figure {number}: {time.perf_counter() - t:,.0f} s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary(rows)
    print(f"\ntotal {time.perf_counter() - started:,.0f} s")


if __name__ == "__main__":
    main()
