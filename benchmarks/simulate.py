"""Escalation-path simulation benchmark: paths per second and memory, against baselines.

    python benchmarks/simulate.py           # full run (memory figure: 1,000,000 paths)
    python benchmarks/simulate.py --quick   # smaller batches, fewer repetitions, 100,000 paths

Figures (each baseline is measured in the same run; see benchmarks/README.md):

1. simulated escalation paths per second: ``qaflow.simulate.simulate_escalations`` on the
   Bexley IRO ladder (informal stage, four stages, Cafcass referral, extensions), default
   behaviour, with the real engine, machine, deadlines (``tick`` fires every breach), as
   shipped: no store given, so each chunk plays in a ``SimulationStore`` on an engine in
   simulation mode (``lean=True``: every check, state, data and deadline as usual; no hash
   chain, outbox or task rows; the same result, tested). Target: at least 20,000 paths/s on
   one core. The same run recorded in full (a ``MemoryStore`` given) is printed beside it.
2. against bare ``transitions`` (issue 14's fair baseline): the trigger sequences the real run
   wrote (read back from the fully recorded run of the same seed, payloads included)
   replayed on the machine ``MachineSpec.to_transitions()`` builds, with ONE reused model
   (``set_state`` to the initial state before each path), no deadlines, events or store;
   the cyclic garbage collector is off for both sides (the subject runs with ``gc="keep"``
   inside the harness's ``gc.disable()``). A condition picks the ``raise`` or ``bypass``
   transition the payload's ``to`` names. Target: ratio (qaflow time / baseline time) at most 1.5x.
   The old, flattering baseline (``add_model``/``remove_model`` per path, collector on for
   the baseline, off for qaflow) is printed beside it, so the change of method is visible.
   2e splits the engine from the driver, in the same alternating rounds as 2: the lean engine
   (``SimulationStore``, ``simulation=True``) fires exactly the recorded commands (trigger,
   payload, actor, in the order the run committed them, read from the store's anchor; the
   clock set to each event's moment, ``tick`` where the run's breaches were) with no actors,
   scheduler or tally, against the same transitions replay. The engine's ratio is what the
   engine alone costs; the difference to 2 is what the driver adds (actors' decisions,
   scheduler, results).
3. against a hand-written dict loop over the same sequences (the floor).
4. peak memory of one streaming simulation (``keep_paths=False``, no store given: each chunk
   of 10,000 paths plays in a store of its own), measured in fresh subprocesses at the full
   size and at a tenth of it (``resource.getrusage`` max RSS). Target: at most 300 MiB for
   1,000,000 paths, and flat in the number of paths.
5. ``workers=2`` against ``workers=1`` on the same paths: wall time ratio, and a check that
   both give the same summary (the same seed gives the same totals whatever the workers).

Subject and baseline run in alternating back-to-back batches (order swapped every pair);
times are medians of the batches and each ratio is the median of the per-pair ratios.
Figures 1-3 are CPU time of the benchmark's process (``time.process_time``) on both sides;
figures 4 and 5 are wall time.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from _common import ROOT, Paired, Row, build, header, paired, summary, us
from _common import line as _line
from _common import rate as _rate
from qaflow import SYSTEM, Actor, Engine, ManualClock, MemoryStore
from qaflow.machines.escalation import escalation_machine
from qaflow.policies import bexley
from qaflow.simulate import simulate_escalations
from qaflow.spec import MachineSpec, TransitionSpec
from qaflow.store import SimulationStore

LADDERS = {
    "iro": bexley.IRO_LADDER,
    "cp_chair": bexley.CP_CHAIR_LADDER,
    "firo": bexley.FIRO_LADDER,
}
MAIN = "iro"
clock = time.process_time
"""Figures 1-3 time CPU seconds of this process on both sides: on a machine shared with other
busy processes, wall time mostly measures the wait for a core."""
TARGET_RATE = 20_000
TARGET_RATIO = 1.5
TARGET_MEMORY = 300 << 20

Sequence_ = tuple[tuple[str, dict[str, Any]], ...]
Command = tuple[str, int, str, Actor, dict[str, Any], datetime, bool]
"""(workflow id, seq, trigger, actor, payload, moment, a breach ``tick`` fired)."""


@dataclass(frozen=True)
class Config:
    quick: bool
    batch: int  # paths per timed batch
    reps: int  # alternating subject/baseline pairs
    memory_paths: int

    @classmethod
    def make(cls, quick: bool, memory_paths: int) -> Config:
        if quick:
            return cls(True, 2_000, 5, memory_paths or 100_000)
        return cls(False, 10_000, 7, memory_paths or 1_000_000)


def line(label: str, value: str, note: str = "") -> None:
    _line(label, value, note, width=58)


def rate(seconds_per_path: float) -> str:
    return _rate(seconds_per_path, "paths")


# --- the subject ----------------------------------------------------------------------------


def run_simulation(ladder_key: str, n: int, seed: int) -> float:
    """Seconds per path of one simulation as shipped: no store given, so the default
    (``lean=True``: each chunk in a SimulationStore, an engine in simulation mode)."""
    t = clock()
    simulate_escalations(LADDERS[ladder_key], bexley.POLICY, n=n, seed=seed, keep_paths=False)
    return (clock() - t) / n


def run_recorded(ladder_key: str, n: int, seed: int) -> tuple[float, MemoryStore]:
    """Seconds per path of one simulation written in full to a fresh MemoryStore (hash
    chain, outbox, tasks: what ``verify`` and the recorded sequences need), and the store."""
    store = MemoryStore()
    t = clock()
    simulate_escalations(
        LADDERS[ladder_key], bexley.POLICY, n=n, seed=seed, store=store, keep_paths=False
    )
    return (clock() - t) / n, store


def collector_off(run: Callable[[], float]) -> Callable[[], float]:
    """``run`` with the cyclic collector off (restored after): the same for both sides."""

    def wrapped() -> float:
        gc.collect()
        gc.disable()
        try:
            return run()
        finally:
            gc.enable()

    return wrapped


def recorded_sequences(store: MemoryStore) -> tuple[list[Sequence_], list[str]]:
    """Each workflow's (trigger, payload) sequence as the store holds it, and its end state."""
    sequences: list[Sequence_] = []
    finals: list[str] = []
    for wid in store.workflow_ids():
        events = store.events(wid)
        sequences.append(tuple((e.trigger, dict(e.payload)) for e in events))
        finals.append(events[-1].dest)
    return sequences, finals


