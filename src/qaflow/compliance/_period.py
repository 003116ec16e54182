"""A period's deadline instances from the stored deadline rows, without replaying histories.

:func:`qaflow.compliance.compliance` counts, for ``[start, end)``, the instances settled in
the period and those still open at its end, as the events up to ``end`` tell. Replaying a
workflow to learn that costs its whole history, and a supervision or QA-calendar workflow
lives for years (issue 14). The store already holds every instance as a deadline row (opened
and due times, closed or breached, when and by which event), written in the same transaction
as the event that made it, and ``verify`` checks those rows against the replay. So a period's
instances are its rows, read by time (``period_deadlines``), plus, for each row a command
closed, that event, to tell "met" from "superseded" as the replay does.

What the rows alone cannot tell, this hands to the replay (:func:`._view._workflow_instances`),
workflow by workflow, so the result is the replay's in every case:

- the team and the policy are the workflow's data and pin *at the end of the period*; the
  snapshot holds them now. They are the same unless the workflow changed them after ``end``:
  a ``policy_migrated`` event, or an event whose transition may write ``team_id`` (decided
  from the spec: a ``timescales.record`` update names the keys it writes; any other update
  or derived effect may write anything). The events after ``end`` are read by key, from the
  last event the rows show before it (``events_after``), never the whole history;
- a rule whose ``met_when`` reads the data before the event (``data``, ``reason``);
- a workflow with no stored times, or a closed row whose closing event is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from qaflow._rolling import instance_rule, met_reads_before, row_bindings
from qaflow.compliance._rows import Instance, counted, still_open, workflow_instances
from qaflow.engine import Engine
from qaflow.records import WorkflowSnapshot
from qaflow.spec import DEADLINE_MISSED, POLICY_MIGRATED, Derived, MachineSpec, Update
from qaflow.store._period_rows import PeriodDeadline

__all__ = ["PeriodRows", "period_instances", "writers"]

_RECORD = "timescales.record"
_TEAM = "team_id"


class PeriodRows(Protocol):
    """The store reads this needs (SQLite and PostgreSQL stores have them)."""

    def period_snapshots(
        self, start: datetime, end: datetime, machines: Iterable[str] | None = None
    ) -> list[WorkflowSnapshot]: ...

    def period_deadlines(
        self, start: datetime, end: datetime, machines: Iterable[str] | None = None
    ) -> list[PeriodDeadline]: ...

    def events_after(self, after: dict[str, int], end: datetime) -> list[tuple[str, str]]: ...


def _may_write(effects: Iterable[object], key: str) -> bool:
    for effect in effects:
        if isinstance(effect, Derived):
            return True
        if isinstance(effect, Update):
            if effect.use != _RECORD:
                return True
            args: Mapping[str, Any] = dict(effect.args)
            written = {k for k, _ in args.get("set", ())}
            written |= {k for _, k in args.get("copy", ())}
            written.add(args.get("stamp"))
            if key in written:
                return True
    return False


_WRITERS: dict[int, tuple[MachineSpec, frozenset[str]]] = {}


def writers(spec: MachineSpec, key: str = _TEAM) -> frozenset[str]:
    """The triggers of ``spec`` whose command may change the data key ``key`` (its own
    effects or those of the state it enters); a recorded miss and a migration change no
    data. Cached per spec object."""
    cached = _WRITERS.get(id(spec))
    if key == _TEAM and cached is not None and cached[0] is spec:
        return cached[1]
    found = set()
    for t in spec.transitions:
        entering = () if t.dest is None else spec.state(t.dest).on_enter
        if _may_write(t.effects, key) or _may_write(entering, key):
            found.add(t.trigger)
    result = frozenset(found)
    if key == _TEAM:
        if len(_WRITERS) >= 64:
            _WRITERS.clear()
        _WRITERS[id(spec)] = (spec, result)
    return result


def _settled(row: PeriodDeadline, end: datetime) -> bool:
    return row.closed_at is not None and row.closed_at <= end


def _needs_replay(spec: MachineSpec, rows: list[PeriodDeadline], end: datetime) -> bool:
    for row in rows:
        if row.status != "closed" or not _settled(row, end):
            continue
        if row.trigger is None:
            return True  # pragma: no cover - a closed row's event is in the same store
        rule = instance_rule(spec.rolling, row.name)
        if rule is not None and row.trigger in rule.met_by and met_reads_before(rule):
            return True
    return False


def _from_rows(
    snap: WorkflowSnapshot, spec: MachineSpec, rows: list[PeriodDeadline], end: datetime
) -> list[Instance]:
    team = snap.data.get("team_id")
    team = team if isinstance(team, str) else None
    out = []
    for row in rows:
        closed_at = None
        if not _settled(row, end):
            outcome = "open"
        elif row.status == "breached":
            outcome, closed_at = "missed", row.closed_at
        else:
            closed_at = row.closed_at
            assert closed_at is not None and row.trigger is not None
            rule = instance_rule(spec.rolling, row.name)
            if rule is None:
                met = row.trigger != DEADLINE_MISSED
            elif row.trigger not in rule.met_by:
                met = False
            else:
                payload = json.loads(row.payload or "{}") if rule.met_when is not None else {}
                met = rule.is_met_by(
                    row.trigger,
                    row_bindings(
                        row.trigger,
                        str(row.source),
                        str(row.dest),
                        str(row.actor_id),
                        str(row.actor_role),
                        payload if isinstance(payload, dict) else {},
                        {},
                    ),
                )
            outcome = ("met" if closed_at <= row.due_at else "missed") if met else "superseded"
        out.append(
            Instance(
                snap.workflow_id,
                snap.machine,
                snap.policy,
                team,
                row.name,
                row.clause,
                row.opened_at,
                row.due_at,
                closed_at,
                outcome,  # type: ignore[arg-type]
                None,
            )
        )
    return out


def period_instances(
    engine: Engine,
    store: PeriodRows,
    start: datetime,
    end: datetime,
    *,
    machines: set[str] | None,
    known_only: bool,
) -> list[Instance]:
    """The instances :func:`qaflow.compliance.compliance` counts for ``[start, end)``: as
    :func:`qaflow.compliance.instances` with ``since=start, until=end`` lists them, less the
    ones settled before ``start`` and with ``resolved_at`` left ``None`` (compliance reads
    neither). Reads; writes nothing."""
    rows: dict[str, list[PeriodDeadline]] = {}
    for row in store.period_deadlines(start, end, machines):
        rows.setdefault(row.workflow_id, []).append(row)
    out: list[Instance] = []
    replay: list[str] = []
    chosen: dict[str, tuple[WorkflowSnapshot, MachineSpec, list[PeriodDeadline]]] = {}
    later: dict[str, int] = {}
    for snap in store.period_snapshots(start, end, machines):
        quiet = counted(engine, snap, machines, known_only, start, end)
        if quiet is None:
            continue
        if quiet:
            out.extend(still_open(snap))
            continue
        spec = engine.spec_for(snap)
        wid = snap.workflow_id
        mine = rows.get(wid)
        if not mine:
            continue  # nothing settled since the start, nothing open: nothing counted
        if snap.updated_at is None or _needs_replay(spec, mine, end):
            replay.append(wid)
            continue
        chosen[wid] = (snap, spec, mine)
        if snap.updated_at > end:  # did it change its team or policy after the end?
            later[wid] = max(
                max(r.opened_seq for r in mine),
                max((r.closed_seq or 0 for r in mine if _settled(r, end)), default=0),
            )
    if later:
        for wid, trigger in store.events_after(later, end):
            found = chosen.get(wid)
            if found is not None and (trigger == POLICY_MIGRATED or trigger in writers(found[1])):
                del chosen[wid]
                replay.append(wid)
    for wid in replay:
        out.extend(workflow_instances(engine, wid, end))
    for snap, spec, mine in chosen.values():
        out.extend(_from_rows(snap, spec, mine, end))
    return out
