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

import html
import json
import math
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

import attrs

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
    "to_html",
    "to_json",
    "to_markdown",
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


def _percentile(ordered: Sequence[int], p: float) -> int | None:
    """The nearest-rank percentile (the smallest value with at least p% at or below it)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


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
        p90=_percentile(ordered, 90),
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


# --- shared text ------------------------------------------------------------------------------


def _day(moment: datetime) -> str:
    return moment.astimezone(LONDON).strftime("%d %b %Y").lstrip("0")


def _local(moment: datetime) -> str:
    return moment.astimezone(LONDON).isoformat()


def _period(report: QAReport) -> str:
    last = report.end - timedelta(microseconds=1)
    return f"{_day(report.start)} to {_day(last)}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}"


def _activity_rows(report: QAReport) -> list[tuple[str, str]]:
    a = report.activity
    return [
        ("Audits allocated", str(a.audits_allocated)),
        ("Audits graded", str(a.audits_graded)),
        ("Audits completed", str(a.audits_completed)),
        ("Audits followed up", str(a.audits_followed_up)),
        ("Audits cancelled", str(a.audits_cancelled)),
        ("Audits still open at the end", str(a.audits_open_at_end)),
        ("Moderations sampled", str(a.moderations_sampled)),
        ("Moderations finalised", str(a.moderations_finalised)),
        ("Moderations cancelled", str(a.moderations_cancelled)),
        ("Escalations raised", str(a.escalations_raised)),
        ("Escalations closed", str(a.escalations_closed)),
    ]


def _on_time_rows(report: QAReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for name, item in (
        ("Follow-ups within 5 WD (BX-AUD-09)", report.follow_ups),
        ("24 h tasks (BX-AUD-12, BX-MOD-06)", report.urgent_tasks),
    ):
        rows.append(
            (
                name,
                str(item.total),
                str(item.on_time) if item.timing_known else "n/a",
                str(item.late) if item.timing_known else "n/a",
                str(item.overdue),
                str(item.pending),
                _pct(item.rate),
            )
        )
    return rows


def _grade_rows(report: QAReport) -> list[tuple[str, ...]]:
    before = {g.grade: g.count for g in report.auditor_grades}
    return [(g.label, str(before.get(g.grade, 0)), str(g.count)) for g in report.grades]


def _practice_rows(report: QAReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for q in report.practice_areas:
        if q.kind == "scale_0_10":
            figure = f"mean {_num(q.mean)} / 10"
        else:
            figure = (
                f"{_pct(q.share_good)} at least good ({q.exceeds_good} exceeds, "
                f"{q.meets_good} meets, {q.does_not_meet_good} does not meet)"
            )
        rows.append((q.question_id, q.section or "", str(q.answered), figure))
    return rows


def _overdue_rows(report: QAReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for item in (*report.overdue_follow_ups, *report.overdue_tasks, *report.overdue_deadlines):
        due = item.due_at.astimezone(LONDON).strftime("%Y-%m-%d %H:%M") if item.due_at else ""
        owner = f"{item.owner_role} {item.owner_id}" if item.owner_id else (item.owner_role or "")
        days = "" if item.working_days_overdue is None else str(item.working_days_overdue)
        rows.append((item.kind, item.workflow_id, item.name, due, days, owner.strip()))
    return rows


# --- Markdown ---------------------------------------------------------------------------------


_TIMESCALE_HEAD: Final = (
    "Team",
    "Timescale",
    "Clause",
    "Met",
    "Missed",
    "Open at the end",
    "Met on time (of settled)",
)


def _timescale_rows(report: QAReport) -> list[tuple[str, ...]]:
    return [
        (
            t.team or "-",
            t.name.replace("_", " "),
            t.clause or "-",
            str(t.met),
            str(t.missed),
            str(t.open),
            _pct(_rate(t.met, t.met + t.missed)),
        )
        for t in report.timescales
    ]


def _md_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, head)) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return [*lines, ""]


def to_markdown(report: QAReport) -> str:
    """The report as Markdown: headings, tables and notes (ids and counts only)."""
    r = report
    out = [
        f"# Quality assurance report: {_period(r)}",
        "",
        f"Period `{_local(r.start)}` to `{_local(r.end)}` (Europe/London, end excluded), "
        f"{r.working_days} working days; {r.workflows_read} workflows read"
        + (f"; policies: {', '.join(r.policies)}." if r.policies else "."),
        "",
        "## How much did we do?",
        "",
        *_md_table(("Measure", "Count"), _activity_rows(r)),
        "## How well did we do it?",
        "",
        "### Grades of the audits graded in the period",
        "",
        *_md_table(("Grade", "As graded by the auditor", "After moderation"), _grade_rows(r)),
        "### Practice areas (per question, averaged)",
        "",
        *(
            _md_table(("Question", "Section", "Answered", "Score"), _practice_rows(r))
            if r.practice_areas
            else ["No audit was graded in the period.", ""]
        ),
        "### Moderation",
        "",
        f"{r.moderation.finalised} moderations finalised: {r.moderation.agreed} agreed, "
        f"{r.moderation.disagreed} disagreed (agreement rate "
        f"{_pct(r.moderation.agreement_rate)}); the grade changed in "
        f"{r.moderation.grade_changed}.",
        "",
        "### On time",
        "",
        *_md_table(
            ("Work", "Total", "On time", "Late", "Overdue at end", "Not yet due", "Rate"),
            _on_time_rows(r),
        ),
        "### Family feedback (BX-AUD-07)",
        "",
        f"Feedback obtained for {r.feedback_obtained} completed audits; for "
        f"{r.feedback_not_obtained} the reason it could not be obtained was recorded.",
        "",
        *(
            _md_table(
                ("Statement", "Responses", "Mean (0-10)"),
                [(s.question_id, str(s.responses), _num(s.mean)) for s in r.family_feedback],
            )
            if r.family_feedback
            else []
        ),
        "## Is anyone better off?",
        "",
        *(
            _md_table(
                ("Self-assessment scale", "Practitioners", "Mean change", "Up", "Same", "Down"),
                [
                    (
                        d.question_id,
                        str(d.practitioners),
                        _signed(d.mean_change),
                        str(d.improved),
                        str(d.unchanged),
                        str(d.worse),
                    )
                    for d in r.distance_travelled
                ],
            )
            if r.distance_travelled
            else ["Distance travelled is not computable for this period (see the notes).", ""]
        ),
        "## Escalations",
        "",
    ]
    if r.escalations:
        out += _md_table(
            ("Ladder", "Raised", "Resolved", "Withdrawn", "Referred", "Open at end"),
            [
                (
                    s.ladder,
                    str(s.raised),
                    str(s.resolved),
                    str(s.withdrawn),
                    str(s.referred),
                    str(s.open),
                )
                for s in r.escalations
            ],
        )
        out += ["### By stage reached", ""]
        out += _md_table(
            ("Ladder", "Stage", "Reached (or beyond)", "Ended or standing there"),
            [
                (s.ladder, f"{st.level} {st.state}", str(st.reached), str(st.ended_here))
                for s in r.escalations
                for st in s.stages
            ],
        )
    else:
        out += ["No escalation was raised in the period.", ""]
    out += [
        "### Time to resolution (working days)",
        "",
        f"Resolved in the period: {r.resolution.count}; median {_num(r.resolution.median)}, "
        f"90th percentile {r.resolution.p90 if r.resolution.p90 is not None else 'n/a'}. "
        f"Closed with any outcome: {r.time_to_close.count}; median "
        f"{_num(r.time_to_close.median)}.",
        "",
        *_md_table(
            ("Working days", "Resolved"),
            [(f"{b.low}-{b.high}", str(b.count)) for b in r.resolution.histogram],
        ),
        "## Breaches",
        "",
        *(
            _md_table(
                ("Machine", "Deadline", "Breaches"),
                [(b.machine, b.deadline, str(b.count)) for b in r.breaches],
            )
            if r.breaches
            else ["No deadline was breached in the period.", ""]
        ),
        "## Overdue at the end of the period",
        "",
        *(
            _md_table(
                ("Kind", "Workflow", "What", "Due (London)", "WD overdue", "Owner"),
                _overdue_rows(r),
            )
            if _overdue_rows(r)
            else ["Nothing is overdue.", ""]
        ),
        "## Notifications written, by clause",
        "",
        *(
            _md_table(
                ("Clause", "Notifications"), [(c.clause, str(c.count)) for c in r.notifications]
            )
            if r.notifications
            else ["None.", ""]
        ),
    ]
    if r.timescales:
        out += ["## Timescale compliance, by team", ""]
        out += _md_table(_TIMESCALE_HEAD, _timescale_rows(r))
    if r.notes:
        out += ["## Notes", "", *(f"- {n}" for n in r.notes), ""]
    return "\n".join(out).rstrip() + "\n"


# --- HTML and SVG -----------------------------------------------------------------------------

_GRADE_COLOURS: Final[Mapping[str, str]] = {
    "OUTSTANDING": "#2e7d32",
    "GOOD": "#1565c0",
    "REQUIRES_IMPROVEMENT": "#ef6c00",
    "INADEQUATE": "#c62828",
}
_BAR: Final = "#3f6fb5"
_FONT: Final = "font-family:system-ui,sans-serif;font-size:12px"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _svg(chart_id: str, title: str, width: int, height: int, body: list[str]) -> str:
    return (
        f'<svg id="{_e(chart_id)}" class="qa-chart" role="img" '
        f'aria-labelledby="{_e(chart_id)}-title" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="{_FONT}">'
        f'<title id="{_e(chart_id)}-title">{_e(title)}</title>'
        f'<rect class="frame" x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" '
        'fill="#ffffff" stroke="#d0d7de"/>' + "".join(body) + "</svg>"
    )


def _no_data(width: int, height: int) -> str:
    return (
        f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" '
        'fill="#57606a">No data in this period</text>'
    )


def _column_chart(
    chart_id: str,
    title: str,
    bars: Sequence[tuple[str, float, str, str]],
    *,
    width: int = 560,
    height: int = 260,
) -> str:
    """Vertical bars: (label, value, value text, colour)."""
    left, right, top, bottom = 40, 12, 24, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    body = [
        f'<path class="axis" d="M{left} {top} V{top + plot_h} H{left + plot_w}" '
        'stroke="#57606a" fill="none"/>'
    ]
    peak = max((v for _, v, _, _ in bars), default=0.0)
    if not bars or peak <= 0:
        body.append(_no_data(width, height))
        return _svg(chart_id, title, width, height, body)
    slot = plot_w / len(bars)
    bar_w = max(4.0, slot * 0.6)
    for i, (label, value, text, colour) in enumerate(bars):
        h = plot_h * value / peak
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h - h
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
            f'height="{max(h, 0.5):.1f}" fill="{colour}"><title>{_e(label)}: {_e(text)}'
            "</title></rect>"
        )
        body.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{_e(text)}</text>'
        )
        body.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" '
            f'text-anchor="middle">{_e(label)}</text>'
        )
    return _svg(chart_id, title, width, height, body)


def _bar_chart(
    chart_id: str,
    title: str,
    bars: Sequence[tuple[str, float, str]],
    *,
    scale: float,
    width: int = 560,
    centred: bool = False,
) -> str:
    """Horizontal bars (label, value on 0..scale, value text); ``centred`` draws a funnel."""
    left, right, top, row = 170, 60, 12, 22
    height = max(80, top * 2 + row * len(bars))
    plot_w = width - left - right
    body = [
        f'<path class="axis" d="M{left} {top - 4} V{height - top + 4}" stroke="#57606a" '
        'fill="none"/>'
    ]
    if not bars or scale <= 0:
        body.append(_no_data(width, height))
        return _svg(chart_id, title, width, height, body)
    for i, (label, value, text) in enumerate(bars):
        y = top + i * row
        w = plot_w * max(0.0, min(value, scale)) / scale
        x = left + (plot_w - w) / 2 if centred else left
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{y + 3}" width="{max(w, 0.5):.1f}" '
            f'height="{row - 6}" fill="{_BAR}"><title>{_e(label)}: {_e(text)}</title></rect>'
        )
        body.append(
            f'<text x="{left - 6}" y="{y + row / 2 + 4:.1f}" text-anchor="end">{_e(label)}</text>'
        )
        tx = (x + w + 6) if not centred else (left + plot_w + 6)
        body.append(f'<text x="{tx:.1f}" y="{y + row / 2 + 4:.1f}">{_e(text)}</text>')
    return _svg(chart_id, title, width, height, body)


def _charts(report: QAReport) -> dict[str, str]:
    grades = _column_chart(
        "chart-grades",
        "Grade distribution of audits graded in the period (after moderation)",
        [
            (g.label, float(g.count), str(g.count), _GRADE_COLOURS.get(g.grade, _BAR))
            for g in report.grades
        ]
        if any(g.count for g in report.grades)
        else [],
    )
    practice: list[tuple[str, float, str]] = []
    for q in report.practice_areas:
        if q.kind == "scale_0_10" and q.mean is not None:
            practice.append((q.question_id, q.mean / 10, f"{q.mean:.1f}/10"))
        elif q.share_good is not None:
            practice.append((q.question_id, q.share_good, f"{q.share_good * 100:.0f}% good"))
    practice_chart = _bar_chart(
        "chart-practice-areas",
        "Practice-area scores per question (0-10 mean, or share at least good)",
        practice,
        scale=1.0,
    )
    funnel: list[tuple[str, float, str]] = []
    peak = 0
    for summary in report.escalations:
        for stage in summary.stages:
            funnel.append(
                (f"{summary.ladder} {stage.state}", float(stage.reached), str(stage.reached))
            )
            peak = max(peak, stage.reached)
    funnel_chart = _bar_chart(
        "chart-escalation-funnel",
        "Escalations by stage reached (raised in the period)",
        funnel,
        scale=float(peak),
        centred=True,
    )
    histogram = _column_chart(
        "chart-resolution-histogram",
        "Time to resolution in working days (resolved in the period)",
        [
            (f"{b.low}-{b.high}", float(b.count), str(b.count), _BAR)
            for b in report.resolution.histogram
        ]
        if report.resolution.count
        else [],
    )
    return {
        "chart-grades": grades,
        "chart-practice-areas": practice_chart,
        "chart-escalation-funnel": funnel_chart,
        "chart-resolution-histogram": histogram,
    }


def _html_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    cells = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


_CSS: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:60rem;
color:#1f2328;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.3rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #d0d7de;
padding:.25rem .6rem;text-align:left}th{background:#f6f8fa}
figure{margin:1rem 0}figcaption{color:#57606a;font-size:.9rem}.note{color:#57606a}
svg.qa-chart{display:block;max-width:100%;height:auto}
"""


