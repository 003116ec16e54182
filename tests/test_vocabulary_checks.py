"""Issue 10: the audit vocabulary's arguments are checked when a spec is built (a policy's
definition the entry could not run with is a PolicyError then), never as an untyped error
when a command runs."""

from __future__ import annotations

from typing import Any

import pytest

from qaflow.errors import PolicyError
from qaflow.machines.audit import audit_spec
from qaflow.machines.moderation import moderation_spec
from qaflow.policies import shipped_audit_procedure
from qaflow.spec import Derived, Guard, Update

GOOD_NOTICE = [["team_manager"], "told", "X-1"]
GOOD_TASK = ["note", "team_manager", "24 h", "X-1"]


@pytest.mark.parametrize(
    ("build", "entry"),
    [
        (
            lambda: Guard("w", use="audit.within_moderation_window", args={"within": "soon"}),
            "within_moderation_window",
        ),
        (lambda: Guard("w", use="audit.moderation_window_over", args={}), "moderation_window_over"),
        (
            lambda: Guard("w", use="moderation.audit_in_lookback", args={"within": 6}),
            "audit_in_lookback",
        ),
        (lambda: Update(use="moderation.review", args={"form": "a form"}), "moderation.review"),
        (
            lambda: _effects("audit.grade_effects", {"rules": [[["INADEQUATE"], ["x"], []]]}),
            "grade_effects",
        ),
        (
            lambda: _effects("moderation.finalise", {"follow_up_tasks": [["note", "tm"]]}),
            "moderation.finalise",
        ),
    ],
    ids=[
        "window-text",
        "window-missing",
        "lookback-number",
        "form",
        "notice",
        "task",
    ],
)
def test_bad_arguments_are_refused_when_the_spec_is_built(build: Any, entry: str) -> None:
    with pytest.raises(PolicyError) as caught:
        build()
    assert entry in str(caught.value) and "can run with" in str(caught.value)


def _effects(use: str, args: dict[str, Any]) -> Derived:
    return Derived(use=use, args=args)


def test_good_arguments_and_every_shipped_spec_build() -> None:
    Guard("w", use="audit.within_moderation_window", args={"within": "6 months"})
    _effects("audit.grade_effects", {"rules": [[["INADEQUATE"], GOOD_NOTICE, [GOOD_TASK]]]})
    for council in ("bexley", "buckinghamshire"):
        audit, moderation = shipped_audit_procedure(council)
        assert audit_spec(audit).serialisable and moderation_spec(moderation).serialisable
