"""Escalation-path simulation: ``n`` escalations of one ladder played on the real engine.

Paths are played in fixed chunks of ``chunk`` paths (default :data:`CHUNK`; path ``i`` is in
chunk ``i // chunk``), each with its own :class:`random.Random` seeded from the seed and the
chunk's number, its own clock and, unless a ``store`` is given, its own
:class:`~qaflow.store.MemoryStore` that is dropped when the chunk ends. A chunk's result is
a :class:`~qaflow.sim._tally.Tally` (and its paths, when kept), so the result is the same
whichever process plays a chunk: ``workers`` spreads chunks over processes with the same
totals as one process, and with ``keep_paths=False`` memory does not grow with ``n``. This
module checks the arguments and splits the run; :func:`qaflow.sim._play.play` plays a chunk.
"""

from __future__ import annotations

import gc as _gc
import multiprocessing
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final, Literal

import attrs

from qaflow.errors import ValidationError
from qaflow.machines.escalation import REFERRED, escalation_machine, state_of
from qaflow.policies.base import Policy
from qaflow.policies.ladders import EscalationLadder
from qaflow.sim._behaviour import Behaviour, StageBehaviour
from qaflow.sim._play import play
from qaflow.sim._results import EscalationPath, EscalationSimulation
from qaflow.sim._tally import Tally
from qaflow.spec import MachineSpec
from qaflow.store import Store

__all__ = ["CHUNK", "DEFAULT_START", "SIMULATION_POLICY", "GcOption", "simulate_escalations"]

SIMULATION_POLICY: Final = Policy("qaflow-simulation", "1")
"""The policy simulated workflows pin when none is given (England bank holidays only)."""

DEFAULT_START: Final = datetime(2026, 1, 5, tzinfo=UTC)
"""The default start of the period escalations are raised over (a Monday)."""

CHUNK: Final = 10_000
"""Paths per chunk by default: the unit of seeding, of work given to a worker, and of a
dropped store."""

GcOption = Literal["keep", "pause"]
"""``keep``: leave the host's garbage collector alone; ``pause``: disable it for the run."""

_MAX_N: Final = 10_000_000
_MAX_PERIOD: Final = 36_600
_MAX_WORKERS: Final = 256


@attrs.frozen
class _Job:
    """One chunk of a run: everything a worker process needs to play it."""

    ladder: EscalationLadder
    policy: Policy
    behaviour: Behaviour
    seed: int
    chunk: int
    n: int
    start: datetime
    period_days: int
    prefix: str
    keep_paths: bool
    size: int
    lean: bool = True


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


