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

The report knows only the policies it is given (:class:`ReportPolicies`); it imports no
council. The figures are gathered by one module per job: :mod:`._audits`, :mod:`._ontime`,
:mod:`._escalations`, :mod:`._breakdown`, :mod:`._trends`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Final

from qaflow.calendar import LONDON, WorkingCalendar, default_calendar
from qaflow.directory import InMemoryDirectory
from qaflow.errors import ValidationError
from qaflow.records import converter
from qaflow.report import _audits, _escalations, _ontime
from qaflow.report._breakdown import breakdown, compliance_rows
from qaflow.report._filters import check_filters, check_team_seen
from qaflow.report._policies import ReportPolicies
from qaflow.report._read import Filters, Period, moment
from qaflow.report._records import QAReport
from qaflow.report._trends import MAX_TREND_MONTHS, monthly_trends
from qaflow.store import Store

__all__ = ["CHART_IDS", "build_report", "from_json", "to_json"]

CHART_IDS: Final = (
    "chart-grades",
    "chart-practice-areas",
    "chart-escalation-funnel",
    "chart-resolution-histogram",
)
"""The ids of the SVG charts of the HTML report (each also has the class ``qa-chart``)."""


def build_report(
    store: Store,
    *,
    start: date | datetime,
    end: date | datetime,
    policies: ReportPolicies | None = None,
    calendar: WorkingCalendar | None = None,
    policy: str | None = None,
    team: str | None = None,
    service: str | None = None,
    directory: InMemoryDirectory | None = None,
    trend_months: int = 0,
    progress: Callable[[int], None] | None = None,
) -> QAReport:
    """The QA report of everything ``store`` holds for ``[start, end)``.

    A date means local midnight in London at its start (``start=date(2026, 1, 1),
    end=date(2026, 4, 1)`` is the first quarter of 2026). ``policies`` are the audit
    policies and ladders the report knows (:class:`ReportPolicies`; the CLI passes the
    shipped ones): it counts the escalations of those ladders, orders questions as the forms
    do, knows the family feedback statements and the self-assessment scales, and lists every
    stage of a ladder even when none reached it. ``calendar`` counts working days (default:
    England bank holidays). ``policy``, ``team`` and ``service`` limit the report
    (:class:`~qaflow.report.Filters`); ``directory`` places people in teams and teams in
    services (needed for ``service`` and for escalations by team). ``trend_months`` adds
    that many months of trends ending with the period's last month (15: the quarter and
    the four before it), each read by its own period query. ``progress(done)`` is called
    after the period (1) and after each month of trend (2, 3, ...).

    Reads only; raises :class:`~qaflow.errors.ValidationError` naming the argument for a bad
    period or filter.
    """
    begin = moment(start, "start")
    finish = moment(end, "end")
    if finish <= begin:
        raise ValidationError(
            field="end", value=finish.isoformat(), expected=f"later than {begin.isoformat()}"
        )
    if not 0 <= trend_months <= MAX_TREND_MONTHS:
        raise ValidationError(
            field="trend_months", value=trend_months, expected=f"0 to {MAX_TREND_MONTHS}"
        )
    known = policies if policies is not None else ReportPolicies()
    filters = check_filters(
        known, Filters(policy, team, service), directory, names=("policy", "team", "service")
    )
    calendar = calendar or default_calendar()
    p = Period(store, begin, finish, calendar, known, filters, directory)
    check_team_seen(p, "team")
    grades, auditor_grades = _audits.grades(p)
    follow_ups, overdue_follow_ups = _ontime.follow_ups(p)
    urgent, overdue_tasks = _ontime.urgent_tasks(p)
    feedback, obtained, not_obtained, respondents = _audits.family_feedback(p)
    escalations, resolution, time_to_close = _escalations.escalations(p)
    seen = sorted(
        {w.snapshot.policy for flows in p.flows.values() for w in flows if w.snapshot.policy}
        | p.quiet_policies
    )
    distance = _audits.distance(p)
    if progress is not None:
        progress(1)
    return QAReport(
        start=begin,
        end=finish,
        working_days=len(
            calendar.working_dates(
                begin.astimezone(LONDON).date(),
                (finish - timedelta(microseconds=1)).astimezone(LONDON).date(),
            )
        ),
        workflows_read=p.read,
        policies=tuple(seen),
        activity=_audits.activity(p),
        grades=grades,
        auditor_grades=auditor_grades,
        practice_areas=_audits.practice_areas(p),
        moderation=_audits.moderation(p),
        follow_ups=follow_ups,
        urgent_tasks=urgent,
        family_feedback=feedback,
        feedback_obtained=obtained,
        feedback_not_obtained=not_obtained,
        distance_travelled=distance,
        escalations=escalations,
        resolution=resolution,
        time_to_close=time_to_close,
        breaches=_escalations.breaches(p),
        notifications=_escalations.notifications(p),
        overdue_follow_ups=tuple(overdue_follow_ups),
        overdue_tasks=tuple(overdue_tasks),
        overdue_deadlines=_escalations.overdue_deadlines(p),
        notes=tuple(p.notes),
        timescales=compliance_rows(p),
        feedback_respondents=respondents,
        by_team=breakdown(p, "team"),
        by_service=breakdown(p, "service") if directory is not None else (),
        trends=monthly_trends(p, trend_months, progress),
        filters=filters,
    )


# --- JSON ---------------------------------------------------------------------------------------


def to_json(report: QAReport, *, indent: int | None = 2) -> str:
    """The report as JSON (cattrs; datetimes as UTC ISO 8601)."""
    return json.dumps(converter.unstructure(report), indent=indent, sort_keys=True)


def from_json(text: str) -> QAReport:
    """A report read back from :func:`to_json` text (equal to the original)."""
    report: QAReport = converter.structure(json.loads(text), QAReport)
    return report
