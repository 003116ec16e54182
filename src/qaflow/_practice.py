"""A generated council's practice over a period: case timescales, supervision, QA calendar.

:func:`run_practice` plays, on the real engine and the council's own timescale files, what
the council's practitioners and managers do besides audits: visits, strategy discussions
and conferences, plan reviews, significant events on each case; supervision sessions for
each practitioner; the QA lead's recurring duties; and each audit the store holds as
completed in the period is fed to its auditor's QA calendar through
:func:`qaflow.machines.qa_calendar.record_audit_completion` (the real link). Events
happen mostly on time and sometimes late (seeded), and ``tick`` runs at the end of each day,
so the store holds met, missed and still-open timescales for the compliance view and the
report. Everything is made up: ids only, no names, no free text.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

import attrs

from qaflow.calendar import LONDON
from qaflow.clock import ManualClock
from qaflow.engine import Engine
from qaflow.errors import QAFlowError
from qaflow.machines import qa_calendar, supervision, timescales
from qaflow.programme import Council
from qaflow.records import Actor
from qaflow.store import Store

__all__ = ["PracticeResult", "run_practice"]

_STATUS: Final[Mapping[str, str]] = {"cin": "cin", "cp": "cp_plan", "cla": "looked_after"}
_ON_TIME: Final = 0.85
"""How often a recurring duty is done before it falls due."""
_MAX_CASES: Final = 60
_AUDIT_COMPLETED: Final = "audit_completed"
"""Played through :func:`qa_calendar.record_audit_completion`, the real link, not fired."""


@attrs.frozen(kw_only=True)
class PracticeResult:
    """What :func:`run_practice` played: workflows opened and events written."""

    cases: int
    practitioners: int
    calendars: int
    events: int
    breaches: int


class _Play:
    def __init__(self, engine: Engine, clock: ManualClock, rng: random.Random, end: datetime):
        self.engine = engine
        self.clock = clock
        self.rng = rng
        self.end = end
        self.queue: list[tuple[datetime, int, str, str, Actor, dict[str, Any]]] = []
        self.n = 0
        self.events = 0
        self.breaches = 0

    def at(self, when: datetime, wid: str, trigger: str, actor: Actor, **payload: Any) -> None:
        local = when.astimezone(LONDON)
        if not 9 <= local.hour < 17:  # practice happens in working hours
            when = local.replace(hour=9 + local.hour % 8).astimezone(when.tzinfo)
        if when < self.end:
            self.n += 1
            heapq.heappush(self.queue, (when, self.n, wid, trigger, actor, payload))

    def every(
        self, first: datetime, days: float, wid: str, trigger: str, actor: Actor, **payload: Any
    ) -> None:
        """A recurring event, about every ``days`` days, late about one time in seven."""
        when = first
        while when < self.end:
            self.at(when, wid, trigger, actor, **payload)
            late = self.rng.random() > _ON_TIME
            gap = days * (1.3 if late else self.rng.uniform(0.6, 0.95))
            when += timedelta(days=gap, hours=self.rng.randint(0, 6))

    def run(self) -> None:
        day_end = _end_of_day(self.clock.now())
        while self.queue:
            when, _, wid, trigger, actor, payload = heapq.heappop(self.queue)
            while when > day_end:
                self._tick(day_end)
                day_end = _end_of_day(day_end + timedelta(hours=1))
            self.clock.set(max(when, self.clock.now()))
            try:
                if trigger == _AUDIT_COMPLETED:
                    qa_calendar.record_audit_completion(self.engine, wid, payload["audit_id"])
                elif trigger in _STARTS:
                    self.engine.start(_STARTS[trigger], wid, trigger, actor, payload)
                else:
                    self.engine.fire(wid, trigger, actor, payload)
                self.events += 1
            except QAFlowError:
                continue  # e.g. an event for a case the plan already closed
        while day_end < self.end:
            self._tick(day_end)
            day_end = _end_of_day(day_end + timedelta(hours=1))
        self._tick(self.end)

    def _tick(self, moment: datetime) -> None:
        self.clock.set(max(moment, self.clock.now()))
        steps = self.engine.tick(self.clock.now())
        self.breaches += len(steps)
        self.events += len(steps)


_STARTS: Final = {
    "referral_received": timescales.MACHINE,
    "practitioner_joined": supervision.MACHINE,
    "calendar_started": qa_calendar.MACHINE,
}


def _end_of_day(moment: datetime) -> datetime:
    local = moment.astimezone(LONDON)
    eod = local.replace(hour=23, minute=59, second=59, microsecond=0)
    return eod.astimezone(moment.tzinfo)


def run_practice(
    store: Store,
    council: Council,
    *,
    policy: str,
    start: datetime,
    end: datetime,
    seed: int,
    id_prefix: str = "",
) -> PracticeResult:
    """Play ``council``'s practice under ``policy``'s timescale files over ``[start, end)``
    into ``store`` (writes). The same seed writes the same events."""
    from qaflow.registry import shipped_specs

    rng = random.Random(seed * 7919 + 11)
    clock = ManualClock(start)
    specs = [
        timescales.case_spec(timescales.shipped_case_timescales(policy)),
        supervision.supervision_spec(supervision.shipped_supervision(policy)),
        qa_calendar.calendar_spec(qa_calendar.shipped_qa_calendar(policy)),
    ]
    engine = Engine(store, [*shipped_specs(), *specs], clock=clock)
    play = _Play(engine, clock, rng, end)
    managers = dict(zip(council.teams, council.team_managers, strict=False))
    completions = _completed_audits(store, start, end)
    cases = council.cases[:_MAX_CASES]
    for index, case in enumerate(cases):
        _case(play, f"{id_prefix}CASE-{index + 1:04d}", case, managers, start)
    teams = {c.worker_id: c.team_id for c in council.cases}
    for index, worker in enumerate(council.practitioners):
        team = teams.get(worker, council.teams[index % len(council.teams)])
        _supervision(play, f"{id_prefix}SUP-{index + 1:04d}", worker, team, managers, start)
    lead = Actor(council.psqa, "qa_lead")
    for index, (team, manager) in enumerate(managers.items()):
        wid = f"{id_prefix}CAL-{index + 1:03d}"
        play.at(
            start, wid, "calendar_started", lead, team_id=team, holder="manager", holder_id=manager
        )
        for when, audit_id in completions.get(manager, ()):
            play.at(when, wid, _AUDIT_COMPLETED, Actor(manager, "team_manager"), audit_id=audit_id)
    wid = f"{id_prefix}CAL-QA"
    play.at(
        start, wid, "calendar_started", lead, team_id="psqa", holder="qa_lead", holder_id=lead.id
    )
    for trigger in ("moderation_sample_done", "themes_reported"):
        play.every(start + timedelta(days=24), 30, wid, trigger, lead)
    play.every(start + timedelta(days=80), 91, wid, "qa_report_published", lead)
    play.run()
    return PracticeResult(
        cases=len(cases),
        practitioners=len(council.practitioners),
        calendars=len(managers) + 1,
        events=play.events,
        breaches=play.breaches,
    )


def _completed_audits(
    store: Store, start: datetime, end: datetime
) -> dict[str, list[tuple[datetime, str]]]:
    """The audits in ``store`` completed in ``[start, end)``, per auditor, in order: what
    each manager's QA calendar is fed (BX-QA-01), so the monthly audit duty is met by the
    audits the programme really completed and missed where it completed none."""
    out: dict[str, list[tuple[datetime, str]]] = {}
    for snapshot in store.snapshots("audit"):
        at = snapshot.data.get("completed_at")
        auditor = snapshot.data.get("auditor_id")
        if not isinstance(at, str) or not isinstance(auditor, str):
            continue
        when = datetime.fromisoformat(at)
        if start <= when < end:
            out.setdefault(auditor, []).append((when, snapshot.workflow_id))
    return {k: sorted(v) for k, v in out.items()}


def _case(play: _Play, wid: str, case: Any, managers: Mapping[str, str], start: datetime) -> None:
    rng = play.rng
    worker = Actor(case.worker_id, "social_worker")
    manager = Actor(managers.get(case.team_id, case.worker_id), "team_manager")
    opened = start + timedelta(days=rng.uniform(0, 10), hours=9)
    status = _STATUS.get(case.status, "cin")
    play.at(
        opened,
        wid,
        "referral_received",
        worker,
        team=case.team_id,
        social_worker_id=case.worker_id,
        status=status,
    )
    play.at(
        opened + timedelta(hours=rng.choice((4, 30, 90))),
        wid,
        "contact_decision",
        worker,
        decision="s17" if status == "cin" else "no_further_action",
    )
    days = {"cin": 28, "cp_plan": 14, "looked_after": 42}[status]
    play.every(opened + timedelta(days=days * rng.uniform(0.3, 0.9)), days, wid, "visit", worker)
    reviews = {"cin": 56, "cp_plan": 28, "looked_after": 0}[status]
    if reviews:
        play.every(opened + timedelta(days=reviews * 0.8), reviews, wid, "plan_review", worker)
    if status == "cin" and rng.random() < 0.15:
        concern = opened + timedelta(days=rng.uniform(10, 40))
        play.at(concern, wid, "concern_identified", worker)
        strategy = concern + timedelta(hours=rng.choice((3, 20, 30)))
        play.at(strategy, wid, "strategy_discussion", manager)
        icpc = strategy + timedelta(days=rng.choice((12, 16, 19, 24)))
        play.at(strategy + timedelta(hours=rng.choice((20, 50))), wid, "icpc_requested", worker)
        play.at(icpc, wid, "icpc_held", worker, outcome="cp_plan")
        play.at(icpc + timedelta(days=rng.uniform(3, 9)), wid, "visit", worker)
    if rng.random() < 0.2:
        event = opened + timedelta(days=rng.uniform(5, 60))
        play.at(event, wid, "significant_event", worker)
        play.at(
            event + timedelta(hours=rng.choice((5, 20, 60))),
            wid,
            "significant_event_recorded",
            worker,
        )


def _supervision(
    play: _Play, wid: str, worker: str, team: str, managers: Mapping[str, str], start: datetime
) -> None:
    rng = play.rng
    supervisor = Actor(managers.get(team, worker), "team_manager")
    newly = rng.random() < 0.2
    joined = start + timedelta(hours=rng.randint(8, 60))
    since = joined if newly else start - timedelta(days=rng.randint(120, 2000))
    play.at(
        joined,
        wid,
        "practitioner_joined",
        supervisor,
        team_id=team,
        practitioner_id=worker,
        experience="newly_qualified" if newly else "experienced",
        case_holding=True,
        in_post_since=since.isoformat(),
    )
    cadence = 7 if newly else 28
    first = joined + timedelta(days=cadence * rng.uniform(0.5, 0.9))
    minutes = rng.choice((60, 90, 90, 120))
    play.every(first, cadence, wid, "session_recorded", supervisor, minutes=minutes)
    group = joined + timedelta(days=rng.uniform(5, 20))
    play.every(group, 24, wid, "session_recorded", supervisor, minutes=60, kind="group")
    if rng.random() < 0.3:
        discussed = start + timedelta(days=rng.uniform(5, 60))
        play.at(discussed, wid, "casework_discussed", supervisor, case_ref="C")
        play.at(
            discussed + timedelta(hours=rng.choice((2, 20, 50))),
            wid,
            "casework_recorded",
            supervisor,
            case_ref="C",
        )
