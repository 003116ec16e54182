"""The quarterly QA report, built from any store for any period.

:func:`build_report` reads what a store holds -- workflow snapshots, their events, the
notification outbox, tasks and open deadlines -- and answers three questions for the period
``[start, end)``:

* **How much did we do?** Audits allocated, graded, completed, cancelled and still open at
  the end; moderations sampled, finalised, cancelled; escalations raised and closed.
* **How well did we do it?** The grade distribution (as graded by the auditor, and as it
  stands after moderation), the practice-area scores per question averaged, the moderation
  agreement rate, follow-ups on time (BX-AUD-09), 24 h tasks on time (BX-AUD-12, BX-MOD-06),
  family feedback per statement (BX-AUD-07).
* **Is anyone better off?** Distance travelled on the practitioners' self-assessment scales
  (BX-AUD-03): for each practitioner who self-assessed twice or more in the period, the
  change from the first to the last; when nobody did, the report says so instead of
  guessing.

Then escalations by ladder and stage reached, time to resolution in working days (median and
90th percentile), deadline breaches, and what is overdue at ``end``: follow-ups, 24 h tasks
and open deadlines past due. Last, timescale compliance per team (case timescales,
supervision, the QA calendar): each timescale's instances met, missed and still open at
``end`` (:mod:`qaflow.compliance`).

Everything is counted "as of ``end``": an event belongs to the period when its time is in
``[start, end)``, and a workflow's state at the end is read from its events before ``end``,
so a report for a past quarter does not change when later work is recorded. The report
depends on the machines' documented data (the audit's ``grades`` and ``answers``, the
escalation record), never on how the data was produced: a simulated programme and a live
system report alike. It holds ids, counts and policy names only -- never free text from a
payload, never a name.

:func:`to_json`, :func:`to_markdown` and :func:`to_html` render a :class:`QAReport`. The HTML
page is self-contained (inline CSS, no script, no font or image fetched) and draws its charts
as inline SVG, each an ``<svg>`` with a stable ``id`` and the class ``qa-chart``:
:data:`CHART_IDS`.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

import attrs

from qaflow._stats import nearest_rank
from qaflow.calendar import LONDON, WorkingCalendar, default_calendar
from qaflow.compliance import TimescaleCompliance, report_rows
from qaflow.errors import ValidationError
from qaflow.machines import audit as audit_machine
from qaflow.machines.escalation import state_of
from qaflow.policies import bexley
from qaflow.policies.ladders import EscalationLadder
from qaflow.procedure import AuditPolicy, Grade, Judgement
from qaflow.records import SYSTEM, Event, Task, WorkflowSnapshot, converter
from qaflow.store import MemoryStore, SQLiteStore, Store

__all__ = [
    "CHART_IDS",
    "Activity",
    "BreachCount",
    "ClauseCount",
    "DistanceTravelled",
    "Distribution",
    "GradeCount",
    "HistogramBin",
    "LadderSummary",
    "ModerationSummary",
    "OnTime",
    "OverdueItem",
    "QAReport",
    "QuestionScore",
    "StageCount",
    "StatementScore",
    "build_report",
    "from_json",
    "to_json",
]

CHART_IDS: Final = (
    "chart-grades",
    "chart-practice-areas",
    "chart-escalation-funnel",
    "chart-resolution-histogram",
)
"""The ids of the SVG charts of the HTML report (each also has the class ``qa-chart``)."""

_URGENT: Final = timedelta(hours=24)
_HISTOGRAM_WIDTH: Final = 5
_ESCALATION_PREFIX: Final = "escalation."
_AUDIT_ENDS: Final = ("complete", "cancel")


# --- the records ------------------------------------------------------------------------------


@attrs.frozen
class Activity:
    """How much was done in the period (events in ``[start, end)``)."""

    audits_allocated: int
    audits_graded: int
    audits_completed: int
    audits_cancelled: int
    audits_followed_up: int
    audits_open_at_end: int
    moderations_sampled: int
    moderations_finalised: int
    moderations_cancelled: int
    escalations_raised: int
    escalations_closed: int


@attrs.frozen
class GradeCount:
    """How many audits have a grade (its enum name and Ofsted label)."""

    grade: str
    label: str
    count: int


@attrs.frozen
class QuestionScore:
    """One practice-area question over the audits graded in the period.

    A 0-10 scale has ``mean``; a judgement has the count of each judgement and
    ``share_good``, the share that meets or exceeds good.
    """

    question_id: str
    section: str | None
    kind: str
    answered: int
    mean: float | None = None
    exceeds_good: int = 0
    meets_good: int = 0
    does_not_meet_good: int = 0
    share_good: float | None = None


@attrs.frozen
class ModerationSummary:
    """Moderations finalised in the period and how often the moderator agreed (BX-MOD-04)."""

    finalised: int
    agreed: int
    disagreed: int
    agreement_rate: float | None
    grade_changed: int


@attrs.frozen
class OnTime:
    """Work due in the period: done on time, done late, overdue at the end, not yet due.

    ``rate`` is on time over everything that was due (on time + late + overdue).
    ``timing_known`` is false when the store cannot say when tasks were done; then the
    done ones are only counted in ``done_time_unknown``.
    """

    total: int
    on_time: int
    late: int
    overdue: int
    pending: int
    rate: float | None
    timing_known: bool = True
    done_time_unknown: int = 0


@attrs.frozen
class StatementScore:
    """One family feedback statement (BX-AUD-07): responses and the mean score 0-10."""

    question_id: str
    responses: int
    mean: float | None


@attrs.frozen
class DistanceTravelled:
    """Change on one self-assessment scale, first to last, per practitioner (BX-AUD-03)."""

    question_id: str
    practitioners: int
    mean_change: float | None
    improved: int
    unchanged: int
    worse: int


@attrs.frozen
class StageCount:
    """One level of a ladder: how many escalations reached it (or went beyond), and how
    many stood there at the end of the period or ended there."""

    level: int
    state: str
    reached: int
    ended_here: int


@attrs.frozen
class LadderSummary:
    """Escalations of one ladder raised in the period, by outcome at the end and stage."""

    ladder: str
    machine: str
    raised: int
    resolved: int
    withdrawn: int
    referred: int
    open: int
    stages: tuple[StageCount, ...]


@attrs.frozen
class HistogramBin:
    """Working days ``low..high`` (inclusive) and how many fell there."""

    low: int
    high: int
    count: int


@attrs.frozen
class Distribution:
    """Working days: how many, median, 90th percentile (nearest rank) and a histogram."""

    count: int
    median: float | None
    p90: int | None
    histogram: tuple[HistogramBin, ...]


@attrs.frozen
class BreachCount:
    """Deadlines of one machine and name breached in the period."""

    machine: str
    deadline: str
    count: int


@attrs.frozen
class ClauseCount:
    """Notifications written in the period under one clause."""

    clause: str
    count: int


@attrs.frozen
class OverdueItem:
    """Something past due at the end of the period: ids, name and how late."""

    kind: str
    workflow_id: str
    name: str
    due_at: datetime | None
    working_days_overdue: int | None
    owner_role: str | None = None
    owner_id: str | None = None


@attrs.frozen
class QAReport:
    """The QA report for ``[start, end)``: see the module docstring for every figure."""

    start: datetime
    end: datetime
    working_days: int
    workflows_read: int
    policies: tuple[str, ...]
    activity: Activity
    grades: tuple[GradeCount, ...]
    auditor_grades: tuple[GradeCount, ...]
    practice_areas: tuple[QuestionScore, ...]
    moderation: ModerationSummary
    follow_ups: OnTime
    urgent_tasks: OnTime
    family_feedback: tuple[StatementScore, ...]
    feedback_obtained: int
    feedback_not_obtained: int
    distance_travelled: tuple[DistanceTravelled, ...]
    escalations: tuple[LadderSummary, ...]
    resolution: Distribution
    time_to_close: Distribution
    breaches: tuple[BreachCount, ...]
    notifications: tuple[ClauseCount, ...]
    overdue_follow_ups: tuple[OverdueItem, ...]
    overdue_tasks: tuple[OverdueItem, ...]
    overdue_deadlines: tuple[OverdueItem, ...]
    notes: tuple[str, ...]
    timescales: tuple[TimescaleCompliance, ...] = ()
    """Timescale compliance per team (case, supervision, QA calendar): qaflow.compliance."""

    @property
    def breaches_total(self) -> int:
        return sum(b.count for b in self.breaches)

    @property
    def escalations_raised(self) -> int:
        return sum(s.raised for s in self.escalations)


# --- reading the store ------------------------------------------------------------------------


def _moment(value: date | datetime, field: str) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValidationError(
                field=field, value=value.isoformat(), expected="an aware datetime or a date"
            )
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), LONDON).astimezone(UTC)
    raise ValidationError(field=field, value=value, expected="a date or an aware datetime")


def _task_done_times(store: Store) -> dict[str, datetime] | None:
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
class _Workflow:
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


def _audit_ended(
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
        phases[policy.name] = _audit_phases(policy)
    before, after = phases[policy.name]
    if state in after:
        return True
    if state in before:
        return False
    return None


def _audit_phases(policy: AuditPolicy) -> tuple[frozenset[str], frozenset[str]]:
    """States reachable before any ending trigger, and after one (empty if they meet)."""
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

    ends = frozenset(_AUDIT_ENDS)
    before = reach([spec.initial], ends)
    after = reach(
        [t.dest_from(s) for t in spec.transitions if t.trigger in ends for s in t.sources],
        frozenset(),
    )
    if before & after:
        return frozenset(), frozenset()
    return frozenset(before), frozenset(after)


def _in(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment < end


def _counts(grades: Iterable[Grade]) -> tuple[GradeCount, ...]:
    found = list(grades)
    return tuple(
        GradeCount(g.name, g.label, sum(1 for x in found if x is g))
        for g in sorted(Grade, reverse=True)
    )


def _grade(name: object) -> Grade | None:
    if isinstance(name, str) and name in Grade.__members__:
        return Grade[name]
    return None


def _distribution(values: Iterable[int]) -> Distribution:
    ordered = sorted(values)
    top = ordered[-1] if ordered else 0
    bins = tuple(
        HistogramBin(low, low + _HISTOGRAM_WIDTH - 1, 0)
        for low in range(0, top + 1, _HISTOGRAM_WIDTH)
    )
    counts = [0] * len(bins)
    for v in ordered:
        counts[v // _HISTOGRAM_WIDTH] += 1
    return Distribution(
        count=len(ordered),
        median=float(statistics.median(ordered)) if ordered else None,
        p90=nearest_rank(ordered, 90),
        histogram=tuple(attrs.evolve(b, count=c) for b, c in zip(bins, counts, strict=True)),
    )


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


class _Builder:
    """Gathers the report's figures from the workflows read once from the store."""

    def __init__(
        self,
        store: Store,
        start: datetime,
        end: datetime,
        calendar: WorkingCalendar,
        audit_policies: Mapping[str, AuditPolicy],
        ladders: Mapping[str, EscalationLadder],
        policy: str | None,
    ) -> None:
        self.store = store
        self.start = start
        self.end = end
        self.calendar = calendar
        self.audit_policies = audit_policies
        self.ladders = ladders
        self.policy = policy
        self.notes: list[str] = []
        self.flows: dict[str, list[_Workflow]] = {"audit": [], "moderation": [], "escalation": []}
        self.read = 0
        # Workflows with no event since ``start`` count only as read, by policy, and (audits
        # never completed nor cancelled) as open at the end: the store answers that in one
        # query instead of handing over their histories (issue 14).
        self.quiet_policies: set[str] = set()
        self.quiet_open_audits = 0
        for snapshot, events in self._histories(store, start, end):
            kind = self._kind(snapshot.machine, snapshot.policy, policy)
            if kind is None:
                continue
            if not events or events[0].at >= end:
                continue
            self.read += 1
            before = [e for e in events if e.at < end]
            self.flows[kind].append(
                _Workflow(snapshot, events, {e.seq: e.at for e in events}, before)
            )

    def _kind(self, machine: str, policy_name: str, policy: str | None) -> str | None:
        """The flow a workflow belongs to, or ``None`` if the report leaves it out."""
        kind = "escalation" if machine.startswith(_ESCALATION_PREFIX) else machine
        if kind not in self.flows:
            return None
        if policy is not None and kind != "escalation" and policy_name != policy:
            return None
        return kind

    def _histories(
        self, store: Store, start: datetime, end: datetime
    ) -> Iterator[tuple[WorkflowSnapshot, list[Event]]]:
        reader = getattr(store, "period_workflows", None)
        quiet = getattr(store, "quiet_workflows", None)
        if not callable(reader) or not callable(quiet):  # a store without period reads
            for snapshot in store.snapshots():
                yield snapshot, store.events(snapshot.workflow_id)
            return
        groups = list(quiet(start, end))
        ended: dict[tuple[str, str], bool | None] = {}
        phases: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        for machine, policy_name, state, _ in groups:
            if self._kind(machine, policy_name, self.policy) == "audit":
                ended[(policy_name, state)] = _audit_ended(
                    self.audit_policies.get(policy_name), state, phases
                )
        if None in ended.values():  # a state that does not tell: read every history
            for snapshot in store.snapshots():
                yield snapshot, store.events(snapshot.workflow_id)
            return
        for machine, policy_name, state, count in groups:
            kind = self._kind(machine, policy_name, self.policy)
            if kind is None:
                continue
            self.read += count
            if policy_name:
                self.quiet_policies.add(policy_name)
            if kind == "audit" and not ended[(policy_name, state)]:
                self.quiet_open_audits += count
        yield from reader(start, end)

    # --- audits -----------------------------------------------------------------------------

    def activity(self) -> Activity:
        s, e = self.start, self.end
        audits = self.flows["audit"]

        def n(flows: list[_Workflow], trigger: str) -> int:
            return sum(1 for w in flows if w.any_in(trigger, s) is not None)

        open_at_end = self.quiet_open_audits + sum(
            1 for w in audits if all(w.first(t) is None for t in _AUDIT_ENDS)
        )
        escalations = self.flows["escalation"]
        raised = sum(1 for w in escalations if _in(w.events[0].at, s, e))
        closed = sum(1 for w in escalations if _in(self._closed_at(w), s, e))
        return Activity(
            audits_allocated=sum(1 for w in audits if _in(w.events[0].at, s, e)),
            audits_graded=n(audits, "grade"),
            audits_completed=n(audits, "complete"),
            audits_cancelled=n(audits, "cancel"),
            audits_followed_up=n(audits, "follow_up"),
            audits_open_at_end=open_at_end,
            moderations_sampled=sum(
                1 for w in self.flows["moderation"] if _in(w.events[0].at, s, e)
            ),
            moderations_finalised=n(self.flows["moderation"], "finalise"),
            moderations_cancelled=n(self.flows["moderation"], "cancel"),
            escalations_raised=raised,
            escalations_closed=closed,
        )

    def graded(self) -> list[_Workflow]:
        return [w for w in self.flows["audit"] if w.any_in("grade", self.start) is not None]

    def grades(self) -> tuple[tuple[GradeCount, ...], tuple[GradeCount, ...]]:
        """The grade as it stands at the end (moderated) and as the auditor gave it."""
        now: list[Grade] = []
        first: list[Grade] = []
        for w in self.graded():
            history = [
                g
                for g in w.snapshot.data.get("grades", [])
                if isinstance(g, dict) and w.at.get(int(g.get("seq", 0)), self.end) < self.end
            ]
            if history:
                current, original = (
                    _grade(history[-1].get("grade")),
                    _grade(history[0].get("grade")),
                )
            else:
                current = original = _grade(w.snapshot.data.get("grade"))
            if current is not None:
                now.append(current)
            if original is not None:
                first.append(original)
        return _counts(now), _counts(first)

    def practice_areas(self) -> tuple[QuestionScore, ...]:
        """Per question of the health check and areas of practice, averaged over audits."""
        scores: dict[str, list[int]] = {}
        judgements: dict[str, list[str]] = {}
        sections: dict[str, str | None] = {}
        order: dict[str, tuple[int, str]] = {}
        for w in self.graded():
            policy = self.audit_policies.get(w.snapshot.policy)
            answers = w.snapshot.data.get("answers")
            if not isinstance(answers, dict):
                continue
            for qid, answer in answers.items():
                if not isinstance(answer, dict):
                    continue
                if policy is not None:
                    form = policy.form
                    try:
                        question = form.question(qid)
                    except ValidationError:
                        continue
                    stage = form.section(question.section).stage
                    if stage not in ("health_check", "meeting") or qid == form.grading_question:
                        continue
                    sections[qid] = question.section
                    order.setdefault(qid, (list(form.questions).index(question), qid))
                elif qid in ("overall",):
                    continue
                else:
                    sections.setdefault(qid, None)
                    order.setdefault(qid, (10_000, qid))
                score = answer.get("score")
                judgement = answer.get("judgement")
                if isinstance(score, int) and not isinstance(score, bool):
                    scores.setdefault(qid, []).append(score)
                elif isinstance(judgement, str):
                    judgements.setdefault(qid, []).append(judgement)
        out: list[QuestionScore] = []
        for qid in sorted(set(scores) | set(judgements), key=lambda q: order.get(q, (0, q))):
            if qid in scores:
                values = scores[qid]
                out.append(
                    QuestionScore(qid, sections.get(qid), "scale_0_10", len(values), _mean(values))
                )
            else:
                js = judgements[qid]
                exceeds = js.count(Judgement.EXCEEDS_GOOD.value)
                meets = js.count(Judgement.MEETS_GOOD.value)
                out.append(
                    QuestionScore(
                        qid,
                        sections.get(qid),
                        "judgement",
                        len(js),
                        exceeds_good=exceeds,
                        meets_good=meets,
                        does_not_meet_good=js.count(Judgement.DOES_NOT_MEET_GOOD.value),
                        share_good=_rate(exceeds + meets, len(js)),
                    )
                )
        return tuple(out)

    def completed(self) -> list[_Workflow]:
        return [w for w in self.flows["audit"] if w.any_in("complete", self.start) is not None]

    def follow_ups(self) -> tuple[OnTime, list[OverdueItem]]:
        """BX-AUD-09 for audits completed in the period: followed up before any miss."""
        on_time = late = overdue = pending = 0
        items: list[OverdueItem] = []
        name = audit_machine.FOLLOW_UP_DEADLINE
        for w in self.completed():
            policy = self.audit_policies.get(w.snapshot.policy)
            missed = next(
                (
                    e
                    for e in w.before_end
                    if e.actor == SYSTEM and e.payload.get("deadline") == name
                ),
                None,
            )
            done = w.first("follow_up")
            open_due = next((d.due_at for d in w.snapshot.deadlines if d.name == name), None)
            if policy is not None:
                if policy.follow_up is None:
                    continue
            elif done is None and missed is None and open_due is None:
                continue
            if done is not None:
                if missed is not None and missed.at <= done.at:
                    late += 1
                else:
                    on_time += 1
            elif missed is not None or (open_due is not None and open_due < self.end):
                overdue += 1
                due = open_due if open_due is not None else (missed.at if missed else None)
                items.append(self._overdue("follow_up", w.id, name, due))
            else:
                pending += 1
        total = on_time + late + overdue + pending
        return OnTime(
            total, on_time, late, overdue, pending, _rate(on_time, total - pending)
        ), items

    def urgent_tasks(self) -> tuple[OnTime, list[OverdueItem]]:
        """Tasks due within 24 h of being opened (BX-AUD-12, BX-MOD-06), opened in the period."""
        created = getattr(self.store, "tasks_created", None)
        if callable(created):
            period: list[tuple[Task, datetime | None]] = created(self.start, self.end)
            done_at: dict[str, datetime] | None = {t.id: d for t, d in period if d is not None}
            open_ids = {t.id for t, d in period if d is None}
            tasks = [t for t, _ in period]
        else:
            done_at = _task_done_times(self.store)
            open_ids = {t.id for t in self.store.tasks(open_only=True)}
            tasks = self.store.tasks()
        on_time = late = overdue = pending = unknown = 0
        items: list[OverdueItem] = []
        for task in tasks:
            if not self._urgent(task):
                continue
            assert task.due_at is not None
            when = done_at.get(task.id) if done_at is not None else None
            if done_at is None and task.id not in open_ids:
                unknown += 1
            elif when is not None and when < self.end:
                if when <= task.due_at:
                    on_time += 1
                else:
                    late += 1
            elif task.due_at < self.end:
                overdue += 1
                items.append(
                    attrs.evolve(
                        self._overdue("task", task.workflow_id, task.kind, task.due_at),
                        owner_role=task.owner_role,
                        owner_id=task.owner_id,
                    )
                )
            else:
                pending += 1
        total = on_time + late + overdue + pending + unknown
        if done_at is None:
            self.notes.append(
                "This store does not record when tasks were done: 24 h tasks done are counted "
                "without judging whether they were on time."
            )
        return (
            OnTime(
                total,
                on_time,
                late,
                overdue,
                pending,
                _rate(on_time, on_time + late + overdue) if done_at is not None else None,
                timing_known=done_at is not None,
                done_time_unknown=unknown,
            ),
            items,
        )

    def _urgent(self, task: Task) -> bool:
        return (
            task.due_at is not None
            and task.due_at - task.created_at <= _URGENT
            and _in(task.created_at, self.start, self.end)
        )

    def _overdue(self, kind: str, workflow_id: str, name: str, due: datetime | None) -> OverdueItem:
        days = None
        if due is not None:
            days = max(0, self.calendar.working_days_between(due, self.end))
        return OverdueItem(kind, workflow_id, name, due, days)

    def family_feedback(self) -> tuple[tuple[StatementScore, ...], int, int]:
        """BX-AUD-07: the mean score of each statement over audits completed in the period."""
        statements: list[str] = []
        for known in self.audit_policies.values():
            if known.feedback is not None:
                statements += [q for q in known.feedback.questions if q not in statements]
        scores: dict[str, list[int]] = {q: [] for q in statements}
        obtained = not_obtained = 0
        for w in self.completed():
            policy = self.audit_policies.get(w.snapshot.policy)
            if policy is None or policy.feedback is None:
                continue
            data = w.snapshot.data
            answers = data.get("answers") if isinstance(data.get("answers"), dict) else {}
            assert isinstance(answers, dict)
            got = False
            for qid in policy.feedback.questions:
                answer = answers.get(qid)
                score = answer.get("score") if isinstance(answer, dict) else None
                if isinstance(score, int) and not isinstance(score, bool):
                    scores[qid].append(score)
                    got = True
            if got:
                obtained += 1
            elif data.get("feedback_reason"):
                not_obtained += 1
        out = tuple(StatementScore(q, len(v), _mean(v)) for q, v in scores.items())
        return out, obtained, not_obtained

    def distance(self) -> tuple[DistanceTravelled, ...]:
        """BX-AUD-03: first and last self-assessment in the period of each practitioner."""
        by_worker: dict[str, list[tuple[datetime, str, dict[str, Any]]]] = {}
        scales: list[str] = []
        for w in self.flows["audit"]:
            policy = self.audit_policies.get(w.snapshot.policy)
            if policy is None or not policy.has_self_assessment:
                continue
            submitted = w.any_in("submit_self_assessment", self.start)
            worker = w.snapshot.data.get("worker_id")
            answers = w.snapshot.data.get("answers")
            if submitted is None or not isinstance(worker, str) or not isinstance(answers, dict):
                continue
            for question in policy.form.questions_in_stage("self_assessment"):
                if question.kind == "scale_0_10" and question.id not in scales:
                    scales.append(question.id)
            by_worker.setdefault(worker, []).append((submitted.at, w.id, answers))
        out: list[DistanceTravelled] = []
        for qid in scales:
            changes: list[int] = []
            for visits in by_worker.values():
                points = [
                    a[qid]["score"]
                    for _, _, a in sorted(visits, key=lambda v: (v[0], v[1]))
                    if isinstance(a.get(qid), dict) and isinstance(a[qid].get("score"), int)
                ]
                if len(points) >= 2:
                    changes.append(points[-1] - points[0])
            out.append(
                DistanceTravelled(
                    qid,
                    len(changes),
                    _mean(changes),
                    sum(1 for c in changes if c > 0),
                    sum(1 for c in changes if c == 0),
                    sum(1 for c in changes if c < 0),
                )
            )
        if not any(d.practitioners for d in out):
            self.notes.append(
                "Distance travelled is not computable for this period: no practitioner "
                "self-assessed in two audits within it."
            )
            return ()
        return tuple(out)

    def moderation(self) -> ModerationSummary:
        finalised = [
            w for w in self.flows["moderation"] if w.any_in("finalise", self.start) is not None
        ]
        agreed = sum(1 for w in finalised if w.snapshot.data.get("agreed") is True)
        changed = sum(
            1
            for w in finalised
            if w.snapshot.data.get("agreed_grade") != w.snapshot.data.get("original_grade")
        )
        return ModerationSummary(
            finalised=len(finalised),
            agreed=agreed,
            disagreed=len(finalised) - agreed,
            agreement_rate=_rate(agreed, len(finalised)),
            grade_changed=changed,
        )

    # --- escalations ------------------------------------------------------------------------

    def _closed_at(self, w: _Workflow) -> datetime | None:
        raw = w.snapshot.data.get("closed_at")
        if not isinstance(raw, str):
            return None
        closed = datetime.fromisoformat(raw)
        return closed if closed < self.end else None

    def escalations(self) -> tuple[tuple[LadderSummary, ...], Distribution, Distribution]:
        raised = [w for w in self.flows["escalation"] if _in(w.events[0].at, self.start, self.end)]
        by_ladder: dict[str, list[_Workflow]] = {}
        for w in raised:
            by_ladder.setdefault(str(w.snapshot.data.get("ladder", w.snapshot.machine)), []).append(
                w
            )
        summaries: list[LadderSummary] = []
        for name in sorted(by_ladder):
            flows = by_ladder[name]
            outcomes: dict[str, int] = {"resolved": 0, "withdrawn": 0, "referred": 0, "open": 0}
            reached: dict[int, int] = {}
            ended: dict[int, int] = {}
            states: dict[int, str] = {}
            ladder = self.ladders.get(name)
            if ladder is not None:
                for level in ladder.levels:
                    states[level] = state_of(ladder, level)
                if ladder.referral_level is not None:
                    states[ladder.referral_level] = state_of(ladder, ladder.referral_level)
            for w in flows:
                closed = self._closed_at(w)
                outcome = w.snapshot.data.get("outcome") if closed is not None else None
                outcomes[str(outcome) if outcome in outcomes else "open"] += 1
                visits = [
                    v
                    for v in w.snapshot.data.get("history", [])
                    if isinstance(v, dict)
                    and isinstance(v.get("level"), int)
                    and datetime.fromisoformat(str(v["entered_at"])) < self.end
                ]
                if not visits:
                    continue
                top = max(int(v["level"]) for v in visits)
                last = int(visits[-1]["level"])
                for v in visits:
                    states.setdefault(int(v["level"]), str(v["state"]))
                for level in states:
                    if level <= top:
                        reached[level] = reached.get(level, 0) + 1
                ended[last] = ended.get(last, 0) + 1
            stages = tuple(
                StageCount(level, states[level], reached.get(level, 0), ended.get(level, 0))
                for level in sorted(states)
            )
            summaries.append(
                LadderSummary(
                    ladder=name,
                    machine=flows[0].snapshot.machine,
                    raised=len(flows),
                    resolved=outcomes["resolved"],
                    withdrawn=outcomes["withdrawn"],
                    referred=outcomes["referred"],
                    open=outcomes["open"],
                    stages=stages,
                )
            )
        resolution: list[int] = []
        closing: list[int] = []
        for w in self.flows["escalation"]:
            closed = self._closed_at(w)
            if closed is None or closed < self.start:
                continue
            data = w.snapshot.data
            days = data.get("working_days_open")
            if not isinstance(days, int):
                raised_at = datetime.fromisoformat(str(data["raised_at"]))
                days = self.calendar.working_days_between(raised_at, closed)
            closing.append(days)
            if data.get("outcome") == "resolved":
                resolution.append(days)
        return tuple(summaries), _distribution(resolution), _distribution(closing)

    # --- breaches, notifications, deadlines -------------------------------------------------

    def breaches(self) -> tuple[BreachCount, ...]:
        found: dict[tuple[str, str], int] = {}
        for flows in self.flows.values():
            for w in flows:
                for e in w.before_end:
                    if e.at >= self.start and e.actor == SYSTEM and "deadline_id" in e.payload:
                        key = (w.snapshot.machine, str(e.payload.get("deadline", "?")))
                        found[key] = found.get(key, 0) + 1
        return tuple(BreachCount(m, d, n) for (m, d), n in sorted(found.items()))

    def notifications(self) -> tuple[ClauseCount, ...]:
        reader = getattr(self.store, "notifications", None)
        if not callable(reader):
            self.notes.append("This store cannot list its notifications; none are counted.")
            return ()
        found: dict[str, int] = {}
        created = getattr(self.store, "notifications_created", None)
        notes = created(self.start, self.end) if callable(created) else reader()
        for note in notes:
            if _in(note.created_at, self.start, self.end):
                clause = note.clause or "(none)"
                found[clause] = found.get(clause, 0) + 1
        return tuple(ClauseCount(c, n) for c, n in sorted(found.items()))

    def overdue_deadlines(self) -> tuple[OverdueItem, ...]:
        """Deadlines still open and due by the end (``tick`` has not fired them yet)."""
        return tuple(
            self._overdue("deadline", d.workflow_id, d.name, d.due_at)
            for d in self.store.due_deadlines(self.end)
            if d.due_at < self.end
        )


