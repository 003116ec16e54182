"""The streaming tally that adds simulated paths up as they end (compiled in a compiled build).

:class:`Tally` keeps counts and a histogram of working days, so its size never grows with the
number of paths, and two tallies merge (workers each keep one); :meth:`Tally.summary` gives
the :class:`~qaflow.sim._results.EscalationSummary` with exact nearest-rank percentiles. It is
on every simulated path's end, so it is one of ``qaflow._compiled.HOT_MODULES``; the records
it reads and builds stay attrs classes in :mod:`qaflow.sim._results`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from qaflow.errors import ValidationError
from qaflow.machines.escalation import REFERRED, RESOLVED
from qaflow.sim._results import OUTCOMES, EscalationPath, EscalationSummary, percentiles_of

__all__ = ["Tally"]

_RESOLVED: Final = RESOLVED  # read by compiled code without a namespace lookup


class Tally:
    """Counts of ended paths, added as they end (see the module docstring).

    ``breaches_by_stage`` and ``load`` (stage entries per holder role per month index,
    ``year * 12 + month - 1``) are counted by the actors as stages are played and added with
    :meth:`add_play`.
    """

    __slots__ = (
        "breaches",
        "breaches_by_stage",
        "bypasses",
        "commands",
        "days",
        "ended",
        "extensions_granted",
        "extensions_requested",
        "load",
        "outcomes",
        "paths",
        "paths_breached",
        "resolved_days",
    )

    def __init__(self) -> None:
        self.paths = 0
        self.outcomes: dict[str, int] = {}
        self.ended: dict[tuple[str, str], int] = {}
        self.days: dict[int, int] = {}
        self.resolved_days: dict[int, int] = {}
        self.breaches = 0
        self.paths_breached = 0
        self.extensions_requested = 0
        self.extensions_granted = 0
        self.bypasses = 0
        self.commands = 0
        self.breaches_by_stage: dict[str, int] = {}
        self.load: dict[str, dict[int, int]] = {}

    def add(self, p: EscalationPath) -> None:
        """Count one ended path."""
        self.count(
            p.state,
            p.stage,
            p.working_days,
            p.commands,
            p.breaches,
            p.extensions_requested,
            p.extensions_granted,
            p.bypasses,
        )

    def count(
        self,
        state: str,
        stage: str,
        working_days: int,
        commands: int,
        breaches: int,
        requested: int,
        granted: int,
        bypasses: int,
    ) -> None:
        """Count one ended path given field by field (:meth:`add` without building the
        :class:`EscalationPath`, for a run that keeps only the summary)."""
        self.paths += 1
        outcomes = self.outcomes
        outcomes[state] = outcomes.get(state, 0) + 1
        key = (stage, state)
        self.ended[key] = self.ended.get(key, 0) + 1
        days = self.days
        days[working_days] = days.get(working_days, 0) + 1
        if state == _RESOLVED:
            self.resolved_days[working_days] = self.resolved_days.get(working_days, 0) + 1
        if breaches:
            self.breaches += breaches
            self.paths_breached += 1
        self.extensions_requested += requested
        self.extensions_granted += granted
        self.bypasses += bypasses
        self.commands += commands

    def add_play(
        self, breaches_by_stage: Mapping[str, int], load: Mapping[str, Mapping[int, int]]
    ) -> None:
        """Add the actors' per-stage breaches and per-role monthly load."""
        _add(self.breaches_by_stage, breaches_by_stage)
        for role, per in load.items():
            _add(self.load.setdefault(role, {}), per)

    def merge(self, other: Tally) -> None:
        """Add ``other``'s counts to these (tallies of disjoint paths)."""
        self.paths += other.paths
        for mine, theirs in (
            (self.outcomes, other.outcomes),
            (self.days, other.days),
            (self.resolved_days, other.resolved_days),
        ):
            _add(mine, theirs)
        _add(self.ended, other.ended)
        self.breaches += other.breaches
        self.paths_breached += other.paths_breached
        self.extensions_requested += other.extensions_requested
        self.extensions_granted += other.extensions_granted
        self.bypasses += other.bypasses
        self.commands += other.commands
        self.add_play(other.breaches_by_stage, other.load)

    def summary(self, stages: tuple[str, ...], *, referral: bool) -> EscalationSummary:
        """The summary of every path counted; ``stages`` in ladder order (referral last)."""
        names: tuple[str, ...] = OUTCOMES if referral else OUTCOMES[:2]
        outcomes: dict[str, int] = dict.fromkeys(names, 0)
        for state, count in self.outcomes.items():
            outcomes[state] = outcomes.get(state, 0) + count
        ended: dict[str, dict[str, int]] = {}
        for stage in stages:
            at = {s: c for (st, s), c in sorted(self.ended.items(), key=_order) if st == stage}
            if at:
                ended[stage] = at
        days = percentiles_of(self.days)
        if days is None:
            raise ValidationError(field="paths", value=0, expected="at least one ended path")
        load = {
            role: {f"{m // 12:04d}-{m % 12 + 1:02d}": c for m, c in sorted(per.items())}
            for role, per in self.load.items()
            if per
        }
        return EscalationSummary(
            paths=self.paths,
            outcomes=outcomes,
            ended_at=ended,
            referrals=outcomes.get(REFERRED, 0),
            working_days=days,
            working_days_to_resolution=percentiles_of(self.resolved_days),
            breaches=self.breaches,
            paths_breached=self.paths_breached,
            breaches_by_stage={
                s: self.breaches_by_stage[s] for s in stages if s in self.breaches_by_stage
            },
            extensions_requested=self.extensions_requested,
            extensions_granted=self.extensions_granted,
            bypasses=self.bypasses,
            commands=self.commands,
            load=load,
        )


def _order(item: tuple[tuple[str, str], int]) -> int:
    return OUTCOMES.index(item[0][1]) if item[0][1] in OUTCOMES else len(OUTCOMES)


def _add(mine: dict[Any, int], theirs: Mapping[Any, int]) -> None:
    for key, count in theirs.items():
        mine[key] = mine.get(key, 0) + count
