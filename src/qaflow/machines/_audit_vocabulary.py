"""The named guards the audit and moderation machines cite (``audit.*``, ``moderation.*``).

A spec holds no closure for these: it cites the name with plain-data arguments (a period,
the family feedback questions), so the spec stays data (:mod:`qaflow.vocabulary`). Each
returns a verdict; only the engine raises :class:`~qaflow.errors.GuardFailed`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from qaflow import vocabulary
from qaflow.calendar import Duration
from qaflow.errors import ValidationError
from qaflow.procedure import Question
from qaflow.spec import Context

__all__ = ["feedback_args"]


def feedback_args(questions: Sequence[Question]) -> dict[str, Any]:
    """The arguments of ``audit.feedback_or_reason``: each question's id, kind and fields."""
    return {"questions": [[q.id, q.kind, list(q.text_fields)] for q in questions]}


@lru_cache(maxsize=64)
def _questions(spec: tuple[tuple[Any, ...], ...]) -> tuple[Question, ...]:
    return tuple(
        Question(
            id=qid,
            section="feedback",
            text=qid,
            kind=kind,
            answered_by="family",
            text_fields=fields,
        )
        for qid, kind, fields in spec
    )


def _valid(question: Question, answer: object) -> bool:
    if not isinstance(answer, dict):
        return False
    try:
        question.validate_answer(answer)
    except ValidationError:
        return False
    return True


@vocabulary.guard("audit.feedback_or_reason")
def _feedback_or_reason(ctx: Context, args: Mapping[str, Any]) -> bool:
    """BX-AUD-07: every family feedback question validly answered, or a recorded reason."""
    if ctx.data.get("feedback_reason"):
        return True
    answers = ctx.data.get("answers")
    answers = answers if isinstance(answers, dict) else {}
    spec = tuple((q[0], q[1], tuple(q[2])) for q in args["questions"])
    return all(_valid(q, answers.get(q.id)) for q in _questions(spec))


def _completed_window_end(ctx: Context, within: str) -> datetime | None:
    completed = ctx.data.get("completed_at")
    if not isinstance(completed, str):
        return None
    return Duration.parse(within).after(datetime.fromisoformat(completed))


@vocabulary.guard("audit.within_moderation_window")
def _within_window(ctx: Context, args: Mapping[str, Any]) -> bool:
    """The audit was completed no longer ago than the moderation window (BX-MOD-01)."""
    end = _completed_window_end(ctx, str(args["within"]))
    return end is None or ctx.at <= end


@vocabulary.guard("audit.moderation_window_over")
def _window_over(ctx: Context, args: Mapping[str, Any]) -> bool:
    """The moderation window since completion has passed (the write-back also closes)."""
    end = _completed_window_end(ctx, str(args["within"]))
    return end is not None and ctx.at >= end


@vocabulary.guard("moderation.audit_in_lookback")
def _audit_in_lookback(ctx: Context, args: Mapping[str, Any]) -> bool:
    """The sampled audit was completed within the look-back, and not in the future."""
    completed = datetime.fromisoformat(str(ctx.payload["audit_completed_at"]))
    return Duration.parse(str(args["within"])).before(ctx.at) <= completed <= ctx.at
