"""Escalation-path simulation on the real engine, machine and policy, with a virtual clock.

:func:`simulate_escalations` raises ``n`` escalations of one ladder at moments spread over a
period, then plays each one forward: the stage holder responds (or not), the raiser accepts,
escalates, bypasses, grants or refuses further time, withdraws or refers externally, each
with the per-stage probabilities of a :class:`Behaviour`. Every command goes through
:class:`~qaflow.engine.Engine` into a store (a :class:`~qaflow.store.MemoryStore` unless one
is given), so the rules applied are exactly the machine's: nothing here re-implements them.
Time is a :class:`~qaflow.clock.ManualClock` that only moves forward; a missed response
deadline is found and fired by ``engine.tick`` like in production.

How one stage is played (times are Europe/London local; "day k" is the k-th working day
after the local date the stage was entered):

1. On entering a stage the holder who will act is drawn from the stage's holders. With
   ``respond_probability`` they will respond, on day ``k`` drawn from ``response_days``
   (weighted), at 10:00.
2. A response that would come after the response deadline does not come in time. Such a
   holder asks for further time with ``extension_probability`` where the ladder allows one
   (at 09:00 on the deadline's day, for the most the ladder allows); the raiser grants it an
   hour later with ``grant_probability`` or refuses it. A response due within the new
   deadline then comes as planned.
3. Otherwise the deadline passes and ``tick`` fires the breach; the raiser moves on at the
   moment of the breach (see 5). Where the stage has no response deadline (an informal stage
   without a timescale) the raiser waits ``wait_days`` working days instead and moves on at
   11:00.
4. After a response the raiser decides ``decision_days`` working days later at 11:00: accept
   (resolved) with ``accept_probability``, else move on.
5. Moving on: withdraw with ``withdraw_probability``; bypass with ``bypass_probability`` (to
   a later stage or the external referral drawn uniformly from those the ladder allows);
   otherwise escalate to the next stage; at the last stage, refer externally where the
   ladder has a referral, else the escalation ends resolved at the top.

A ladder whose breach moves the escalation up by itself (``breach = "escalate"``) is followed:
the path simply enters the next stage. The same ``seed`` gives the same result exactly
(one :class:`random.Random` drives every draw, and actions run in time order with ties
broken by scheduling order).

The result, :class:`EscalationSimulation`, holds one :class:`EscalationPath` per escalation
and an :class:`EscalationSummary`; :meth:`EscalationSimulation.to_json` and
:meth:`EscalationSimulation.to_text` render it.
"""

from __future__ import annotations

import gc
import heapq
import json
import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from random import Random
from typing import Any, Final, Literal

import attrs

from qaflow._stats import nearest_rank
from qaflow.calendar import LONDON, WorkingCalendar
from qaflow.clock import ManualClock
from qaflow.engine import Engine
from qaflow.errors import ValidationError
from qaflow.machines.escalation import (
    REFERRED,
    RESOLVED,
    RESPONSE_DEADLINE,
    escalation_machine,
    state_of,
)
from qaflow.policies.base import Policy
from qaflow.policies.ladders import EscalationLadder
from qaflow.records import Actor, Step, converter
from qaflow.store import MemoryStore, Store

__all__ = [
    "DEFAULT_START",
    "OUTCOMES",
    "SIMULATION_POLICY",
    "Behaviour",
    "EscalationPath",
    "EscalationSimulation",
    "EscalationSummary",
    "Percentiles",
    "StageBehaviour",
    "format_summary",
    "percentile",
    "simulate_escalations",
]

SIMULATION_POLICY: Final = Policy("qaflow-simulation", "1")
"""The policy simulated workflows pin when none is given (England bank holidays only)."""

DEFAULT_START: Final = datetime(2026, 1, 5, tzinfo=UTC)
"""The default start of the period escalations are raised over (a Monday)."""

