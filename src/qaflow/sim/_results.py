"""What an escalation simulation returns, and the streaming tally that builds its summary.

:class:`EscalationPath` is one escalation's end; :class:`~qaflow.sim._tally.Tally` adds paths
up as they end and gives the :class:`EscalationSummary` with exact nearest-rank percentiles.
:class:`EscalationSimulation` holds the inputs, the summary and (unless left out) every path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal

import attrs

from qaflow._stats import nearest_rank
from qaflow.errors import ValidationError
from qaflow.records import converter
from qaflow.sim._behaviour import Behaviour

__all__ = [
    "OUTCOMES",
    "EscalationPath",
    "EscalationSimulation",
    "EscalationSummary",
    "Percentiles",
    "format_summary",
    "percentile",
    "percentiles_of",
]

Outcome = Literal["resolved", "withdrawn", "referred"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("resolved", "withdrawn", "referred")


@attrs.frozen
class EscalationPath:
    """What happened to one simulated escalation."""

    workflow_id: str
    state: str
    """The terminal state: ``resolved``, ``withdrawn`` or ``referred``."""
    stage: str
    """The state of the highest stage reached (``referred`` for an external referral)."""
    level: int
    """Its ladder level (0 informal, 1..N, N+1 the referral)."""
    raised_at: datetime
    closed_at: datetime
    working_days: int
    """Working days from the raise to the terminal event (the record's working_days_open)."""
    commands: int
    breaches: int
    extensions_requested: int
    extensions_granted: int
    bypasses: int


@attrs.frozen
class Percentiles:
    """Nearest-rank percentiles of a list of whole numbers (``count`` values)."""

    count: int
    p50: int
    p90: int
    p95: int
    max: int
    mean: float


def percentile(ordered: list[int], p: float) -> int:
    """The nearest-rank ``p``-th percentile of a non-empty ascending list."""
    value = nearest_rank(ordered, p)
    if value is None:
        raise ValidationError(field="ordered", value=ordered, expected="at least one value")
    return value


def percentiles_of(histogram: Mapping[int, int]) -> Percentiles | None:
    """Nearest-rank percentiles of the values a ``value -> how many`` histogram counts."""
    count = sum(histogram.values())
    if not count:
        return None
    keys = sorted(histogram)
    ranks = {q: max(1, math.ceil(q / 100 * count)) for q in (50, 90, 95)}
    found: dict[int, int] = {}
    seen = 0
    for key in keys:
        seen += histogram[key]
        for q, rank in ranks.items():
            if q not in found and seen >= rank:
                found[q] = key
    return Percentiles(
        count=count,
        p50=found[50],
        p90=found[90],
        p95=found[95],
        max=keys[-1],
        mean=round(sum(k * c for k, c in histogram.items()) / count, 3),
    )


@attrs.frozen
class EscalationSummary:
    """Where the simulated escalations ended, how long they took and who carried them."""

    paths: int
    outcomes: dict[str, int]
    """Paths per terminal state (resolved, withdrawn, referred)."""
    ended_at: dict[str, dict[str, int]]
    """Paths per highest stage reached (state name), then per terminal state."""
    referrals: int
    """External referrals (IRO: Cafcass)."""
    working_days: Percentiles
    """Working days from raise to the end, every path."""
    working_days_to_resolution: Percentiles | None
    """Working days from raise to resolution, resolved paths only."""
    breaches: int
    paths_breached: int
    breaches_by_stage: dict[str, int]
    extensions_requested: int
    extensions_granted: int
    bypasses: int
    commands: int
    """Events written (every accepted command, breaches included)."""
    load: dict[str, dict[str, int]]
    """Stage entries per holder role (the holder drawn to act) per local month (YYYY-MM)."""

    def share(self, outcome: str | None = None, stage: str | None = None) -> float:
        """The share of paths ending in ``outcome`` (any if None) at ``stage`` (any if None)."""
        if stage is None:
            count = (
                sum(self.outcomes.values()) if outcome is None else self.outcomes.get(outcome, 0)
            )
        else:
            at = self.ended_at.get(stage, {})
            count = sum(at.values()) if outcome is None else at.get(outcome, 0)
        return count / self.paths if self.paths else 0.0


@attrs.frozen
class EscalationSimulation:
    """A simulation's inputs, every path and the summary."""

    ladder: str
    machine: str
    policy: str
    policy_version: str
    seed: int
    n: int
    start: datetime
    period_days: int
    behaviour: Behaviour
    stages: tuple[str, ...]
    """The ladder's stage states in order (referral last, where it has one)."""
    paths: tuple[EscalationPath, ...]
    summary: EscalationSummary

    def to_dict(self, *, paths: bool = True) -> dict[str, Any]:
        """JSON-ready primitives (cattrs); ``paths=False`` leaves the per-path list out."""
        data: dict[str, Any] = converter.unstructure(self)
        if not paths:
            del data["paths"]
        return data

    def to_json(self, *, paths: bool = True, indent: int | None = None) -> str:
        """The simulation as JSON (datetimes as UTC ISO 8601)."""
        return json.dumps(self.to_dict(paths=paths), sort_keys=True, indent=indent)

    @classmethod
    def from_json(cls, text: str) -> EscalationSimulation:
        """Read :meth:`to_json` output (with paths) back."""
        result: EscalationSimulation = converter.structure(json.loads(text), cls)
        return result

    def to_text(self) -> str:
        """The summary as plain-text tables."""
        return format_summary(self)


def _pct(count: int, total: int) -> str:
    return f"{100 * count / total:.1f}%" if total else "-"


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]

    def fmt(row: tuple[str, ...]) -> str:
        cells = [
            row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i]) for i in range(len(row))
        ]
        return "  ".join(cells).rstrip()

    return [fmt(head), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)]


