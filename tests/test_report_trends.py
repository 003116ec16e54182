"""The report's monthly trends, team filters, targets file and progress (issue 15).

Trends are checked against a history built by hand: audits driven to completion in chosen
months, so every month's expected count is known before the report reads the store.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from audit_support import Harness
from qaflow.calendar import default_calendar as report_calendar
from qaflow.cli import main
from qaflow.errors import PolicyError, ValidationError
from qaflow.machines import audit as A
from qaflow.policies.forms import Grade
from qaflow.registry import shipped_report_policies
from qaflow.report import (
    QAFLOW_DEFAULT,
    Filters,
    Target,
    build_report,
    from_json,
    load_targets,
    to_json,
    to_markdown,
)
from qaflow.report._read import Period
from qaflow.report._trends import monthly_trends
from qaflow.store import SQLiteStore

KNOWN = shipped_report_policies()

# (month it was completed, team, grade): three in the quarter, two in earlier quarters.
HISTORY = [
    (datetime(2025, 3, 4, 10, tzinfo=UTC), "T01", Grade.GOOD),
    (datetime(2025, 11, 10, 10, tzinfo=UTC), "T02", Grade.REQUIRES_IMPROVEMENT),
    (datetime(2026, 1, 12, 10, tzinfo=UTC), "T01", Grade.OUTSTANDING),
    (datetime(2026, 1, 20, 10, tzinfo=UTC), "T02", Grade.GOOD),
    (datetime(2026, 3, 9, 10, tzinfo=UTC), "T01", Grade.REQUIRES_IMPROVEMENT),
]


def history(store: object = None) -> Harness:
    h = Harness(store)
    for n, (when, team, grade) in enumerate(HISTORY, 1):
        h.clock.set(when)
        h.drive("bexley", f"AUD-{n}", A.COMPLETED, grade=grade, team_id=team)
    return h


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_monthly_trends_over_the_quarter_and_the_four_before(kind: str, tmp_path: Path) -> None:
    store = None if kind == "memory" else SQLiteStore(tmp_path / "t.db")
    h = history(store)
    report = build_report(
        h.store, start=date(2026, 1, 1), end=date(2026, 4, 1), policies=KNOWN, trend_months=15
    )
    months = [m.month for m in report.trends]
    assert months[0] == "2025-01" and months[-1] == "2026-03" and len(months) == 15
    completed = {m.month: m.audits_completed for m in report.trends}
    good = {m.month: m.good_or_better for m in report.trends}
    assert completed == {
        **dict.fromkeys(months, 0),
        "2025-03": 1,
        "2025-11": 1,
        "2026-01": 2,
        "2026-03": 1,
    }
    assert good["2025-03"] == 1 and good["2025-11"] == 0 and good["2026-01"] == 2
    assert good["2026-03"] == 0
    assert all(m.audits_graded == m.audits_completed for m in report.trends)
    # each month equals a report of that month alone
    alone = build_report(h.store, start=date(2026, 1, 1), end=date(2026, 2, 1), policies=KNOWN)
    assert alone.activity.audits_completed == completed["2026-01"]
    assert "## Trends by month" in to_markdown(report, policies=KNOWN)
    assert from_json(to_json(report)) == report  # trends, teams and filters round-trip


def test_breakdown_and_filters_by_team() -> None:
    h = history()
    quarter = {"start": date(2026, 1, 1), "end": date(2026, 4, 1), "policies": KNOWN}
    report = build_report(h.store, **quarter)
    by_team = {b.id: b for b in report.by_team}
    assert by_team["T01"].audits_completed == 2 and by_team["T02"].audits_completed == 1
    assert by_team["T01"].good_or_better == 1 and by_team["T02"].good_or_better == 1
    only = build_report(h.store, team="T02", **quarter)
    assert only.activity.audits_completed == 1 and only.filters.team == "T02"
    assert [b.id for b in only.by_team] == ["T02"]
    assert build_report(h.store, policy="bexley", **quarter).activity.audits_completed == 3
    with pytest.raises(ValidationError, match="team") as refused:
        build_report(h.store, team="T09", **quarter)
    assert "T01" in str(refused.value) and "T02" in str(refused.value)
    with pytest.raises(ValidationError, match="policy") as bad_policy:
        build_report(h.store, policy="nowhere", **quarter)
    assert "bexley" in str(bad_policy.value)
    with pytest.raises(ValidationError, match="service"):
        build_report(h.store, service="S1", **quarter)


def test_the_cli_refuses_bad_filters_naming_the_flag(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    with SQLiteStore(db) as store:
        history(store)
    period = ["report", "--db", str(db), "--from", "2026-01-01", "--to", "2026-03-31"]
    for flag, value, accepted in (
        ("--policy", "nowhere", "bexley"),
        ("--team", "T09", "T01"),
        ("--service", "S1", "--directory"),
    ):
        result = CliRunner().invoke(main, [*period, flag, value])
        assert result.exit_code == 1, result.output
        assert flag in result.output and accepted in result.output
        assert "Traceback" not in result.output
    ok = CliRunner().invoke(main, [*period, "--team", "T01", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    assert '"team": "T01"' in ok.output  # and nothing but the JSON: no progress bar piped
    assert ok.output.lstrip().startswith("{")


def test_targets_come_from_the_councils_file() -> None:
    assert KNOWN.targets["follow_ups"] == Target("Follow-ups on time", 0.9, 0.1, QAFLOW_DEFAULT)
    assert KNOWN.targets_source == "qaflow/policies/bexley/report.toml"
    text = '[targets.follow_ups]\nmeasure = "On time"\nminimum = 0.8\nsource = "BX-AUD-09"\n'
    read = load_targets("mine/report.toml", text=text)
    assert read == {"follow_ups": Target("On time", 0.8, 0.1, "BX-AUD-09")}
    h = history()
    report = build_report(h.store, start=date(2026, 1, 1), end=date(2026, 4, 1), policies=KNOWN)
    md = to_markdown(report, policies=KNOWN, targets=read)
    assert "at least 80%" in md and "BX-AUD-09" in md


def test_a_bad_targets_file_names_the_file_and_key_path() -> None:
    text = (
        '[targets.follow_ups]\nmeasure = "On time"\nminimum = 1.5\nsource = "someone"\n'
        '[targets.speed]\nmeasure = "x"\n'
    )
    with pytest.raises(PolicyError) as error:
        load_targets("mine/report.toml", text=text)
    message = str(error.value)
    assert "mine/report.toml" in message
    for path in ("targets.follow_ups.minimum", "targets.follow_ups.source", "targets.speed"):
        assert path in message, message


class _PeriodReadsOnly(SQLiteStore):
    """A real SQLite store that refuses whole-history reads, so a test can show the
    trends never fall back to them."""

    def snapshots(self, machine: str | None = None):  # type: ignore[no-untyped-def]
        raise AssertionError("read every snapshot")

    def events(self, workflow_id: str):  # type: ignore[no-untyped-def]
        raise AssertionError("read a whole history")


def test_trend_months_are_read_by_period_even_for_one_team(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "t.db") as store:
        history(store)
    march = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    with _PeriodReadsOnly(tmp_path / "t.db") as store:
        quarter = Period(store, *march, report_calendar(), KNOWN, Filters())
        trends = monthly_trends(quarter, 15)
        assert sum(m.audits_completed for m in trends) == len(HISTORY)
        month = Period(
            store,
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2026, 2, 1, tzinfo=UTC),
            report_calendar(),
            KNOWN,
            Filters(team="T02"),
            touched_only=True,
        )
        assert [w.id for w in month.flows["audit"]] == ["AUD-4"]


def test_breakdown_by_service_and_the_service_filter_with_a_directory() -> None:
    from qaflow import MemoryStore
    from qaflow.programme import generate_council, run_programme

    council = generate_council(5, teams=4, teams_per_service=2)
    store = MemoryStore()
    run_programme(council, months=2, start=date(2026, 1, 1), seed=5, store=store,
                  escalation_rate=0.2)  # fmt: skip
    period = {"start": date(2026, 1, 1), "end": date(2026, 3, 1), "policies": KNOWN}
    whole = build_report(store, directory=council.directory, **period)
    services = sorted(s.id for s in council.directory.services())
    assert [b.id for b in whole.by_service if b.id] == services
    raised = sum(b.escalations_raised for b in whole.by_team)
    assert raised == whole.escalations_raised > 0  # each in one row: IROs and chairs in ""
    no_team = next(b for b in whole.by_team if b.id == "")
    assert no_team.escalations_raised == raised and no_team.audits_completed == 0
    team_service = {t.id: t.service_id for t in council.directory.teams()}
    for service in services:
        only = build_report(store, directory=council.directory, service=service, **period)
        expected = sum(
            b.audits_completed for b in whole.by_team if team_service.get(b.id) == service
        )
        assert only.activity.audits_completed == expected
        assert {b.id for b in only.by_team} <= {t for t, s in team_service.items() if s == service}
    with pytest.raises(ValidationError, match="service") as refused:
        build_report(store, directory=council.directory, service="S99", **period)
    assert services[0] in str(refused.value)


def test_breakdowns_and_trend_months_share_their_counts_and_keep_their_json() -> None:
    """Breakdown and MonthTrend are WorkCounts (one definition of the eight counts); their
    JSON keys are what they were before the shared base (consumers see no change)."""
    from qaflow.records import converter
    from qaflow.report import Breakdown, MonthTrend, WorkCounts
    from qaflow.report._breakdown import FIELDS

    counts = tuple(range(1, 9))
    row = Breakdown(*counts, unit="team", id="T-1")
    month = MonthTrend(
        *counts,
        month="2026-01",
        start=datetime(2026, 1, 1, tzinfo=UTC),
        end=datetime(2026, 2, 1, tzinfo=UTC),
    )
    assert tuple(f.name for f in attrs.fields(WorkCounts)) == FIELDS
    for record, extra in ((row, {"unit", "id"}), (month, {"month", "start", "end"})):
        assert isinstance(record, WorkCounts)
        assert [getattr(record, f) for f in FIELDS] == list(counts)
        assert set(converter.unstructure(record)) == set(FIELDS) | extra
        assert converter.structure(converter.unstructure(record), type(record)) == record
    with pytest.raises(TypeError):
        Breakdown("team", "T-1", *counts)  # type: ignore[arg-type,call-arg]  # keywords only
