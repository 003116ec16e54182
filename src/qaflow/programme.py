"""A council's audit programme, simulated month by month on the real engine and policies.

:func:`generate_council` makes up a council: services, teams, managers, practitioners, their
cases (each a child in need, on a child protection plan or in care), foster carers, CP
chairs, IROs, fostering IROs, PSQA and business support, all as opaque ids (``"T01"``,
``"P017"``, ``"C0042"``), with an :class:`~qaflow.directory.InMemoryDirectory` that says who
holds which role. :func:`run_programme` then plays an audit programme for it:

* on the first working day of each month business support allocates one audit to each
  manager (team and service managers, BX-AUD-13) with
  :func:`~qaflow.allocation.allocate_audits` (never a case of the auditor's own team,
  BX-AUD-01), and every audit is driven through the real audit machine: the self-assessment,
  the health check and meeting answers, a grade drawn from ``grades``, family feedback or
  the reason it could not be had, the agreed actions, completion and follow-up; a share is
  cancelled on the way;
* PSQA draws the moderation sample with :func:`~qaflow.machines.moderation.sample_audits`
  from the audits completed so far, allocates moderators and moderates: the moderator agrees
  or regrades, meets the auditor and agrees a grade, which is written back to the audit;
* CP chairs, IROs and fostering IROs raise escalations on the shipped Bexley ladders about a
  share of the cases and foster carers, and the stage holders respond, ask for more time or
  let the deadline pass while the raiser accepts, escalates, bypasses, withdraws or refers;
* the tasks the machines open (24 h tasks after an Inadequate grade, agreed actions, ...)
  are completed through the store's outbox API, mostly on time;
* :meth:`~qaflow.engine.Engine.tick` runs before every action and at the end of the period,
  so deadlines breach when a slow auditor or stage holder misses them, exactly as they
  would in production.

Every command goes through :class:`~qaflow.engine.Engine` (with the council's directory,
so every actor must hold the role it acts in): nothing here models a rule of its own. Time
is a :class:`~qaflow.clock.ManualClock` that only moves forward; actions run in time order
(ties in the order they were planned) and one :class:`random.Random` seeded with ``seed``
draws everything, so the same council, arguments and seed write identical store content.
The period is ``months`` calendar months from ``start`` (Europe/London); actions that would
fall after it are not played, so audits allocated late in the last month are still open at
its end, as they would be in a real quarter.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any, Final, Literal

import attrs

from qaflow.allocation import Auditor, Case, PastAudit, allocate_audits, month_key
from qaflow.calendar import LONDON, WorkingCalendar
from qaflow.clock import ManualClock
from qaflow.directory import InMemoryDirectory, Person, Service, Team
from qaflow.engine import Engine
from qaflow.errors import ValidationError
from qaflow.machines import audit as A
from qaflow.machines import moderation as M
from qaflow.machines.escalation import (
    TERMINAL_STATES,
    escalation_machine,
    level_of,
    machine_name,
    state_of,
)
from qaflow.policies import bexley, shipped_audit_procedures
from qaflow.policies.ladders import EscalationLadder
from qaflow.procedure import (
    AUDITOR,
    MODERATOR,
    WORKER,
    AuditForm,
    AuditPolicy,
    Grade,
    Judgement,
    ModerationPolicy,
    Question,
)
from qaflow.records import Actor, Step, Task
from qaflow.registry import shipped_specs
from qaflow.spec import MachineSpec
from qaflow.store import MemoryStore, Store

__all__ = [
    "DEFAULT_GRADES",
    "Council",
    "CouncilCase",
    "ProgrammeResult",
    "generate_council",
    "period_bounds",
    "run_programme",
]

CaseStatus = Literal["cin", "cp", "cla"]
"""A case's status: child in need, child protection plan, child we care for."""

DEFAULT_GRADES: Final[Mapping[Grade, float]] = {
    Grade.OUTSTANDING: 0.10,
    Grade.GOOD: 0.50,
    Grade.REQUIRES_IMPROVEMENT: 0.30,
    Grade.INADEQUATE: 0.10,
}
"""The default grade distribution (grades a policy's form cannot give are dropped)."""

_STATUS_WEIGHTS: Final[tuple[tuple[CaseStatus, float], ...]] = (
    ("cin", 0.45),
    ("cp", 0.30),
    ("cla", 0.25),
)
_CODES: Final[Mapping[str, str]] = {"bexley": "BX", "buckinghamshire": "BK"}
_TEXT: Final = "simulated"
"""The only free text the programme writes: no real notes, names or details."""
_CAFCASS_ID: Final = "EXT-CAFCASS"
_EXTENSION_ASK: Final = 0.4
_EXTENSION_GRANT: Final = 0.7
_ESCALATION_ACCEPT: Final = 0.6
_ESCALATION_WITHDRAW: Final = 0.05
_ESCALATION_BYPASS: Final = 0.08
_RESPONSE_DAYS: Final = ((1, 0.15), (2, 0.2), (3, 0.2), (4, 0.15), (5, 0.1), (6, 0.1), (8, 0.1))
_MODERATOR_ACTIONS_DONE: Final = 0.85
_PRACTICE_WEEK: Final = 0.05


# --- the council ------------------------------------------------------------------------------


@attrs.frozen
class CouncilCase:
    """An open case: the child, the allocated practitioner and team, and its status."""

    child_id: str
    worker_id: str
    team_id: str
    status: CaseStatus


@attrs.frozen(kw_only=True)
class Council:
    """A generated council: every person, team, service and case as an opaque id.

    ``directory`` answers the engine's role checks and the managers of each practitioner;
    it is left out of equality (two councils of the same seed are equal).
    """

    seed: int
    services: tuple[str, ...]
    teams: tuple[str, ...]
    team_managers: tuple[str, ...]
    service_managers: tuple[str, ...]
    heads_of_service: tuple[str, ...]
    practitioners: tuple[str, ...]
    cases: tuple[CouncilCase, ...]
    foster_carers: tuple[str, ...]
    cp_chairs: tuple[str, ...]
    iros: tuple[str, ...]
    firos: tuple[str, ...]
    consultant_social_workers: tuple[str, ...]
    fostering_team: str
    fostering_manager: str
    supervising_social_workers: tuple[str, ...]
    assistant_director: str
    director: str
    psqa: str
    business_support: str
    directory: InMemoryDirectory = attrs.field(eq=False, repr=False)

    def summary(self) -> dict[str, int]:
        """How many of each there are (for result records and the CLI)."""
        return {
            "services": len(self.services),
            "teams": len(self.teams),
            "managers": len(self.team_managers) + len(self.service_managers),
            "practitioners": len(self.practitioners),
            "cases": len(self.cases),
            "foster_carers": len(self.foster_carers),
        }


