"""Escalation-path simulation benchmark: paths per second and memory, against baselines.

    python benchmarks/simulate.py           # full run, ~2-3 min
    python benchmarks/simulate.py --quick   # smaller batches, fewer repetitions, ~1 min

Figures (each baseline is measured in the same run; see benchmarks/README.md):

1. simulated escalation paths per second: ``qaflow.simulate.simulate_escalations`` on the
   Bexley IRO ladder (informal stage, four stages, Cafcass referral, extensions), default
   behaviour, with the real engine, machine, deadlines (``tick`` fires every breach) and a
   fresh ``MemoryStore`` per batch. Target: at least 20,000 paths/s on one core.
2. against bare ``transitions``: the trigger sequences the real run wrote (read back from its
   store, payloads included) replayed on the machine ``MachineSpec.to_transitions()`` builds,
   one model per path the way a naive user would (``add_model``, the triggers,
   ``remove_model``), with no deadlines, events or store. A condition picks the ``raise`` or
   ``bypass`` transition the payload's ``to`` names. Target: ratio (qaflow time / baseline
   time) at most 1.0x. The baseline only replays decisions the simulation had to make, so
   the comparison favours it.
3. against a hand-written dict loop over the same sequences (the floor).
4. peak memory of a 100,000-path simulation, measured in a fresh subprocess
   (``resource.getrusage`` max RSS, and the growth over the RSS before the run).
   Target: at most 1 GiB.

Subject and baseline run in alternating back-to-back batches (order swapped every pair);
times are medians of the batches and each ratio is the median of the per-pair ratios.
``simulate_escalations`` pauses the cyclic garbage collector while it runs (its records form
no cycles); the ``transitions`` baseline runs with the collector on, as it must (every
``add_model`` leaves reference cycles behind).
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
from typing import Any

from _common import ROOT, Row, header, paired, summary, us
from _common import line as _line
from _common import rate as _rate
from qaflow import Engine, MemoryStore
from qaflow.machines.escalation import escalation_machine
from qaflow.policies import bexley
from qaflow.simulate import simulate_escalations
from qaflow.spec import MachineSpec, TransitionSpec

LADDERS = {
    "iro": bexley.IRO_LADDER,
    "cp_chair": bexley.CP_CHAIR_LADDER,
    "firo": bexley.FIRO_LADDER,
}
MAIN = "iro"
TARGET_RATE = 20_000
TARGET_RATIO = 1.0
TARGET_MEMORY = 1 << 30

Sequence_ = tuple[tuple[str, dict[str, Any]], ...]


@dataclass(frozen=True)
class Config:
    quick: bool
    batch: int  # paths per timed batch
    reps: int  # alternating subject/baseline pairs
    memory_paths: int

    @classmethod
    def make(cls, quick: bool, memory_paths: int) -> Config:
        if quick:
            return cls(True, 2_000, 5, memory_paths)
        return cls(False, 10_000, 7, memory_paths)


def line(label: str, value: str, note: str = "") -> None:
    _line(label, value, note, width=58)


def rate(seconds_per_path: float) -> str:
    return _rate(seconds_per_path, "paths")


# --- the subject ----------------------------------------------------------------------------


def run_simulation(ladder_key: str, n: int, seed: int) -> tuple[float, MemoryStore]:
    """Seconds per path of one simulation on a fresh MemoryStore, and the store."""
    store = MemoryStore()
    t = time.perf_counter()
    simulate_escalations(LADDERS[ladder_key], bexley.POLICY, n=n, seed=seed, store=store)
    return (time.perf_counter() - t) / n, store


def recorded_sequences(store: MemoryStore) -> tuple[list[Sequence_], list[str]]:
    """Each workflow's (trigger, payload) sequence as the store holds it, and its end state."""
    sequences: list[Sequence_] = []
    finals: list[str] = []
    for wid in store.workflow_ids():
        events = store.events(wid)
        sequences.append(tuple((e.trigger, dict(e.payload)) for e in events))
        finals.append(events[-1].dest)
    return sequences, finals


# --- the baselines --------------------------------------------------------------------------


class Model:
    """A bare model; ``transitions`` adds ``trigger``, ``state`` and the rest."""

    state: str
    trigger: Callable[..., bool]


def _pick(transition: TransitionSpec, event: Any) -> bool:
    """The naive user's condition: a ``to`` in the payload picks raise/bypass targets."""
    to = event.kwargs.get("to")
    return to is None or to == transition.dest


def bare_transitions(spec: MachineSpec, sequences: Sequence[Sequence_]) -> Callable[[], float]:
    machine = spec.to_transitions(_pick)

    def run() -> float:
        add, remove = machine.add_model, machine.remove_model
        t = time.perf_counter()
        for seq in sequences:
            model = Model()
            add(model)
            for trigger, payload in seq:
                model.trigger(trigger, **payload)
            remove(model)
        return (time.perf_counter() - t) / len(sequences)

    return run


