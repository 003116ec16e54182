"""Feedback on an audit (BX-AUD-07): answer sets from the family, the child and the network.

The seed: feedback *must* be sought from the family ("the same questions can be repeated for
different family members"), and where possible from the child, "subject to agreement from
the parent/carer or young adult", and from a member of the family or professional network;
if it could not be obtained, the reason is recorded. So:

* ``record_feedback`` records one respondent's answer set (``respondent`` = family, child or
  network); every set is kept, in order, in ``data.feedback``, so several family members and
  several network members each keep their own answers;
* a respondent the policy names in ``consent_for`` (the child) must say whether the
  parent/carer or young adult agreed (``agreed``, recorded either way); without agreement no
  answer is taken;
* a set from a respondent in ``required_from`` (the family) is the whole survey: every one of
  the rule's ``questions`` that respondent answers (the nine statements) is scored;
* completion needs a complete set from each respondent in ``required_from``, or the recorded
  reason (``feedback_not_obtained``).

Feedback is recorded one way only: with a feedback rule, every question of the form's
feedback stage is refused in a plain ``answer`` (the refusal names ``record_feedback``),
since that path keeps one set for the whole audit, cannot say who answered and cannot
record the parent/carer's agreement. A policy without a feedback rule has no
``record_feedback`` and answers its feedback-stage questions, if any, as any others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qaflow import vocabulary
from qaflow.errors import ValidationError
from qaflow.machines._audit_data import copy_json, fail, form_data, form_from
from qaflow.machines._audit_states import TEXT_LIMIT
from qaflow.machines._audit_vocabulary import record
from qaflow.procedure import AUDITOR, AuditForm, AuditPolicy, FeedbackRule
from qaflow.procedure._audit import RESPONDENTS
from qaflow.spec import Context, Field, Guard, TransitionSpec, Update

__all__ = [
    "feedback_complete",
    "feedback_guard",
    "feedback_transitions",
    "recorded_questions",
    "respondents",
]


def respondents(form: AuditForm) -> tuple[str, ...]:
    """Who answers the form's feedback questions (family, child, network), in that order."""
    found = {q.answered_by for q in form.questions_in_stage("feedback")} if _has(form) else set()
    return tuple(r for r in RESPONDENTS if r in found)


def _has(form: AuditForm) -> bool:
    return "feedback" in form.stages


def recorded_questions(policy: AuditPolicy) -> list[str]:
    """The question ids taken only through ``record_feedback`` (refused in a plain
    ``answer``): every feedback-stage question of a policy with a feedback rule."""
    if policy.feedback is None or not _has(policy.form):
        return []
    return [q.id for q in policy.form.questions_in_stage("feedback")]


def _rule_args(policy: AuditPolicy, rule: FeedbackRule) -> dict[str, Any]:
    return {
        "form": form_data(policy.form),
        "questions": list(rule.questions),
        "required_from": list(rule.required_from),
        "consent_for": list(rule.consent_for),
        "clause": rule.clause,
    }


def _valid(form: AuditForm, qid: str, answer: object) -> bool:
    if not isinstance(answer, dict):
        return False
    try:
        form.question(qid).validate_answer(answer)
    except ValidationError:
        return False
    return True


def _missing(
    form: AuditForm, answers: Mapping[str, Any], who: str, questions: Sequence[str]
) -> list[str]:
    """The rule's questions ``who`` answers that ``answers`` leaves without a valid answer."""
    return [
        q
        for q in questions
        if form.question(q).answered_by == who and not _valid(form, q, answers.get(q))
    ]


def _complete_set(
    form: AuditForm, answers: Mapping[str, Any], who: str, questions: Sequence[str]
) -> bool:
    theirs = [q for q in questions if form.question(q).answered_by == who]
    if not theirs:
        return bool(answers)
    return not _missing(form, answers, who, questions)


def feedback_complete(
    form: AuditForm,
    questions: Sequence[str],
    required_from: Sequence[str],
    data: Mapping[str, Any],
) -> bool:
    """Whether ``data`` holds a complete answer set, recorded with ``record_feedback``,
    from each respondent in ``required_from``."""
    sets = data.get("feedback")
    sets = sets if isinstance(sets, list) else []
    return all(
        any(
            isinstance(s, dict)
            and s.get("respondent") == who
            and _complete_set(form, s.get("answers") or {}, who, questions)
            for s in sets
        )
        for who in required_from
    )


