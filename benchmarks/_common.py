"""Timing and table helpers the benchmark scripts share (not a benchmark itself).

Every figure is a ratio against a baseline measured in the same run: subject and baseline
run in alternating back-to-back batches (order swapped every pair); the printed times are
medians of the batches and the ratio is the median of the per-pair ratios.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "examples") not in sys.path:
    sys.path.insert(0, str(ROOT / "examples"))


@dataclass(frozen=True)
class Paired:
    subject: float  # median seconds per operation
    baseline: float
    ratio: float  # median of per-pair subject/baseline time ratios


@dataclass(frozen=True)
class Row:
    figure: str
    value: str
    ratio: str
    target: str
    met: bool | None


def paired(subject: Callable[[], float], baseline: Callable[[], float], reps: int) -> Paired:
    """Run ``reps`` back-to-back pairs (order alternating); each call returns s/op."""
    subj: list[float] = []
    base: list[float] = []
    for i in range(reps):
        if i % 2:
            b = baseline()
            s = subject()
        else:
            s = subject()
            b = baseline()
        subj.append(s)
        base.append(b)
    return Paired(
        statistics.median(subj),
        statistics.median(base),
        statistics.median(s / b for s, b in zip(subj, base, strict=True)),
    )


def us(seconds: float, digits: int = 2) -> str:
    return f"{seconds * 1e6:,.{digits}f} µs"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f} ms"


def rate(seconds: float, unit: str = "") -> str:
    return f"{1 / seconds:,.0f}{' ' + unit if unit else ''}/s"


def build() -> str:
    """Which qaflow the run measures: compiled (mypyc) or pure Python, and from where."""
    import qaflow
    from qaflow._compiled import HOT_MODULES

    where = Path(qaflow.__file__).resolve().parent
    if qaflow.compiled:
        kind = f"compiled (mypyc, {len(HOT_MODULES)} hot modules; the baselines are not)"
    else:
        kind = "pure Python"
    return f"qaflow.compiled={qaflow.compiled}: {kind}, from {where}"


def header(title: str) -> None:
    print(f"\n== {title}")


def line(label: str, value: str, note: str = "", width: int = 52) -> None:
    print(f"  {label:<{width}} {value:>16}  {note}".rstrip())


def summary(rows: Sequence[Row]) -> None:
    """The closing table: every figure, its ratio, its target and whether it was met."""
    header("summary")
    cols = ("figure", "value", "ratio", "target", "met")
    table = [cols] + [
        (
            r.figure,
            r.value,
            r.ratio,
            r.target,
            "—" if r.met is None else "met" if r.met else "NOT met",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for j, row in enumerate(table):
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if j == 0:
            print("  " + "  ".join("-" * w for w in widths))
