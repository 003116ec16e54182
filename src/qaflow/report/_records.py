"""The records a :class:`QAReport` is made of: plain frozen data, ids and counts only.

They round-trip through JSON (:func:`~qaflow.report.to_json`) unchanged, so a council's own
tooling can read the report without qaflow. What each figure means is said on its record.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from qaflow.compliance import TimescaleCompliance


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
    clauses: tuple[str, ...] = ()
    """The clauses that set the timescale of the work counted (from its policy or tasks)."""


@attrs.frozen
class StatementScore:
    """One family feedback statement (BX-AUD-07): responses and the mean score 0-10."""

    question_id: str
    responses: int
    mean: float | None


@attrs.frozen
class FeedbackRespondent:
    """Feedback answer sets of one kind of respondent (BX-AUD-07) over audits completed:
    every set recorded with ``record_feedback`` counts (several family members each give
    one); for a respondent whose feedback needs the parent/carer's agreement (the child),
    how often it was given or refused."""

    respondent: str
    sets: int
    audits: int
    agreed: int = 0
    not_agreed: int = 0


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
class Filters:
    """What the report is limited to: one council's policy, one team, one service.

    ``policy`` limits audits and moderations (escalations pin the policy of the ladder's
    owner and are kept). ``team`` keeps the work of that team: an audit or moderation by the
    ``team_id`` it records, an escalation by its raiser's team in the directory. ``service``
    keeps the work of the teams the directory places in that service.
    """

    policy: str | None = None
    team: str | None = None
    service: str | None = None

    @property
    def any(self) -> bool:
        return self.team is not None or self.service is not None


@attrs.frozen
class WorkCounts:
    """The counts of a piece of work: a team's or service's in the period
    (:class:`Breakdown`), or one month's (:class:`MonthTrend`)."""

    audits_completed: int
    audits_graded: int
    good_or_better: int
    follow_ups_due: int
    follow_ups_on_time: int
    escalations_raised: int
    escalations_resolved: int
    breaches: int


@attrs.frozen
class Breakdown(WorkCounts):
    """One team's or service's work in the period (``unit`` "team" or "service"; ``id`` ""
    when the work records none). The counts come first, then ``unit`` and ``id`` by
    keyword."""

    unit: str = attrs.field(kw_only=True)
    id: str = attrs.field(kw_only=True)


@attrs.frozen
class MonthTrend(WorkCounts):
    """One calendar month (London) of a trend: ``month`` is "2026-01"; the same counts as
    :class:`Breakdown`, read from that month alone; the counts come first, then ``month``,
    ``start`` and ``end`` by keyword."""

    month: str = attrs.field(kw_only=True)
    start: datetime = attrs.field(kw_only=True)
    end: datetime = attrs.field(kw_only=True)


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
    by_team: tuple[Breakdown, ...] = ()
    by_service: tuple[Breakdown, ...] = ()
    trends: tuple[MonthTrend, ...] = ()
    filters: Filters = Filters()
    feedback_respondents: tuple[FeedbackRespondent, ...] = ()
    """BX-AUD-07: answer sets per respondent (family, child, network), agreement shown."""

    @property
    def breaches_total(self) -> int:
        return sum(b.count for b in self.breaches)

    @property
    def escalations_raised(self) -> int:
        return sum(s.raised for s in self.escalations)
