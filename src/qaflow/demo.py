"""The demo: a quarter of a made-up council's QA work, stored, verified and reported.

:func:`run_demo` generates a council (:func:`~qaflow.programme.generate_council`), plays a
quarter of its audit programme under the policy of the catalogue's demo council
(:data:`qaflow.policies.DEMO_COUNCIL`) with :func:`~qaflow.programme.run_programme` --
audits, moderation and escalations on the shipped CP chair, IRO and fostering IRO
ladders -- into an embedded SQLite file on a virtual clock, checks every workflow's hash
chain and replay (:meth:`~qaflow.engine.Engine.verify`), builds the QA report for the quarter
(:func:`~qaflow.report.build_report`) and writes it as HTML, Markdown and JSON.

Why one council: one quarterly report is one council's report, and the demo council's
policy exercises every part of it (self-assessment scales for distance travelled, family
feedback, follow-ups, 24 h tasks, moderation agreement). Every other shipped council runs
through the same programme in the tests.

The database holds only shipped machines, so ``qaflow tick``, ``history``, ``verify`` and
``report`` work on it afterwards. Everything in it is made up: ids, no names, and the one
placeholder text ``"simulated"`` wherever a machine asks for free text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Final

import attrs

from qaflow._practice import run_practice
from qaflow.calendar import LONDON
from qaflow.engine import Engine
from qaflow.errors import ValidationError
from qaflow.policies import DEMO_COUNCIL, shipped_audit_procedure
from qaflow.programme import ProgrammeResult, generate_council, run_programme
from qaflow.registry import shipped_report_policies, shipped_specs
from qaflow.report import QAReport, build_report, to_html, to_json, to_markdown
from qaflow.store import SQLiteStore, Store, open_store
from qaflow.store._url import shown_url

__all__ = ["DEMO_SEED", "DEMO_START", "DemoResult", "DemoSummary", "run_demo"]

DEMO_SEED: Final = 2026
"""The seed the demo uses unless told otherwise."""
DEMO_START: Final = date(2026, 1, 1)
"""The first day of the demo's quarter."""
DEMO_ESCALATION_RATE: Final = 0.05
"""A little above the programme's default, so a quarter shows every ladder at work."""

DATABASE: Final = "qaflow-demo.db"
HTML: Final = "qa-report.html"
MARKDOWN: Final = "qa-report.md"
JSON: Final = "qa-report.json"
_TREND_MONTHS: Final = 15
"""Months of trend in the demo's report: its quarter and the four quarters before it."""


@attrs.frozen(kw_only=True)
class DemoSummary:
    """The demo in figures: what was played and what the report found."""

    council: str
    seed: int
    start: datetime
    end: datetime
    workflows: int
    events: int
    verified: int
    audits_allocated: int
    audits_completed: int
    moderations_finalised: int
    moderation_agreement: float | None
    escalations_raised: int
    breaches: int
    overdue: int


@attrs.frozen(kw_only=True)
class DemoResult:
    """Where the demo wrote its files, and its summary."""

    directory: Path
    database: Path | str
    """The SQLite file, or the store URL given (without its password)."""
    html: Path
    markdown: Path
    json: Path
    summary: DemoSummary
    samples: tuple[str, ...] = ()
    """Workflow ids worth a first look: the escalation and the audit with the most events."""

    def lines(self) -> list[str]:
        """A few lines for a terminal: the files and the headline figures."""
        s = self.summary
        rate = "n/a" if s.moderation_agreement is None else f"{s.moderation_agreement:.0%}"
        return [
            f"Council {s.council}, seed {s.seed}: {_day(s.start)} to "
            f"{_day(s.end - timedelta(microseconds=1))}",
            f"{s.workflows} workflows, {s.events} events, all {s.verified} verified",
            f"audits: {s.audits_allocated} allocated, {s.audits_completed} completed; "
            f"moderations finalised: {s.moderations_finalised} (agreement {rate}); "
            f"escalations raised: {s.escalations_raised}; breaches: {s.breaches}; "
            f"overdue at the end: {s.overdue}",
            f"database: {self.database}",
            f"report:   {self.html}",
            f"          {self.markdown}",
            f"          {self.json}",
        ]


def _day(moment: datetime) -> str:
    return moment.astimezone(LONDON).date().isoformat()


