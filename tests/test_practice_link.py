"""The demo's practice plays what the programme really did: each completed audit reaches its
auditor's QA calendar through ``qa_calendar.record_audit_completion`` (BX-QA-01), and the
programme records family feedback only through ``record_feedback`` (BX-AUD-07)."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from qaflow import MemoryStore
from qaflow._practice import run_practice
from qaflow.policies import bexley
from qaflow.programme import generate_council, run_programme


@pytest.fixture(scope="module")
def played() -> MemoryStore:
    store = MemoryStore()
    council = generate_council(3)
    result = run_programme(
        council, bexley.BEXLEY_AUDIT, months=2, start=date(2026, 1, 1), seed=3, store=store
    )
    run_practice(store, council, policy="bexley", start=result.start, end=result.end, seed=3)
    return store


def test_BX_QA_01_each_completed_audit_reaches_its_auditors_calendar(played: MemoryStore) -> None:
    calendars = {
        s.data["holder_id"]: s.workflow_id
        for s in played.snapshots("qa_calendar")
        if s.data.get("holder") == "manager"
    }
    assert calendars
    expected = {
        (calendars[str(s.data["auditor_id"])], s.workflow_id)
        for s in played.snapshots("audit")
        if "completed_at" in s.data and s.data.get("auditor_id") in calendars
    }
    fed = set()
    for wid in calendars.values():
        for event in played.events(wid):
            if event.trigger == "audit_completed":
                audit_id = str(event.payload["audit_ref"])
                assert event.idempotency_key == f"audit_completed:{audit_id}"
                fed.add((wid, audit_id))
    assert expected and fed == expected


def test_BX_AUD_07_the_programme_records_feedback_only_with_record_feedback(
    played: MemoryStore,
) -> None:
    """Every audit with feedback has a whole family set; family members, the child (with the
    parent/carer's agreement said either way) and the network each give their own."""
    rule = bexley.BEXLEY_AUDIT.feedback
    assert rule is not None
    form = bexley.BEXLEY_AUDIT.form
    seen: Counter[tuple[str, object]] = Counter()
    answered = 0
    for wid in played.workflow_ids("audit"):
        family = 0
        for event in played.events(wid):
            if event.trigger == "record_feedback":
                who = str(event.payload["respondent"])
                answers = event.payload.get("answers", {})
                assert isinstance(answers, dict)
                assert all(form.question(q).answered_by == who for q in answers)
                if who == "family":
                    assert set(answers) == set(rule.questions)
                    family += 1
                if who == "child":
                    assert isinstance(event.payload["agreed"], bool)
                    assert bool(answers) == event.payload["agreed"]
                seen[who, event.payload.get("agreed")] += 1
            elif event.trigger == "answer":
                answers = event.payload["answers"]
                assert isinstance(answers, dict)
                stages = [form.section(form.question(q).section).stage for q in answers]
                answered += stages.count("feedback")
        snapshot = played.load(wid)
        if "completed_at" in snapshot.data and not snapshot.data.get("feedback_reason"):
            assert family >= 1
    assert answered == 0
    assert {("family", None), ("child", True), ("child", False), ("network", None)} <= set(seen)
    assert seen["family", None] > sum(
        1 for s in played.snapshots("audit") if s.data.get("feedback")
    )