Outcome = Literal["resolved", "withdrawn", "referred"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("resolved", "withdrawn", "referred")

# Local times of day the simulated people act at (indices into _TIMES).
_OPEN, _ASK, _REPLY, _DECIDE = 0, 1, 2, 3
_TIMES: Final = (time(9, 0), time(9, 0), time(10, 0), time(11, 0))
_HOUR: Final = timedelta(hours=1)
_MAX_N: Final = 10_000_000
_MAX_PERIOD: Final = 36_600


# --- behaviour --------------------------------------------------------------------------------


def _probability(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise ValidationError(field=attribute.name, value=value, expected="a probability in 0..1")


def _whole(low: int, high: int) -> Callable[[object, attrs.Attribute[int], object], None]:
    def check(_: object, attribute: attrs.Attribute[int], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValidationError(
                field=attribute.name, value=value, expected=f"a whole number in {low}..{high}"
            )

    return check


def _day_weights(value: object) -> tuple[tuple[int, float], ...]:
    """``response_days`` as (working day, weight) pairs; a mapping is accepted too."""
    items = value.items() if isinstance(value, Mapping) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise ValidationError(
            field="response_days", value=value, expected="(working day, weight) pairs"
        )
    pairs: list[tuple[int, float]] = []
    for item in items:
        try:
            day, weight = item
        except (TypeError, ValueError):
            raise ValidationError(
                field="response_days", value=item, expected="a (working day, weight) pair"
            ) from None
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 365:
            raise ValidationError(
                field="response_days", value=day, expected="working days in 1..365"
            )
        if (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not math.isfinite(weight)
            or weight <= 0
        ):
            raise ValidationError(
                field="response_days", value=weight, expected="a weight greater than 0"
            )
        pairs.append((day, float(weight)))
    if not pairs:
        raise ValidationError(
            field="response_days", value=value, expected="at least one (working day, weight)"
        )
    return tuple(pairs)


@attrs.frozen
class StageBehaviour:
    """How the people at one stage behave (see the module docstring for the play).

    ``response_days`` is the distribution of when the holder responds, in working days after
    the stage was entered: (day, weight) pairs, e.g. ``((2, 1), (5, 2))`` means day 2 one
    time in three and day 5 two times in three. A day after the response deadline means the
    response does not come in time.
    """

    respond_probability: float = attrs.field(default=0.85, validator=_probability)
    response_days: tuple[tuple[int, float], ...] = attrs.field(
        default=((1, 1.0), (2, 2.0), (3, 3.0), (4, 3.0), (5, 2.0), (7, 1.0), (10, 1.0)),
        converter=_day_weights,
    )
    accept_probability: float = attrs.field(default=0.6, validator=_probability)
    extension_probability: float = attrs.field(default=0.3, validator=_probability)
    grant_probability: float = attrs.field(default=0.8, validator=_probability)
    bypass_probability: float = attrs.field(default=0.05, validator=_probability)
    withdraw_probability: float = attrs.field(default=0.05, validator=_probability)
    decision_days: int = attrs.field(default=1, validator=_whole(0, 60))
    wait_days: int = attrs.field(default=10, validator=_whole(1, 365))

    def __attrs_post_init__(self) -> None:
        if self.bypass_probability + self.withdraw_probability > 1 + 1e-12:
            raise ValidationError(
                field="bypass_probability",
                value=self.bypass_probability,
                expected=f"at most 1 - withdraw_probability ({1 - self.withdraw_probability:g})",
            )


def _overrides(value: Mapping[int, StageBehaviour] | None) -> dict[int, StageBehaviour]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(
            field="stages", value=value, expected="a mapping of ladder level to StageBehaviour"
        )
    out: dict[int, StageBehaviour] = {}
    for level, behaviour in value.items():
        if isinstance(level, bool) or not isinstance(level, int):
            raise ValidationError(field="stages", value=level, expected="a ladder level (int)")
        if not isinstance(behaviour, StageBehaviour):
            raise ValidationError(
                field=f"stages[{level}]", value=behaviour, expected="a StageBehaviour"
            )
        out[level] = behaviour
    return out


@attrs.frozen
class Behaviour:
    """Behaviour at every stage: ``default``, with per-level overrides in ``stages``.

    Levels are the ladder's: 0 the informal stage, 1..N the formal stages. ``raise_at`` is
    the level a raise lands on (``None``: the ladder's first; a later one only where the
    ladder allows a raise to bypass to it).
    """

    default: StageBehaviour = attrs.field(factory=StageBehaviour)
    stages: dict[int, StageBehaviour] = attrs.field(factory=dict, converter=_overrides, hash=False)
    raise_at: int | None = None

    @default.validator
    def _check_default(self, attribute: attrs.Attribute[StageBehaviour], value: object) -> None:
        if not isinstance(value, StageBehaviour):
            raise ValidationError(field="default", value=value, expected="a StageBehaviour")

    def at(self, level: int) -> StageBehaviour:
        """The behaviour at ``level``."""
        return self.stages.get(level, self.default)

    def check(self, ladder: EscalationLadder) -> None:
        """Raise :class:`ValidationError` unless every level named is one of ``ladder``'s."""
        levels = ladder.levels
        span = f"{levels[0]}..{levels[-1]}"
        for level in self.stages:
            if level not in levels:
                raise ValidationError(
                    field="stages",
                    value=level,
                    expected=f"a level of ladder {ladder.name!r} ({span})",
                )
        if self.raise_at is not None:
            allowed = (ladder.first_level, *ladder.bypass_targets(None))
            if self.raise_at not in allowed:
                raise ValidationError(
                    field="raise_at",
                    value=self.raise_at,
                    expected="one of " + ", ".join(map(str, allowed)) + f" for {ladder.name!r}",
                )


# --- results ----------------------------------------------------------------------------------


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


def _percentiles(values: Iterable[int]) -> Percentiles | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return Percentiles(
        count=len(ordered),
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p95=percentile(ordered, 95),
        max=ordered[-1],
        mean=round(sum(ordered) / len(ordered), 3),
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


# --- the simulation ---------------------------------------------------------------------------


class _Level:
    """Per-level constants of the play, computed once."""

    __slots__ = (
        "behaviour",
        "bypass_to",
        "cum",
        "days",
        "holders",
        "last",
        "level",
        "state",
        "timed",
    )

    def __init__(self, ladder: EscalationLadder, level: int, behaviour: StageBehaviour) -> None:
        self.level = level
        self.state = state_of(ladder, level)
        self.behaviour = behaviour
        self.holders = ladder.holders(level)
        self.timed = ladder.stage_at(level).has_response_deadline
        self.last = ladder.next_level(level) is None
        self.bypass_to = tuple(state_of(ladder, lv) for lv in ladder.bypass_targets(level))
        self.days = tuple(d for d, _ in behaviour.response_days)
        cum: list[float] = []
        total = 0.0
        for _, weight in behaviour.response_days:
            total += weight
            cum.append(total)
        self.cum = tuple(cum)


class _Path:
    """The running state of one escalation."""

    __slots__ = (
        "asked",
        "breaches",
        "bypasses",
        "commands",
        "due",
        "entered",
        "entry_day",
        "granted",
        "granted_here",
        "holder",
        "index",
        "level",
        "raised_at",
        "raiser",
        "reply_day",
        "wid",
    )

    def __init__(self, index: int, wid: str, raiser: Actor) -> None:
        self.index = index
        self.wid = wid
        self.raiser = raiser
        self.level: _Level | None = None
        self.holder: Actor | None = None
        self.entered: datetime | None = None
        self.entry_day = date.min
        self.due: datetime | None = None
        self.reply_day = 0  # 0: no response will come
        self.raised_at: datetime | None = None
        self.commands = 0
        self.breaches = 0
        self.asked = 0
        self.granted = 0
        self.granted_here = 0
        self.bypasses = 0


# Scheduled actions
_RAISE: Final = 0
_RESPOND: Final = 1
_DECIDE_ACTION: Final = 2  # the raiser decides after a response
_MOVE_ON: Final = 3  # the raiser moves on without a response (no deadline)
_ASK_EXTENSION: Final = 4  # the holder asks for further time
_ANSWER: Final = 5  # the raiser grants or refuses it
_TICK: Final = 6


def _check_args(n: object, seed: object, start: object, period_days: object) -> datetime:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _MAX_N:
        raise ValidationError(field="n", value=n, expected=f"a whole number in 1..{_MAX_N:,}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValidationError(field="seed", value=seed, expected="a whole number")
    if (
        isinstance(period_days, bool)
        or not isinstance(period_days, int)
        or not 1 <= period_days <= _MAX_PERIOD
    ):
        raise ValidationError(
            field="period_days", value=period_days, expected=f"a whole number in 1..{_MAX_PERIOD}"
        )
    if not isinstance(start, datetime) or start.tzinfo is None or start.utcoffset() is None:
        raise ValidationError(field="start", value=start, expected="a timezone-aware datetime")
    if start.year < 1990 or (start + timedelta(days=period_days + 400)).year > 2100:
        raise ValidationError(
            field="start",
            value=start.isoformat(),
            expected="a moment from 1990 with the period ending (plus a year) by 2100",
        )
    return start.astimezone(UTC)


def simulate_escalations(
    ladder: EscalationLadder,
    policy: Policy | None = None,
    *,
    n: int = 1000,
    seed: int = 0,
    behaviour: Behaviour | StageBehaviour | None = None,
    start: datetime = DEFAULT_START,
    period_days: int = 365,
    store: Store | None = None,
    id_prefix: str = "sim",
    progress: Callable[[int, int], None] | None = None,
) -> EscalationSimulation:
    """Simulate ``n`` escalations of ``ladder`` under ``policy`` (see the module docstring).

    Escalations are raised on working days between ``start`` and ``period_days`` later, at
    a moment between 09:00 and 17:00 London time, and played until each ends. Workflow ids
    are ``<id_prefix>-000001`` and on; with a ``store`` that already holds one of them the
    raise fails with :class:`~qaflow.errors.ConcurrencyError`. Arguments out of range raise
    :class:`~qaflow.errors.ValidationError` naming the argument before anything is written.
    ``progress(done, n)`` is called as escalations end (about 200 times in a run): the CLI's
    progress bar.
    """
    if not isinstance(ladder, EscalationLadder):
        raise ValidationError(field="ladder", value=ladder, expected="an EscalationLadder")
    if policy is None:
        policy = SIMULATION_POLICY
    elif not isinstance(policy, Policy):
        raise ValidationError(field="policy", value=policy, expected="a Policy")
    start = _check_args(n, seed, start, period_days)
    if behaviour is None:
        behaviour = Behaviour()
    elif isinstance(behaviour, StageBehaviour):
        behaviour = Behaviour(behaviour)
    elif not isinstance(behaviour, Behaviour):
        raise ValidationError(
            field="behaviour", value=behaviour, expected="a Behaviour or a StageBehaviour"
        )
    behaviour.check(ladder)
    if not isinstance(id_prefix, str) or not id_prefix.strip() or len(id_prefix) > 32:
        raise ValidationError(
            field="id_prefix", value=id_prefix, expected="non-empty text of at most 32 characters"
        )
    sim = _Simulation(ladder, policy, behaviour, store or MemoryStore(), seed)
    sim.progress = progress
    # The run allocates millions of long-lived objects and no reference cycles (the
    # engine's records are trees), so the cyclic collector would only rescan the growing
    # store again and again: it is paused for the run and restored after.
    collecting = gc.isenabled()
    gc.disable()
    try:
        paths = sim.run(n, start, period_days, id_prefix)
    finally:
        if collecting:
            gc.enable()
    stages = tuple(state_of(ladder, lv) for lv in ladder.levels)
    if ladder.referral is not None:
        stages += (REFERRED,)
    return EscalationSimulation(
        ladder=ladder.name,
        machine=sim.spec.name,
        policy=policy.name,
        policy_version=policy.version,
        seed=seed,
        n=n,
        start=start,
        period_days=period_days,
        behaviour=behaviour,
        stages=stages,
        paths=paths,
        summary=sim.summary(paths, stages),
    )


class _Simulation:
    """One run: the engine, the clock, the queue of scheduled actions and the paths."""

    def __init__(
        self,
        ladder: EscalationLadder,
        policy: Policy,
        behaviour: Behaviour,
        store: Store,
        seed: int,
    ) -> None:
        self.ladder = ladder
        self.spec = escalation_machine(ladder, policy)
        self.calendar: WorkingCalendar = self.spec.calendar
        self.rng = Random(seed)
        self.clock = ManualClock(datetime(1990, 1, 1, tzinfo=UTC))
        self.engine = Engine(store, [self.spec], clock=self.clock)
        self.levels = {lv: _Level(ladder, lv, behaviour.at(lv)) for lv in ladder.levels}
        self.by_state = {lv.state: lv for lv in self.levels.values()}
        self.stage_names = {lv: level.state for lv, level in self.levels.items()}
        if ladder.referral_level is not None:
            self.stage_names[ladder.referral_level] = REFERRED
        self.raise_to = None if behaviour.raise_at is None else state_of(ladder, behaviour.raise_at)
        self.referral = ladder.referral is not None
        self.queue: list[tuple[datetime, int, int, int]] = []
        self.counter = 0
        self.ticks: set[datetime] = set()
        self.paths: list[_Path] = []
        self.by_wid: dict[str, _Path] = {}
        self.results: list[EscalationPath | None] = []
        # Stage entries per holder role, per month (year * 12 + month - 1).
        self.load: dict[str, dict[int, int]] = {
            h: {} for lv in self.levels.values() for h in lv.holders
        }
        self.breaches_by_stage: dict[str, int] = {}
        self.holders: dict[str, Actor] = {}
        self._moments: dict[int, datetime] = {}
        self._dates: dict[datetime, date] = {}
        self.progress: Callable[[int, int], None] | None = None
        self.finished = 0
        self.ext = ladder.extensions
        self.ext_length = str(self.ext.max_length) if self.ext.max_length is not None else ""

    # --- time helpers (cached: simulated moments repeat a great deal) ---------------------

    def local_date(self, moment: datetime) -> date:
        """The Europe/London date of ``moment``."""
        day = self._dates.get(moment)
        if day is None:
            if len(self._dates) > 65_536:
                self._dates.clear()
            day = self._dates[moment] = moment.astimezone(LONDON).date()
        return day

    def day_after(self, day: date, k: int, at: int) -> datetime:
        """Local time ``_TIMES[at]`` on the ``k``-th working day after ``day`` (k >= 0)."""
        key = (day.toordinal() << 11) | (k << 2) | at
        found = self._moments.get(key)
        if found is None:
            target = self.calendar.add_working_days_to_date(day, k) if k else day
            found = datetime.combine(target, _TIMES[at], LONDON).astimezone(UTC)
            self._moments[key] = found
        return found

    def schedule(self, when: datetime, action: int, path: _Path) -> None:
        self.counter += 1
        heapq.heappush(self.queue, (when, self.counter, action, path.index))

    def schedule_tick(self, when: datetime) -> None:
        if when not in self.ticks:
            self.ticks.add(when)
            self.counter += 1
            heapq.heappush(self.queue, (when, self.counter, _TICK, -1))

    # --- the run --------------------------------------------------------------------------

    def run(
        self, n: int, start: datetime, period_days: int, prefix: str
    ) -> tuple[EscalationPath, ...]:
        rng = self.rng
        first = start.astimezone(LONDON).date()
        days = self.calendar.working_dates(first, first + timedelta(days=period_days - 1))
        if not days:
            days = [self.calendar.add_working_days_to_date(first, 1)]
        role = self.ladder.raiser
        raisers = [Actor(f"{role.upper()}-{k:02d}", role) for k in range(1, 26)]
        width = max(6, len(str(n)))
        minute = timedelta(minutes=1)
        for i in range(n):
            day = days[int(rng.random() * len(days))]
            when = self.day_after(day, 0, _OPEN) + int(rng.random() * 480) * minute
            path = _Path(i, f"{prefix}-{i + 1:0{width}d}", raisers[i % 25])
            self.paths.append(path)
            self.by_wid[path.wid] = path
            self.results.append(None)
            self.schedule(max(when, start), _RAISE, path)
        queue = self.queue
        clock = self.clock
        paths = self.paths
        pop = heapq.heappop
        handlers: dict[int, Callable[[_Path, datetime], None]] = {
            _RAISE: self.do_raise,
            _RESPOND: self.do_respond,
            _DECIDE_ACTION: self.do_decide,
            _MOVE_ON: self.do_move_on,
            _ASK_EXTENSION: self.do_ask,
            _ANSWER: self.do_answer,
        }
        now = clock.now()
        while queue:
            when, _, action, index = pop(queue)
            if when > now:
                now = clock.set(when)
            if action == _TICK:
                self.ticks.discard(when)
                self.do_tick(when)
            else:
                handlers[action](paths[index], when)
        results = tuple(r for r in self.results if r is not None)
        assert len(results) == n, "every path ends"
        return results

    # --- commands -------------------------------------------------------------------------

    def fire(self, path: _Path, trigger: str, actor: Actor, payload: dict[str, Any]) -> Step:
        step = self.engine.fire(path.wid, trigger, actor, payload)
        path.commands += 1
        return step

    def after(self, path: _Path, step: Step) -> None:
        """Follow the workflow after a command that may have moved or ended it."""
        state = step.snapshot.state
        level = path.level
        if level is not None and state == level.state:
            return
        new = self.by_state.get(state)
        if new is None:  # resolved, withdrawn or referred: the escalation has ended
            self.finish(path, step)
        else:
            self.enter(path, new, step)

    def do_raise(self, path: _Path, when: datetime) -> None:
        reasons = self.ladder.reasons
        reason = reasons[int(self.rng.random() * len(reasons))]
        payload: dict[str, Any] = {"subject_id": f"S-{path.index + 1:06d}", "reason": reason}
        if reason == "other":
            payload["details"] = "simulated concern"
        if self.raise_to is not None:
            payload["to"] = self.raise_to
            if self.ladder.bypass_consultation:
                payload["consulted"] = "simulated consultation"
        if self.ladder.agreed_response is not None:
            payload["response_time"] = str(self.ladder.agreed_response.max)
        step = self.engine.start(self.spec, path.wid, "raise", path.raiser, payload)
        path.commands = 1
        path.raised_at = when
        self.after(path, step)

    def enter(self, path: _Path, level: _Level, step: Step) -> None:
        """The path entered ``level`` (by raise, escalate, bypass or an escalating breach)."""
        rng = self.rng
        when = step.event.at
        path.level = level
        path.entered = when
        path.granted_here = 0
        day = path.entry_day = self.local_date(when)
        holders = level.holders
        role = holders[int(rng.random() * len(holders))] if len(holders) > 1 else holders[0]
        holder = self.holders.get(role)
        if holder is None:
            holder = self.holders[role] = Actor(f"{role.upper()}-1", role)
        path.holder = holder
        month = day.year * 12 + day.month - 1
        per = self.load[role]
        per[month] = per.get(month, 0) + 1
        if rng.random() < level.behaviour.respond_probability:
            path.reply_day = level.days[bisect_right(level.cum, rng.random() * level.cum[-1])]
        else:
            path.reply_day = 0
        path.due = None
        if level.timed:
            for d in step.snapshot.deadlines:
                if d.name == RESPONSE_DEADLINE:
                    path.due = d.due_at
            assert path.due is not None, "a timed stage opens its response deadline"
        self.plan(path, asking=True)

    def plan(self, path: _Path, *, asking: bool) -> None:
        """Schedule what happens next at the current stage."""
        level = path.level
        assert level is not None
        reply = self.day_after(path.entry_day, path.reply_day, _REPLY) if path.reply_day else None
        due = path.due
        if due is None:  # no response deadline: the raiser waits, then moves on
            wait = self.day_after(path.entry_day, level.behaviour.wait_days, _DECIDE)
            if reply is not None and reply < wait:
                self.schedule(reply, _RESPOND, path)
            else:
                self.schedule(wait, _MOVE_ON, path)
            return
        if reply is not None and reply < due:
            self.schedule(reply, _RESPOND, path)
            return
        if asking and self.may_extend(path):
            ask = max(self.day_after(self.local_date(due), 0, _ASK), path.entered or due)
            if ask + _HOUR < due and self.rng.random() < level.behaviour.extension_probability:
                self.schedule(ask, _ASK_EXTENSION, path)
                return
        self.schedule_tick(due)

    def may_extend(self, path: _Path) -> bool:
        ext = self.ext
        if not ext.allowed:
            return False
        used = path.granted if ext.per == "escalation" else path.granted_here
        return used < ext.max_count

    def do_respond(self, path: _Path, when: datetime) -> None:
        holder = path.holder
        level = path.level
        assert holder is not None and level is not None
        self.fire(path, "respond", holder, {"response": "simulated response"})
        decide = self.day_after(self.local_date(when), level.behaviour.decision_days, _DECIDE)
        self.schedule(max(decide, when), _DECIDE_ACTION, path)

    def do_decide(self, path: _Path, when: datetime) -> None:
        level = path.level
        assert level is not None
        if self.rng.random() < level.behaviour.accept_probability:
            self.after(path, self.accept(path))
        else:
            self.move_on(path)

    def do_move_on(self, path: _Path, when: datetime) -> None:
        self.move_on(path)

    def move_on(self, path: _Path) -> None:
        """Not accepted, or no response in time: withdraw, bypass or go up."""
        level = path.level
        assert level is not None
        b = level.behaviour
        r = self.rng.random()
        raiser = path.raiser
        if r < b.withdraw_probability:
            step = self.fire(path, "withdraw", raiser, {})
        elif r < b.withdraw_probability + b.bypass_probability and level.bypass_to:
            targets = level.bypass_to
            to = targets[int(self.rng.random() * len(targets))]
            payload = {"to": to}
            if self.ladder.bypass_consultation:
                payload["consulted"] = "simulated consultation"
            for role in self.ladder.bypass_consulted[:1]:  # consulted at the stage first
                self.fire(path, "consult", self.actor(role), {})
            step = self.fire(path, "bypass", raiser, payload)
            path.bypasses += 1
        elif not level.last:
            stage = self.ladder.stage_at(level.level)
            endorsers = stage.endorsed_by if stage.endorse_all else stage.endorsed_by[:1]
            for role in endorsers:  # an endorsement (each, where all must) first
                self.fire(path, "endorse", self.actor(role), {})
            by = self.actor(stage.escalated_by[0]) if stage.escalated_by else raiser
            step = self.fire(path, "escalate", by, {})
        elif self.referral:
            step = self.fire(path, "refer_externally", raiser, {})
        else:
            step = self.accept(path)
        self.after(path, step)

    def actor(self, role: str) -> Actor:
        """The one simulated person holding ``role`` (besides raisers)."""
        person = self.holders.get(role)
        if person is None:
            person = self.holders[role] = Actor(f"{role.upper()}-1", role)
        return person

    def accept(self, path: _Path) -> Step:
        """Accept at the current stage: the joint parties agree first, the accepter accepts."""
        level = path.level
        assert level is not None
        stage = self.ladder.stage_at(level.level)
        for role in stage.joint:
            self.fire(path, "agree", self.actor(role), {})
        by = self.actor(stage.accepted_by[0]) if stage.accepted_by else path.raiser
        return self.fire(path, "accept", by, {})

    def do_ask(self, path: _Path, when: datetime) -> None:
        holder = path.holder
        assert holder is not None
        self.fire(path, "request_extension", holder, {"length": self.ext_length})
        path.asked += 1
        self.schedule(when + _HOUR, _ANSWER, path)

    def do_answer(self, path: _Path, when: datetime) -> None:
        level = path.level
        assert level is not None
        if self.rng.random() < level.behaviour.grant_probability:
            step = self.fire(path, "grant_extension", path.raiser, {})
            path.granted += 1
            path.granted_here += 1
            for d in step.snapshot.deadlines:
                if d.name == RESPONSE_DEADLINE:
                    path.due = d.due_at
        else:
            self.fire(path, "refuse_extension", path.raiser, {})
        self.plan(path, asking=False)

    def do_tick(self, when: datetime) -> None:
        for step in self.engine.tick(when):
            path = self.by_wid.get(step.event.workflow_id)
            if path is None:  # a workflow of the given store that is not ours
                continue
            if step.event.payload.get("deadline") != RESPONSE_DEADLINE:
                path.commands += 1  # another party's deadline: recorded, the stage goes on
                continue
            path.commands += 1
            path.breaches += 1
            level = path.level
            assert level is not None
            self.breaches_by_stage[level.state] = self.breaches_by_stage.get(level.state, 0) + 1
            if step.snapshot.state == level.state:
                self.move_on(path)  # the raiser acts on the breach at once
            else:
                self.after(path, step)  # the ladder moved it up by itself

    def finish(self, path: _Path, step: Step) -> None:
        data = step.snapshot.data
        level = data["level"]
        raised = path.raised_at
        assert raised is not None and isinstance(level, int)
        self.finished += 1
        if self.progress is not None:
            total = len(self.paths)
            if self.finished == total or self.finished % max(1, total // 200) == 0:
                self.progress(self.finished, total)
        self.results[path.index] = EscalationPath(
            path.wid,
            step.snapshot.state,
            self.stage_names[level],
            level,
            raised,
            step.event.at,
            int(data["working_days_open"]),
            path.commands,
            path.breaches,
            path.asked,
            path.granted,
            path.bypasses,
        )
        del self.by_wid[path.wid]

    # --- the summary ----------------------------------------------------------------------

    def summary(
        self, paths: tuple[EscalationPath, ...], stages: tuple[str, ...]
    ) -> EscalationSummary:
        names: tuple[str, ...] = OUTCOMES if self.ladder.referral is not None else OUTCOMES[:2]
        outcomes: dict[str, int] = dict.fromkeys(names, 0)
        ended: dict[str, dict[str, int]] = {s: {} for s in stages}
        for p in paths:
            outcomes[p.state] = outcomes.get(p.state, 0) + 1
            at = ended[p.stage]
            at[p.state] = at.get(p.state, 0) + 1
        days = _percentiles(p.working_days for p in paths)
        assert days is not None
        load = {
            role: {f"{m // 12:04d}-{m % 12 + 1:02d}": c for m, c in sorted(per.items())}
            for role, per in self.load.items()
            if per
        }
        return EscalationSummary(
            paths=len(paths),
            outcomes=outcomes,
            ended_at={s: at for s, at in ended.items() if at},
            referrals=outcomes.get(REFERRED, 0),
            working_days=days,
            working_days_to_resolution=_percentiles(
                p.working_days for p in paths if p.state == RESOLVED
            ),
            breaches=sum(p.breaches for p in paths),
            paths_breached=sum(1 for p in paths if p.breaches),
            breaches_by_stage={
                s: self.breaches_by_stage[s] for s in stages if s in self.breaches_by_stage
            },
            extensions_requested=sum(p.extensions_requested for p in paths),
            extensions_granted=sum(p.extensions_granted for p in paths),
            bypasses=sum(p.bypasses for p in paths),
            commands=sum(p.commands for p in paths),
            load=load,
        )
