"""The audit conformance suite reaches the later commands (BX-AUD-07 ``record_feedback``,
BX-AUD-12 ``review_sufficiency``, BX-AUD-10 ``review_in_supervision``, BK-AUD-07
``arrange_meeting``): on every policy that has them, a short run (the default profile's
budget) both carries each one out and has each one refused, so the suite's checks on their
steps are exercised, not just declared.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import run_state_machine_as_test

from audit_support import OFSTED_FILE
from qaflow.machines import audit as A
from qaflow.machines._audit_feedback import respondents
from qaflow.policies import SHIPPED_AUDIT_FILES
from qaflow.procedure import AuditProcedure, load_audit_procedure
from qaflow.records import Actor, Step
from qaflow.testing import audit_state_machine, feedback_payloads, whole_feedback

SHIPPED = Path(A.__file__).parent.parent / "policies"
LATER = ("record_feedback", "review_sufficiency", "review_in_supervision", "arrange_meeting")
FILES = {name: SHIPPED / path for name, path in SHIPPED_AUDIT_FILES.items()}
FILES["ofsted_example"] = OFSTED_FILE


def _tally(procedure: AuditProcedure) -> Counter[tuple[str, bool]]:
    """(trigger, accepted) counts of the later commands over a short derandomized run."""
    tally: Counter[tuple[str, bool]] = Counter()

    class Counting(audit_state_machine(procedure)):  # type: ignore[misc,valid-type]
        seen: ClassVar[Counter[tuple[str, bool]]] = tally

        def _fire_on(
            self, wid: str, trigger: str, actor: Actor, payload: dict[str, Any]
        ) -> Step | None:
            step: Step | None = super()._fire_on(wid, trigger, actor, payload)
            if trigger in LATER:
                self.seen[(trigger, step is not None)] += 1
            return step

    run_state_machine_as_test(  # type: ignore[no-untyped-call,unused-ignore]
        Counting,
        settings=settings(
            max_examples=10,
            stateful_step_count=30,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    return tally


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_later_command_is_both_carried_out_and_refused(name: str) -> None:
    procedure = load_audit_procedure(FILES[name])
    has = [t for t in LATER if t in A.audit_spec(procedure.audit).triggers]
    tally = _tally(procedure)
    for trigger in has:
        assert tally[(trigger, True)] > 0, f"{name}: {trigger} never carried out"
        assert tally[(trigger, False)] > 0, f"{name}: {trigger} never refused"
    assert not {t for t, _ in tally} - set(has)  # absent commands are not driven
    if name == "bexley":  # the Signs of Safety council has all but arrange_meeting
        assert set(has) == set(LATER) - {"arrange_meeting"}
    if name == "buckinghamshire":
        assert "arrange_meeting" in has


def test_the_feedback_strategy_draws_whole_sets_and_each_way_of_getting_one_wrong() -> None:
    """BX-AUD-07: whole sets from every respondent, and the refusals' kinds of payload."""
    policy = load_audit_procedure(FILES["bexley"]).audit
    rule = policy.feedback
    assert rule is not None
    who_all = respondents(policy.form)
    assert set(rule.required_from) <= set(who_all)
    for who in who_all:
        whole = whole_feedback(policy, who)
        assert whole["respondent"] == who and whole["answers"]
        assert ("agreed" in whole) == (who in rule.consent_for)
    drawn: list[dict[str, Any]] = []

    @settings(max_examples=200, derandomize=True, database=None)
    def collect(payload: dict[str, Any]) -> None:
        drawn.append(payload)

    given(feedback_payloads(policy))(collect)()
    whole_sets = [p for p in drawn if p in [whole_feedback(policy, w) for w in who_all]]
    assert whole_sets
    assert any(p.get("answers") == {} for p in drawn)
    assert any(p.get("agreed") is False for p in drawn if p["respondent"] in rule.consent_for)
    assert any("agreed" in p for p in drawn if p["respondent"] not in rule.consent_for)
    assert any(p["respondent"] not in who_all for p in drawn)
