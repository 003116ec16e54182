"""Hypothesis strategies for the payloads of the audit's later commands, for any policy.

``record_feedback`` (BX-AUD-07), ``review_sufficiency`` (BX-AUD-12), ``review_in_supervision``
(BX-AUD-10) and ``arrange_meeting`` (BK-AUD-07) each take a payload the machine checks in
detail; these strategies draw valid payloads most of the time and each way of getting one
wrong the rest (a partial family set, a child's answers without the parent's agreement, a
question of another respondent, a malformed answer, a missing or over-long note, a timeframe
that is not a duration, a naive meeting time), so the conformance suite's rules reach both
the deep paths behind them and every refusal. Read by :mod:`qaflow._audit_conformance`.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from qaflow.machines._audit_feedback import respondents
from qaflow.machines._audit_states import TEXT_LIMIT
from qaflow.procedure import AuditPolicy, Question

__all__ = [
    "feedback_payloads",
    "meeting_payloads",
    "sufficiency_payloads",
    "supervision_payloads",
    "whole_feedback",
]

_SCALE_DEFAULTS: dict[str, object] = {
    "scale_0_10": 6,
    "judgement": "meets_good",
    "grade": "good",
    "yes_no": False,
    "text": "some text",
}
#: Values no answer kind accepts for its main value (a scale is an int 0..10, a judgement
#: or grade a known value, yes/no a bool, text a non-empty string).
_BAD_VALUES: tuple[object, ...] = (None, 11, -1, 2.5, "", "not_a_value")


def _answer(question: Question, main: object | None = None) -> dict[str, Any]:
    value = _SCALE_DEFAULTS[question.kind] if main is None else main
    answer: dict[str, Any] = {question.answer_key: value}
    answer.update({name: f"{name} text" for name in question.text_fields})
    return answer


def _theirs(policy: AuditPolicy, who: str) -> list[Question]:
    """The feedback-stage questions ``who`` answers, in form order."""
    return [q for q in policy.form.questions_in_stage("feedback") if q.answered_by == who]


def _required(policy: AuditPolicy, who: str) -> list[Question]:
    """The questions of ``who`` a whole set answers: those of the feedback rule, else all."""
    rule = policy.feedback
    theirs = _theirs(policy, who)
    named = [q for q in theirs if rule is not None and q.id in rule.questions]
    return named or theirs


def whole_feedback(policy: AuditPolicy, who: str) -> dict[str, Any]:
    """A valid ``record_feedback`` payload: a whole answer set from ``who`` (with the
    parent's agreement where the policy needs it)."""
    payload: dict[str, Any] = {
        "respondent": who,
        "answers": {q.id: _answer(q) for q in _required(policy, who)},
    }
    if policy.feedback is not None and who in policy.feedback.consent_for:
        payload["agreed"] = True
    return payload


@st.composite
def _feedback(draw: st.DrawFn, policy: AuditPolicy, who_all: tuple[str, ...]) -> dict[str, Any]:
    who = draw(st.sampled_from(who_all))
    payload = whole_feedback(policy, who)
    answers: dict[str, Any] = payload["answers"]
    shape = draw(
        st.sampled_from(["whole", "whole", "subset", "empty", "foreign", "malformed", "extra"])
    )
    if shape == "subset" and answers:
        keep = draw(st.sets(st.sampled_from(sorted(answers)), max_size=len(answers)))
        payload["answers"] = {q: a for q, a in answers.items() if q in keep}
    elif shape == "empty":
        payload["answers"] = {}
    elif shape == "foreign":
        others = [
            q
            for q in policy.form.questions
            if q.answered_by != who or policy.form.section(q.section).stage != "feedback"
        ]
        if others:
            other = draw(st.sampled_from(others))
            answers[other.id] = _answer(other)
    elif shape == "malformed" and answers:
        qid = draw(st.sampled_from(sorted(answers)))
        question = policy.form.question(qid)
        answers[qid] = {question.answer_key: draw(st.sampled_from(_BAD_VALUES))}
    elif shape == "extra" and answers:
        qid = draw(st.sampled_from(sorted(answers)))
        answers[qid] = {**answers[qid], "unexpected": "x"}
    if policy.feedback is not None and who in policy.feedback.consent_for:
        agreed = draw(st.sampled_from([True, True, False, None]))
        if agreed is None:
            payload.pop("agreed", None)
        else:
            payload["agreed"] = agreed
    elif draw(st.integers(0, 7)) == 0:
        payload["agreed"] = draw(st.booleans())  # only a consent respondent may say
    if draw(st.integers(0, 9)) == 0:
        payload["respondent"] = "neighbour"  # not a respondent the form knows
    return payload


def feedback_payloads(policy: AuditPolicy) -> st.SearchStrategy[dict[str, Any]]:
    """``record_feedback`` payloads for ``policy`` (nothing to draw without feedback)."""
    who_all = respondents(policy.form) if policy.feedback is not None else ()
    if not who_all:
        return st.just({"respondent": "family", "answers": {}})
    return _feedback(policy, who_all)


_NOTES = st.one_of(
    st.sampled_from(["Seen with the team manager.", "x"]),
    st.just("n" * (TEXT_LIMIT + 1)),  # over the limit
    st.just(""),
)


def sufficiency_payloads() -> st.SearchStrategy[dict[str, Any]]:
    """``review_sufficiency`` payloads: the verdict and a note, sometimes missing one."""
    full = st.fixed_dictionaries({"sufficient": st.booleans(), "note": _NOTES})
    broken = st.sampled_from([{}, {"sufficient": True}, {"note": "n"}, {"sufficient": "yes"}])
    return st.one_of(full, full, full, broken)


_TIMEFRAMES = st.sampled_from(["5 WD", "2 weeks", "1 months", "10 days", "soon", "5", "two weeks"])


def supervision_payloads() -> st.SearchStrategy[dict[str, Any]]:
    """``review_in_supervision`` payloads: note, timeframe (sometimes not a duration) and,
    sometimes, whether the review found a performance issue."""
    full = st.fixed_dictionaries(
        {"note": _NOTES, "timeframe": _TIMEFRAMES},
        optional={"performance_issue": st.one_of(st.booleans(), st.just("yes"))},
    )
    return st.one_of(full, full, full, st.sampled_from([{}, {"note": "n"}, {"timeframe": "5 WD"}]))


def meeting_payloads() -> st.SearchStrategy[dict[str, Any]]:
    """``arrange_meeting`` payloads: an aware time most often, else a naive or bad one."""
    when = st.sampled_from(
        [
            "2025-03-10T10:00:00+00:00",
            "2025-04-01T14:30:00+01:00",
            "2025-03-10T10:00:00",  # naive: refused
            "next week",
        ]
    )
    return st.one_of(st.fixed_dictionaries({"meeting_at": when}), st.just({}))