def _check_options(
    id_prefix: object, workers: object, gc: object, store: object, chunk: object
) -> None:
    if not isinstance(id_prefix, str) or not id_prefix.strip() or len(id_prefix) > 32:
        raise ValidationError(
            field="id_prefix", value=id_prefix, expected="non-empty text of at most 32 characters"
        )
    if (
        isinstance(workers, bool)
        or not isinstance(workers, int)
        or not 1 <= workers <= _MAX_WORKERS
    ):
        raise ValidationError(
            field="workers", value=workers, expected=f"a whole number in 1..{_MAX_WORKERS}"
        )
    if store is not None and workers != 1:
        raise ValidationError(
            field="workers", value=workers, expected="1 when a store is given (one process)"
        )
    if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1 <= chunk <= _MAX_N:
        raise ValidationError(
            field="chunk", value=chunk, expected=f"a whole number in 1..{_MAX_N:,}"
        )
    if gc not in ("keep", "pause"):
        raise ValidationError(field="gc", value=gc, expected="'keep' or 'pause'")


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
    workers: int = 1,
    keep_paths: bool = True,
    gc: GcOption = "keep",
    chunk: int = CHUNK,
    lean: bool = True,
) -> EscalationSimulation:
    """Simulate ``n`` escalations of ``ladder`` under ``policy`` (see :mod:`qaflow.simulate`).

    Escalations are raised on working days between ``start`` and ``period_days`` later, at
    a moment in the behaviour's raise window (London time), and played until each ends.
    Workflow ids are ``<id_prefix>-000001`` and on; with a ``store`` that already holds one
    of them the raise fails with :class:`~qaflow.errors.ConcurrencyError`; without one, each
    chunk of :data:`CHUNK` paths plays in a store of its own, dropped after. ``workers``
    plays chunks in that many processes (same result as one). ``keep_paths=False`` keeps
    only the summary (``paths`` is empty): memory then stays flat however large ``n``.
    ``gc="pause"`` disables the cyclic garbage collector for the run (the engine's records
    form no cycles, so it would only rescan what the run holds) and restores it after; the
    default leaves it as the host set it. ``chunk`` is the number of paths seeded together
    (the same seed and chunk give the same result). Arguments out of range raise
    :class:`~qaflow.errors.ValidationError` naming the argument before anything is written.
    ``progress(done, n)`` is called as escalations end: the CLI's progress bar.

    ``lean`` (the default), when no store is given: each chunk plays in a
    :class:`~qaflow.store.SimulationStore` on an engine in simulation mode, which runs every
    check and computes state, data and deadlines as usual but keeps no event log, hash chain,
    notification or task rows, none of which the result reads: the result is the same as with
    ``lean=False`` (each chunk in a :class:`~qaflow.store.MemoryStore`, everything recorded),
    which the tests check for every shipped ladder. A ``store`` given is always written in
    full (``lean`` is then ignored), so it can be verified and replayed.
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
    _check_options(id_prefix, workers, gc, store, chunk)
    if lean is not True and lean is not False:
        raise ValidationError(field="lean", value=lean, expected="True or False")
    spec = _spec(ladder, policy)
    jobs = [
        _Job(
            ladder,
            policy,
            behaviour,
            seed,
            c,
            n,
            start,
            period_days,
            id_prefix,
            keep_paths,
            chunk,
            lean,
        )
        for c in range((n + chunk - 1) // chunk)
    ]
    tally = Tally()
    paths: list[EscalationPath] = []
    collecting = _gc.isenabled()
    if gc == "pause":
        _gc.disable()
    try:
        if workers == 1 or len(jobs) == 1:
            for job in jobs:
                part, kept = play(job, spec, store, progress, tally.paths)
                tally.merge(part)
                paths.extend(kept)
        else:
            context = multiprocessing.get_context("spawn")
            with context.Pool(min(workers, len(jobs)), _worker_init, (gc,)) as pool:
                for part, kept in pool.imap(_play_in_worker, jobs):
                    tally.merge(part)
                    paths.extend(kept)
                    if progress is not None:
                        progress(tally.paths, n)
    finally:
        if gc == "pause" and collecting:
            _gc.enable()
    stages = tuple(state_of(ladder, lv) for lv in ladder.levels)
    if ladder.referral is not None:
        stages += (REFERRED,)
    return EscalationSimulation(
        ladder=ladder.name,
        machine=spec.name,
        policy=policy.name,
        policy_version=policy.version,
        seed=seed,
        n=n,
        start=start,
        period_days=period_days,
        behaviour=behaviour,
        stages=stages,
        paths=tuple(paths),
        summary=tally.summary(stages, referral=ladder.referral is not None),
    )


def _worker_init(gc: GcOption) -> None:
    if gc == "pause":
        _gc.disable()


def _play_in_worker(job: _Job) -> tuple[Tally, tuple[EscalationPath, ...]]:
    return play(job, _spec(job.ladder, job.policy), None, None, 0)


@lru_cache(maxsize=8)
def _spec(ladder: EscalationLadder, policy: Policy) -> MachineSpec:
    """Each machine is built once per process, however many chunks and runs play it (the
    machine is a pure function of the ladder and policy, and frozen)."""
    return escalation_machine(ladder, policy)
