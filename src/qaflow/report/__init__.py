"""The quarterly QA report: built from any store for any period, rendered for people.

:func:`build_report` gathers the figures into a :class:`QAReport`; :func:`to_json` /
:func:`from_json` round-trip it; :func:`to_markdown` and :func:`to_html` render it for a
council's readers. The report names no council: the audit policies, ladders and targets it
knows are passed in as :class:`ReportPolicies` (:func:`qaflow.registry.shipped_report_policies`
gives the shipped ones); :func:`load_targets` reads a council's ``report.toml``.

Inside, one module per job: ``_read`` (the period's workflows), ``_audits``, ``_ontime``,
``_escalations``, ``_breakdown`` (teams and services), ``_trends`` (months), ``_build``
(the whole report and JSON), ``_targets`` (the targets file), ``_labels``, ``_view``,
``_charts``, ``_render`` and ``_pdf`` (the words, charts, templates and PDF).
"""

from qaflow.report._build import CHART_IDS, build_report, from_json, to_json
from qaflow.report._model import DEFAULT_TARGETS, QAFLOW_DEFAULT, TARGET_KEYS, Target
from qaflow.report._pdf import PDFUnavailable, html_to_pdf
from qaflow.report._policies import ReportPolicies
from qaflow.report._records import (
    Activity,
    BreachCount,
    Breakdown,
    ClauseCount,
    DistanceTravelled,
    Distribution,
    FeedbackRespondent,
    Filters,
    GradeCount,
    HistogramBin,
    LadderSummary,
    ModerationSummary,
    MonthTrend,
    OnTime,
    OverdueItem,
    QAReport,
    QuestionScore,
    StageCount,
    StatementScore,
    WorkCounts,
)
from qaflow.report._render import to_html, to_markdown
from qaflow.report._targets import load_targets
from qaflow.report._trend_view import TREND_CHART

__all__ = [
    "CHART_IDS",
    "DEFAULT_TARGETS",
    "QAFLOW_DEFAULT",
    "TARGET_KEYS",
    "TREND_CHART",
    "Activity",
    "BreachCount",
    "Breakdown",
    "ClauseCount",
    "DistanceTravelled",
    "Distribution",
    "FeedbackRespondent",
    "Filters",
    "GradeCount",
    "HistogramBin",
    "LadderSummary",
    "ModerationSummary",
    "MonthTrend",
    "OnTime",
    "OverdueItem",
    "PDFUnavailable",
    "QAReport",
    "QuestionScore",
    "ReportPolicies",
    "StageCount",
    "StatementScore",
    "Target",
    "WorkCounts",
    "build_report",
    "from_json",
    "html_to_pdf",
    "load_targets",
    "to_html",
    "to_json",
    "to_markdown",
]
