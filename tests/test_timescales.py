"""Case timescales (BK-TS-01..07, BX-TS-01): each clause's value, read from the shipped file.

Every expected due time below is written from the seed (``"5 WD"``, ``"4 weeks"``), never read
from the policy file, so changing a value in ``policies/*/timescales.toml`` fails a test here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from qaflow import PermissionDenied, ValidationError
from qaflow.machines.timescales import case_spec, shipped_case_timescales
from timescale_support import INDEPENDENT, MANAGER, WORKER, Run

T0 = datetime(2025, 3, 3, 9, tzinfo=UTC)  # a Monday


def _case(council: str = "buckinghamshire", status: str | None = None) -> Run:
    run = Run(case_spec(shipped_case_timescales(council)), T0)
    payload = {"team_id": "T1", "social_worker_id": WORKER.id}
    if status is not None:
        payload["status"] = status
    run.start("referral_received", WORKER, payload)
    return run


def test_bk_ts_01_contact_decision_within_72_hours() -> None:
    """BK-TS-01: the decision on the response within 72 h of the referral."""
    run = _case()
    assert run.due("contact_decision") == run.after("72 h", T0)
    run.wait(hours=10)
    run.fire("contact_decision", decision="no_further_action")
    assert run.due("contact_decision") is None
    assert run.missed() == []


def test_bk_ts_01_contact_decision_missed_is_a_breach() -> None:
    """BK-TS-01: no decision in 72 h: tick records the miss."""
    run = _case()
    run.tick(run.after("72 h", T0))
    assert run.missed() == ["contact_decision"]
    assert run.due("contact_decision") is None  # a one-off: no next instance


def test_bk_ts_01_s47_visit_within_24_hours_and_s17_visit_within_5_wd_of_referral() -> None:
    """BK-TS-01: s47 triggered: visited within 24 h; s17: within 5 WD of the referral."""
    run = _case()
    run.wait(hours=20)
    run.fire("contact_decision", decision="s47")
    assert run.due("s47_visit") == run.after("24 h")
    assert run.due("assessment_visit") is None
    other = _case()
    other.wait(hours=30)
    other.fire("contact_decision", decision="s17")
    assert other.due("assessment_visit") == other.after("5 WD", T0)  # from the referral
    assert other.due("s47_visit") is None
    other.fire("visit")
    assert other.due("assessment_visit") is None


def test_bk_ts_02_strategy_discussion_within_24_hours_chaired_by_a_manager() -> None:
    """BK-TS-02: strategy discussion within 24 h of the concern, chaired by a manager."""
    run = _case()
    run.fire("concern_identified")
    assert run.due("strategy_discussion") == run.after("24 h")
    run.wait(hours=2)
    run.fire("strategy_discussion", MANAGER)
    assert run.due("strategy_discussion") is None
    with pytest.raises(PermissionDenied):  # the machine: only a manager holds one
        run.fire("strategy_discussion", WORKER)


def test_bk_ts_02_s47_within_15_wd_icpc_requested_5_wd_held_15_wd() -> None:
    """BK-TS-02: s47 completed within 15 WD; ICPC requested within 5 WD and held within
    15 WD of the strategy discussion (chained deadlines)."""
    run = _case()
    run.wait(hours=1)
    run.fire("strategy_discussion", MANAGER)
    at = run.now
    assert run.due("s47_completed") == run.after("15 WD", at)
    assert run.due("icpc_requested") == run.after("5 WD", at)
    assert run.due("icpc_held") == run.after("15 WD", at)
    run.wait(days=2)
    run.fire("icpc_requested")
    run.fire("s47_completed")
    assert run.due("icpc_requested") is None and run.due("s47_completed") is None
    assert run.due("icpc_held") == run.after("15 WD", at)
    run.tick(run.after("15 WD", at))
    assert run.missed() == ["contact_decision", "icpc_held"]


def test_bx_ts_01_icpc_held_within_15_wd_of_strategy_discussion() -> None:
    """BX-TS-01: the ICPC no later than 15 WD after the strategy discussion (and the
    conference team told by the next working day)."""
    run = _case("bexley")
    assert run.due("contact_decision") is None  # BK's timescales are not imposed on BX
    run.wait(hours=3)
    run.fire("strategy_discussion", MANAGER)
    at = run.now
    assert run.due("icpc_held") == run.after("15 WD", at)
    assert run.due("icpc_requested") == run.after("1 WD", at)
    run.wait(days=3)
    run.fire("icpc_held", outcome="cp_plan")
    assert run.due("icpc_held") is None
    assert run.missed() == []  # no tick yet: the 1 WD instance is still open, and overdue
    assert run.due("icpc_requested") == run.after("1 WD", at)
    run.tick(run.now)
    assert run.missed() == ["icpc_requested"]


def test_bk_ts_03_cin_visits_every_4_weeks_and_unannounced_every_3_months() -> None:
    """BK-TS-03: CIN: a visit at least every 4 weeks; unannounced at least every 3 months."""
    run = _case()
    run.wait(days=1)
    run.fire("status_changed", status="cin")
    assert run.due("visit") == run.after("4 weeks")
    assert run.due("unannounced_visit") == run.after("3 months")
    run.wait(days=20)
    run.fire("visit")
    assert run.due("visit") == run.after("4 weeks")  # rolling: from this visit
    unannounced = run.due("unannounced_visit")
    run.wait(days=3)
    run.fire("visit", unannounced=True)
    assert run.due("unannounced_visit") == run.after("3 months")
    assert unannounced is not None and run.due("unannounced_visit") != unannounced


def test_bk_ts_03_cp_plan_visit_within_5_wd_of_icpc_then_every_10_wd() -> None:
    """BK-TS-03: CP plan: within 5 WD of the ICPC, then at least every 10 WD; unannounced at
    least every 4 weeks. The change from CIN takes effect from the ICPC (I15)."""
    run = _case(status="cin")
    assert run.due("visit") == run.after("4 weeks", T0)
    run.wait(days=2)
    run.fire("icpc_held", outcome="cp_plan")
    assert run.due("visit") == run.after("5 WD")
    assert run.due("unannounced_visit") == run.after("4 weeks")
    run.wait(days=3)
    run.fire("visit")
    assert run.due("visit") == run.after("10 WD")


def test_bk_ts_03_looked_after_within_1_week_then_6_weeks_or_3_months_when_permanent() -> None:
    """BK-TS-03: looked after: on the day of placement, within 1 week, then every 6 weeks; at
    most every 3 months once agreed as permanent."""
    run = _case()
    run.fire("placement_started")
    assert run.due("visit") == run.after("1 weeks")
    end_of_day = datetime(2025, 3, 3, 23, 59, 59, 999999, tzinfo=UTC)  # Monday T0, in GMT
    assert run.due("placement_day_visit") == end_of_day  # on the day of placement
    run.wait(days=5)
    run.fire("visit")
    assert run.due("visit") == run.after("6 weeks")
    run.wait(days=30)
    run.fire("placement_started")  # a new placement restarts the first-week visit
    assert run.due("visit") == run.after("1 weeks")
    run.wait(days=2)
    run.fire("permanence_agreed", MANAGER)
    assert run.due("visit") == run.after("3 months")


@pytest.mark.parametrize(
    ("status", "first", "every"),
    [
        ("adoptive_placement", "1 weeks", "1 weeks"),
        ("private_fostering", "5 WD", "6 weeks"),
        ("interim_care_order", "1 weeks", "1 weeks"),
        ("supervision_order", "1 weeks", "10 d"),
        ("remanded", "72 h", None),
    ],
)
def test_bk_ts_04_visits_for_other_statuses(status: str, first: str, every: str | None) -> None:
    """BK-TS-04: adoptive placement weekly; private fostering within 5 WD then 6-weekly;
    interim care order weekly; supervision order within a week then every 10 days; remanded
    within 72 h."""
    run = _case()
    run.wait(hours=5)
    run.fire("status_changed", status=status)
    assert run.due("visit") == run.after(first)
    run.wait(days=1)
    run.fire("visit")
    assert run.due("visit") == (None if every is None else run.after(every))


def test_bk_ts_04_private_fostering_12_weeks_after_the_first_year() -> None:
    """BK-TS-04: private fostering: at most every 6 weeks in the first 12 months, then 12."""
    run = _case()
    run.fire("status_changed", status="private_fostering")
    notified = run.now
    run.clock.set(run.after("12 months", notified))
    run.tick(run.now)
    run.wait(days=1)
    run.fire("visit")
    assert run.due("visit") == run.after("12 weeks")


def test_bk_ts_05_plan_reviews_cin_8_weeks_cp_4_weeks_pathway_3_then_6_months() -> None:
    """BK-TS-05: CIN reviews at most every 8 weeks, CP every 4 weeks; pathway plan within
    3 months then every 6 months."""
    run = _case(status="cin")
    assert run.due("plan_review") == run.after("8 weeks", T0)
    run.wait(days=1)
    run.fire("icpc_held", outcome="cp_plan")
    assert run.due("plan_review") == run.after("4 weeks")
    run.wait(days=1)
    run.fire("status_changed", status="care_leaver")
    assert run.due("plan_review") == run.after("3 months")
    run.wait(days=10)
    run.fire("plan_review")
    assert run.due("plan_review") == run.after("6 months")


def test_bk_ts_06_significant_events_1_wd_and_changed_plans_48_hours() -> None:
    """BK-TS-06: significant events recorded within 1 WD; a plan changed at review updated on
    the record within 48 h."""
    run = _case(status="cin")
    run.fire("significant_event")
    assert run.due("significant_event_recorded") == run.after("1 WD")
    run.fire("plan_review")
    assert run.due("plan_updated") is None
    run.wait(hours=1)
    run.fire("plan_review", plan_changed=True)
    assert run.due("plan_updated") == run.after("48 h")
    run.fire("plan_updated")
    run.fire("significant_event_recorded")
    assert run.due("plan_updated") is None and run.due("significant_event_recorded") is None


def test_bk_ts_07_missing_child_visit_24_hours_rhi_72_hours_referral_24_hours() -> None:
    """BK-TS-07: visited within 24 h of return; return home interview (independent) within
    72 h; referral to the RHI service within 24 h where it applies."""
    run = _case()
    run.fire("missing_started")
    run.wait(hours=6)
    run.fire("child_found", rhi_applies=True)
    assert run.due("return_visit") == run.after("24 h")
    assert run.due("return_interview") == run.after("72 h")
    assert run.due("rhi_referral") == run.after("24 h")
    with pytest.raises(PermissionDenied):
        run.fire("return_interview", WORKER)  # by someone independent
    run.fire("return_interview", INDEPENDENT)
    assert run.due("return_interview") is None


def test_a_strategy_discussion_not_chaired_by_a_manager_does_not_meet_bk_ts_02() -> None:
    """BK-TS-02 ("chaired by a manager") is the file's ``met_when``: a worker-chaired one
    would not meet it; the machine lets only a manager record one at all."""
    rule = next(
        r
        for r in shipped_case_timescales("buckinghamshire").rules
        if r.name == "strategy_discussion"
    )
    assert rule.is_met_by("strategy_discussion", {"actor": {"id": "M", "role": "team_manager"}})
    assert not rule.is_met_by(
        "strategy_discussion", {"actor": {"id": "W", "role": "social_worker"}}
    )


def test_closing_the_case_closes_every_timescale_and_bad_input_writes_nothing() -> None:
    run = _case(status="cp_plan")
    version = run.engine.get(run.wid).version
    with pytest.raises(ValidationError):
        run.fire("status_changed", status="nonsense")
    with pytest.raises(ValidationError):
        run.fire("icpc_held", outcome="nfa")
    assert run.engine.get(run.wid).version == version
    run.fire("case_closed", MANAGER)
    assert run.engine.get(run.wid).deadlines == ()


def test_bk_ts_04_a_child_in_more_than_one_setting_is_visited_in_each_every_12_weeks() -> None:
    """BK-TS-04: residential school and foster home: each setting at least every 12 weeks."""
    run = _case(status="cin")
    assert run.due("other_setting_visit") is None
    run.wait(days=3)
    run.fire("setting_added")
    assert run.due("other_setting_visit") == run.after("12 weeks")
    main_due = run.due("visit")
    run.wait(days=7)
    run.fire("visit", setting="other")
    assert run.due("other_setting_visit") == run.after("12 weeks")
    assert run.due("visit") == main_due  # a visit to the other setting is not the main one
    run.fire("visit", setting="main")
    assert run.due("visit") == run.after("4 weeks")
    assert run.due("other_setting_visit") == run.after("12 weeks")
    run.fire("setting_ended")
    run.fire("visit", setting="other")
    assert run.due("other_setting_visit") is None


def test_bk_ts_05_the_first_cin_review_is_chaired_by_a_manager() -> None:
    """BK-TS-05: the first CIN review (within the 8-week interval) chaired by a manager."""
    run = _case()
    run.fire("status_changed", status="cin")
    assert run.due("first_cin_review_chaired") == run.after("8 weeks")
    run.wait(days=14)
    run.fire("plan_review")  # not chaired by a manager: the rule stays open
    assert run.due("first_cin_review_chaired") is not None
    run.fire("plan_review", chaired_by_manager=True)
    assert run.due("first_cin_review_chaired") is None
    assert run.engine.get(run.wid).data["last_review_chaired"] is True
    late = _case()
    late.fire("status_changed", status="cin")
    late.tick(late.after("8 weeks"))
    assert "first_cin_review_chaired" in late.missed()


def test_bk_ts_05_a_cin_case_closes_only_after_a_last_review_chaired_by_a_manager() -> None:
    """BK-TS-05: "The first and last Child in Need Review will be chaired by a manager to
    ensure clear management oversight on case closures": closing a CIN case is refused (the
    clause named, nothing written) unless its last plan review was chaired by a manager."""
    from qaflow.errors import GuardFailed

    run = _case()
    run.fire("status_changed", status="cin")

    def refused() -> None:
        version = run.engine.get(run.wid).version
        with pytest.raises(GuardFailed) as caught:
            run.fire("case_closed", MANAGER)
        assert caught.value.clause == "BK-TS-05"
        assert run.engine.get(run.wid).version == version

    refused()  # no review yet
    run.wait(days=14)
    run.fire("plan_review", chaired_by_manager=True)
    run.wait(days=40)
    run.fire("plan_review")  # the later review was not chaired: it is now the last one
    assert run.engine.get(run.wid).data["last_review_chaired"] is False
    refused()
    run.fire("plan_review", chaired_by_manager=False)
    refused()
    run.fire("plan_review", chaired_by_manager=True)
    run.fire("case_closed", MANAGER)
    assert run.engine.get(run.wid).state == "closed"
    # Only a CIN case: a CP case and Bexley's (which has no such rule) close without it.
    cp = _case(status="cp_plan")
    cp.fire("case_closed", MANAGER)
    bexley = _case("bexley", status="cin")
    bexley.fire("case_closed", MANAGER)
    assert shipped_case_timescales("bexley").requires == ()


def test_bk_ts_05_the_first_core_group_after_the_icpc_is_chaired_by_a_manager() -> None:
    """BK-TS-05: CP plans reviewed at most every 4 weeks, at core groups; the first core group
    after the ICPC chaired by a manager."""
    run = _case()
    run.fire("icpc_held", outcome="cp_plan")
    assert run.due("first_core_group_chaired") == run.after("4 weeks")
    assert run.due("plan_review") == run.after("4 weeks")
    run.wait(days=10)
    run.fire("core_group", chaired_by_manager=True)
    assert run.due("first_core_group_chaired") is None
    assert run.due("plan_review") == run.after("4 weeks")  # the core group reviewed the plan


def test_bk_ts_05_requires_and_tasks_in_a_file_are_checked_and_every_problem_named() -> None:
    """BK-TS-05's ``[[requires]]`` (and a ``[[tasks]]`` entry) are read like the rest of the
    file: an unknown event, a bad condition and an unknown role are each reported by key
    path in one PolicyError."""
    from importlib import resources

    from qaflow.errors import PolicyError
    from qaflow.machines._timescales import read_timescales, shipped_policy
    from qaflow.machines.timescales import EVENTS

    base = resources.files("qaflow.policies") / "buckinghamshire"
    text = (base / "timescales.toml").read_text(encoding="utf-8")
    bad = text + (
        '\n[[requires]]\nevent = "case_opened"\nclause = "BK-TS-05"\ncondition = "x"\n'
        'needs = "data.status =="\n'
        '\n[[tasks]]\nevent = "plan_review"\nclause = "BK-TS-05"\nkind = "note"\n'
        'owner_role = "nobody"\n'
    )
    with pytest.raises(PolicyError) as caught:
        read_timescales(
            bad,
            source="timescales.toml",
            policy=shipped_policy("buckinghamshire"),
            events=EVENTS,
            base=base,
        )
    message = str(caught.value)
    assert "requires[1].event" in message and "case_opened" in message
    assert "requires[1].needs" in message
    assert "tasks[0].owner_role" in message and "nobody" in message
