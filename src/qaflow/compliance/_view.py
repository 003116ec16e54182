"""The compliance view's records and queries (see :mod:`qaflow.compliance`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal, cast

import attrs

from qaflow.calendar import ensure_aware
from qaflow.compliance._period import PeriodRows, period_instances
from qaflow.compliance._rows import Instance, Outcome, counted, still_open, workflow_instances
from qaflow.engine import Engine
from qaflow.errors import ValidationError
from qaflow.records import WorkflowSnapshot
from qaflow.store import Store

__all__ = [
    "Instance",
    "Outcome",
    "TimescaleCompliance",
    "as_of",
    "compliance",
    "instances",
    "report_rows",
]


@attrs.frozen
class TimescaleCompliance:
    """For one team and timescale in a date range: how many instances were met, missed and
    are still open (superseded ones are counted apart and left out of the shares)."""

    team: str | None
    machine: str
    name: str
    clause: str | None
    met: int = 0
    missed: int = 0
    open: int = 0
    superseded: int = 0

    @property
    def counted(self) -> int:
        return self.met + self.missed + self.open

    def share(self, outcome: Literal["met", "missed", "open"]) -> float | None:
        """The share of counted instances with ``outcome`` (``None`` when none counted)."""
        total = self.counted
        return None if total == 0 else getattr(self, outcome) / total


def instances(
    engine: Engine,
    *,
    machines: Iterable[str] | None = None,
    until: datetime | None = None,
    since: datetime | None = None,
    known_only: bool = False,
) -> list[Instance]:
    """Every deadline instance of the store's workflows (of ``machines``, if given), with its
    outcome as the events up to ``until`` (default: all) tell it. ``known_only`` skips
    workflows pinned to a spec the engine does not hold (else that raises
    :class:`~qaflow.errors.PolicyError`). Reads; writes nothing.

    ``since``: only instances still open or settled at or after ``since`` are wanted, so a
    workflow with no event since then is not replayed: what it has open is its snapshot's
    open deadlines (a snapshot is its replay), and all else it settled before ``since``.
    One that starts after ``until`` is skipped without reading its events. So a period's
    compliance reads the period's workflows, not the whole store's history; a store with
    ``period_snapshots`` (SQLite, PostgreSQL) does not even hand over the other snapshots.
    """
    wanted = None if machines is None else set(machines)
    limit = None if until is None else ensure_aware(until, "until")
    early = None if since is None else ensure_aware(since, "since")
    out: list[Instance] = []
    snaps: Iterable[WorkflowSnapshot] = engine.store.snapshots()
    period = getattr(engine.store, "period_snapshots", None)
    if early is not None and limit is not None and callable(period):
        snaps = period(early, limit, wanted)  # the rest only count as skipped below
    for snap in snaps:
        quiet = counted(engine, snap, wanted, known_only, early, limit)
        if quiet is None:
            continue
        if quiet:
            out.extend(still_open(snap))
            continue
        out.extend(workflow_instances(engine, snap.workflow_id, limit))
    return out


def compliance(
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    team: str | None = None,
    machines: Iterable[str] | None = None,
    policy: str | None = None,
    known_only: bool = False,
) -> list[TimescaleCompliance]:
    """Per team and timescale, the instances settled in ``[start, end)`` (met, missed or
    superseded then) and those still open at ``end``, as the events up to ``end`` tell.
    ``policy`` keeps one council's workflows. Reads only.

    A store with period deadline reads (SQLite, PostgreSQL) answers from its deadline rows
    and the events that closed them, replaying only what the rows cannot tell
    (:mod:`qaflow.compliance._period`): the same counts, at a cost that follows the period,
    not the workflows' ages (issue 14)."""
    start = ensure_aware(start, "start")
    end = ensure_aware(end, "end")
    if end <= start:
        raise ValidationError(field="end", value=end.isoformat(), expected="later than start")
    counts: dict[tuple[str | None, str, str, str | None], dict[str, int]] = {}
    store = engine.store
    if all(
        callable(getattr(store, name, None))
        for name in ("period_snapshots", "period_deadlines", "events_after")
    ):
        wanted = None if machines is None else set(machines)
        rows = cast(PeriodRows, store)
        found = period_instances(engine, rows, start, end, machines=wanted, known_only=known_only)
    else:
        found = instances(engine, machines=machines, until=end, since=start, known_only=known_only)
    for inst in found:
        if (team is not None and inst.team != team) or policy not in (None, inst.policy):
            continue
        settled = inst.closed_at
        if settled is None:
            if inst.opened_at >= end:
                continue
        elif not start <= settled < end:
            continue
        key = (inst.team, inst.machine, inst.name, inst.clause)
        bucket = counts.setdefault(key, {"met": 0, "missed": 0, "open": 0, "superseded": 0})
        bucket[inst.outcome] += 1
    return [
        TimescaleCompliance(t, m, n, c, **b)
        for (t, m, n, c), b in sorted(counts.items(), key=lambda kv: tuple(map(str, kv[0])))
    ]


def as_of(
    engine: Engine,
    moment: datetime,
    *,
    team: str | None = None,
    machines: Iterable[str] | None = None,
    overdue_only: bool = False,
) -> list[Instance]:
    """The deadline instances open on ``moment`` (opened by then, neither met nor dropped
    by then), each as the events up to ``moment`` tell it; an instance whose ``due_at`` is
    before ``moment`` was overdue then (a missed one stays overdue until its duty is done).
    ``overdue_only`` keeps just those. Reads only."""
    moment = ensure_aware(moment, "moment")
    out = []
    for inst in instances(engine, machines=machines, until=moment):
        if team is not None and inst.team != team:
            continue
        if inst.opened_at > moment or inst.outcome in ("met", "superseded"):
            continue
        if inst.resolved_at is not None and inst.resolved_at <= moment:
            continue
        if overdue_only and inst.due_at >= moment:
            continue
        out.append(inst)
    return sorted(out, key=lambda i: (i.due_at, i.workflow_id, i.name))


def report_rows(
    store: Store, start: datetime, end: datetime, *, policy: str | None = None
) -> tuple[TimescaleCompliance, ...]:
    """The QA report's timescale section: compliance per team for every shipped machine with
    rolling timescales (case, supervision, QA calendar). Reads only."""
    from qaflow.registry import shipped_specs

    specs = shipped_specs()
    engine = Engine(store, specs)
    machines = {s.name for s in specs if s.rolling}
    rows = compliance(engine, start, end, machines=machines, policy=policy, known_only=True)
    return tuple(rows)