def to_html(report: QAReport) -> str:
    """The report as one self-contained HTML page with inline SVG charts (no script, no
    external resource): the charts' ids are :data:`CHART_IDS`."""
    r = report
    charts = _charts(r)

    def figure(chart_id: str, caption: str) -> str:
        return f"<figure>{charts[chart_id]}<figcaption>{_e(caption)}</figcaption></figure>"

    m = r.moderation
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>QA report {_e(_period(r))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Quality assurance report: {_e(_period(r))}</h1>",
        f'<p class="note">Period {_e(_local(r.start))} to {_e(_local(r.end))} '
        f"(Europe/London, end excluded), {r.working_days} working days; "
        f"{r.workflows_read} workflows read"
        + (f"; policies: {_e(', '.join(r.policies))}" if r.policies else "")
        + ".</p>",
        "<h2>How much did we do?</h2>",
        _html_table(("Measure", "Count"), _activity_rows(r)),
        "<h2>How well did we do it?</h2>",
        "<h3>Grades of the audits graded in the period</h3>",
        figure("chart-grades", "Grades after moderation."),
        _html_table(("Grade", "As graded by the auditor", "After moderation"), _grade_rows(r)),
        "<h3>Practice areas</h3>",
        figure("chart-practice-areas", "Per question, averaged over the audits graded."),
        _html_table(("Question", "Section", "Answered", "Score"), _practice_rows(r)),
        "<h3>Moderation</h3>",
        f"<p>{m.finalised} moderations finalised: {m.agreed} agreed, {m.disagreed} disagreed "
        f"(agreement rate {_e(_pct(m.agreement_rate))}); the grade changed in "
        f"{m.grade_changed}.</p>",
        "<h3>On time</h3>",
        _html_table(
            ("Work", "Total", "On time", "Late", "Overdue at end", "Not yet due", "Rate"),
            _on_time_rows(r),
        ),
        "<h3>Family feedback (BX-AUD-07)</h3>",
        f"<p>Feedback obtained for {r.feedback_obtained} completed audits; for "
        f"{r.feedback_not_obtained} the reason it could not be obtained was recorded.</p>",
        _html_table(
            ("Statement", "Responses", "Mean (0-10)"),
            [(s.question_id, str(s.responses), _num(s.mean)) for s in r.family_feedback],
        )
        if r.family_feedback
        else "",
        "<h2>Is anyone better off?</h2>",
        _html_table(
            ("Self-assessment scale", "Practitioners", "Mean change", "Up", "Same", "Down"),
            [
                (
                    d.question_id,
                    str(d.practitioners),
                    _signed(d.mean_change),
                    str(d.improved),
                    str(d.unchanged),
                    str(d.worse),
                )
                for d in r.distance_travelled
            ],
        )
        if r.distance_travelled
        else '<p class="note">Distance travelled is not computable for this period.</p>',
        "<h2>Escalations</h2>",
        figure("chart-escalation-funnel", "How far the escalations raised in the period went."),
        _html_table(
            ("Ladder", "Raised", "Resolved", "Withdrawn", "Referred", "Open at end"),
            [
                (
                    s.ladder,
                    str(s.raised),
                    str(s.resolved),
                    str(s.withdrawn),
                    str(s.referred),
                    str(s.open),
                )
                for s in r.escalations
            ],
        ),
        "<h3>Time to resolution</h3>",
        figure(
            "chart-resolution-histogram",
            f"Resolved: {r.resolution.count}; median {_num(r.resolution.median)} WD, 90th "
            f"percentile {r.resolution.p90 if r.resolution.p90 is not None else 'n/a'} WD.",
        ),
        "<h2>Breaches</h2>",
        _html_table(
            ("Machine", "Deadline", "Breaches"),
            [(b.machine, b.deadline, str(b.count)) for b in r.breaches],
        ),
        "<h2>Overdue at the end of the period</h2>",
        _html_table(
            ("Kind", "Workflow", "What", "Due (London)", "WD overdue", "Owner"), _overdue_rows(r)
        )
        if _overdue_rows(r)
        else "<p>Nothing is overdue.</p>",
        "<h2>Notifications written, by clause</h2>",
        _html_table(
            ("Clause", "Notifications"), [(c.clause, str(c.count)) for c in r.notifications]
        ),
    ]
    if r.timescales:
        parts.append("<h2>Timescale compliance, by team</h2>")
        parts.append(_html_table(_TIMESCALE_HEAD, _timescale_rows(r)))
    if r.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in r.notes) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p) + "\n"