def _known_policies() -> dict[str, AuditPolicy]:
    from qaflow.policies import shipped_audit_procedures

    return {p.audit.name: p.audit for p in shipped_audit_procedures()}


def build_report(
    store: Store,
    *,
    start: date | datetime,
    end: date | datetime,
    calendar: WorkingCalendar | None = None,
    policy: str | None = None,
    audit_policies: Iterable[AuditPolicy] = (),
    ladders: Iterable[EscalationLadder] = (),
) -> QAReport:
    """The QA report of everything ``store`` holds for ``[start, end)``.

    A date means local midnight in London at its start (``start=date(2026, 1, 1),
    end=date(2026, 4, 1)`` is the first quarter of 2026). ``calendar`` counts working days
    (default: England bank holidays). ``policy`` limits audits and moderations to one
    council's policy name. Forms are known for the shipped audit policies and those in
    ``audit_policies``; ladders for the shipped Bexley ladders and ``ladders``: with them the
    report orders questions as the form does, knows the family feedback statements and the
    self-assessment scales, and lists every stage of a ladder even when none reached it.
    Reads only; raises :class:`~qaflow.errors.ValidationError` for a bad period.
    """
    begin = _moment(start, "start")
    finish = _moment(end, "end")
    if finish <= begin:
        raise ValidationError(
            field="end", value=finish.isoformat(), expected=f"later than {begin.isoformat()}"
        )
    calendar = calendar or default_calendar()
    known = _known_policies()
    known.update({p.name: p for p in audit_policies})
    ladder_map = {lad.name: lad for lad in (*bexley.ESCALATION_LADDERS, *ladders)}
    b = _Builder(store, begin, finish, calendar, known, ladder_map, policy)
    grades, auditor_grades = b.grades()
    follow_ups, overdue_follow_ups = b.follow_ups()
    urgent, overdue_tasks = b.urgent_tasks()
    feedback, obtained, not_obtained = b.family_feedback()
    escalations, resolution, time_to_close = b.escalations()
    policies = sorted(
        {w.snapshot.policy for flows in b.flows.values() for w in flows if w.snapshot.policy}
        | b.quiet_policies
    )
    distance = b.distance()
    return QAReport(
        start=begin,
        end=finish,
        working_days=len(
            calendar.working_dates(
                begin.astimezone(LONDON).date(),
                (finish - timedelta(microseconds=1)).astimezone(LONDON).date(),
            )
        ),
        workflows_read=b.read,
        policies=tuple(policies),
        activity=b.activity(),
        grades=grades,
        auditor_grades=auditor_grades,
        practice_areas=b.practice_areas(),
        moderation=b.moderation(),
        follow_ups=follow_ups,
        urgent_tasks=urgent,
        family_feedback=feedback,
        feedback_obtained=obtained,
        feedback_not_obtained=not_obtained,
        distance_travelled=distance,
        escalations=escalations,
        resolution=resolution,
        time_to_close=time_to_close,
        breaches=b.breaches(),
        notifications=b.notifications(),
        overdue_follow_ups=tuple(overdue_follow_ups),
        overdue_tasks=tuple(overdue_tasks),
        overdue_deadlines=b.overdue_deadlines(),
        notes=tuple(b.notes),
        timescales=report_rows(store, begin, finish, policy=policy),
    )


# --- JSON ---------------------------------------------------------------------------------------


def to_json(report: QAReport, *, indent: int | None = 2) -> str:
    """The report as JSON (cattrs; datetimes as UTC ISO 8601)."""
    return json.dumps(converter.unstructure(report), indent=indent, sort_keys=True)


def from_json(text: str) -> QAReport:
    """A report read back from :func:`to_json` text (equal to the original)."""
    report: QAReport = converter.structure(json.loads(text), QAReport)
    return report
