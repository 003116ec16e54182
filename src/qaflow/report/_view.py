"""What the report's templates show: the :class:`QAReport` turned into headed sections of
sentences, tables and charts in a council reader's words (labels from the policies, plain
dates), plus key messages, targets with RAG status and the comparison with a previous period.

One view feeds both the HTML and the Markdown template, so the two say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from qaflow.report._charts import BAR, GRADE_COLOURS, Bar, bar_chart, column_chart
from qaflow.report._labels import Labels, plain_moment, plain_period
from qaflow.report._model import (
    DEFAULT_TARGETS,
    QAFLOW_DEFAULT,
    Block,
    Figure,
    Message,
    ReportView,
    Section,
    Table,
    Target,
)
from qaflow.report._records import OnTime, QAReport
from qaflow.report._stats import rate
from qaflow.report._trend_view import breakdown_sections

GOOD_OR_BETTER: Final = frozenset({"OUTSTANDING", "GOOD"})


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _p(text: str) -> Block:
    return Block("p", text=text)


def _t(caption: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> Block:
    return Block("table", table=Table(caption, tuple(head), tuple(tuple(r) for r in rows)))


def _fig(
    chart_id: str, svg: str, caption: str, head: Sequence[str], rows: Sequence[Sequence[str]]
) -> Block:
    table = Table(
        f"Data of the chart: {caption}", tuple(head), tuple(tuple(r) for r in rows), chart_id
    )
    return Block("figure", figure=Figure(chart_id, svg, caption, table))


def _good_share(report: QAReport) -> float | None:
    total = sum(g.count for g in report.grades)
    good = sum(g.count for g in report.grades if g.grade in GOOD_OR_BETTER)
    return None if total == 0 else good / total


def _overdue_count(report: QAReport) -> int:
    return (
        len(report.overdue_follow_ups) + len(report.overdue_tasks) + len(report.overdue_deadlines)
    )


def rag(value: float | None, target: Target) -> str:
    """Green at or above the target, Amber within its margin below, Red further below."""
    if value is None:
        return ""
    if value >= target.minimum:
        return "Green"
    return "Amber" if value >= target.minimum - target.amber else "Red"


def _cited(title: str, clauses: Sequence[str]) -> str:
    return f"{title} ({', '.join(clauses)})" if clauses else title


def _filtered(r: QAReport) -> str:
    f = r.filters
    shown = [
        f"{name} {value}"
        for name, value in (("policy", f.policy), ("team", f.team), ("service", f.service))
        if value is not None
    ]
    return f"; only {', '.join(shown)}" if shown else ""


def _on_time_row(name: str, item: OnTime) -> tuple[str, ...]:
    known = item.timing_known
    return (
        name,
        str(item.total),
        str(item.on_time) if known else "n/a",
        str(item.late) if known else "n/a",
        str(item.overdue),
        str(item.pending),
        _pct(item.rate),
    )


def build_view(
    report: QAReport,
    labels: Labels,
    *,
    previous: QAReport | None = None,
    targets: Mapping[str, Target] = DEFAULT_TARGETS,
) -> ReportView:
    """The view of ``report``; ``previous`` (the period before) adds the comparison."""
    r = report
    a = r.activity
    period = plain_period(r.start, r.end)
    good = _good_share(r)
    messages = [
        Message(
            f"{a.audits_completed} case audits were completed and {a.audits_graded} graded; "
            f"{_pct(good)} of the graded audits were good or outstanding."
        )
    ]
    target_rows: list[tuple[str, ...]] = []
    for key, item in (("follow_ups", r.follow_ups), ("urgent_tasks", r.urgent_tasks)):
        target = targets.get(key)
        if target is None:
            continue
        status = rag(item.rate, target)
        target_rows.append(
            (
                target.measure,
                _pct(item.rate),
                f"at least {_pct(target.minimum)}",
                status or "n/a",
                labels.clause(target.source) if target.source != QAFLOW_DEFAULT else QAFLOW_DEFAULT,
            )
        )
        if item.rate is not None:
            messages.append(
                Message(
                    f"{target.measure}: {_pct(item.rate)} against a target of "
                    f"{_pct(target.minimum)} ({status}).",
                    status,
                )
            )
    messages.append(
        Message(
            f"{r.escalations_raised} escalations were raised and {r.resolution.count} resolved, "
            f"in a median of {_num(r.resolution.median)} working days."
        )
    )
    overdue = _overdue_count(r)
    messages.append(
        Message(
            f"{overdue} items were overdue at the end of the period; "
            f"{r.breaches_total} deadlines were breached during it."
        )
    )
    comparison = None
    if previous is not None:
        p = previous

        def change(now: float | None, before: float | None, percent: bool = False) -> str:
            if now is None or before is None:
                return "n/a"
            delta = (now - before) * (100 if percent else 1)
            unit = " points" if percent else ""
            return f"{delta:+.0f}{unit}" if percent or delta == int(delta) else f"{delta:+.1f}"

        rows: list[tuple[str, ...]] = []
        for name, now_v, before_v, pct in (
            ("Audits completed", a.audits_completed, p.activity.audits_completed, False),
            ("Good or outstanding", good, _good_share(p), True),
            ("Follow-ups on time", r.follow_ups.rate, p.follow_ups.rate, True),
            ("24 hour tasks on time", r.urgent_tasks.rate, p.urgent_tasks.rate, True),
            ("Escalations raised", r.escalations_raised, p.escalations_raised, False),
            ("Deadlines breached", r.breaches_total, p.breaches_total, False),
            ("Overdue at the end", overdue, _overdue_count(p), False),
        ):
            shown = _pct if pct else (lambda v: "n/a" if v is None else f"{v:g}")
            rows.append((name, shown(now_v), shown(before_v), change(now_v, before_v, pct)))
        comparison = Table(
            f"This period against {plain_period(p.start, p.end)}",
            ("Measure", "This period", "Previous period", "Change"),
            tuple(rows),
        )
    return ReportView(
        title=f"Quality assurance report: {period}",
        period=period,
        about=(
            f"{period} (Europe/London), {r.working_days} working days; "
            f"{r.workflows_read} workflows read"
            + (f"; policies: {', '.join(r.policies)}" if r.policies else "")
            + _filtered(r)
            + "."
        ),
        messages=tuple(messages),
        targets=Table(
            "Targets and RAG status (Green: met; Amber: within the target's margin below it; "
            "Red: further below)",
            ("Measure", "This period", "Target", "Status", "Set by"),
            tuple(target_rows),
        )
        if target_rows
        else None,
        comparison=comparison,
        sections=_sections(r, labels) + breakdown_sections(r),
        notes=r.notes,
    )


def _sections(r: QAReport, labels: Labels) -> tuple[Section, ...]:
    a = r.activity
    before = {g.grade: g.count for g in r.auditor_grades}
    has_grades = any(g.count for g in r.grades)
    grade_svg = column_chart(
        "chart-grades",
        "Grades of the audits graded in the period (after moderation)",
        [
            Bar(g.label, float(g.count), str(g.count), GRADE_COLOURS.get(g.grade, BAR))
            for g in r.grades
        ]
        if has_grades
        else [],
        x_title="Grade",
        y_title="Audits",
    )
    practice: list[Bar] = []
    practice_rows: list[tuple[str, ...]] = []
    for q in r.practice_areas:
        text = labels.question(q.question_id)
        if q.kind == "scale_0_10":
            figure = f"{_num(q.mean)} / 10"
            if q.mean is not None:
                practice.append(Bar(text, q.mean / 10, f"{q.mean:.1f}/10"))
        else:
            figure = (
                f"{_pct(q.share_good)} at least good ({q.exceeds_good} exceeds, "
                f"{q.meets_good} meets, {q.does_not_meet_good} does not meet)"
            )
            if q.share_good is not None:
                practice.append(Bar(text, q.share_good, f"{q.share_good * 100:.0f}% good"))
        practice_rows.append((text, labels.section(q.section), str(q.answered), figure))
    practice_svg = bar_chart(
        "chart-practice-areas",
        "Practice areas: score per question",
        practice,
        x_title="Share of the top score (mean of 0-10, or share at least good)",
        y_title="Question",
        percent=True,
        label_width=380,
        width=700,
    )
    funnel: list[Bar] = []
    funnel_rows: list[tuple[str, ...]] = []
    for summary in r.escalations:
        ladder = labels.ladder(summary.ladder)
        for stage in summary.stages:
            name = labels.stage(summary.ladder, stage.state)
            funnel.append(Bar(name, float(stage.reached), str(stage.reached), group=ladder))
            funnel_rows.append((ladder, name, str(stage.reached), str(stage.ended_here)))
    funnel_svg = bar_chart(
        "chart-escalation-funnel",
        "Escalations by stage reached (raised in the period)",
        funnel,
        x_title="Escalations that reached the stage or went beyond",
        y_title="Stage (ladder)",
        label_width=300,
        width=700,
    )
    histogram_svg = column_chart(
        "chart-resolution-histogram",
        "Time to resolution (escalations resolved in the period)",
        [Bar(f"{b.low}-{b.high}", float(b.count), str(b.count)) for b in r.resolution.histogram]
        if r.resolution.count
        else [],
        x_title="Working days to resolution",
        y_title="Escalations",
    )
    m = r.moderation
    overdue_rows = [
        (
            labels.deadline("", item.kind),
            item.workflow_id,
            labels.deadline("", item.name),
            plain_moment(item.due_at) if item.due_at else "",
            "" if item.working_days_overdue is None else str(item.working_days_overdue),
            " ".join(x for x in (labels.role(item.owner_role), item.owner_id or "") if x),
        )
        for item in (*r.overdue_follow_ups, *r.overdue_tasks, *r.overdue_deadlines)
    ]
    return (
        Section(
            "activity",
            "How much did we do?",
            2,
            (
                _t(
                    "Work done in the period",
                    ("Measure", "Count"),
                    [
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
                    ],
                ),
            ),
        ),
        Section("quality", "How well did we do it?", 2, ()),
        Section(
            "grades",
            "Grades of the audits graded in the period",
            3,
            (
                _fig(
                    "chart-grades",
                    grade_svg,
                    "Grades after moderation.",
                    ("Grade", "As graded by the auditor", "After moderation"),
                    [(g.label, str(before.get(g.grade, 0)), str(g.count)) for g in r.grades],
                ),
            ),
        ),
        Section(
            "practice-areas",
            "Practice areas",
            3,
            (
                _fig(
                    "chart-practice-areas",
                    practice_svg,
                    "Per question, averaged over the audits graded.",
                    (
                        "Question",
                        "Section",
                        "Answered",
                        "Score (mean of 0-10, or share at least good)",
                    ),
                    practice_rows,
                ),
                *(() if practice_rows else (_p("No audit was graded in the period."),)),
            ),
        ),
        Section(
            "moderation",
            "Moderation",
            3,
            (
                _p(
                    f"{m.finalised} moderations finalised: {m.agreed} agreed, {m.disagreed} "
                    f"disagreed (agreement rate {_pct(m.agreement_rate)}); the grade changed "
                    f"in {m.grade_changed}."
                ),
            ),
        ),
        Section(
            "on-time",
            "On time",
            3,
            (
                _t(
                    "Work due in the period and whether it was done on time",
                    ("Work", "Total", "On time", "Late", "Overdue at end", "Not yet due", "Rate"),
                    [
                        _on_time_row(labels.follow_ups(r.policies, r.follow_ups), r.follow_ups),
                        _on_time_row(
                            _cited("24 hour tasks", r.urgent_tasks.clauses), r.urgent_tasks
                        ),
                    ],
                ),
            ),
        ),
        Section(
            "family-feedback",
            _cited("Family feedback", labels.feedback_clauses(r.policies)),
            3,
            (
                _p(
                    f"Feedback obtained for {r.feedback_obtained} completed audits; for "
                    f"{r.feedback_not_obtained} the reason it could not be obtained was "
                    "recorded."
                ),
                *(
                    (
                        _t(
                            "Family feedback per statement",
                            ("Statement", "Responses", "Mean (0-10)"),
                            [
                                (labels.question(s.question_id), str(s.responses), _num(s.mean))
                                for s in r.family_feedback
                            ],
                        ),
                    )
                    if r.family_feedback
                    else ()
                ),
                *(
                    (
                        _t(
                            "Answer sets per respondent",
                            ("Respondent", "Answer sets", "Audits", "Agreed", "Not agreed"),
                            [
                                (
                                    f.respondent,
                                    str(f.sets),
                                    str(f.audits),
                                    str(f.agreed),
                                    str(f.not_agreed),
                                )
                                for f in r.feedback_respondents
                            ],
                        ),
                    )
                    if r.feedback_respondents
                    else ()
                ),
            ),
        ),
        Section(
            "better-off",
            "Is anyone better off?",
            2,
            (
                _t(
                    "Distance travelled on the practitioners' self-assessment scales",
                    ("Self-assessment scale", "Practitioners", "Mean change", "Up", "Same", "Down"),
                    [
                        (
                            labels.question(d.question_id),
                            str(d.practitioners),
                            "n/a" if d.mean_change is None else f"{d.mean_change:+.1f}",
                            str(d.improved),
                            str(d.unchanged),
                            str(d.worse),
                        )
                        for d in r.distance_travelled
                    ],
                ),
            )
            if r.distance_travelled
            else (_p("Distance travelled is not computable for this period (see the notes)."),),
        ),
        Section(
            "escalations",
            "Escalations",
            2,
            (
                _t(
                    "Escalations raised in the period, by outcome at its end",
                    ("Ladder", "Raised", "Resolved", "Withdrawn", "Referred", "Open at end"),
                    [
                        (
                            labels.ladder(s.ladder),
                            str(s.raised),
                            str(s.resolved),
                            str(s.withdrawn),
                            str(s.referred),
                            str(s.open),
                        )
                        for s in r.escalations
                    ],
                ),
                _fig(
                    "chart-escalation-funnel",
                    funnel_svg,
                    "How far the escalations raised in the period went.",
                    ("Ladder", "Stage", "Reached (or beyond)", "Ended or standing there"),
                    funnel_rows,
                ),
                *(() if r.escalations else (_p("No escalation was raised in the period."),)),
            ),
        ),
        Section(
            "resolution",
            "Time to resolution",
            3,
            (
                _fig(
                    "chart-resolution-histogram",
                    histogram_svg,
                    "Working days from raising to resolution.",
                    ("Working days", "Resolved"),
                    [(f"{b.low}-{b.high}", str(b.count)) for b in r.resolution.histogram],
                ),
                _p(
                    f"Resolved in the period: {r.resolution.count}; median "
                    f"{_num(r.resolution.median)} working days, 90th percentile "
                    f"{r.resolution.p90 if r.resolution.p90 is not None else 'n/a'}. Closed "
                    f"with any outcome: {r.time_to_close.count}; median "
                    f"{_num(r.time_to_close.median)}."
                ),
            ),
        ),
        Section(
            "breaches",
            "Breaches",
            2,
            (
                _t(
                    "Deadlines breached in the period",
                    ("Work", "Deadline", "Breaches"),
                    [
                        (
                            labels.machine(b.machine),
                            labels.deadline(b.machine, b.deadline),
                            str(b.count),
                        )
                        for b in r.breaches
                    ],
                ),
            )
            if r.breaches
            else (_p("No deadline was breached in the period."),),
        ),
        Section(
            "overdue",
            "Overdue at the end of the period",
            2,
            (
                _t(
                    "Work past due at the end of the period",
                    ("Kind", "Workflow", "What", "Due (London)", "Working days overdue", "Owner"),
                    overdue_rows,
                ),
            )
            if overdue_rows
            else (_p("Nothing is overdue."),),
        ),
        Section(
            "timescales",
            "Timescale compliance, by team",
            2,
            (
                _t(
                    "Each timescale's instances in the period: met, missed, still open",
                    (
                        "Team",
                        "Timescale",
                        "Clause",
                        "Met",
                        "Missed",
                        "Open at the end",
                        "Met on time (of settled)",
                    ),
                    [
                        (
                            ts.team or "No team recorded",
                            labels.deadline(ts.machine, ts.name),
                            labels.clause(ts.clause) if ts.clause else "",
                            str(ts.met),
                            str(ts.missed),
                            str(ts.open),
                            _pct(rate(ts.met, ts.met + ts.missed)),
                        )
                        for ts in r.timescales
                    ],
                ),
            )
            if r.timescales
            else (_p("No case timescale was recorded in the period."),),
        ),
        Section(
            "notifications",
            "Notifications written, by clause",
            2,
            (
                _t(
                    "Notifications written in the period",
                    ("Clause", "Notifications"),
                    [(labels.clause(c.clause), str(c.count)) for c in r.notifications],
                ),
            )
            if r.notifications
            else (_p("None."),),
        ),
    )