def recorded_commands(store: MemoryStore) -> list[Command]:
    """Every event the run wrote, in commit order (the store's anchor): what the driver made
    the engine do, and when."""
    events: dict[str, list[Any]] = {}
    out: list[Command] = []
    for entry in store.anchor():
        wid = entry.workflow_id
        if wid not in events:
            events[wid] = store.events(wid)
        e = events[wid][entry.seq - 1]
        out.append((wid, e.seq, e.trigger, e.actor, dict(e.payload), e.at, e.actor == SYSTEM))
    return out


def _fire_recorded(
    spec: MachineSpec, commands: Sequence[Command], check: bool
) -> tuple[Engine | None, float]:
    """The lean engine firing ``commands`` with no driver; the CPU seconds it took.

    Each command is ``start`` or ``fire`` with the recorded trigger, actor and payload, the
    clock first moved to its moment; a breach is fired by ``tick`` at that moment (one tick
    fires every breach the run committed together). ``check`` compares each tick's steps with
    the recorded ones and returns the engine (outside the timed runs); otherwise the engine
    and its store are dropped inside the timed run, as a simulated chunk's are.
    """
    virtual = ManualClock(datetime(1990, 1, 1, tzinfo=UTC))
    t = clock()
    engine = Engine(SimulationStore(), [spec], clock=virtual, simulation=True)
    start, fire, tick, set_clock = engine.start, engine.fire, engine.tick, virtual.set
    now = virtual.now()
    i, end = 0, len(commands)
    while i < end:
        wid, seq, trigger, actor, payload, at, breach = commands[i]
        if at > now:
            now = set_clock(at)
        if breach:
            steps = tick()
            if check:
                got = [(s.event.workflow_id, s.event.seq) for s in steps]
                assert got == [(c[0], c[1]) for c in commands[i : i + len(steps)]], got
                assert steps, commands[i]
            i += len(steps)
        elif seq == 1:
            start(spec, wid, trigger, actor, payload)
            i += 1
        else:
            fire(wid, trigger, actor, payload)
            i += 1
    if check:
        return engine, clock() - t
    del engine, start, fire, tick
    return None, clock() - t


def engine_alone(spec: MachineSpec, commands: Sequence[Command], n: int) -> Callable[[], float]:
    """Seconds per path of the lean engine firing the recorded commands, no driver."""

    def run() -> float:
        return _fire_recorded(spec, commands, False)[1] / n

    return run


