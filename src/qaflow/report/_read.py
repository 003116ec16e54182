"""Reading one period from a store: the workflows the report counts, read once.

:class:`Period` holds the period, the policies the report was given, its filters and the
workflows it reads: those touched in the period with their events before its end (one query
per table where the store offers period reads), the quiet ones only counted by group. The
figure modules (:mod:`._audits`, :mod:`._ontime`, :mod:`._escalations`) read from it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time
from typing import Any, Final

import attrs

from qaflow.calendar import LONDON, WorkingCalendar
from qaflow.directory import InMemoryDirectory, UnknownPerson
from qaflow.errors import ValidationError
from qaflow.machines import audit as audit_machine
from qaflow.procedure import AuditPolicy
from qaflow.records import Event, WorkflowSnapshot
from qaflow.report._policies import KINDS, ReportPolicies
from qaflow.report._records import Filters, OverdueItem
from qaflow.store import MemoryStore, SQLiteStore, Store

__all__ = [
    "Filters",
    "Period",
    "Workflow",
    "audit_ended",
    "audit_phases",
    "moment",
    "overdue_item",
    "task_done_times",
]

AUDIT_ENDS: Final = ("complete", "cancel")


def moment(value: date | datetime, field: str) -> datetime:
    """A period bound as an aware UTC time (a date is London midnight at its start)."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValidationError(
                field=field, value=value.isoformat(), expected="an aware datetime or a date"
            )
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), LONDON).astimezone(UTC)
    raise ValidationError(field=field, value=value, expected="a date or an aware datetime")


def task_done_times(store: Store) -> dict[str, datetime] | None:
    """When each done task was done, where the store can say.

    The :class:`~qaflow.store.Store` protocol does not return completion times (a
    :class:`~qaflow.records.Task` has no ``done_at``), so this reads them from the two
    shipped stores directly; for any other store it returns ``None`` and the report counts
    done tasks without judging their timeliness.
    """
    if isinstance(store, SQLiteStore):
        rows = store.conn.execute("SELECT id, done_at FROM tasks WHERE done_at IS NOT NULL")
        return {str(i): datetime.fromisoformat(str(d)) for i, d in rows.fetchall()}
    if isinstance(store, MemoryStore):
        done = getattr(store, "_done", None)
        if isinstance(done, dict):
            return {str(k): v for k, v in done.items() if isinstance(v, datetime)}
    return None


@attrs.define
class Workflow:
    snapshot: WorkflowSnapshot
    events: list[Event]
    at: dict[int, datetime]
    before_end: list[Event]

    @property
    def id(self) -> str:
        return self.snapshot.workflow_id

    def first(self, trigger: str) -> Event | None:
        return next((e for e in self.before_end if e.trigger == trigger), None)

    def any_in(self, trigger: str, start: datetime) -> Event | None:
        return next((e for e in self.before_end if e.trigger == trigger and e.at >= start), None)


def audit_ended(
    policy: AuditPolicy | None,
    state: str,
    phases: dict[str, tuple[frozenset[str], frozenset[str]]],
) -> bool | None:
    """Whether an audit now in ``state`` was ever completed or cancelled (``None``: the
    state does not tell).

    The states reachable without ``complete`` or ``cancel`` and those reachable after one
    are disjoint in the shipped audit machines, so the current state answers; for an
    unknown policy, or a machine where they meet, the caller reads the events instead.
    """
    if policy is None:
        return None
    if policy.name not in phases:
        phases[policy.name] = audit_phases(policy)
    before, after = phases[policy.name]
    if state in after:
        return True
    if state in before:
        return False
    return None


_PHASES: dict[int, tuple[AuditPolicy, tuple[frozenset[str], frozenset[str]]]] = {}
"""``audit_phases`` per policy object (kept with it, so its id is not reused while cached):
building the audit machine took about half of a quarter's report (issue 14)."""


def audit_phases(policy: AuditPolicy) -> tuple[frozenset[str], frozenset[str]]:
    """States reachable before any ending trigger, and after one (empty if they meet)."""
    cached = _PHASES.get(id(policy))
    if cached is not None and cached[0] is policy:
        return cached[1]
    if len(_PHASES) >= 64:  # policies built on the fly: keep the cache small
        _PHASES.clear()
    found = _phases(policy)
    _PHASES[id(policy)] = (policy, found)
    return found