def feedback_guard(policy: AuditPolicy, rule: FeedbackRule) -> Guard:
    """Completion: a complete set from each required respondent, or the recorded reason."""
    return Guard(
        f"feedback from the {' and the '.join(rule.required_from)} (every statement "
        "scored), or the reason it could not be obtained",
        rule.clause,
        use="audit.feedback_or_reason",
        args=_rule_args(policy, rule),
    )


def feedback_transitions(policy: AuditPolicy, states: tuple[str, ...]) -> list[TransitionSpec]:
    """``record_feedback`` (one respondent's answer set) and ``feedback_not_obtained``."""
    rule = policy.feedback
    if rule is None:
        return []
    auditor = frozenset({AUDITOR})
    who = respondents(policy.form)
    out = [
        TransitionSpec(
            "feedback_not_obtained",
            states,
            None,
            auditor,
            fields=(Field("reason", "str", max_length=TEXT_LIMIT),),
            actor_key="auditor_id",
            effects=(record(payload={"feedback_reason": "reason"}),),
            clause=rule.clause,
            description="Records why feedback could not be obtained.",
        )
    ]
    if who:
        out.append(
            TransitionSpec(
                "record_feedback",
                states,
                None,
                auditor,
                fields=(
                    Field("respondent", "choice", choices=who),
                    Field("answers", "dict", required=False),
                    Field("agreed", "bool", required=False),
                ),
                actor_key="auditor_id",
                guards=(
                    Guard(
                        "a valid answer set from this respondent",
                        rule.clause,
                        use="audit.valid_feedback",
                        args=_rule_args(policy, rule),
                    ),
                ),
                effects=(Update(use="audit.record_feedback"),),
                clause=rule.clause,
                description="Records one respondent's feedback (several per audit are kept).",
            )
        )
    return out


# --- vocabulary -----------------------------------------------------------------------------


@vocabulary.guard("audit.valid_feedback")
def _valid_feedback(ctx: Context, args: Mapping[str, Any]) -> bool:
    """Input check and BX-AUD-07: the answers are the respondent's own questions and well
    formed; a respondent needing agreement says whether it was given (and answers only with
    it); a required respondent's set is the whole survey."""
    form = form_from(args["form"])
    who = str(ctx.payload["respondent"])
    answers = ctx.payload.get("answers", {})
    if not isinstance(answers, dict):
        raise ValidationError(field="answers", value=answers, expected="an object of answers")
    for qid, answer in answers.items():
        question = form.question(qid)
        if question.answered_by != who or form.section(question.section).stage != "feedback":
            raise ValidationError(
                field=f"answers.{qid}", value=qid, expected=f"a feedback question the {who} answers"
            )
        if not isinstance(answer, dict):
            raise ValidationError(field=qid, value=answer, expected="an object (the answer)")
        question.validate_answer(answer)
    clause = args.get("clause")
    agreed = ctx.payload.get("agreed")
    if who in args["consent_for"]:
        if agreed is None:
            raise ValidationError(
                field="agreed",
                value=None,
                expected="whether the parent/carer or young adult agreed (true or false)",
            )
        if not agreed and answers:
            raise fail(ctx, f"the {who}'s answers only with the parent/carer's agreement", clause)
        if agreed and not answers:
            raise ValidationError(field="answers", value=0, expected="at least one answer")
        return True
    if agreed is not None:
        raise ValidationError(
            field="agreed", value=agreed, expected=f"left out (only for {args['consent_for']})"
        )
    if not answers:
        raise ValidationError(field="answers", value=0, expected="at least one answer")
    if who in args["required_from"]:
        missing = _missing(form, answers, who, args["questions"])
        if missing:
            raise fail(
                ctx, f"a whole answer set from the {who} (missing: {', '.join(missing)})", clause
            )
    return True


@vocabulary.update("audit.record_feedback")
def _record_feedback(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """One more answer set, kept with who gave it, whether they agreed, and when."""
    entry: dict[str, Any] = {
        "respondent": ctx.payload["respondent"],
        "answers": copy_json(ctx.payload.get("answers", {})),
        "seq": ctx.seq,
        "at": ctx.at.isoformat(),
    }
    if "agreed" in ctx.payload:
        entry["agreed"] = bool(ctx.payload["agreed"])
    sets = ctx.data.get("feedback")
    return {"feedback": [*(sets if isinstance(sets, list) else []), entry]}


@vocabulary.guard("audit.feedback_or_reason")
def _feedback_or_reason(ctx: Context, args: Mapping[str, Any]) -> bool:
    """BX-AUD-07: a complete set from each required respondent, or a recorded reason."""
    if ctx.data.get("feedback_reason"):
        return True
    return feedback_complete(
        form_from(args["form"]), args["questions"], args["required_from"], ctx.data
    )