def check_engine_alone(
    spec: MachineSpec, commands: Sequence[Command], finals: dict[str, tuple[str, int]]
) -> None:
    """The driverless replay ends every workflow where the run did, at the same version."""
    engine, _ = _fire_recorded(spec, commands, True)
    assert engine is not None
    for wid, (state, version) in finals.items():
        snapshot = engine.store.load(wid)
        assert (snapshot.state, snapshot.version) == (state, version), wid


def rounds(runs: Sequence[Callable[[], float]], reps: int) -> list[list[float]]:
    """``reps`` rounds of every run back to back, the order rotated each round; per run,
    its times."""
    times: list[list[float]] = [[] for _ in runs]
    for r in range(reps):
        for k in range(len(runs)):
            j = (k + r) % len(runs)
            times[j].append(runs[j]())
    return times


def median_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


# --- the baselines --------------------------------------------------------------------------


class Model:
    """A bare model; ``transitions`` adds ``trigger``, ``state`` and the rest."""

    state: str
    trigger: Callable[..., bool]


def _pick(transition: TransitionSpec, event: Any) -> bool:
    """The naive user's condition: a ``to`` in the payload picks raise/bypass targets."""
    to = event.kwargs.get("to")
    return to is None or to == transition.dest


def reused_transitions(spec: MachineSpec, sequences: Sequence[Sequence_]) -> Callable[[], float]:
    """The fair baseline: one model, reset to the initial state before each path."""
    machine = spec.to_transitions(_pick)
    model = Model()
    machine.add_model(model)
    initial = spec.initial

    def run() -> float:
        set_state = machine.set_state
        t = clock()
        for seq in sequences:
            set_state(initial, model=model)
            for trigger, payload in seq:
                model.trigger(trigger, **payload)
        return (clock() - t) / len(sequences)

    return run


def bare_transitions(spec: MachineSpec, sequences: Sequence[Sequence_]) -> Callable[[], float]:
    """The old baseline: ``add_model``/``remove_model`` per path."""
    machine = spec.to_transitions(_pick)

    def run() -> float:
        add, remove = machine.add_model, machine.remove_model
        t = clock()
        for seq in sequences:
            model = Model()
            add(model)
            for trigger, payload in seq:
                model.trigger(trigger, **payload)
            remove(model)
        return (clock() - t) / len(sequences)

    return run


def dict_loop(spec: MachineSpec, sequences: Sequence[Sequence_]) -> Callable[[], float]:
    table: dict[tuple[str, str, str | None], str] = {}
    for t in spec.transitions:
        for source in t.sources:
            table.setdefault((source, t.trigger, None), t.dest_from(source))
            table[(source, t.trigger, t.dest_from(source))] = t.dest_from(source)
    initial = spec.initial

    def run() -> float:
        t0 = clock()
        for seq in sequences:
            state = initial
            for trigger, payload in seq:
                state = table[(state, trigger, payload.get("to"))]
        return (clock() - t0) / len(sequences)

    return run


def check_baselines(spec: MachineSpec, sequences: Sequence[Sequence_], finals: list[str]) -> None:
    """Both baselines end every path where the engine did."""
    machine = spec.to_transitions(_pick)
    for seq, final in zip(sequences[:500], finals, strict=False):
        model = Model()
        machine.add_model(model)
        for trigger, payload in seq:
            model.trigger(trigger, **payload)
        assert model.state == final, (seq, model.state, final)
        machine.remove_model(model)


# --- figures --------------------------------------------------------------------------------


