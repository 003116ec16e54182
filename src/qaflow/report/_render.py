"""The report rendered from Jinja2 templates, which a council can override.

:func:`to_html` and :func:`to_markdown` turn a :class:`QAReport` into a view (labels from the
policies, plain dates, key messages, targets, comparison: :mod:`qaflow.report._view`) and
render it with ``report.html.j2`` / ``report.md.j2``. ``templates`` names a folder whose files
replace the shipped ones of the same name (``report.html.j2``, ``macros.html.j2``,
``report.css.j2``, ``report.md.j2``): a council's branding and wording without a fork.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import jinja2

from qaflow.errors import ValidationError
from qaflow.report._labels import Labels
from qaflow.report._model import DEFAULT_TARGETS, Target
from qaflow.report._policies import ReportPolicies
from qaflow.report._records import QAReport
from qaflow.report._view import build_view

_SHIPPED = Path(__file__).with_name("templates")


def _cell(text: object) -> str:
    return re.sub(r"\s+", " ", str(text)).replace("|", "\\|")


def _environment(templates: str | Path | None, *, html: bool) -> jinja2.Environment:
    folders = [str(_SHIPPED)]
    if templates is not None:
        folder = Path(templates)
        if not folder.is_dir():
            raise ValidationError(
                field="templates", value=str(folder), expected="an existing folder of templates"
            )
        folders.insert(0, str(folder))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=not html,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = _cell
    return env


def _render(
    report: QAReport,
    name: str,
    *,
    html: bool,
    previous: QAReport | None,
    templates: str | Path | None,
    targets: Mapping[str, Target] | None,
    policies: ReportPolicies | None,
) -> str:
    known = policies if policies is not None else ReportPolicies()
    labels = Labels(report.policies, known=known)
    if targets is None:
        targets = known.targets or DEFAULT_TARGETS
    view = build_view(report, labels, previous=previous, targets=targets)
    try:
        text = _environment(templates, html=html).get_template(name).render(view=view)
    except jinja2.TemplateError as error:
        raise ValidationError(
            field="templates",
            value=getattr(error, "name", None) or name,
            expected=f"a Jinja2 template that renders the report ({type(error).__name__})",
        ) from None
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"


def to_html(
    report: QAReport,
    *,
    previous: QAReport | None = None,
    templates: str | Path | None = None,
    targets: Mapping[str, Target] | None = None,
    policies: ReportPolicies | None = None,
) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG charts, no script, no
    external resource; the charts' ids are :data:`CHART_IDS`, each with a table alternative
    ``table[data-chart-for=id]``). ``previous`` adds the comparison with that period;
    ``templates`` a folder of overriding templates; ``policies`` give the words (question
    texts, ladder and stage titles) and the targets (:class:`ReportPolicies`); ``targets``
    replaces those targets (without either: qaflow's defaults)."""
    return _render(
        report,
        "report.html.j2",
        html=True,
        previous=previous,
        templates=templates,
        targets=targets,
        policies=policies,
    )


def to_markdown(
    report: QAReport,
    *,
    previous: QAReport | None = None,
    templates: str | Path | None = None,
    targets: Mapping[str, Target] | None = None,
    policies: ReportPolicies | None = None,
) -> str:
    """The report as Markdown (the same view as :func:`to_html`, tables for the charts)."""
    return _render(
        report,
        "report.md.j2",
        html=False,
        previous=previous,
        templates=templates,
        targets=targets,
        policies=policies,
    )
