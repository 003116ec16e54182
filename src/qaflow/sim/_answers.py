"""Answers to an audit form, made up around an audit's underlying quality.

The programme's auditors and practitioners answer every question their stage asks with a
value scattered around one number (the audit's quality on 0..10), and grade through the
form's own bands or judgement scale, so the grade they give is the one the form maps to.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from qaflow.procedure import (
    AUDITOR,
    WORKER,
    AuditForm,
    FeedbackRule,
    Grade,
    Judgement,
    Question,
)
from qaflow.sim._escalation import TEXT as _TEXT

__all__ = ["answer", "answers", "can_give", "centre", "feedback_sets", "grading_answer"]


def answer(question: Question, value: object) -> dict[str, Any]:
    """A complete answer: the main value and the placeholder text its text fields need."""
    answer: dict[str, Any] = {question.answer_key: value}
    answer.update({name: _TEXT for name in question.text_fields})
    return answer


def can_give(form: AuditForm, grade: Grade) -> bool:
    if form.grade_bands is not None:
        return any(form.grade_bands.grade_for(s) is grade for s in range(11))
    assert form.judgement_scale is not None
    return grade in form.judgement_scale.as_mapping().values()


def grading_answer(form: AuditForm, grade: Grade, rng: random.Random) -> dict[str, Any]:
    """An overall answer the form maps to ``grade`` (a random score in its band)."""
    question = form.question(form.grading_question)
    if form.grade_bands is not None:
        scores = [s for s in range(11) if form.grade_bands.grade_for(s) is grade]
        return answer(question, rng.choice(scores))
    assert form.judgement_scale is not None
    judgement = next(j for j, g in form.judgement_scale.as_mapping().items() if g is grade)
    return answer(question, judgement.value)


def centre(form: AuditForm, answer: Mapping[str, Any], grade: Grade) -> float:
    """The audit's underlying quality on 0..10, which its other answers scatter around."""
    score = answer.get("score")
    if isinstance(score, int) and form.grade_bands is not None:
        return float(score)
    return {
        Grade.OUTSTANDING: 8.5,
        Grade.GOOD: 6.5,
        Grade.REQUIRES_IMPROVEMENT: 4.0,
        Grade.INADEQUATE: 1.5,
    }[grade]


def _value(question: Question, centre: float, rng: random.Random) -> object:
    """A value for ``question`` around ``centre`` (scores, judgements and yes/no)."""
    drawn = rng.gauss(centre, 1.5)
    if question.kind == "scale_0_10":
        return max(0, min(10, round(drawn)))
    if question.kind == "judgement":
        if drawn >= 7.5:
            return Judgement.EXCEEDS_GOOD.value
        return Judgement.MEETS_GOOD.value if drawn >= 4.5 else Judgement.DOES_NOT_MEET_GOOD.value
    if question.kind == "yes_no":
        return rng.random() < 0.3
    return _TEXT


def answers(
    form: AuditForm,
    stage: str,
    role: str,
    centre: float,
    rng: random.Random,
    only: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Answers to the questions of ``stage`` that ``role`` records (not the grading one)."""
    if stage not in form.stages:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for question in form.questions_in_stage(stage):
        if question.id == form.grading_question or (only is not None and question.id not in only):
            continue
        if question.answered_by == "moderator":
            continue
        answers_as = WORKER if question.answered_by == "practitioner" else AUDITOR
        if answers_as != role:
            continue
        out[question.id] = answer(question, _value(question, centre, rng))
    return out


def feedback_sets(
    form: AuditForm,
    rule: FeedbackRule,
    centre: float,
    rng: random.Random,
    extra: random.Random,
) -> list[dict[str, Any]]:
    """The ``record_feedback`` payloads of one audit's feedback (BX-AUD-07): a whole set from
    each required respondent (drawn from ``rng``, as before there were others); and, drawn from
    ``extra`` so the programme's main stream is unchanged, sometimes a second family member,
    the child (with or without the parent/carer's agreement) and a network member."""
    by_who: dict[str, dict[str, dict[str, Any]]] = {}
    for qid, given in answers(form, "feedback", AUDITOR, centre, rng, only=rule.questions).items():
        by_who.setdefault(form.question(qid).answered_by, {})[qid] = given
    out: list[dict[str, Any]] = [
        {"respondent": who, "answers": by_who.get(who, {})} for who in rule.required_from
    ]
    if out and extra.random() < 0.25:  # another family member answers the same statements
        again = answers(form, "feedback", AUDITOR, centre, extra, only=list(out[0]["answers"]))
        out.append({"respondent": out[0]["respondent"], "answers": again})
    for who, share in (("child", 0.4), ("network", 0.3)):
        questions = [q.id for q in form.questions_in_stage("feedback") if q.answered_by == who]
        if not questions or who in rule.required_from or extra.random() >= share:
            continue
        given = answers(form, "feedback", AUDITOR, centre, extra, only=questions)
        if who in rule.consent_for:
            agreed = extra.random() < 0.7
            child: dict[str, Any] = {"respondent": who, "agreed": agreed}
            out.append({**child, "answers": given} if agreed else child)
        elif given:
            out.append({"respondent": who, "answers": given})
    return out