def bench_rate(cfg: Config, rows: list[Row]) -> None:
    n = cfg.batch
    header(f"1-3. simulated escalation paths ({MAIN} ladder, {n:,} paths per batch)")
    ladder = LADDERS[MAIN]
    spec = escalation_machine(ladder, bexley.POLICY)
    run_simulation(MAIN, 200, 1)  # warm up (calendar caches, attrs classes)
    lean = simulate_escalations(ladder, bexley.POLICY, n=n, seed=0, keep_paths=False)
    _, store = run_recorded(MAIN, n, 0)
    assert Engine(store, [spec]).verify() == n  # every event verifies (hash chain, replay)
    sequences, finals = recorded_sequences(store)
    assert lean.summary.commands == sum(len(s) for s in sequences)  # the same paths
    commands = sum(len(s) for s in sequences)
    check_baselines(spec, sequences, finals)
    line("commands (events) per path", f"{commands / n:.2f}")

    def subject() -> float:
        seconds = run_simulation(MAIN, n, 0)  # the run the sequences came from
        gc.collect()
        return seconds

    def recorded() -> float:
        seconds, store = run_recorded(MAIN, n, 0)
        del store
        gc.collect()
        return seconds

    def old_subject() -> float:  # the old harness: qaflow paused the collector itself
        store = MemoryStore()
        t = clock()
        simulate_escalations(
            LADDERS[MAIN], bexley.POLICY, n=n, seed=0, store=store, keep_paths=False, gc="pause"
        )
        seconds = (clock() - t) / n
        del store
        gc.collect()
        return seconds

    commands_run = recorded_commands(store)
    ends = {wid: (store.load(wid).state, store.load(wid).version) for wid in store.workflow_ids()}
    check_engine_alone(spec, commands_run, ends)
    del store
    gc.collect()
    bare = collector_off(reused_transitions(spec, sequences))
    floor = collector_off(dict_loop(spec, sequences))
    alone = collector_off(engine_alone(spec, commands_run, n))
    sim_t, alone_t, bare_t = rounds([collector_off(subject), alone, bare], cfg.reps)
    vs_bare = Paired(
        statistics.median(sim_t), statistics.median(bare_t), median_ratio(sim_t, bare_t)
    )
    alone_ratio = median_ratio(alone_t, bare_t)
    driver_share = statistics.median(1 - a / s for a, s in zip(alone_t, sim_t, strict=True))
    vs_old = paired(old_subject, bare_transitions(spec, sequences), max(3, cfg.reps // 2))
    vs_floor = paired(collector_off(subject), floor, cfg.reps)
    vs_recorded = paired(collector_off(recorded), bare, max(3, cfg.reps // 2))
    line("qaflow: simulate_escalations (lean: SimulationStore)", rate(vs_bare.subject))
    line("  per path", us(vs_bare.subject))
    line("  per command", us(vs_bare.subject * n / commands))
    line("bare transitions: one reused model, collector off", rate(vs_bare.baseline))
    line("  ratio (qaflow time / transitions time)", f"{vs_bare.ratio:.2f}x", "(target ≤ 1.5x)")
    line(
        "2e engine alone: recorded commands, lean engine, no driver",
        rate(statistics.median(alone_t)),
    )
    line("  per path", us(statistics.median(alone_t)))
    line("  ratio (engine alone / transitions time)", f"{alone_ratio:.2f}x", "(same rounds as 2)")
    line(
        "  the driver: simulation minus engine alone, per path",
        us(vs_bare.subject - statistics.median(alone_t)),
        f"({driver_share:.0%} of a path; {vs_bare.ratio - alone_ratio:.2f}x of transitions)",
    )
    line("qaflow recorded in full (MemoryStore, lean off)", rate(vs_recorded.subject))
    line("  per path", us(vs_recorded.subject))
    line("  ratio (recorded / transitions)", f"{vs_recorded.ratio:.2f}x", "(for comparison)")
    line("old method: add_model/remove_model per path, collector on", rate(vs_old.baseline))
    line("  ratio (old method)", f"{vs_old.ratio:.2f}x", "(kept for comparison)")
    line("hand-written dict loop, same triggers", rate(vs_floor.baseline))
    line("  ratio (qaflow time / dict loop time)", f"{vs_floor.ratio:,.0f}x", "(the floor)")
    rows.append(
        Row(
            f"1 paths/s ({MAIN})",
            rate(vs_bare.subject),
            f"{TARGET_RATE * vs_bare.subject:.2f}x the target time",
            f"≥ {TARGET_RATE:,}/s",
            1 / vs_bare.subject >= TARGET_RATE,
        )
    )
    rows.append(
        Row(
            "2 vs bare transitions (reused model, GC off)",
            us(vs_bare.baseline) + "/path",
            f"{vs_bare.ratio:.2f}x transitions",
            f"≤ {TARGET_RATIO:.1f}x",
            vs_bare.ratio <= TARGET_RATIO,
        )
    )
    rows.append(
        Row(
            "2e engine alone (recorded commands, no driver)",
            us(statistics.median(alone_t)) + "/path",
            f"{alone_ratio:.2f}x transitions",
            "—",
            None,
        )
    )
    rows.append(
        Row(
            "2e the driver's share of a simulated path",
            us(vs_bare.subject - statistics.median(alone_t)) + "/path",
            f"{driver_share:.0%} of a path",
            "—",
            None,
        )
    )
    rows.append(
        Row(
            "2 recorded in full (MemoryStore)",
            us(vs_recorded.subject) + "/path",
            f"{vs_recorded.ratio:.2f}x transitions",
            "—",
            None,
        )
    )
    rows.append(
        Row(
            "2' old method (add_model per path)",
            us(vs_old.baseline) + "/path",
            f"{vs_old.ratio:.2f}x transitions",
            "—",
            None,
        )
    )
    rows.append(
        Row(
            "3 vs dict loop (floor)",
            us(vs_floor.baseline) + "/path",
            f"{vs_floor.ratio:,.0f}x dict loop",
            "—",
            None,
        )
    )
    for key in LADDERS:
        if key == MAIN:
            continue
        times = []
        for _ in range(max(3, cfg.reps // 2)):
            seconds = run_simulation(key, n, 0)
            gc.collect()
            times.append(seconds)
        line(f"for reference: {key} ladder", rate(statistics.median(times)))


MEMORY_SCRIPT = """
import json, resource, sys, time
from qaflow.policies import bexley
from qaflow.simulate import simulate_escalations
n = int(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
sim = simulate_escalations(
    bexley.IRO_LADDER, bexley.POLICY, n=n, seed=0, keep_paths=False, gc="pause"
)
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kib": before, "peak_kib": peak, "seconds": seconds,
                  "commands": sim.summary.commands}))
"""


def _memory_run(n: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(n)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bench_memory(cfg: Config, rows: list[Row]) -> None:
    n = cfg.memory_paths
    small = max(1, n // 10)
    header(f"4. peak memory of a streaming simulation ({MAIN} ladder, fresh processes)")
    tenth = _memory_run(small)
    full = _memory_run(n)
    for size, result in ((small, tenth), (n, full)):
        peak = result["peak_kib"] * 1024
        line(f"{size:,} paths: peak RSS (ru_maxrss)", f"{peak / 2**20:,.0f} MiB")
        line(
            "  wall time of that run",
            f"{result['seconds']:,.1f} s",
            rate(result["seconds"] / size),
        )
        line("  events written (every store dropped after its chunk)", f"{result['commands']:,}")
    peak = full["peak_kib"] * 1024
    growth = full["peak_kib"] / tenth["peak_kib"]
    line(f"peak at {n:,} / peak at {small:,}", f"{growth:.2f}x", "(flat: about 1x)")
    rows.append(
        Row(
            f"4 peak memory, {n:,} paths",
            f"{peak / 2**20:,.0f} MiB",
            f"{growth:.2f}x the peak at {small:,}",
            "≤ 300 MiB",
            peak <= TARGET_MEMORY,
        )
    )


def bench_workers(cfg: Config, rows: list[Row]) -> None:
    n = 4 * cfg.batch
    header(f"5. workers=2 against workers=1 ({MAIN} ladder, {n:,} paths, chunks of {n // 8:,})")
    ladder = LADDERS[MAIN]
    results = {}
    times = {}
    for workers in (1, 2):
        t = time.perf_counter()
        results[workers] = simulate_escalations(
            ladder, bexley.POLICY, n=n, seed=3, keep_paths=False, gc="pause",
            workers=workers, chunk=n // 8,
        )  # fmt: skip
        times[workers] = time.perf_counter() - t
    same = results[1].summary == results[2].summary
    line("workers=1", f"{times[1]:,.1f} s", rate(times[1] / n))
    line("workers=2", f"{times[2]:,.1f} s", rate(times[2] / n))
    line("  same summary", str(same))
    rows.append(
        Row(
            "5 workers=2 vs workers=1",
            f"{times[2]:,.1f} s",
            f"{times[1] / times[2]:.2f}x faster",
            "same totals",
            same,
        )
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller batches, fewer repetitions")
    parser.add_argument(
        "--memory-paths",
        type=int,
        default=0,
        help="paths in the memory figure (default 1,000,000, the target's size; quick 100,000)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=["rate", "memory", "workers"],
        help="run only these figures (repeatable; default all)",
    )
    args = parser.parse_args(argv)
    only = set(args.only or ["rate", "memory", "workers"])
    cfg = Config.make(args.quick, args.memory_paths)
    started = time.perf_counter()
    print(
        f"qaflow simulation benchmark ({'quick' if cfg.quick else 'full'}); "
        f"Python {sys.version.split()[0]}"
    )
    print(build())
    rows: list[Row] = []
    if "rate" in only:
        bench_rate(cfg, rows)
    if "memory" in only:
        bench_memory(cfg, rows)
    if "workers" in only:
        bench_workers(cfg, rows)
    summary(rows)
    print(f"\ntotal {time.perf_counter() - started:,.0f} s")


if __name__ == "__main__":
    main()