def _phases(policy: AuditPolicy) -> tuple[frozenset[str], frozenset[str]]:
    spec = audit_machine.audit_spec(policy)

    def reach(starts: Iterable[str], skip: frozenset[str]) -> set[str]:
        seen = set(starts)
        todo = list(seen)
        while todo:
            here = todo.pop()
            for t in spec.transitions:
                if here in t.sources and t.trigger not in skip:
                    there = t.dest_from(here)
                    if there not in seen:
                        seen.add(there)
                        todo.append(there)
        return seen

    ends = frozenset(AUDIT_ENDS)
    before = reach([spec.initial], ends)
    after = reach(
        [t.dest_from(s) for t in spec.transitions if t.trigger in ends for s in t.sources],
        frozenset(),
    )
    if before & after:
        return frozenset(), frozenset()
    return frozenset(before), frozenset(after)


class Period:
    """The workflows of ``[start, end)`` the report counts, read once from the store.

    ``touched_only`` reads just the workflows with an event in the period (through the
    store's period query where it has one) and leaves the others uncounted: enough for a
    month of trend, which counts only what happened in it.
    """

    def __init__(
        self,
        store: Store,
        start: datetime,
        end: datetime,
        calendar: WorkingCalendar,
        policies: ReportPolicies,
        filters: Filters,
        directory: InMemoryDirectory | None = None,
        *,
        touched_only: bool = False,
    ) -> None:
        self.store = store
        self.start = start
        self.end = end
        self.calendar = calendar
        self.policies = policies
        self.audit_policies = policies.audit_map()
        self.ladders = policies.ladder_map()
        self.filters = filters
        self.directory = directory
        self._services = {t.id: t.service_id for t in directory.teams()} if directory else {}
        self.notes: list[str] = []
        self.flows: dict[str, list[Workflow]] = {kind: [] for kind in KINDS}
        self.read = 0
        self._kinds: dict[str, str | None] = {}
        self.teams_seen: set[str] = set()
        # Workflows with no event since ``start`` count only as read, by policy, and (audits
        # never completed nor cancelled) as open at the end: the store answers that in one
        # query instead of handing over their histories (issue 14).
        self.quiet_policies: set[str] = set()
        self.quiet_open_audits = 0
        self.touched_only = touched_only
        self.quiet_grouped = False  # a filter's quiet workflows counted by group, not read
        for snapshot, events in self._histories():
            kind = self.kind(snapshot.machine, snapshot.policy)
            if kind is None or not events or events[0].at >= end:
                continue
            team = self.team_of(kind, snapshot)
            if team is not None:
                self.teams_seen.add(team)
            if filters.any and not self._wanted(kind, snapshot):
                continue
            self.read += 1
            before = [e for e in events if e.at < end]
            self.flows[kind].append(
                Workflow(snapshot, events, {e.seq: e.at for e in events}, before)
            )

    def kind(self, machine: str, policy_name: str) -> str | None:
        """The flow a workflow belongs to, or ``None`` if the report leaves it out."""
        if machine not in self._kinds:
            self._kinds[machine] = self.policies.kind_of(machine)
        kind = self._kinds[machine]
        if kind is None:
            return None
        policy = self.filters.policy
        if policy is not None and kind != "escalation" and policy_name != policy:
            return None
        return kind

    def team_of(self, kind: str, snapshot: WorkflowSnapshot) -> str | None:
        """The team whose work this is: recorded on an audit, the raiser's for an escalation."""
        return self._team(kind, snapshot.data.get("team_id"), snapshot.data.get("raiser_id"))

    def _team(self, kind: str, team: object, raiser: object) -> str | None:
        if isinstance(team, str):
            return team
        if kind == "escalation" and isinstance(raiser, str) and self.directory is not None:
            try:
                return self.directory.team_of(raiser)
            except UnknownPerson:
                return None
        return None

    def service_of(self, team: str | None) -> str | None:
        """The service the directory places ``team`` in (``None`` without a directory)."""
        return None if team is None else self._services.get(team)

    def _wanted(self, kind: str, snapshot: WorkflowSnapshot) -> bool:
        return self._keeps(self.team_of(kind, snapshot))

    def _keeps(self, team: str | None) -> bool:
        """Whether the team and service filters keep the work of ``team``."""
        if self.filters.team is not None and team != self.filters.team:
            return False
        return self.filters.service is None or self.service_of(team) == self.filters.service

    def _histories(self) -> Iterator[tuple[WorkflowSnapshot, list[Event]]]:
        store, start, end = self.store, self.start, self.end
        reader = getattr(store, "period_workflows", None)
        quiet = getattr(store, "quiet_workflows", None)
        machines = self.policies.machines()  # the others' events are not read at all
        if self.touched_only and callable(reader):
            # only the workflows touched in the period matter (a trend month): no quiet
            # groups, and a team or service filter applies to each one read
            yield from reader(start, end, machines)
            return
        teams = getattr(store, "quiet_teams", None)
        if self.filters.any:  # a team or service: the quiet groups by team
            quiet = teams if callable(teams) else None
        if not callable(reader) or not callable(quiet):
            # a store without period reads (or, for a team or service, without team groups)
            for snapshot in store.snapshots():
                if self.kind(snapshot.machine, snapshot.policy) is not None:
                    yield snapshot, store.events(snapshot.workflow_id)
            return
        groups = self._quiet_kept(quiet) if self.filters.any else list(quiet(start, end))
        self.quiet_grouped = self.filters.any
        ended: dict[tuple[str, str], bool | None] = {}
        phases: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        for machine, policy_name, state, _ in groups:
            if self.kind(machine, policy_name) == "audit":
                ended[(policy_name, state)] = audit_ended(
                    self.audit_policies.get(policy_name), state, phases
                )
        if None in ended.values():  # a state that does not tell: read every history
            for snapshot in store.snapshots():
                if self.kind(snapshot.machine, snapshot.policy) is not None:
                    yield snapshot, store.events(snapshot.workflow_id)
            return
        for machine, policy_name, state, count in groups:
            kind = self.kind(machine, policy_name)
            if kind is None:
                continue
            self.read += count
            if policy_name:
                self.quiet_policies.add(policy_name)
            if kind == "audit" and not ended[(policy_name, state)]:
                self.quiet_open_audits += count
        yield from reader(start, end, machines)

    def _quiet_kept(self, teams: Any) -> list[tuple[str, str, str, int]]:
        """The quiet groups a team or service filter keeps, from the store's groups by
        team (each team seen, kept or not, as the whole-history read sees it)."""
        kept: dict[tuple[str, str, str], int] = {}
        for machine, policy_name, state, team_id, raiser_id, count in teams(self.start, self.end):
            kind = self.kind(machine, policy_name)
            if kind is None:
                continue
            team = self._team(kind, team_id, raiser_id)
            if team is not None:
                self.teams_seen.add(team)
            if self._keeps(team):
                key = (machine, policy_name, state)
                kept[key] = kept.get(key, 0) + count
        return [(m, p, s, n) for (m, p, s), n in kept.items()]

    def sliced(self, start: datetime, end: datetime) -> Period:
        """These workflows as of ``[start, end)`` inside this period, read again from
        nothing: a month of trend out of the trend's one read."""
        part = copy.copy(self)
        part.start, part.end, part.notes = start, end, []
        part.flows = {
            kind: [
                Workflow(w.snapshot, w.events, w.at, [e for e in w.before_end if e.at < end])
                for w in flows
                if w.events[0].at < end
            ]
            for kind, flows in self.flows.items()
        }
        return part

    def workflow_ids(self) -> set[str]:
        """The ids of the workflows read (those the filters keep)."""
        return {w.id for flows in self.flows.values() for w in flows}

    def kept(self, ids: Iterable[str]) -> set[str]:
        """Of ``ids``, the workflows the filters keep: those read, and those quiet since
        before the period that were counted by group (each loaded here: few, such as the
        ones holding an overdue deadline)."""
        read = self.workflow_ids()
        out = set()
        for wid in set(ids):
            if wid in read:
                out.add(wid)
            elif self.quiet_grouped:
                snap = self.store.load(wid)
                kind = self.kind(snap.machine, snap.policy)
                quiet = snap.updated_at is not None and snap.updated_at < self.start
                made = snap.created_at is not None and snap.created_at < self.end
                if kind is not None and quiet and made and self._wanted(kind, snap):
                    out.add(wid)
        return out

    def overdue_days(self, due: datetime | None) -> int | None:
        """Working days from ``due`` to the period's end (0 if not yet due)."""
        return None if due is None else max(0, self.calendar.working_days_between(due, self.end))


def overdue_item(
    p: Period, kind: str, workflow_id: str, name: str, due: datetime | None
) -> OverdueItem:
    """Something past due at the end of the period, with how many working days late."""
    return OverdueItem(kind, workflow_id, name, due, p.overdue_days(due))
