"""The quarterly QA report: built from any store for any period, rendered for people.

:func:`build_report` (in :mod:`qaflow.report._build`) gathers the figures into a
:class:`QAReport`; :func:`to_json` / :func:`from_json` round-trip it; :func:`to_markdown` and
:func:`to_html` render it for a council's readers. The package keeps the former module's
public names.
"""

from qaflow.report._build import (
    CHART_IDS,
    Activity,
    BreachCount,
    ClauseCount,
    DistanceTravelled,
    Distribution,
    GradeCount,
    HistogramBin,
    LadderSummary,
    ModerationSummary,
    OnTime,
    OverdueItem,
    QAReport,
    QuestionScore,
    StageCount,
    StatementScore,
    build_report,
    from_json,
    to_json,
)
from qaflow.report._build import (  # private helpers tests of the former module import
    _audit_ended as _audit_ended,
)
from qaflow.report._build import (
    _audit_phases as _audit_phases,
)
from qaflow.report._model import DEFAULT_TARGETS, Target
from qaflow.report._pdf import PDFUnavailable, html_to_pdf
from qaflow.report._render import to_html, to_markdown

__all__ = [
    "CHART_IDS",
    "DEFAULT_TARGETS",
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
    "PDFUnavailable",
    "QAReport",
    "QuestionScore",
    "StageCount",
    "StatementScore",
    "Target",
    "build_report",
    "from_json",
    "html_to_pdf",
    "to_html",
    "to_json",
    "to_markdown",
]
