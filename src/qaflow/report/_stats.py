"""Small statistics the report's figures share: rates, means, grade counts, working-day
distributions (median, nearest-rank 90th percentile, a histogram)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

import attrs

from qaflow._stats import nearest_rank
from qaflow.procedure import Grade
from qaflow.report._records import Distribution, GradeCount, HistogramBin

_HISTOGRAM_WIDTH: Final = 5


def in_period(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment < end


def counts(grades: Iterable[Grade]) -> tuple[GradeCount, ...]:
    found = list(grades)
    return tuple(
        GradeCount(g.name, g.label, sum(1 for x in found if x is g))
        for g in sorted(Grade, reverse=True)
    )


def grade(name: object) -> Grade | None:
    if isinstance(name, str) and name in Grade.__members__:
        return Grade[name]
    return None


def distribution(values: Iterable[int]) -> Distribution:
    ordered = sorted(values)
    top = ordered[-1] if ordered else 0
    bins = tuple(
        HistogramBin(low, low + _HISTOGRAM_WIDTH - 1, 0)
        for low in range(0, top + 1, _HISTOGRAM_WIDTH)
    )
    counts = [0] * len(bins)
    for v in ordered:
        counts[v // _HISTOGRAM_WIDTH] += 1
    return Distribution(
        count=len(ordered),
        median=float(statistics.median(ordered)) if ordered else None,
        p90=nearest_rank(ordered, 90),
        histogram=tuple(attrs.evolve(b, count=c) for b, c in zip(bins, counts, strict=True)),
    )


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