def _positive(name: str, value: object, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise ValidationError(field=name, value=value, expected=f"a whole number in 1..{high}")
    return value


def _probability(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise ValidationError(field=name, value=value, expected="a probability in 0..1")
    return float(value)


def generate_council(
    seed: int,
    *,
    teams: int = 6,
    practitioners_per_team: int = 6,
    cases_per_practitioner: int = 4,
    teams_per_service: int = 3,
    foster_carers: int | None = None,
    cp_chairs: int = 2,
    iros: int = 2,
    firos: int = 1,
) -> Council:
    """Make up a council of opaque ids, reproducibly from ``seed``.

    Teams ``T01..`` are grouped into services ``SV1..`` of ``teams_per_service``, each team
    with a manager ``TM01..`` and ``practitioners_per_team`` practitioners ``P001..`` who hold
    ``cases_per_practitioner`` cases ``C0001..`` each (a child in need, on a plan or in care,
    drawn from ``seed``). Each service has a service manager ``SM1..`` and a head of service
    ``HS1..``; above them an assistant director ``AD1`` (also the form's deputy director) and
    a director ``DR1``. A fostering team ``TF1`` (manager ``FM1``, supervising social workers
    ``SS1..``) supports ``foster_carers`` carers ``FC001..`` (default two per team). CP chairs
    ``CH1..``, IROs ``IR1..``, fostering IROs ``FI1..``, consultant social workers ``CS1..``,
    PSQA ``QA1`` and business support ``BS1`` complete it. Managers hold ``auditor`` and the
    moderator roles of BX-MOD-01 hold ``moderator`` through directory aliases.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValidationError(field="seed", value=seed, expected="an int")
    n_teams = _positive("teams", teams, 99)
    per_team = _positive("practitioners_per_team", practitioners_per_team, 999 // n_teams)
    per_worker = _positive(
        "cases_per_practitioner", cases_per_practitioner, 9999 // (n_teams * per_team)
    )
    per_service = _positive("teams_per_service", teams_per_service, 99)
    carers = 2 * n_teams if foster_carers is None else foster_carers
    carers = _positive("foster_carers", carers, 999)
    n_chairs = _positive("cp_chairs", cp_chairs, 9)
    n_iros = _positive("iros", iros, 9)
    n_firos = _positive("firos", firos, 9)
    rng = random.Random(f"council:{seed}")

    n_services = math.ceil(n_teams / per_service)
    services = tuple(f"SV{i + 1}" for i in range(n_services))
    service_managers = tuple(f"SM{i + 1}" for i in range(n_services))
    heads = tuple(f"HS{i + 1}" for i in range(n_services))
    team_ids = tuple(f"T{i + 1:02d}" for i in range(n_teams))
    team_managers = tuple(f"TM{i + 1:02d}" for i in range(n_teams))
    people: list[Person] = []
    team_rows = [
        Team(tid, services[i // per_service], team_managers[i]) for i, tid in enumerate(team_ids)
    ]
    practitioners: list[str] = []
    cases: list[CouncilCase] = []
    statuses = [s for s, _ in _STATUS_WEIGHTS]
    weights = [w for _, w in _STATUS_WEIGHTS]
    for i, tid in enumerate(team_ids):
        people.append(Person(team_managers[i], (), tid))
        for _ in range(per_team):
            pid = f"P{len(practitioners) + 1:03d}"
            practitioners.append(pid)
            people.append(Person(pid, ("worker", "social_worker"), tid))
            for _ in range(per_worker):
                status = rng.choices(statuses, weights)[0]
                cases.append(CouncilCase(f"C{len(cases) + 1:04d}", pid, tid, status))
    fostering_team, fostering_manager = "TF1", "FM1"
    team_rows.append(Team(fostering_team, services[0], fostering_manager))
    people.append(Person(fostering_manager, ("fostering_manager",), fostering_team))
    supervising = tuple(f"SS{i + 1}" for i in range(max(1, carers // 8)))
    people.extend(Person(s, ("supervising_social_worker",), fostering_team) for s in supervising)
    people.extend(Person(s, ()) for s in (*service_managers, *heads))
    assistant_director, director = "AD1", "DR1"
    people.append(Person(assistant_director, ("assistant_director", "deputy_director")))
    people.append(Person(director, ("director", "director_of_childrens_services")))
    chairs = tuple(f"CH{i + 1}" for i in range(n_chairs))
    iro_ids = tuple(f"IR{i + 1}" for i in range(n_iros))
    firo_ids = tuple(f"FI{i + 1}" for i in range(n_firos))
    consultants = tuple(f"CS{i + 1}" for i in range(2))
    people.extend(Person(c, ("cp_chair",)) for c in chairs)
    people.extend(Person(c, ("iro",)) for c in iro_ids)
    people.extend(Person(c, ("firo",)) for c in firo_ids)
    people.extend(Person(c, ("consultant_social_worker",)) for c in consultants)
    psqa, business = "QA1", "BS1"
    people.append(Person(psqa, ("psqa",)))
    people.append(Person(business, ("business_support",)))
    service_rows = [Service(s, service_managers[i], heads[i]) for i, s in enumerate(services)]
    directory = InMemoryDirectory(
        people,
        team_rows,
        service_rows,
        aliases={
            "auditor": ("team_manager", "service_manager"),
            "moderator": bexley.MODERATOR_ROLES,
        },
    )
    return Council(
        seed=seed,
        services=services,
        teams=team_ids,
        team_managers=team_managers,
        service_managers=service_managers,
        heads_of_service=heads,
        practitioners=tuple(practitioners),
        cases=tuple(cases),
        foster_carers=tuple(f"FC{i + 1:03d}" for i in range(carers)),
        cp_chairs=chairs,
        iros=iro_ids,
        firos=firo_ids,
        consultant_social_workers=consultants,
        fostering_team=fostering_team,
        fostering_manager=fostering_manager,
        supervising_social_workers=supervising,
        assistant_director=assistant_director,
        director=director,
        psqa=psqa,
        business_support=business,
        directory=directory,
    )


# --- the result -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ProgrammeResult:
    """What a programme run did: the council, the period and the counts of what happened.

    ``start`` and ``end`` bound the period, ``[start, end)``, as aware UTC datetimes (local
    midnight in London). The counts are of commands this run fired; the store holds the rest.
    """

    council: Council
    policy: str
    policy_version: str
    seed: int
    months: int
    start: datetime
    end: datetime
    id_prefix: str
    audits_allocated: int
    audits_completed: int
    audits_cancelled: int
    audits_followed_up: int
    auditors_unallocated: int
    moderations_opened: int
    moderations_finalised: int
    moderations_agreed: int
    escalations_raised: int
    escalations_closed: int
    deadline_breaches: int
    tasks_completed: int
    events_written: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the counts, the period and the council's size (no directory)."""
        out: dict[str, Any] = {
            a.name: getattr(self, a.name)
            for a in attrs.fields(ProgrammeResult)
            if a.name not in ("council", "start", "end")
        }
        out["start"] = self.start.isoformat()
        out["end"] = self.end.isoformat()
        out["council"] = {"seed": self.council.seed, **self.council.summary()}
        return out


# --- time -------------------------------------------------------------------------------------


def _as_start(value: date | datetime) -> datetime:
    """A period start: a date is local midnight in London; a datetime must be aware."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValidationError(
                field="start", value=value.isoformat(), expected="an aware datetime or a date"
            )
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), LONDON).astimezone(UTC)
    raise ValidationError(field="start", value=value, expected="a date or an aware datetime")


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_bounds(start: date | datetime, months: int) -> tuple[datetime, datetime]:
    """``[start, end)`` of ``months`` calendar months from ``start`` (London local midnight)."""
    begin = _as_start(start)
    local = begin.astimezone(LONDON).date()
    index = local.year * 12 + local.month - 1 + months
    year, month = index // 12, index % 12 + 1
    end_day = date(year, month, min(local.day, _days_in(year, month)))
    end = datetime.combine(end_day, time(0), LONDON).astimezone(UTC)
    return begin, end


def _days_in(year: int, month: int) -> int:
    nxt = _add_months(date(year, month, 1), 1)
    return (nxt - timedelta(days=1)).day


# --- answers ----------------------------------------------------------------------------------


def _answer(question: Question, value: object) -> dict[str, Any]:
    """A complete answer: the main value and the placeholder text its text fields need."""
    answer: dict[str, Any] = {question.answer_key: value}
    answer.update({name: _TEXT for name in question.text_fields})
    return answer


def _can_give(form: AuditForm, grade: Grade) -> bool:
    if form.grade_bands is not None:
        return any(form.grade_bands.grade_for(s) is grade for s in range(11))
    assert form.judgement_scale is not None
    return grade in form.judgement_scale.as_mapping().values()


def _grading_answer(form: AuditForm, grade: Grade, rng: random.Random) -> dict[str, Any]:
    """An overall answer the form maps to ``grade`` (a random score in its band)."""
    question = form.question(form.grading_question)
    if form.grade_bands is not None:
        scores = [s for s in range(11) if form.grade_bands.grade_for(s) is grade]
        return _answer(question, rng.choice(scores))
    assert form.judgement_scale is not None
    judgement = next(j for j, g in form.judgement_scale.as_mapping().items() if g is grade)
    return _answer(question, judgement.value)


def _centre(form: AuditForm, answer: Mapping[str, Any], grade: Grade) -> float:
    """The audit's underlying quality on 0..10, which its other answers scatter around."""
    score = answer.get("score")
    if isinstance(score, int) and form.grade_bands is not None:
        return float(score)
    return {
        Grade.OUTSTANDING: 8.5,
        Grade.GOOD: 6.5,
        Grade.REQUIRES_IMPROVEMENT: 4.0,
        Grade.INADEQUATE: 1.5,
    }[grade]


def _value(question: Question, centre: float, rng: random.Random) -> object:
    """A value for ``question`` around ``centre`` (scores, judgements and yes/no)."""
    drawn = rng.gauss(centre, 1.5)
    if question.kind == "scale_0_10":
        return max(0, min(10, round(drawn)))
    if question.kind == "judgement":
        if drawn >= 7.5:
            return Judgement.EXCEEDS_GOOD.value
        return Judgement.MEETS_GOOD.value if drawn >= 4.5 else Judgement.DOES_NOT_MEET_GOOD.value
    if question.kind == "yes_no":
        return rng.random() < 0.3
    return _TEXT


def _answers(
    form: AuditForm,
    stage: str,
    role: str,
    centre: float,
    rng: random.Random,
    only: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Answers to the questions of ``stage`` that ``role`` records (not the grading one)."""
    if stage not in form.stages:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for question in form.questions_in_stage(stage):
        if question.id == form.grading_question or (only is not None and question.id not in only):
            continue
        if question.answered_by == "moderator":
            continue
        answers_as = WORKER if question.answered_by == "practitioner" else AUDITOR
        if answers_as != role:
            continue
        out[question.id] = _answer(question, _value(question, centre, rng))
    return out


# --- the run ----------------------------------------------------------------------------------


@attrs.define
class _Audit:
    wid: str
    auditor: str
    worker: str
    grade: Grade
    slow: bool
    cancel_at: int | None
    feedback: bool
    safeguarding: bool
    month_index: int
    steps: int = 0
    centre: float = 5.0


@attrs.define
class _Escalation:
    wid: str
    ladder: EscalationLadder
    spec: MachineSpec
    raiser: Actor
    subject: str
    people: dict[str, str]
    token: int = 0


class _Run:
    """One programme run: the engine, the clock, the queue of planned actions, the counts."""

    def __init__(
        self,
        council: Council,
        policy: AuditPolicy,
        moderation: ModerationPolicy,
        store: Store,
        *,
        seed: int,
        begin: datetime,
        end: datetime,
        prefix: str,
        grades: Mapping[Grade, float],
        feedback_rate: float,
        escalation_rate: float,
        cancel_rate: float,
        slow_share: float,
        agreement: float,
        on_time: float,
        safeguarding_rate: float,
    ) -> None:
        self.council = council
        self.policy = policy
        self.form = policy.form
        self.moderation = moderation
        self.store = store
        self.seed = seed
        self.begin = begin
        self.end = end
        self.prefix = prefix
        self.rng = random.Random(f"programme:{seed}")
        self.clock = ManualClock(begin)
        specs: list[MachineSpec] = list(shipped_specs())
        self.audit_spec = next(
            (s for s in specs if s.key == (A.MACHINE, policy.name, policy.version)), None
        ) or A.audit_spec(policy)
        specs.append(self.audit_spec)
        self.engine = Engine(store, specs, clock=self.clock, directory=council.directory)
        self.calendar: WorkingCalendar = policy.policy.calendar
        self.ladders = {
            ladder.kind: (ladder, self._ladder_spec(specs, ladder))
            for ladder in bexley.ESCALATION_LADDERS
        }
        self.grades = [g for g, w in grades.items() if w > 0]
        self.weights = [grades[g] for g in self.grades]
        self.feedback_rate = feedback_rate
        self.escalation_rate = escalation_rate
        self.cancel_rate = cancel_rate
        self.agreement = agreement
        self.on_time = on_time
        self.safeguarding_rate = safeguarding_rate
        self.business = Actor(council.business_support, "business_support")
        self.psqa = Actor(council.psqa, "psqa")
        self.queue: list[tuple[datetime, int, Callable[[], None]]] = []
        self.counter = 0
        self.past: list[PastAudit] = []
        self.audited: dict[str, int] = {}
        self.audits: dict[str, _Audit] = {}
        self.sa_tasks: dict[str, list[str]] = {}
        self.open_escalations: set[tuple[str, str]] = set()
        self.baseline: dict[str, tuple[float, float]] = {}
        self.moderator_load: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        auditors = sorted((*council.team_managers, *council.service_managers))
        n_slow = round(slow_share * len(auditors))
        self.slow = frozenset(self.rng.sample(auditors, n_slow))

    @staticmethod
    def _ladder_spec(specs: list[MachineSpec], ladder: EscalationLadder) -> MachineSpec:
        key = (machine_name(ladder), bexley.POLICY.name, bexley.POLICY.version)
        found = next((s for s in specs if s.key == key), None)
        return found or escalation_machine(ladder, bexley.POLICY)

    # --- bookkeeping ------------------------------------------------------------------------

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def at(self, when: datetime, action: Callable[[], None]) -> None:
        """Plan ``action`` for ``when``; actions after the period are not played."""
        if when < self.end:
            self.counter += 1
            heapq.heappush(self.queue, (max(when, self.clock.now()), self.counter, action))

    def run(self, months: int) -> None:
        begin_local = self.begin.astimezone(LONDON).date()
        first = date(begin_local.year, begin_local.month, 1)
        for m in range(months):
            month_start = _add_months(first, m)
            day = self.calendar.add_working_days_to_date(month_start, 0)
            when = max(self.local(day, time(8, 30)), self.begin)
            self.at(when, partial(self.open_month, m, when))
        while self.queue:
            when, _, action = heapq.heappop(self.queue)
            if when > self.clock.now():
                self.clock.set(when)
            self.tick()
            action()
        if self.end > self.clock.now():
            self.clock.set(self.end)
        self.tick()

    def tick(self) -> None:
        for step in self.engine.tick(self.clock.now()):
            self.count("breaches")
            self.after(step)

    def after(self, step: Step) -> None:
        """Book a written step: count it and plan when its tasks get done."""
        self.count("events")
        for task in step.tasks:
            self.plan_task(task)

    def fire(
        self, wid: str, trigger: str, actor: Actor, payload: Mapping[str, Any] | None = None
    ) -> Step:
        step = self.engine.fire(wid, trigger, actor, payload)
        self.after(step)
        return step

    def local(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, LONDON).astimezone(UTC)

    def working_day(self, moment: datetime, k: int, hour: int | None = None) -> datetime:
        """A moment on the ``k``-th working day after ``moment``'s local date (random hour
        in office hours unless ``hour`` is given)."""
        day = self.calendar.add_working_days_to_date(moment.astimezone(LONDON).date(), k)
        if hour is None:
            at = time(self.rng.randint(9, 16), self.rng.randrange(0, 60, 5))
        else:
            at = time(hour, self.rng.randrange(0, 30, 5))
        return self.local(day, at)

    def plan_task(self, task: Task) -> None:
        """Plan the task's completion: mostly before it falls due, sometimes late."""
        if task.kind == "self_assessment":
            self.sa_tasks.setdefault(task.workflow_id, []).append(task.id)
            return
        rng = self.rng
        on_time = self.on_time / 2 if task.owner_id in self.slow else self.on_time
        if task.due_at is not None:
            span = task.due_at - task.created_at
            if rng.random() < on_time:
                done = task.created_at + span * rng.uniform(0.1, 0.95)
            else:
                done = task.due_at + timedelta(hours=rng.uniform(2, 96))
        else:
            done = self.working_day(task.created_at, rng.randint(1, 10))
        self.at(done, lambda: self.complete([task.id]))

    def complete(self, ids: list[str]) -> None:
        self.count("tasks_completed", self.store.complete_tasks(ids, self.clock.now()))

    # --- each month -------------------------------------------------------------------------

    def open_month(self, index: int, when: datetime) -> None:
        """The month's allocation, moderation sample and escalations."""
        month = month_key(when.astimezone(LONDON).date())
        self.allocate(index, month, when)
        self.at(when + timedelta(hours=2), lambda: self.sample(month))
        self.raise_escalations(month, when)

    def allocate(self, index: int, month: str, when: datetime) -> None:
        council = self.council
        directory = council.directory
        recent = {c for c, m in self.audited.items() if index - m < 6}
        cases = [
            Case(c.child_id, c.worker_id, c.team_id)
            for c in council.cases
            if c.child_id not in recent
        ]
        auditors = [Auditor(tm, directory.team_of(tm)) for tm in council.team_managers]
        auditors += [Auditor(sm, None) for sm in council.service_managers]
        result = allocate_audits(
            cases,
            auditors,
            month,
            history=self.past,
            rules=A.allocation_rules(self.policy),
            seed=f"{self.seed}:{month}",
        )
        self.count("unallocated", len(result.unallocated))
        for n, allocation in enumerate(result.allocations, start=1):
            wid = f"{self.prefix}AUD-{month}-{n:03d}"
            self.past.append(PastAudit(allocation.auditor_id, allocation.worker_id, month))
            self.audited[allocation.child_id] = index
            payload = A.allocation_payload(
                self.policy,
                child_id=allocation.child_id,
                worker_id=allocation.worker_id,
                auditor_id=allocation.auditor_id,
                directory=directory,
                practice_week=self.rng.random() < _PRACTICE_WEEK,
            )
            at = when + timedelta(minutes=30 + n)
            self.at(
                at,
                partial(
                    self.start_audit,
                    wid,
                    payload,
                    allocation.auditor_id,
                    allocation.worker_id,
                    index,
                ),
            )

    # --- audits -----------------------------------------------------------------------------

    def start_audit(
        self, wid: str, payload: dict[str, Any], auditor: str, worker: str, index: int
    ) -> None:
        rng = self.rng
        step = self.engine.start(self.audit_spec, wid, "allocate", self.business, payload)
        self.after(step)
        self.count("audits_allocated")
        grade = rng.choices(self.grades, self.weights)[0]
        audit = _Audit(
            wid=wid,
            auditor=auditor,
            worker=worker,
            grade=grade,
            slow=auditor in self.slow,
            cancel_at=rng.randint(0, 4) if rng.random() < self.cancel_rate else None,
            feedback=rng.random() < self.feedback_rate,
            safeguarding=self.policy.safeguarding is not None
            and rng.random() < self.safeguarding_rate,
            month_index=index,
        )
        self.audits[wid] = audit
        if self.policy.has_self_assessment:
            self.at(
                self.working_day(step.event.at, rng.randint(1, 2)), lambda: self.audit_next(audit)
            )
        else:
            days = rng.randint(9, 15) if audit.slow else rng.randint(2, 7)
            self.at(self.working_day(step.event.at, days), lambda: self.audit_next(audit))

    def audit_next(self, audit: _Audit) -> None:
        """Take the audit one step on from wherever it is (the machine says where)."""
        rng = self.rng
        wid = audit.wid
        state = self.engine.get(wid).state
        if state in (A.CANCELLED, A.CLOSED):
            return
        if audit.cancel_at == audit.steps and state not in (A.COMPLETED, A.FOLLOWED_UP):
            self.fire(wid, "cancel", self.business, {"reason": _TEXT})
            self.count("audits_cancelled")
            return
        audit.steps += 1
        auditor = Actor(audit.auditor, AUDITOR)
        now = self.clock.now()
        policy = self.policy
        form = self.form
        nxt: datetime | None = None
        if state == A.ALLOCATED and policy.has_self_assessment:
            meeting = self.working_day(now, rng.randint(3, 6))
            self.fire(wid, "request_self_assessment", auditor, {"meeting_at": meeting.isoformat()})
            nxt = self.working_day(now, rng.randint(1, 2))
        elif state == A.SELF_ASSESSMENT_REQUESTED:
            centre = self.self_assessment_centre(audit)
            answers = _answers(form, "self_assessment", WORKER, centre, rng)
            self.fire(
                wid, "submit_self_assessment", Actor(audit.worker, WORKER), {"answers": answers}
            )
            self.complete(self.sa_tasks.pop(wid, []))
            nxt = self.working_day(now, rng.randint(1, 3))
        elif state in (A.ALLOCATED, A.SELF_ASSESSMENT_DONE):
            overall = _grading_answer(form, audit.grade, rng)
            audit.centre = _centre(form, overall, audit.grade)
            answers = _answers(form, "health_check", AUDITOR, audit.centre, rng)
            self.fire(wid, "hold_meeting", auditor, {"answers": answers})
            nxt = now + timedelta(hours=2)
        elif state == A.AUDIT_MEETING:
            if audit.safeguarding:
                self.fire(
                    wid,
                    "escalate_safeguarding",
                    auditor,
                    {"concern": _TEXT, "corrective_action": _TEXT},
                )
            answers = {
                **_answers(form, "meeting", AUDITOR, audit.centre, rng),
                **_answers(form, "grading", AUDITOR, audit.centre, rng),
            }
            overall = _grading_answer(form, audit.grade, rng)
            self.fire(wid, "grade", auditor, {"answer": overall, "answers": answers})
            nxt = self.working_day(now, rng.randint(0, 2) if policy.feedback is None else 1)
        elif state == A.GRADED and policy.feedback is not None:
            self.fire(wid, "seek_feedback", auditor)
            nxt = self.working_day(now, rng.randint(2, 6))
        elif state in (A.GRADED, A.FEEDBACK_SOUGHT):
            if policy.feedback is not None:
                if audit.feedback:
                    answers = _answers(
                        form,
                        "feedback",
                        AUDITOR,
                        audit.centre + 1.0,
                        rng,
                        only=policy.feedback.questions,
                    )
                    self.fire(wid, "answer", auditor, {"answers": answers})
                else:
                    self.fire(wid, "feedback_not_obtained", auditor, {"reason": _TEXT})
            data = self.engine.get(wid).data
            self.fire(wid, "agree_actions", auditor, {"actions": self.actions(data, audit)})
            days = rng.randint(2, 4) if audit.slow and policy.follow_up is None else 1
            nxt = self.working_day(now, rng.randint(0, days))
        elif state == A.ACTIONS_AGREED:
            self.fire(wid, "complete", auditor)
            self.count("audits_completed")
            if policy.follow_up is not None:
                days = rng.randint(4, 9) if audit.slow else rng.randint(1, 4)
                nxt = self.working_day(now, days)
        elif state == A.COMPLETED and policy.follow_up is not None:
            self.fire(wid, "follow_up", auditor, {"note": _TEXT})
            self.count("audits_followed_up")
        if nxt is not None:
            self.at(nxt, lambda: self.audit_next(audit))

    def self_assessment_centre(self, audit: _Audit) -> float:
        """A practitioner's own rating: a personal baseline that drifts month by month."""
        found = self.baseline.get(audit.worker)
        if found is None:
            found = self.baseline[audit.worker] = (
                self.rng.uniform(3.0, 7.5),
                self.rng.gauss(0.4, 0.6),
            )
        base, drift = found
        return base + drift * audit.month_index

    def actions(self, data: Mapping[str, Any], audit: _Audit) -> list[dict[str, Any]]:
        """The agreed actions: one for the practitioner, and whatever the grade requires."""
        actions: list[dict[str, Any]] = [
            {
                "action": _TEXT,
                "owner_role": WORKER,
                "within": self.rng.choice(("5 WD", "10 WD", "20 WD")),
                "immediate": audit.grade < Grade.GOOD,
            }
        ]
        for need in data.get("required_actions", []):
            actions.append(
                {
                    "action": _TEXT,
                    "owner_role": "team_manager",
                    "within": "10 WD",
                    "immediate": False,
                    "kind": need["kind"],
                }
            )
        return actions

    # --- moderation -------------------------------------------------------------------------

    def sample(self, month: str) -> None:
        """PSQA draws the month's moderation sample and allocates moderators (BX-MOD-01)."""
        now = self.clock.now()
        mine = [s for s in self.store.snapshots(A.MACHINE) if s.workflow_id.startswith(self.prefix)]
        chosen = M.sample_audits(mine, self.moderation, now=now, seed=f"{self.seed}:{month}")
        if not chosen:
            return
        auditors = {aid: self.audits[aid].auditor for aid in chosen if aid in self.audits}
        pool = M.eligible_moderators(self.council.directory, self.moderation)
        pool = pool or self.council.directory.holders(MODERATOR)
        assigned = M.assign_moderators(auditors, pool, load=self.moderator_load)
        for n, audit_id in enumerate(sorted(assigned), start=1):
            moderator = assigned[audit_id]
            self.moderator_load[moderator] = self.moderator_load.get(moderator, 0) + 1
            mid = f"{self.prefix}MOD-{month}-{n:03d}"
            for step in M.open_moderation(self.engine, self.moderation, audit_id, mid, self.psqa):
                self.after(step)
            self.fire(mid, "allocate", self.psqa, {"moderator_id": moderator})
            self.count("moderations_opened")
            self.at(
                self.working_day(now, self.rng.randint(2, 6)),
                partial(self.review, mid, moderator),
            )

    def gradable(self) -> list[Grade]:
        return [g for g in Grade if _can_give(self.form, g)]

    def review(self, mid: str, moderator: str) -> None:
        """The moderator scales the audit: the same grade, or a neighbouring one."""
        rng = self.rng
        actor = Actor(moderator, MODERATOR)
        original = Grade[str(self.engine.get(mid).data["original_grade"])]
        grade = original
        if rng.random() >= self.agreement:
            grades = self.gradable()
            i = grades.index(original)
            options = [grades[j] for j in (i - 1, i + 1) if 0 <= j < len(grades)]
            grade = rng.choice(options)
        done = rng.random() < _MODERATOR_ACTIONS_DONE
        payload: dict[str, Any] = {
            "answer": _grading_answer(self.form, grade, rng),
            "good_practice": _TEXT,
            "areas_for_development": _TEXT,
            "actions_completed": done,
        }
        if not done:
            payload["actions"] = [{"action": _TEXT, "owner_role": WORKER, "within": "10 WD"}]
        self.fire(mid, "review", actor, payload)
        later = self.clock.now() + timedelta(hours=1)
        self.at(later, lambda: self.decide_moderation(mid, actor, original, grade))

    def decide_moderation(self, mid: str, actor: Actor, original: Grade, grade: Grade) -> None:
        """Agree (BX-MOD-04), or disagree and meet the auditor to agree a grade (BX-MOD-05)."""
        rng = self.rng
        now = self.clock.now()
        if grade is original:
            self.fire(mid, "agree", actor)
            self.at(self.working_day(now, rng.randint(1, 2)), lambda: self.finalise(mid, actor))
        else:
            self.fire(mid, "disagree", actor, {"reason": _TEXT})
            agreed = grade if rng.random() < 0.6 else original
            self.at(self.working_day(now, rng.randint(1, 3)), lambda: self.meet(mid, actor, agreed))

    def meet(self, mid: str, actor: Actor, grade: Grade) -> None:
        self.fire(mid, "meet", actor)
        answer = _grading_answer(self.form, grade, self.rng)
        self.fire(mid, "agree_grade", actor, {"answer": answer, "rationale": _TEXT})
        self.at(self.clock.now() + timedelta(hours=1), lambda: self.finalise(mid, actor))

    def finalise(self, mid: str, actor: Actor) -> None:
        for step in M.finalise_moderation(self.engine, mid, actor):
            self.after(step)
        self.count("moderations_finalised")
        if self.engine.get(mid).data.get("agreed"):
            self.count("moderations_agreed")
        moderator = actor.id
        self.moderator_load[moderator] = max(0, self.moderator_load.get(moderator, 0) - 1)

    # --- escalations ------------------------------------------------------------------------

    def raise_escalations(self, month: str, when: datetime) -> None:
        """Each CP case, case in care and foster carer may see an escalation this month."""
        council = self.council
        rng = self.rng
        month_start = when.astimezone(LONDON).date().replace(day=1)
        days = self.calendar.working_dates(
            month_start, _add_months(month_start, 1) - timedelta(days=1)
        )
        subjects: list[tuple[str, str, CouncilCase | None]] = []
        for case in council.cases:
            if case.status == "cp":
                subjects.append(("cp_chair", case.child_id, case))
            elif case.status == "cla":
                subjects.append(("iro", case.child_id, case))
        subjects += [("firo", fc, None) for fc in council.foster_carers]
        numbers: dict[str, int] = {}
        for kind, subject, about in subjects:
            if (kind, subject) in self.open_escalations or rng.random() >= self.escalation_rate:
                continue
            ladder, spec = self.ladders[kind]
            numbers[kind] = numbers.get(kind, 0) + 1
            wid = f"{self.prefix}ESC-{kind.upper().replace('_', '')}-{month}-{numbers[kind]:03d}"
            raisers = {"cp_chair": council.cp_chairs, "iro": council.iros, "firo": council.firos}
            raiser = Actor(rng.choice(raisers[kind]), ladder.raiser)
            people = self.people(ladder, about)
            escalation = _Escalation(wid, ladder, spec, raiser, subject, people)
            at = self.local(rng.choice(days), time(rng.randint(9, 16), rng.randrange(0, 60, 5)))
            self.open_escalations.add((kind, subject))
            self.at(max(at, when), partial(self.raise_one, escalation))

    def people(self, ladder: EscalationLadder, case: CouncilCase | None) -> dict[str, str]:
        """Who holds each role the ladder notifies, for this case or foster carer."""
        council = self.council
        directory = council.directory
        if case is not None:
            worker = case.worker_id
            found: dict[str, str] = {"social_worker": worker}
        else:
            worker = self.rng.choice(council.supervising_social_workers)
            found = {
                "supervising_social_worker": worker,
                "fostering_manager": council.fostering_manager,
            }
        found.update(
            {k.removesuffix("_id"): v for k, v in directory.management_chain(worker).items()}
        )
        found.update(
            assistant_director=council.assistant_director,
            director=council.director,
            cafcass=_CAFCASS_ID,
        )
        return {role: found[role] for role in ladder.assignable_roles if role in found}

    def raise_one(self, e: _Escalation) -> None:
        reasons = [r for r in e.ladder.reasons if r != "other"]
        payload = {"subject_id": e.subject, "reason": self.rng.choice(reasons), "people": e.people}
        step = self.engine.start(e.spec, e.wid, "raise", e.raiser, payload)
        self.after(step)
        self.count("escalations_raised")
        self.enter(e, step)

    def enter(self, e: _Escalation, step: Step) -> None:
        """The escalation is at a new stage (or ended): plan what its holder does."""
        state = step.snapshot.state
        if state in TERMINAL_STATES:
            self.count("escalations_closed")
            kind = e.ladder.kind
            self.open_escalations.discard((kind, e.subject))
            return
        rng = self.rng
        e.token += 1
        token = e.token
        level = level_of(e.ladder, state)
        assert level is not None
        stage = e.ladder.stage_at(level)
        role = rng.choice(stage.holders)
        holder = Actor(e.people[role], role)
        now = self.clock.now()
        days = [d for d, _ in _RESPONSE_DAYS]
        k = rng.choices(days, [w for _, w in _RESPONSE_DAYS])[0]
        respond_at = self.working_day(now, k, hour=10)
        due = next((d.due_at for d in step.snapshot.deadlines if d.name == "response"), None)
        if due is None or respond_at <= due:
            if rng.random() < 0.9:
                self.at(respond_at, lambda: self.respond(e, token, holder))
            else:  # no answer at a stage without a deadline: the raiser moves on later
                self.at(self.working_day(now, 8, hour=11), lambda: self.move_on(e, token))
            return
        allowed = e.ladder.extensions.allowed
        if allowed and rng.random() < _EXTENSION_ASK:
            ask = self.local(due.astimezone(LONDON).date(), time(9, 0))
            self.at(ask, lambda: self.ask_extension(e, token, holder, respond_at))
        else:
            self.at(self.working_day(due, 1, hour=11), lambda: self.move_on(e, token))

    def ask_extension(
        self, e: _Escalation, token: int, holder: Actor, respond_at: datetime
    ) -> None:
        if e.token != token or self.engine.get(e.wid).state in TERMINAL_STATES:
            return
        length = str(e.ladder.extensions.max_length)
        self.fire(e.wid, "request_extension", holder, {"length": length, "note": _TEXT})
        later = self.clock.now() + timedelta(hours=1)
        self.at(later, lambda: self.decide_extension(e, token, holder, respond_at))

    def decide_extension(
        self, e: _Escalation, token: int, holder: Actor, respond_at: datetime
    ) -> None:
        if e.token != token:
            return
        granted = self.rng.random() < _EXTENSION_GRANT
        step = self.fire(e.wid, "grant_extension" if granted else "refuse_extension", e.raiser)
        due = next((d.due_at for d in step.snapshot.deadlines if d.name == "response"), None)
        if granted and due is not None and respond_at <= due:
            self.at(respond_at, lambda: self.respond(e, token, holder))
        else:
            base = due or self.clock.now()
            self.at(self.working_day(base, 1, hour=11), lambda: self.move_on(e, token))

    def respond(self, e: _Escalation, token: int, holder: Actor) -> None:
        if e.token != token:
            return
        self.fire(e.wid, "respond", holder, {"response": _TEXT})
        later = self.working_day(self.clock.now(), self.rng.randint(1, 3), hour=11)
        self.at(later, lambda: self.decide(e, token))

    def decide(self, e: _Escalation, token: int) -> None:
        if e.token != token:
            return
        if self.rng.random() < _ESCALATION_ACCEPT:
            self.enter(e, self.fire(e.wid, "accept", e.raiser, {"note": _TEXT}))
        else:
            self.move_on(e, token)

    def move_on(self, e: _Escalation, token: int) -> None:
        """Not satisfied, or no response in time: withdraw, bypass, escalate or refer."""
        if e.token != token:
            return
        rng = self.rng
        ladder = e.ladder
        level = level_of(ladder, self.engine.get(e.wid).state)
        assert level is not None
        targets = ladder.bypass_targets(level)
        nxt = ladder.next_level(level)
        draw = rng.random()
        if draw < _ESCALATION_WITHDRAW:
            step = self.fire(e.wid, "withdraw", e.raiser, {"note": _TEXT})
        elif targets and draw < _ESCALATION_WITHDRAW + _ESCALATION_BYPASS:
            to = state_of(ladder, rng.choice(targets))
            step = self.fire(e.wid, "bypass", e.raiser, {"to": to, "note": _TEXT})
        elif nxt is not None:
            step = self.fire(e.wid, "escalate", e.raiser, {"note": _TEXT})
        elif ladder.referral is not None:
            step = self.fire(e.wid, "refer_externally", e.raiser, {"note": _TEXT})
        else:
            step = self.fire(e.wid, "accept", e.raiser, {"note": _TEXT})
        self.enter(e, step)


def _moderation_for(policy: AuditPolicy) -> ModerationPolicy:
    for candidate in shipped_audit_procedures():
        if candidate.audit == policy:
            return candidate.moderation
    raise ValidationError(
        field="moderation",
        value=policy.name,
        expected="a ModerationPolicy for this audit policy (only shipped ones are found)",
    )


def run_programme(
    council: Council,
    policy: AuditPolicy = bexley.BEXLEY_AUDIT,
    *,
    months: int,
    start: date | datetime,
    seed: int,
    store: Store | None = None,
    grades: Mapping[Grade, float] | None = None,
    feedback_rate: float = 0.7,
    escalation_rate: float = 0.03,
    cancel_rate: float = 0.04,
    slow_auditor_share: float = 0.2,
    moderation_agreement: float = 0.75,
    task_on_time_rate: float = 0.85,
    safeguarding_rate: float = 0.02,
    moderation: ModerationPolicy | None = None,
    id_prefix: str | None = None,
) -> ProgrammeResult:
    """Play ``months`` of ``council``'s audit programme under ``policy`` into ``store``.

    ``grades`` weights the auditors' grades (default :data:`DEFAULT_GRADES`; grades the form
    cannot give, e.g. Inadequate under BK-AUD-01, are dropped). ``feedback_rate`` is the share
    of audits where family feedback is obtained (else the reason is recorded, BX-AUD-07);
    ``escalation_rate`` the monthly chance that a CP case, a case in care or a foster carer
    sees an escalation raised; ``cancel_rate`` the share of audits cancelled before
    completion; ``slow_auditor_share`` the share of managers who follow up (BX-AUD-09) or
    complete (BK-AUD-02) late and do their tasks late more often; ``moderation_agreement``
    the chance a moderator agrees with the grade; ``task_on_time_rate`` the chance a task is
    done before it falls due; ``safeguarding_rate`` the share of audits that escalate a
    serious safeguarding issue where the policy has that rule (BK-AUD-04).

    Workflow ids start with ``id_prefix`` (default the council code, ``"BX-"`` or ``"BK-"``):
    audits ``BX-AUD-2026-01-001``, moderations ``BX-MOD-2026-02-001``, escalations
    ``BX-ESC-CPCHAIR-2026-01-001``; they must be new in ``store`` (a second run into the same
    store needs another prefix). ``tick`` runs on the whole store, as a host's would. Raises
    :class:`~qaflow.errors.ValidationError` naming a bad argument before anything is written.
    """
    if not isinstance(council, Council):
        raise ValidationError(field="council", value=council, expected="a Council")
    if not isinstance(policy, AuditPolicy):
        raise ValidationError(field="policy", value=policy, expected="an AuditPolicy")
    n_months = _positive("months", months, 120)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValidationError(field="seed", value=seed, expected="an int")
    begin, end = period_bounds(start, n_months)
    weights = dict(DEFAULT_GRADES if grades is None else grades)
    for grade, weight in weights.items():
        if not isinstance(grade, Grade):
            raise ValidationError(field="grades", value=grade, expected="Grade keys")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValidationError(field=f"grades[{grade.name}]", value=weight, expected=">= 0")
    usable = {g: float(w) for g, w in weights.items() if _can_give(policy.form, g) and w > 0}
    if not usable:
        raise ValidationError(
            field="grades", value=sorted(g.name for g in weights), expected="a grade the form gives"
        )
    rates = {
        "feedback_rate": _probability("feedback_rate", feedback_rate),
        "escalation_rate": _probability("escalation_rate", escalation_rate),
        "cancel_rate": _probability("cancel_rate", cancel_rate),
        "slow_share": _probability("slow_auditor_share", slow_auditor_share),
        "agreement": _probability("moderation_agreement", moderation_agreement),
        "on_time": _probability("task_on_time_rate", task_on_time_rate),
        "safeguarding_rate": _probability("safeguarding_rate", safeguarding_rate),
    }
    moderation = moderation or _moderation_for(policy)
    if moderation.audit != policy:
        raise ValidationError(
            field="moderation", value=moderation.name, expected=f"moderation of {policy.name!r}"
        )
    prefix = f"{_CODES.get(policy.name, policy.name.upper())}-" if id_prefix is None else id_prefix
    if not isinstance(prefix, str) or len(prefix) > 32:
        raise ValidationError(field="id_prefix", value=prefix, expected="text of at most 32")
    run = _Run(
        council,
        policy,
        moderation,
        MemoryStore() if store is None else store,
        seed=seed,
        begin=begin,
        end=end,
        prefix=prefix,
        grades=usable,
        **rates,
    )
    run.run(n_months)
    c = run.counts
    return ProgrammeResult(
        council=council,
        policy=policy.name,
        policy_version=policy.version,
        seed=seed,
        months=n_months,
        start=begin,
        end=end,
        id_prefix=prefix,
        audits_allocated=c.get("audits_allocated", 0),
        audits_completed=c.get("audits_completed", 0),
        audits_cancelled=c.get("audits_cancelled", 0),
        audits_followed_up=c.get("audits_followed_up", 0),
        auditors_unallocated=c.get("unallocated", 0),
        moderations_opened=c.get("moderations_opened", 0),
        moderations_finalised=c.get("moderations_finalised", 0),
        moderations_agreed=c.get("moderations_agreed", 0),
        escalations_raised=c.get("escalations_raised", 0),
        escalations_closed=c.get("escalations_closed", 0),
        deadline_breaches=c.get("breaches", 0),
        tasks_completed=c.get("tasks_completed", 0),
        events_written=c.get("events", 0),
    )
