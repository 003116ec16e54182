"""The compliance view's records and queries (see :mod:`qaflow.compliance`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

import attrs

from qaflow._rolling import event_bindings, instance_rule
from qaflow.calendar import ensure_aware
from qaflow.engine import Engine
from qaflow.errors import PolicyError, ValidationError
from qaflow.records import WorkflowSnapshot
from qaflow.spec import DEADLINE_MISSED
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

Outcome = Literal["met", "missed", "open", "superseded"]


@attrs.frozen
class Instance:
    """One deadline instance and what became of it.

    ``outcome``: ``met`` (closed by a qualifying event by its due time; for a deadline that is
    not rolling, closed by any command by its due time), ``missed`` (breached by ``tick``, or
    met only after its due time), ``superseded`` (closed without being met: a restart, a
    change of cadence, the workflow ending) or ``open``. ``resolved_at`` is when the duty was
    done or dropped: for a missed instance, the first later event that meets its timescale.
    """

    workflow_id: str
    machine: str
    policy: str
    team: str | None
    name: str
    clause: str | None
    opened_at: datetime
    due_at: datetime
    closed_at: datetime | None
    outcome: Outcome
    resolved_at: datetime | None


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
        if wanted is not None and snap.machine not in wanted:
            continue
        if known_only:
            try:
                engine.spec_for(snap)
            except PolicyError:
                continue
        if limit is not None and snap.created_at is not None and snap.created_at > limit:
            continue
        if early is not None and snap.updated_at is not None and snap.updated_at < early:
            out.extend(_still_open(snap))
            continue
        out.extend(_workflow_instances(engine, snap.workflow_id, limit))
    return out


def _still_open(snap: WorkflowSnapshot) -> list[Instance]:
    """The open instances of a workflow quiet since before the period: its snapshot's."""
    team = snap.data.get("team_id")
    return [
        Instance(
            snap.workflow_id,
            snap.machine,
            snap.policy,
            team if isinstance(team, str) else None,
            d.name,
            d.clause,
            d.opened_at,
            d.due_at,
            None,
            "open",
            None,
        )
        for d in snap.deadlines
    ]


def _workflow_instances(engine: Engine, wid: str, limit: datetime | None) -> list[Instance]:
    steps = engine.replay_steps(wid)
    if limit is not None:
        steps = [s for s in steps if s.event.at <= limit]
    if not steps:
        return []
    spec = engine.spec_for(steps[-1].snapshot)
    team = steps[-1].snapshot.data.get("team_id")
    team = team if isinstance(team, str) else None
    rows: dict[str, dict[str, object]] = {}
    missed_open: dict[str, list[str]] = {}
    before: dict[str, object] = {}
    for step in steps:
        event = step.event
        names = None
        for did in step.breached:
            rows[did]["outcome"], rows[did]["closed_at"] = "missed", event.at
            missed_open.setdefault(str(rows[did]["name"]), []).append(did)
        for did in step.closed:
            row = rows.get(did)
            if row is None:  # pragma: no cover - every closed id was opened earlier
                continue
            rule = instance_rule(spec.rolling, str(row["name"]))
            if rule is None:
                met = event.trigger != DEADLINE_MISSED
            else:
                names = names or event_bindings(event, before)
                met = rule.is_met_by(event.trigger, names)
            due = row["due_at"]
            assert isinstance(due, datetime)
            row["closed_at"] = event.at
            row["resolved_at"] = event.at
            row["outcome"] = ("met" if event.at <= due else "missed") if met else "superseded"
        for rule in spec.rolling:  # a missed duty is resolved by the next event that meets it
            waiting = missed_open.get(rule.name)
            if waiting and event.trigger in rule.met_by:
                names = names or event_bindings(event, before)
                if rule.is_met_by(event.trigger, names):
                    for did in waiting:
                        rows[did]["resolved_at"] = event.at
                    waiting.clear()
        for d in step.opened:
            rows[d.id] = {
                "name": d.name,
                "clause": d.clause,
                "opened_at": d.opened_at,
                "due_at": d.due_at,
                "closed_at": None,
                "outcome": "open",
                "resolved_at": None,
            }
        if spec.state(step.snapshot.state).terminal:
            for did in (d for ids in missed_open.values() for d in ids):
                rows[did]["resolved_at"] = rows[did]["resolved_at"] or event.at
            missed_open.clear()
        before = step.snapshot.data
    snap = steps[-1].snapshot
    return [
        Instance(wid, snap.machine, snap.policy, team, **row)  # type: ignore[arg-type]
        for row in rows.values()
    ]


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
    ``policy`` keeps one council's workflows. Reads only."""
    start = ensure_aware(start, "start")
    end = ensure_aware(end, "end")
    if end <= start:
        raise ValidationError(field="end", value=end.isoformat(), expected="later than start")
    counts: dict[tuple[str | None, str, str, str | None], dict[str, int]] = {}
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
