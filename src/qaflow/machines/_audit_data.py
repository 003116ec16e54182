"""What the audit and moderation machines do with workflow data, shared by their vocabulary.

Answers and actions as they are checked and stored; the form as plain data (so a spec can
cite it in a vocabulary entry's arguments, :func:`form_data`) and back (:func:`form_from`).
Nothing here holds a council's policy: what a check needs of the policy comes in as data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any, Final

from qaflow._convert import IDENT as _IDENT
from qaflow.calendar import LONDON, Duration
from qaflow.errors import GuardFailed, PermissionDenied, ValidationError
from qaflow.procedure import (
    AUDITOR,
    MODERATOR,
    WORKER,
    AuditForm,
    Grade,
    GradeBands,
    Judgement,
    JudgementScale,
    Question,
    ScoreBand,
    Section,
)
from qaflow.spec import AddTask, Context, Effect, Update

__all__ = [
    "TEXT_LIMIT",
    "action_task_effects",
    "check_answers",
    "copy_json",
    "fail",
    "form_data",
    "form_from",
    "grade_of",
    "merged_answers",
    "validate_actions",
]

# Who records a practitioner's answers; every other answer is recorded by the auditor.
_ANSWERED_BY_ROLE: Final[Mapping[str, str]] = {"practitioner": WORKER}
TEXT_LIMIT: Final = 4000
_TEXT_LIMIT: Final = TEXT_LIMIT


def copy_json(value: Any) -> Any:
    """A deep, JSON-only copy: workflow data never shares structure with a payload."""
    return json.loads(json.dumps(value))


def _answers(data: Mapping[str, Any]) -> dict[str, Any]:
    found = data.get("answers")
    return dict(found) if isinstance(found, dict) else {}


def grade_of(data: Mapping[str, Any]) -> Grade | None:
    """The audit's current grade (after moderation, the moderated one), if graded."""
    name = data.get("grade")
    return Grade[name] if isinstance(name, str) else None


def _local_end_of_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59, 999999), LONDON).astimezone(UTC)


def validate_actions(
    actions: object, ctx: Context, *, field: str = "actions"
) -> list[dict[str, Any]]:
    """Check agreed actions and return them in stored form (raises ValidationError).

    Each action is ``{"action": text, "owner_role": role, "owner_id": id (optional when the
    workflow records that role's id), "within": "5 WD" | "due": "YYYY-MM-DD",
    "immediate": bool (optional), "kind": identifier (optional)}``. A ``due`` date must be a
    working day, not before today: the task then falls due at the end of that day.
    """
    if not isinstance(actions, list):
        raise ValidationError(field=field, value=actions, expected="a list of actions")
    allowed = {"action", "owner_role", "owner_id", "within", "due", "immediate", "kind"}
    today = ctx.at.astimezone(LONDON).date()
    out: list[dict[str, Any]] = []
    for i, action in enumerate(actions):
        where = f"{field}[{i}]"
        if not isinstance(action, dict):
            raise ValidationError(
                field=where, value=action, expected="an object with action, owner_role, when"
            )
        for key in action:
            if key not in allowed:
                raise ValidationError(
                    field=f"{where}.{key}",
                    value=key,
                    expected="one of the fields " + ", ".join(sorted(allowed)),
                )
        text = action.get("action")
        if not isinstance(text, str) or not text.strip() or len(text) > _TEXT_LIMIT:
            raise ValidationError(
                field=f"{where}.action",
                value="" if isinstance(text, str) else text,
                expected=f"non-empty text of at most {_TEXT_LIMIT} characters",
            )
        role = action.get("owner_role")
        if not isinstance(role, str) or not _IDENT.match(role):
            raise ValidationError(
                field=f"{where}.owner_role", value=role, expected="a role name like 'worker'"
            )
        owner = action.get("owner_id", ctx.data.get(f"{role}_id"))
        if not isinstance(owner, str) or not owner:
            raise ValidationError(
                field=f"{where}.owner_id",
                value=owner,
                expected=f"a person id (the workflow records no {role + '_id'!r})",
            )
        within, due = action.get("within"), action.get("due")
        if (within is None) == (due is None):
            raise ValidationError(
                field=f"{where}.within", value=within, expected="given, or 'due', but not both"
            )
        if within is not None:
            if not isinstance(within, str):
                raise ValidationError(
                    field=f"{where}.within", value=within, expected="text like '5 WD' or '24 h'"
                )
            try:
                Duration.parse(within)
            except ValidationError:
                raise ValidationError(
                    field=f"{where}.within",
                    value=within,
                    expected="a number and a unit, e.g. '5 WD', '24 h', '2 weeks'",
                ) from None
        if due is not None:
            try:
                day = date.fromisoformat(due) if isinstance(due, str) else None
            except ValueError:
                day = None
            if day is None:
                raise ValidationError(
                    field=f"{where}.due", value=due, expected="a date as 'YYYY-MM-DD'"
                )
            if day < today or not ctx.calendar.is_working_day(day):
                raise ValidationError(
                    field=f"{where}.due",
                    value=due,
                    expected=f"a working day on or after {today.isoformat()}",
                )
        immediate = action.get("immediate", False)
        if not isinstance(immediate, bool):
            raise ValidationError(
                field=f"{where}.immediate", value=immediate, expected="True or False"
            )
        kind = action.get("kind", "action")
        if not isinstance(kind, str) or not _IDENT.match(kind):
            raise ValidationError(
                field=f"{where}.kind", value=kind, expected="an identifier like 'action'"
            )
        out.append(
            {
                "action": text,
                "owner_role": role,
                "owner_id": owner,
                "within": within,
                "due": due,
                "immediate": immediate,
                "kind": kind,
            }
        )
    return out


