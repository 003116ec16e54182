"""Nearest-rank percentiles, the one definition the simulation and the QA report share.

Private: :func:`qaflow.simulate.percentile` is the public name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["nearest_rank"]


def nearest_rank(ordered: Sequence[int], p: float) -> int | None:
    """The nearest-rank ``p``-th percentile of an ascending sequence: the smallest value with
    at least ``p`` per cent of the values at or below it; ``None`` when there are none."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]