def format_summary(sim: EscalationSimulation) -> str:
    """Plain-text tables of a simulation's summary (the CLI renders its own)."""
    s = sim.summary
    n = s.paths
    lines = [
        f"escalation simulation: ladder {sim.ladder!r}, {n:,} paths, seed {sim.seed}, "
        f"raised over {sim.period_days} days from {sim.start.date().isoformat()}",
        "",
    ]
    head = ("ended at", *OUTCOMES, "total", "share")
    rows: list[tuple[str, ...]] = []
    for stage in sim.stages:
        at = s.ended_at.get(stage, {})
        total = sum(at.values())
        rows.append((stage, *(f"{at.get(o, 0):,}" for o in OUTCOMES), f"{total:,}", _pct(total, n)))
    rows.append(
        (
            "all",
            *(f"{s.outcomes.get(o, 0):,}" for o in OUTCOMES),
            f"{n:,}",
            _pct(n, n),
        )
    )
    lines += _table(head, rows)
    lines.append("")
    rows = []
    for label, p in (
        ("working days, raise to end", s.working_days),
        ("working days to resolution", s.working_days_to_resolution),
    ):
        if p is None:
            rows.append((label, "0", "-", "-", "-", "-", "-"))
        else:
            rows.append(
                (
                    label,
                    f"{p.count:,}",
                    str(p.p50),
                    str(p.p90),
                    str(p.p95),
                    str(p.max),
                    f"{p.mean:.1f}",
                )
            )
    lines += _table(("", "paths", "p50", "p90", "p95", "max", "mean"), rows)
    lines.append("")
    rows = [
        ("external referrals", f"{s.referrals:,}", _pct(s.referrals, n)),
        ("response deadlines breached", f"{s.breaches:,}", ""),
        ("paths with a breach", f"{s.paths_breached:,}", _pct(s.paths_breached, n)),
        ("extensions requested", f"{s.extensions_requested:,}", ""),
        ("extensions granted", f"{s.extensions_granted:,}", ""),
        ("bypasses", f"{s.bypasses:,}", ""),
        ("commands (events written)", f"{s.commands:,}", ""),
    ]
    lines += _table(("", "count", "share"), rows)
    if s.breaches_by_stage:
        lines.append("")
        rows = [(st, f"{c:,}") for st, c in s.breaches_by_stage.items()]
        lines += _table(("breaches by stage", "count"), rows)
    if s.load:
        months = sorted({m for per in s.load.values() for m in per})
        lines.append("")
        rows = [
            (role, *(f"{per.get(m, 0):,}" for m in months), f"{sum(per.values()):,}")
            for role, per in s.load.items()
        ]
        lines += _table(("stage entries per holder role", *months, "total"), rows)
    return "\n".join(lines)
