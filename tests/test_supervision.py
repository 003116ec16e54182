"""Supervision (BX-SUP-01/02, BK-SUP-01) and the QA calendar (BX-QA-01..03, BK-QA-01).

Expected lengths are written from the seeds, never read from the shipped files, so changing a
value in ``policies/*/supervision.toml`` or ``qa_calendar.toml`` fails a test here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from qaflow.machines.qa_calendar import calendar_spec, shipped_qa_calendar
from qaflow.machines.supervision import shipped_supervision, supervision_spec
from timescale_support import QA_LEAD, SUPERVISOR, Run

T0 = datetime(2025, 3, 3, 9, tzinfo=UTC)  # a Monday


def _practitioner(council: str, experience: str, case_holding: bool = True) -> Run:
    run = Run(supervision_spec(shipped_supervision(council)), T0)
    run.start(
        "practitioner_joined",
        SUPERVISOR,
        {
            "team_id": "T1",
            "practitioner_id": "SW-9",
            "experience": experience,
            "case_holding": case_holding,
        },
    )
    return run


def _session(run: Run, minutes: int = 90, kind: str = "individual") -> None:
    run.fire("session_recorded", SUPERVISOR, minutes=minutes, kind=kind)


def test_bx_sup_01_weekly_for_4_weeks_fortnightly_for_4_then_4_weekly() -> None:
    """BX-SUP-01: case-holding: weekly for the first 4 weeks, fortnightly for the next 4, then
    at least every 4 weeks."""
    run = _practitioner("bexley", "newly_qualified")
    assert run.due("supervision") == run.after("1 weeks", T0)
    run.wait(days=6)
    _session(run)
    assert run.due("supervision") == run.after("1 weeks")
    run.clock.set(run.after("4 weeks", T0))
    _session(run)
    assert run.due("supervision") == run.after("2 weeks")
    run.clock.set(run.after("8 weeks", T0))
    _session(run)
    assert run.due("supervision") == run.after("4 weeks")


def test_bx_sup_01_sessions_last_90_minutes_and_group_supervision_every_4_weeks() -> None:
    """BX-SUP-01: a session is 1.5-2 h (a shorter one does not count); group supervision at
    least every 4 weeks (the 2-4 week range's outer bound); non-case-holding 4-weekly."""
    run = _practitioner("bexley", "experienced", case_holding=False)
    assert run.due("supervision") == run.after("4 weeks", T0)
    assert run.due("group_supervision") == run.after("4 weeks", T0)
    run.wait(days=3)
    _session(run, minutes=89)
    assert run.due("supervision") == run.after("4 weeks", T0)  # not met
    _session(run, minutes=90)
    assert run.due("supervision") == run.after("4 weeks")
    _session(run, minutes=60, kind="group")
    assert run.due("group_supervision") == run.after("4 weeks")


def test_bx_sup_02_is_the_rule_the_file_does_not_follow_and_says_why() -> None:
    """BX-SUP-02: the Hints & tips cadence conflicts with BX-SUP-01; the file chooses
    BX-SUP-01 and says why (a newly qualified worker is not weekly for 6 months)."""
    (decision,) = shipped_supervision("bexley").decisions
    assert (decision.clause, decision.over) == ("BX-SUP-01", "BX-SUP-02")
    assert "policy governs" in decision.why
    run = _practitioner("bexley", "newly_qualified")
    run.clock.set(run.after("8 weeks", T0))
    _session(run)
    assert run.due("supervision") == run.after("4 weeks")  # not BX-SUP-02's weekly


def test_bk_sup_01_newly_qualified_fortnightly_for_6_months_then_monthly() -> None:
    """BK-SUP-01: newly qualified: fortnightly for the first 6 months, then at least monthly;
    other practitioners at least monthly."""
    run = _practitioner("buckinghamshire", "newly_qualified")
    assert run.due("supervision") == run.after("2 weeks", T0)
    run.wait(days=10)
    _session(run, minutes=45)  # BK sets no minimum length
    assert run.due("supervision") == run.after("2 weeks")
    run.clock.set(run.after("6 months", T0))
    _session(run)
    assert run.due("supervision") == run.after("1 months")
    other = _practitioner("buckinghamshire", "experienced")
    assert other.due("supervision") == other.after("1 months", T0)


def test_bk_sup_01_casework_on_file_1_wd_and_yearly_agreement_observation_appraisal() -> None:
    """BK-SUP-01: casework supervision recorded on the child's file within 1 WD; a signed
    agreement reviewed annually; an observation of practice and an appraisal each year."""
    run = _practitioner("buckinghamshire", "experienced")
    for name in ("supervision_agreement", "practice_observation", "appraisal"):
        assert run.due(name) == run.after("12 months", T0), name
    run.wait(hours=2)
    run.fire("casework_discussed", SUPERVISOR, case_ref="C-1")
    assert run.due("casework_recorded") == run.after("1 WD")
    run.fire("casework_recorded", SUPERVISOR, case_ref="C-1")
    assert run.due("casework_recorded") is None
    run.fire("agreement_signed", SUPERVISOR)
    assert run.due("supervision_agreement") == run.after("12 months")


def test_a_change_of_role_takes_effect_from_the_event_that_changes_it() -> None:
    """I15 on supervision: stopping case holding moves the cadence from this event."""
    run = _practitioner("bexley", "newly_qualified")
    run.wait(days=2)
    run.fire("role_changed", SUPERVISOR, case_holding=False)
    assert run.due("supervision") == run.after("4 weeks")


def _calendar(council: str, holder: str) -> Run:
    run = Run(calendar_spec(shipped_qa_calendar(council)), T0)
    run.start("calendar_started", QA_LEAD, {"team_id": "T1", "holder": holder, "holder_id": "P-1"})
    return run


@pytest.mark.parametrize("council", ["bexley", "buckinghamshire"])
def test_bx_qa_01_bk_qa_01_one_audit_per_manager_per_month_a_miss_is_a_breach(
    council: str,
) -> None:
    """BX-QA-01 / BK-QA-01: each manager completes an audit every month; a missed month is a
    breach and the next month still falls due a month later (calendar cadence)."""
    run = _calendar(council, "manager")
    first = run.after("1 months", T0)
    assert run.due("monthly_audit") == first
    run.wait(days=10)
    run.fire("audit_completed", QA_LEAD)
    second = run.after("1 months", first)
    assert run.due("monthly_audit") == second  # from the period, not from the audit
    run.tick(second)
    assert run.missed() == ["monthly_audit"]
    assert run.due("monthly_audit") == run.after("1 months", second)


def test_bx_qa_01_practitioners_self_assess_monthly_and_a_sample_is_moderated() -> None:
    """BX-QA-01: practitioners self-assess monthly; a sample is moderated monthly."""
    practitioner = _calendar("bexley", "practitioner")
    assert practitioner.due("self_assessment") == practitioner.after("1 months", T0)
    assert practitioner.due("monthly_audit") is None
    lead = _calendar("bexley", "qa_lead")
    assert lead.due("moderation_sample") == lead.after("1 months", T0)


def test_bx_qa_02_themes_monthly_and_the_quarterly_report() -> None:
    """BX-QA-02: themes reported monthly and in the quarterly QA report."""
    lead = _calendar("bexley", "qa_lead")
    assert lead.due("monthly_themes") == lead.after("1 months", T0)
    assert lead.due("quarterly_report") == lead.after("3 months", T0)


def test_bx_qa_03_practice_week_every_six_months() -> None:
    """BX-QA-03: Practice Week every six months."""
    lead = _calendar("bexley", "qa_lead")
    assert lead.due("practice_week") == lead.after("6 months", T0)
    lead.wait(days=100)
    lead.fire("practice_week_held", QA_LEAD)
    assert lead.due("practice_week") == lead.after("12 months", T0)


def test_bk_qa_01_monthly_moderation_sample_and_findings() -> None:
    """BK-QA-01: a sample of each month's audits is moderated; findings reported monthly."""
    lead = _calendar("buckinghamshire", "qa_lead")
    assert lead.due("moderation_sample") == lead.after("1 months", T0)
    assert lead.due("monthly_findings") == lead.after("1 months", T0)
    assert lead.due("practice_week") is None  # a Bexley duty, not imposed on BK


def test_bx_qa_02_the_quarterly_report_is_reviewed_in_week_5_of_the_cycle() -> None:
    """BX-QA-02: the quarterly report is reviewed in week 5 of the 10-week performance and
    accountability cycle; the next review falls in week 5 of the next cycle."""
    lead = _calendar("bexley", "qa_lead")
    assert lead.due("quarterly_report_review") is None  # no cycle yet
    lead.wait(days=3)
    cycle = lead.now
    lead.fire("cycle_started", QA_LEAD)
    week5 = lead.after("5 weeks", cycle)
    assert lead.due("quarterly_report_review") == week5
    lead.wait(days=30)
    lead.fire("qa_report_reviewed", QA_LEAD)
    assert lead.due("quarterly_report_review") == lead.after("10 weeks", week5)
    bk = _calendar("buckinghamshire", "qa_lead").spec.rolling
    assert "quarterly_report_review" not in [r.name for r in bk]  # a Bexley duty


def test_bx_qa_03_practice_week_includes_practice_observations() -> None:
    """BX-QA-03: Practice Week includes direct observations of practice, recorded in the week."""
    lead = _calendar("bexley", "qa_lead")
    assert lead.due("practice_week_observations") is None
    lead.wait(days=100)
    lead.fire("practice_week_held", QA_LEAD)
    assert lead.due("practice_week_observations") == lead.after("1 weeks")
    lead.tick(lead.after("1 weeks"))
    assert "practice_week_observations" in lead.missed()
    lead.fire("practice_week_held", QA_LEAD)
    lead.fire("practice_observations_recorded", QA_LEAD)
    assert lead.due("practice_week_observations") is None


@pytest.mark.parametrize("council", ["bexley", "buckinghamshire"])
def test_bx_qa_01_bk_qa_01_a_completed_audit_meets_its_auditors_monthly_duty(
    council: str,
) -> None:
    """BX-QA-01 (BX-AUD-13) / BK-QA-01: the QA calendar is fed by audit completions."""
    from audit_support import AUDITOR, Harness
    from qaflow.calendar import Duration
    from qaflow.errors import ValidationError
    from qaflow.machines import audit as A
    from qaflow.machines.qa_calendar import record_audit_completion

    h = Harness()
    h.engine.register(calendar_spec(shipped_qa_calendar(council)))
    h.engine.start(
        "qa_calendar",
        "QC-1",
        "calendar_started",
        QA_LEAD,
        {"team_id": "T1", "holder": "manager", "holder_id": AUDITOR.id},
    )
    h.engine.start(
        "qa_calendar",
        "QC-2",
        "calendar_started",
        QA_LEAD,
        {"team_id": "T1", "holder": "manager", "holder_id": "someone-else"},
    )
    first = next(d.due_at for d in h.engine.get("QC-1").deadlines if d.name == "monthly_audit")
    h.drive(council, "AU-1", A.ACTIONS_AGREED)
    with pytest.raises(ValidationError):
        record_audit_completion(h.engine, "QC-1", "AU-1")  # not yet completed
    h.fire("AU-1", "complete", AUDITOR)
    with pytest.raises(ValidationError):
        record_audit_completion(h.engine, "QC-2", "AU-1")  # not the auditor's calendar
    assert h.engine.get("QC-2").version == 1
    step = record_audit_completion(h.engine, "QC-1", "AU-1")
    assert step.event.payload == {"audit_ref": "AU-1"}
    monthly = [d for d in h.engine.get("QC-1").deadlines if d.name == "monthly_audit"]
    assert [d.due_at for d in monthly] == [Duration.parse("1 months").after(first)]
    again = record_audit_completion(h.engine, "QC-1", "AU-1")
    assert again.event.seq == step.event.seq  # fed twice, recorded once


def test_bx_mod_07_a_moderation_with_a_performance_issue_opens_a_personal_supervision_note() -> (
    None
):
    """BX-MOD-07: a moderation reviewed in supervision with a performance issue opens the
    personal supervision note task (as BX-AUD-10 does for an audit); without one, or for an
    audit (whose own review opens it), no task."""
    run = _practitioner("bexley", "experienced")

    def notes() -> list[tuple[str, str, str | None]]:
        return [
            (t.kind, t.owner_role, t.clause)
            for t in run.engine.store.tasks(run.wid)
            if t.kind == "personal_supervision_note"
        ]

    run.fire("audit_reviewed", SUPERVISOR, audit_ref="MOD-1", kind="moderation")
    run.fire("audit_reviewed", SUPERVISOR, audit_ref="AU-1", kind="audit", performance_issue=True)
    run.fire(
        "audit_reviewed", SUPERVISOR, audit_ref="MOD-2", kind="moderation", performance_issue=False
    )
    assert notes() == []
    run.fire(
        "audit_reviewed", SUPERVISOR, audit_ref="MOD-3", kind="moderation", performance_issue=True
    )
    assert notes() == [("personal_supervision_note", "team_manager", "BX-MOD-07")]
    # Buckinghamshire's seed has no such rule: none is imposed on it.
    assert shipped_supervision("buckinghamshire").tasks == ()
    # The policy docs say what the clause does.
    from qaflow.policydocs import clause_uses

    uses = clause_uses(supervision_spec(shipped_supervision("bexley")))["BX-MOD-07"]
    assert any("opens task `personal_supervision_note` for team_manager" in u for u in uses)
