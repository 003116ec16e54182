"""Loading a 20-stage ladder from a procedure file and building its machine (target: well
under 50 ms). The spec's fingerprint is computed on first use and printed apart.

    python benchmarks/procedure.py [--quick]

Subject: ``loads_procedure`` (parse, migrate, read against the format definitions, check
every role, compile every CEL condition, build the model with its checks) plus
``escalation_machine`` (a closure-free MachineSpec, validated, with its fingerprint).
Baselines in the same run, in alternating batches: ``tomllib.loads`` of the same text alone
(parsing is the floor any reader pays), and building the same ladder from Python objects
(the model's own checks and the machine, no file at all). Printed: medians, and the ratio of
the medians of each pair (subject / baseline, lower is better).
"""

from __future__ import annotations

import argparse
import statistics
import time
import tomllib
from collections.abc import Callable

from qaflow.machines.escalation import escalation_machine
from qaflow.procedure import loads_procedure

STAGES = 20


def ladder_text(stages: int = STAGES) -> str:
    """A procedure file with one ladder of ``stages`` formal stages using most features."""
    roles = "\n".join(f'manager_{k} = "Manager at level {k}"' for k in range(1, stages + 1))
    body = []
    for k in range(1, stages + 1):
        body.append(
            f"""
[[ladders.stages]]
title = "Level {k}"
holders = ["manager_{k}"]
response = "{1 if k % 2 else 2} WD"
informed = ["head_of_qa"]
clause = "BM-{k:02d}"
notices = [{{ to = ["director"], reason = "risk at level {k}", when = 'reason == "risk"' }}]
deadlines = [{{ name = "form_{k}", party = "chair", within = "3 WD", action = "the form" }}]
"""
        )
    return f"""format_version = 1
[policy]
name = "benchmark"
version = "1"
[policy.roles]
chair = "Chair"
iro = "IRO"
child = "Child"
head_of_qa = "Head of QA"
director = "Director"
cafcass = "Cafcass"
{roles}

[[ladders]]
name = "twenty"
raised_by = ["chair", "iro"]
reasons = ["risk", "drift", "other"]
bypass = {{ allowed = true, consultation = true, clause = "BM-B" }}
extensions = {{ max_count = 1, max_length = "2 WD", per = "stage", clause = "BM-E" }}
tracks = [{{ name = "cafcass", role = "cafcass", by = ["iro"], clause = "BM-T" }}]
on_raise = [{{ to = ["child"], reason = "your rights", clause = "BM-R" }}]
{"".join(body)}
"""


def _batch(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    pairs, per = (5, 3) if args.quick else (15, 5)
    text = ladder_text()
    book = loads_procedure(text)
    ladder = book.ladders[0]

    def subject() -> object:
        loaded = loads_procedure(text)
        return escalation_machine(loaded.ladders[0], loaded.policy)

    def parse_only() -> object:
        return tomllib.loads(text)

    def model_and_machine() -> object:
        import attrs

        copy = attrs.evolve(ladder)  # re-runs every model check
        return escalation_machine(copy, book.policy)

    subject()  # warm: imports, CEL compile cache, vocabulary
    rows = []
    for name, base in (
        ("tomllib.loads only", parse_only),
        ("model + machine, no file", model_and_machine),
    ):
        times_s, times_b, ratios = [], [], []
        for i in range(pairs):
            if i % 2:
                b, s = _batch(base, per), _batch(subject, per)
            else:
                s, b = _batch(subject, per), _batch(base, per)
            times_s.append(s)
            times_b.append(b)
            ratios.append(s / b)
        rows.append(
            (
                name,
                statistics.median(times_s),
                statistics.median(times_b),
                statistics.median(ratios),
            )
        )
    spec = escalation_machine(ladder, book.policy)
    fingerprint = statistics.median(
        _batch(lambda: escalation_machine(ladder, book.policy).fingerprint, per)
        - _batch(lambda: escalation_machine(ladder, book.policy), per)
        for _ in range(pairs)
    )
    print(f"ladder: {STAGES} stages, {len(spec.states)} states, {len(spec.transitions)} commands")
    for name, s, b, r in rows:
        print(
            f"load + build {s * 1e3:7.2f} ms | baseline {name}: {b * 1e3:7.2f} ms | ratio {r:5.1f}x"
        )
    print(f"(the fingerprint, computed on first use, adds {fingerprint * 1e3:.1f} ms)")
    best = min(s for _, s, _, _ in rows)
    verdict = "met" if best < 0.050 else "NOT met"
    print(
        f"target: load + build well under 50 ms -> {best * 1e3:.1f} ms ({verdict}; "
        f"{best / 0.050:.2f} of the budget)"
    )


if __name__ == "__main__":
    main()