def _setter(key: str, value: Any) -> Callable[[Context], Mapping[str, Any]]:
    return lambda ctx: {key: value}


def _restore(key: str, had: bool, old: Any) -> Callable[[Context], Mapping[str, Any]]:
    def undo(ctx: Context) -> Mapping[str, Any]:
        if had:
            return {key: old}
        ctx.data.pop(key, None)
        return {}

    return undo


def action_task_effects(
    ctx: Context, actions: Iterable[Mapping[str, Any]], clause: str | None
) -> list[Effect]:
    """Effects opening one task per action, owned by its person and due when agreed.

    The engine's ``AddTask`` takes the owner from data ``<role>_id`` and the due time as a
    duration from now. An action owned by someone other than the workflow's holder of that
    role is written by setting the key for the task and restoring it straight after; a due
    date becomes the working-day count that ends on it. (See the report: an ``AddTask``
    with explicit owner and due time would make this direct.)
    """
    effects: list[Effect] = []
    for action in actions:
        role = str(action["owner_role"])
        key = f"{role}_id"
        if action["within"] is not None:
            within = Duration.parse(str(action["within"]))
        else:
            end = _local_end_of_day(date.fromisoformat(str(action["due"])))
            within = Duration(max(0, ctx.calendar.working_days_between(ctx.at, end)), "WD")
        task = AddTask(str(action["kind"]), role, within, clause)
        if ctx.data.get(key) == action["owner_id"]:
            effects.append(task)
        else:
            owner = action["owner_id"]
            effects.extend(
                (
                    Update(_setter(key, owner)),
                    task,
                    Update(_restore(key, key in ctx.data, ctx.data.get(key))),
                )
            )
    return effects


def fail(ctx: Context, condition: str, clause: str | None) -> GuardFailed:
    return GuardFailed(
        workflow_id=ctx.workflow_id, trigger=ctx.trigger, condition=condition, clause=clause
    )


def _only(ctx: Context, key: str) -> None:
    """Refuse unless the actor is the person recorded under ``key``."""
    if ctx.data.get(key) != ctx.actor.id:
        raise PermissionDenied(
            workflow_id=ctx.workflow_id,
            trigger=ctx.trigger,
            actor_id=ctx.actor.id,
            role=ctx.actor.role,
            allowed_roles=(key.removesuffix("_id"),),
            reason=f"only the person recorded as {key!r} may",
        )


