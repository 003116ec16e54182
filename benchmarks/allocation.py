"""Monthly allocation benchmark: 80 managers x 9,600 cases, against the full-graph method.

    python benchmarks/allocation.py           # 3 alternating pairs
    python benchmarks/allocation.py --quick   # 1 pair, ~10-25 s

Subject: ``allocate_audits`` (eligible cases pruned to about managers-squared edges, see
``qaflow.allocation._eligible``). Baseline: the method before issue 14, run in the same
process on the same month: ``ineligibility`` for every manager x case pair, Hopcroft-Karp on
the full graph, then the balanced max-flow on it. The script checks both find the same
allocation size and the same largest worker load. Target: ≤ 0.5 s per month.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from _common import Row, header, line, ms, paired, summary
from qaflow.allocation import (
    AllocationRules,
    Auditor,
    Case,
    PastAudit,
    _balanced,
    allocate_audits,
    hopcroft_karp,
    ineligibility,
)

MONTH = "2025-03"
TARGET = 0.5


def council() -> tuple[list[Case], list[Auditor], list[PastAudit]]:
    cases = [Case(f"C-{i:05d}", f"W-{i % 2400:04d}", f"T-{i % 120:03d}") for i in range(9600)]
    auditors = [Auditor(f"A-{i:03d}", f"T-{i % 120:03d}") for i in range(80)]
    history = [
        PastAudit(f"A-{i % 80:03d}", f"W-{(i * 7) % 2400:04d}", f"2025-{1 + i % 2:02d}")
        for i in range(160)
    ]
    return cases, auditors, history


def full_graph(
    cases: list[Case], auditors: list[Auditor], history: list[PastAudit]
) -> tuple[int, int]:
    """The pre-issue-14 method: every pair checked, the whole graph matched and balanced."""
    rules = AllocationRules()
    ordered = sorted(cases, key=lambda c: (c.child_id, c.worker_id, c.team_id))
    paired: dict[tuple[str, str], list[str]] = {}
    for p in history:
        paired.setdefault((p.auditor_id, p.worker_id), []).append(p.month)
    adjacency = {
        a.id: [j for j, c in enumerate(ordered) if not ineligibility(c, a, MONTH, rules, paired)]
        for a in auditors
    }
    size = len(hopcroft_karp(adjacency))
    _, cap = _balanced(sorted(adjacency), ordered, adjacency, size)
    return size, cap


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one pair")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(f"qaflow allocation benchmark; Python {sys.version.split()[0]}")
    cases, auditors, history = council()
    header("allocate_audits, 80 managers x 9,600 cases, one month")
    result = allocate_audits(cases, auditors, MONTH, history=history, seed=1)

    def ours() -> float:
        t = time.perf_counter()
        allocate_audits(cases, auditors, MONTH, history=history, seed=1)
        return time.perf_counter() - t

    def before() -> float:
        t = time.perf_counter()
        found.append(full_graph(cases, auditors, history))
        return time.perf_counter() - t

    found: list[tuple[int, int]] = []
    r = paired(ours, before, 1 if args.quick else 3)
    assert all(f == (len(result.allocations), result.max_worker_load) for f in found), found
    line("allocate_audits (pruned graph)", ms(r.subject))
    line("full auditors x cases graph (before)", ms(r.baseline))
    line("  ratio", f"{r.ratio:.4f}x", f"(target ≤ {TARGET} s/month)")
    rows = [
        Row(
            "allocation 80 x 9,600 / month",
            ms(r.subject),
            f"{r.ratio:.4f}x full graph",
            f"≤ {TARGET} s",
            r.subject <= TARGET,
        )
    ]
    summary(rows)
    print(f"\ntotal {time.perf_counter() - started:,.0f} s")


if __name__ == "__main__":
    main()