def dict_loop(spec: MachineSpec, sequences: Sequence[Sequence_]) -> Callable[[], float]:
    table: dict[tuple[str, str, str | None], str] = {}
    for t in spec.transitions:
        for source in t.sources:
            table.setdefault((source, t.trigger, None), t.dest_from(source))
            table[(source, t.trigger, t.dest_from(source))] = t.dest_from(source)
    initial = spec.initial

    def run() -> float:
        t0 = time.perf_counter()
        for seq in sequences:
            state = initial
            for trigger, payload in seq:
                state = table[(state, trigger, payload.get("to"))]
        return (time.perf_counter() - t0) / len(sequences)

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
    _, store = run_simulation(MAIN, n, 0)
    assert Engine(store, [spec]).verify() == n  # every event verifies (hash chain, replay)
    sequences, finals = recorded_sequences(store)
    commands = sum(len(s) for s in sequences)
    del store
    gc.collect()
    check_baselines(spec, sequences, finals)
    line("commands (events) per path", f"{commands / n:.2f}")

    def subject() -> float:
        seconds, store = run_simulation(MAIN, n, 0)  # the run the sequences came from
        del store
        gc.collect()
        return seconds

    bare = bare_transitions(spec, sequences)
    floor = dict_loop(spec, sequences)
    vs_bare = paired(subject, bare, cfg.reps)
    vs_floor = paired(subject, floor, cfg.reps)
    line("qaflow: simulate_escalations + Engine + MemoryStore", rate(vs_bare.subject))
    line("  per path", us(vs_bare.subject))
    line("  per command", us(vs_bare.subject * n / commands))
    line("bare transitions: add_model, same triggers, remove_model", rate(vs_bare.baseline))
    line("  ratio (qaflow time / transitions time)", f"{vs_bare.ratio:.2f}x", "(target ≤ 1.0x)")
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
            "2 vs bare transitions",
            us(vs_bare.baseline) + "/path",
            f"{vs_bare.ratio:.2f}x transitions",
            f"≤ {TARGET_RATIO:.1f}x",
            vs_bare.ratio <= TARGET_RATIO,
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
            seconds, store = run_simulation(key, n, 0)
            del store
            gc.collect()
            times.append(seconds)
        line(f"for reference: {key} ladder", rate(statistics.median(times)))


MEMORY_SCRIPT = """
import json, resource, sys, time
from qaflow.policies import bexley
from qaflow.simulate import simulate_escalations
from qaflow.store import MemoryStore
n = int(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
store = MemoryStore()
t = time.perf_counter()
sim = simulate_escalations(bexley.IRO_LADDER, bexley.POLICY, n=n, seed=0, store=store)
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
counts = store.counts()
print(json.dumps({"before_kib": before, "peak_kib": peak, "seconds": seconds,
                  "counts": counts, "commands": sim.summary.commands}))
"""


def bench_memory(cfg: Config, rows: list[Row]) -> None:
    n = cfg.memory_paths
    header(f"4. peak memory of one simulation of {n:,} paths ({MAIN} ladder, fresh process)")
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(n)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    peak = result["peak_kib"] * 1024
    grown = (result["peak_kib"] - result["before_kib"]) * 1024
    counts = result["counts"]
    line("peak RSS of the process (ru_maxrss)", f"{peak / 2**20:,.0f} MiB")
    line("  of which the simulation (peak - RSS before)", f"{grown / 2**20:,.0f} MiB")
    line("  per path", f"{grown / n / 1024:,.1f} KiB")
    line(
        "  rows held",
        f"{counts['events']:,} ev",
        f"{counts['notifications']:,} notifications, {counts['deadlines']:,} deadlines, "
        f"{counts['tasks']:,} tasks",
    )
    line("  wall time of that run", f"{result['seconds']:,.1f} s", rate(result["seconds"] / n))
    rows.append(
        Row(
            f"4 peak memory, {n:,} paths",
            f"{peak / 2**20:,.0f} MiB",
            f"{peak / TARGET_MEMORY:.2f}x 1 GiB",
            "≤ 1 GiB",
            peak <= TARGET_MEMORY,
        )
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller batches, fewer repetitions")
    parser.add_argument(
        "--memory-paths",
        type=int,
        default=100_000,
        help="paths in the memory figure (default 100,000, the target's size)",
    )
    args = parser.parse_args(argv)
    cfg = Config.make(args.quick, args.memory_paths)
    started = time.perf_counter()
    print(
        f"qaflow simulation benchmark ({'quick' if cfg.quick else 'full'}); "
        f"Python {sys.version.split()[0]}"
    )
    rows: list[Row] = []
    bench_rate(cfg, rows)
    bench_memory(cfg, rows)
    summary(rows)
    print(f"\ntotal {time.perf_counter() - started:,.0f} s")


if __name__ == "__main__":
    main()