def check_answers(
    form: AuditForm,
    ctx: Context,
    answers: object,
    *,
    open_stages: Iterable[str],
    stage_clauses: Mapping[str, str],
    field: str = "answers",
) -> None:
    """Validate answers given in a payload: known question, well-formed, its stage open in
    this state (``open_stages``), given by the right person. Raises the typed error."""
    open_stages = tuple(open_stages)
    if not isinstance(answers, dict):
        raise ValidationError(field=field, value=answers, expected="an object of answers")
    for qid, answer in answers.items():
        question = form.question(qid)
        if not isinstance(answer, dict):
            raise ValidationError(field=qid, value=answer, expected="an object (the answer)")
        question.validate_answer(answer)
        stage = form.section(question.section).stage
        if qid == form.grading_question:
            raise fail(ctx, f"the overall grading ({qid}) given as 'answer' of 'grade'", None)
        if stage not in open_stages:
            raise fail(
                ctx,
                f"question {qid} to be answered in the {stage} stage, not in state "
                f"{ctx.source!r} (open here: {', '.join(open_stages) or 'none'})",
                stage_clauses.get(stage),
            )
        role = _ANSWERED_BY_ROLE.get(question.answered_by, AUDITOR)
        if question.answered_by == MODERATOR:
            raise fail(ctx, f"question {qid} is answered in moderation", None)
        if ctx.actor.role != role:
            raise PermissionDenied(
                workflow_id=ctx.workflow_id,
                trigger=ctx.trigger,
                actor_id=ctx.actor.id,
                role=ctx.actor.role,
                allowed_roles=(role,),
                reason=f"question {qid} is answered by the {role}",
            )
        _only(ctx, f"{role}_id")


def merged_answers(ctx: Context, *fields: str) -> dict[str, Any]:
    """The workflow's answers with those of the payload's ``fields`` laid over them."""
    merged = _answers(ctx.data)
    for name in fields:
        extra = ctx.payload.get(name)
        if isinstance(extra, dict):
            merged.update(extra)
    return merged


def form_data(form: AuditForm) -> dict[str, Any]:
    """The form as plain data: what a vocabulary entry needs to check and grade answers."""
    grading: dict[str, Any]
    if form.grade_bands is not None:
        grading = {"bands": [[b.low, b.high, b.grade.name] for b in form.grade_bands.bands]}
    elif form.judgement_scale is not None:
        grading = {
            "judgements": [[j.value, g.name] for j, g in form.judgement_scale.as_mapping().items()]
        }
    else:
        grading = {"direct": True}
    return {
        "name": form.name,
        "grading_question": form.grading_question,
        "grading": grading,
        "sections": [
            [
                s.id,
                s.stage,
                [
                    [q.id, q.kind, q.answered_by, q.required, list(q.text_fields)]
                    for q in s.questions
                ],
            ]
            for s in form.sections
        ],
    }


def form_from(frozen: Any) -> AuditForm:
    """The form :func:`form_data` described, as the spec's arguments hold it (cached).

    A spec's arguments are the same object on every command, so the cache is by identity
    first (hashing a whole form per command would cost more than the check), by value next.
    """
    found = _BY_ID.get(id(frozen))
    if found is not None and found[0] is frozen:
        return found[1]
    form = _form_from(frozen)
    if len(_BY_ID) > 256:
        _BY_ID.clear()
    _BY_ID[id(frozen)] = (frozen, form)
    return form


_BY_ID: dict[int, tuple[Any, AuditForm]] = {}


def _plain(value: Any) -> Any:
    """Undo the spec's freezing of arguments: (name, value) pairs back to dicts."""
    if (
        isinstance(value, tuple)
        and value
        and all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str) for v in value)
    ):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@lru_cache(maxsize=32)
def _form_from(frozen: Any) -> AuditForm:
    data = _plain(frozen) if not isinstance(frozen, dict) else frozen
    sections = tuple(
        Section(
            id=sid,
            title=sid,
            stage=stage,
            questions=tuple(
                Question(
                    id=qid,
                    section=sid,
                    text=qid,
                    kind=kind,
                    answered_by=by,
                    required=required,
                    text_fields=tuple(fields),
                )
                for qid, kind, by, required, fields in questions
            ),
        )
        for sid, stage, questions in data["sections"]
    )
    grading = data["grading"]
    extra: dict[str, Any] = {}
    if "bands" in grading:
        bands = [ScoreBand(lo, hi, Grade[g]) for lo, hi, g in grading["bands"]]
        extra["grade_bands"] = GradeBands(bands=bands)
    elif "judgements" in grading:
        pairs = grading["judgements"]
        items = pairs.items() if isinstance(pairs, dict) else pairs
        mapped = {Judgement(j): Grade[g] for j, g in items}
        extra["judgement_scale"] = JudgementScale(
            exceeds_good=mapped[Judgement.EXCEEDS_GOOD],
            meets_good=mapped[Judgement.MEETS_GOOD],
            does_not_meet_good=mapped[Judgement.DOES_NOT_MEET_GOOD],
        )
    return AuditForm(
        name=data["name"],
        sections=sections,
        grading_question=data["grading_question"],
        **extra,
    )