def _remove_database(path: Path) -> None:
    """A fresh demo every time: remove an earlier demo database and its WAL files."""
    for suffix in ("", "-wal", "-shm"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            candidate.unlink()


def _open(directory: Path, db: str | None) -> Store:
    """The demo's SQLite file (replacing an earlier one), or the empty store ``db`` names.

    A store that already holds workflows is refused before anything is written: the demo's
    ids would collide with them, and it never deletes a shared database's content.
    """
    if db is None:
        database = directory / DATABASE
        _remove_database(database)
        # NORMAL: a demo need not survive power loss, and it writes several times faster.
        return SQLiteStore(database, synchronous="NORMAL")
    store: Store = open_store(db, field="--db")
    if next(iter(store.workflow_ids()), None) is not None:
        close = getattr(store, "close", None)
        if callable(close):
            close()
        raise ValidationError(
            field="--db",
            value=shown_url(db),
            expected="an empty database (this one holds workflows)",
        )
    return store


def _samples(store: Store) -> tuple[str, ...]:
    """The escalation and the audit with the most events (the lowest id of a tie)."""
    best: dict[str, tuple[int, str]] = {}
    for workflow_id in store.workflow_ids():
        snapshot = store.load(workflow_id)
        family = snapshot.machine.split(".")[0]
        if family in ("escalation", "audit"):
            candidate = (-snapshot.version, workflow_id)
            best[family] = min(best.get(family, candidate), candidate)
    return tuple(best[f][1] for f in ("escalation", "audit") if f in best)


def _summary(
    result: ProgrammeResult, report: QAReport, workflows: int, verified: int
) -> DemoSummary:
    return DemoSummary(
        council=result.policy,
        seed=result.seed,
        start=result.start,
        end=result.end,
        workflows=workflows,
        events=result.events_written,
        verified=verified,
        audits_allocated=report.activity.audits_allocated,
        audits_completed=report.activity.audits_completed,
        moderations_finalised=report.moderation.finalised,
        moderation_agreement=report.moderation.agreement_rate,
        escalations_raised=report.activity.escalations_raised,
        breaches=report.breaches_total,
        overdue=len(report.overdue_follow_ups)
        + len(report.overdue_tasks)
        + len(report.overdue_deadlines),
    )


def run_demo(
    out_dir: str | Path,
    *,
    months: int = 3,
    seed: int = DEMO_SEED,
    start: date = DEMO_START,
    progress: Callable[[int, int], None] | None = None,
    db: str | None = None,
) -> DemoResult:
    """Play ``months`` (a quarter) of a generated council's QA work and report on it.

    Writes ``out_dir/qaflow-demo.db`` (replacing an earlier demo database there),
    ``qa-report.html``, ``qa-report.md`` and ``qa-report.json``; creates ``out_dir`` if
    needed. The same ``seed`` writes the same database content and the same reports.
    ``progress(days, total)`` counts the simulated days as they pass (the CLI's bar).
    ``db`` (a store URL, e.g. ``postgresql://…``) writes the workflows there instead of the
    SQLite file; that database must hold no workflows yet.
    """
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 24:
        raise ValidationError(field="months", value=months, expected="a whole number in 1..24")
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    council = generate_council(seed)
    store = _open(directory, db)
    try:
        result = run_programme(
            council,
            shipped_audit_procedure(DEMO_COUNCIL).audit,
            months=months,
            start=start,
            seed=seed,
            store=store,
            escalation_rate=DEMO_ESCALATION_RATE,
            progress=progress,
        )
        practice = run_practice(  # case timescales, supervision, QA calendar: same council
            store, council, policy=DEMO_COUNCIL, start=result.start, end=result.end, seed=seed
        )
        verified = Engine(store, shipped_specs()).verify()
        workflows = sum(1 for _ in store.workflow_ids())
        samples = _samples(store)
        known = shipped_report_policies()
        report = build_report(
            store,
            start=result.start,
            end=result.end,
            policies=known,
            trend_months=_TREND_MONTHS,
        )
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()
    paths = {name: directory / name for name in (HTML, MARKDOWN, JSON)}
    paths[HTML].write_text(to_html(report, policies=known), encoding="utf-8")
    paths[MARKDOWN].write_text(to_markdown(report, policies=known), encoding="utf-8")
    paths[JSON].write_text(to_json(report) + "\n", encoding="utf-8")
    return DemoResult(
        directory=directory,
        database=directory / DATABASE if db is None else shown_url(db),
        html=paths[HTML],
        markdown=paths[MARKDOWN],
        json=paths[JSON],
        summary=attrs.evolve(
            _summary(result, report, workflows, verified),
            events=result.events_written + practice.events,
        ),
        samples=samples,
    )
