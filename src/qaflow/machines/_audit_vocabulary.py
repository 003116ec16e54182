"""The named entries the audit and moderation specs cite (``audit.*``, ``moderation.*``).

A spec holds no closure: each guard, update and effect chooser is cited by name with
plain-data arguments (the form as :func:`~qaflow.machines._audit_data.form_data`, a period,
the grade rules), so the spec is data (:mod:`qaflow.vocabulary`) and its fingerprint is the
same in every process. A guard returns a verdict and the engine raises ``GuardFailed``; the
entries marked *input check* raise the typed error that names the malformed field
(``ValidationError``) or the person who may act (``PermissionDenied``), as the engine's own
payload checks do, and ``audit.required_answered`` names the missing answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from qaflow import vocabulary
from qaflow.calendar import Duration
from qaflow.errors import PermissionDenied, ValidationError
from qaflow.machines._audit_data import (
    _answers,
    action_task_effects,
    check_answers,
    copy_json,
    fail,
    form_from,
    merged_answers,
    validate_actions,
)
from qaflow.procedure import AUDITOR, MODERATOR, Grade, NoticeRule, TaskRule
from qaflow.procedure import missing_answers as _missing
from qaflow.spec import AddTask, Context, Effect, Notify, Update

__all__ = ["notice_data", "record", "task_data"]


# --- plain data for the arguments ------------------------------------------------------


def notice_data(rule: NoticeRule | None) -> list[Any] | None:
    """A notice as plain data: roles, reason, clause."""
    return None if rule is None else [list(rule.roles), rule.reason, rule.clause]


def task_data(rule: TaskRule) -> list[Any]:
    """A task rule as plain data: kind, owner role, within, clause."""
    return [rule.kind, rule.owner_role, rule.within, rule.clause]


def _notice(data: Any) -> Notify | None:
    if data is None:
        return None
    roles, reason, clause = data
    return Notify(tuple(roles), reason, clause)


def _tasks(data: Iterable[Any]) -> list[Effect]:
    return [AddTask(kind, owner, within, clause) for kind, owner, within, clause in data]


# --- generic data updates --------------------------------------------------------------


def record(**args: Any) -> Update:
    """An update citing ``data.record`` with these arguments."""
    return Update(use="data.record", args=args)


@vocabulary.update("data.record")
def _record(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """Set data keys: ``payload`` (key <- payload key, when given), ``data`` (key <- another
    data key), ``values`` (constants), ``now`` (the command's time), ``increment``."""
    out: dict[str, Any] = {}
    for key, source in args.get("payload", ()):
        if source in ctx.payload:
            out[key] = copy_json(ctx.payload[source])
    for key, source in args.get("data", ()):
        out[key] = copy_json(ctx.data.get(source))
    for key, value in args.get("values", ()):
        out[key] = value
    for key in args.get("now", ()):
        out[key] = ctx.at.isoformat()
    for key in args.get("increment", ()):
        out[key] = int(ctx.data.get(key, 0)) + 1
    return out


@vocabulary.update("audit.merge_answers")
def _merge(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """The payload's answers laid over the workflow's."""
    return {"answers": copy_json(merged_answers(ctx, "answers"))}


# --- allocation -------------------------------------------------------------------------


@vocabulary.guard("audit.valid_ids")
def _valid_ids(ctx: Context, args: Mapping[str, Any]) -> bool:
    """Input check: no blank id, and an allocation time not after the command."""
    for name, value in ctx.payload.items():
        if name.endswith("_id") and not value.strip():
            raise ValidationError(field=name, value=value, expected="a non-empty id")
    raw = ctx.payload.get("allocated_at")
    if raw is not None and datetime.fromisoformat(raw) > ctx.at:
        raise ValidationError(
            field="allocated_at",
            value=raw,
            expected=f"not later than the command ({ctx.at.isoformat()})",
        )
    return True


@vocabulary.update("audit.allocate")
def _allocate(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """The allocation's ids and the audit's starting data (look-back, Practice Week)."""
    raw = ctx.payload.get("allocated_at")
    at = datetime.fromisoformat(raw) if raw is not None else ctx.at
    data: dict[str, Any] = {k: v for k, v in ctx.payload.items() if k.endswith("_id")}
    required: list[dict[str, Any]] = []
    action = args.get("practice_week_action")
    if ctx.payload.get("practice_week") and action is not None:
        required.append({"kind": action, "clause": args.get("practice_week_clause")})
    lookback = args.get("lookback")
    if lookback is not None:
        data["look_back_from"] = Duration.parse(lookback).before(at).isoformat()
    data.update(
        allocated_at=at.astimezone(UTC).isoformat(),
        practice_week=bool(ctx.payload.get("practice_week", False)),
        answers={},
        actions=[],
        required_actions=required,
        immediate_actions_clause=None,
        grades=[],
        moderation_open=False,
        moderated=False,
    )
    return data


@vocabulary.effects("audit.staying_together")
def _staying_together(ctx: Context, args: Mapping[str, Any]) -> list[Effect]:
    """BX-AUD-02: the Staying Together worker, where there is one, is asked the same way."""
    if not ctx.data.get("staying_together_worker_id"):
        return []
    return [Notify(("staying_together_worker",), args["reason"], args.get("clause"))]


# --- answers and grading ----------------------------------------------------------------


@vocabulary.guard("audit.valid_answers")
def _valid_answers(ctx: Context, args: Mapping[str, Any]) -> bool:
    """Input check: answers on the form, well formed, of a stage open in this state, by the
    person who answers them (``open``: state -> stages; ``clauses``: stage -> clause)."""
    if "answers" not in ctx.payload:
        return True
    if ctx.trigger == "answer" and not ctx.payload["answers"]:
        raise ValidationError(field="answers", value=0, expected="at least one answer")
    recorded = set(args.get("recorded", ()))
    for qid in ctx.payload["answers"] if isinstance(ctx.payload["answers"], dict) else ():
        if qid in recorded:
            clause = dict(args["clauses"]).get("feedback")
            condition = (
                f"feedback question {qid} recorded with record_feedback (respondent, answers "
                "and, for the child, whether the parent/carer agreed), not answer"
            )
            raise fail(ctx, condition, clause)
    check_answers(
        form_from(args["form"]),
        ctx,
        ctx.payload["answers"],
        open_stages=dict(args["open"]).get(ctx.source, ()),
        stage_clauses=dict(args["clauses"]),
    )
    return True


@vocabulary.guard("audit.required_answered")
def _required_answered(ctx: Context, args: Mapping[str, Any]) -> bool:
    """Every required question of the ``stages`` answered; the refusal names the gaps."""
    form = form_from(args["form"])
    answers = merged_answers(ctx, "answers")
    if ctx.trigger == "grade":
        answers[form.grading_question] = ctx.payload.get("answer")
    missing = _missing(form, answers, stages=tuple(args["stages"]))
    if missing:
        condition = f"{args['condition']} (missing: {', '.join(missing)})"
        raise fail(ctx, condition, args.get("clause"))
    return True


@vocabulary.guard("audit.valid_grading")
def _valid_grading(ctx: Context, args: Mapping[str, Any]) -> bool:
    """Input check: the payload's ``answer`` is a valid answer to the grading question."""
    answer = ctx.payload.get("answer")
    if not isinstance(answer, dict):
        raise ValidationError(field="answer", value=answer, expected="an object")
    form_from(args["form"]).grade(answer)  # raises ValidationError naming 'overall.score'
    return True


@vocabulary.update("audit.record_grade")
def _record_grade(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """The grade the form gives the answer, both kept in the history, and what it requires
    (``rules``: grades, clause, required action kinds, immediate actions)."""
    form = form_from(args["form"])
    answer = copy_json(ctx.payload["answer"])
    grade = form.grade(answer)
    answers = _answers(ctx.data)
    answers.update(copy_json(ctx.payload.get("answers", {})))
    answers[form.grading_question] = answer
    required = list(ctx.data.get("required_actions", []))
    immediate: str | None = None
    for grades, clause, kinds, wants_immediate in args["rules"]:
        if grade.name in grades:
            required.extend({"kind": k, "clause": clause} for k in kinds)
            if wants_immediate and immediate is None:
                immediate = clause
    return {
        "answers": answers,
        "grade": grade.name,
        "original_grade": grade.name,
        "graded_at": ctx.at.isoformat(),
        "grades": [
            *ctx.data.get("grades", []),
            {"grade": grade.name, "source": AUDITOR, "seq": ctx.seq},
        ],
        "required_actions": required,
        "immediate_actions_clause": immediate,
    }


@vocabulary.effects("audit.grade_effects")
def _grade_effects(ctx: Context, args: Mapping[str, Any]) -> list[Effect]:
    """The notices and tasks of every grade rule the new grade triggers, in policy order."""
    grade = str(ctx.data["grade"])
    effects: list[Effect] = []
    for grades, notice, tasks in args["rules"]:
        if grade in grades:
            found = _notice(notice)
            if found is not None:
                effects.append(found)
            effects.extend(_tasks(tasks))
    return effects


# --- actions ----------------------------------------------------------------------------


@vocabulary.guard("audit.valid_actions")
def _valid_actions(ctx: Context, args: Mapping[str, Any]) -> bool:
    """Input check: the payload's actions (optional when ``optional``) are well formed."""
    actions = ctx.payload.get("actions", [] if args.get("optional") else None)
    validate_actions(actions, ctx)
    return True


@vocabulary.update("audit.record_actions")
def _record_actions(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """The agreed actions in stored form."""
    return {"actions": validate_actions(copy_json(ctx.payload["actions"]), ctx)}


@vocabulary.effects("audit.action_tasks")
def _action_tasks(ctx: Context, args: Mapping[str, Any]) -> list[Effect]:
    """One task per recorded action, owned by its person and due when agreed."""
    return action_task_effects(ctx, ctx.data["actions"], args.get("clause"))


# --- moderation write-back and windows ---------------------------------------------------


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


@vocabulary.guard("audit.moderation_id_matches")
def _moderation_matches(ctx: Context, args: Mapping[str, Any]) -> bool:
    """Input check: the payload names the moderation in progress."""
    if ctx.payload["moderation_id"] != ctx.data.get("moderation_id"):
        raise ValidationError(
            field="moderation_id",
            value=ctx.payload["moderation_id"],
            expected="the id of the moderation in progress",
        )
    return True


@vocabulary.guard("audit.named_moderator")
def _named_moderator(ctx: Context, args: Mapping[str, Any]) -> bool:
    """Permission: only the moderator the payload names may record the write-back."""
    if ctx.payload["moderator_id"] != ctx.actor.id:
        raise PermissionDenied(
            workflow_id=ctx.workflow_id,
            trigger=ctx.trigger,
            actor_id=ctx.actor.id,
            role=ctx.actor.role,
            allowed_roles=(MODERATOR,),
            reason="only the moderator named in the payload may record it",
        )
    return True


@vocabulary.update("audit.moderated")
def _moderated(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """BX-MOD-05: the agreed grade replaces the audit's; both stay in the history."""
    grade = str(ctx.payload["grade"])
    return {
        "grade": grade,
        "moderated_grade": grade,
        "moderated": True,
        "moderation_open": False,
        "moderation_agreed": bool(ctx.payload["agreed"]),
        "moderator_id": ctx.payload["moderator_id"],
        "grades": [
            *ctx.data.get("grades", []),
            {
                "grade": grade,
                "source": "moderation",
                "seq": ctx.seq,
                "moderation_id": ctx.payload["moderation_id"],
                "agreed": bool(ctx.payload["agreed"]),
            },
        ],
    }


@vocabulary.guard("audit.earlier_lookback")
def _earlier_lookback(ctx: Context, args: Mapping[str, Any]) -> bool:
    """Input check (BK-AUD-03): the auditor may look further back, never less far."""
    wanted = datetime.fromisoformat(str(ctx.payload["look_back_from"]))
    current = datetime.fromisoformat(str(ctx.data["look_back_from"]))
    if wanted >= current:
        raise ValidationError(
            field="look_back_from",
            value=str(ctx.payload["look_back_from"]),
            expected=f"earlier than the current look-back start ({current.isoformat()})",
        )
    return True


@vocabulary.update("audit.extend_lookback")
def _extend_lookback(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    wanted = datetime.fromisoformat(str(ctx.payload["look_back_from"]))
    return {"look_back_from": wanted.astimezone(UTC).isoformat()}


# --- the moderation machine ---------------------------------------------------------------


@vocabulary.guard("moderation.audit_in_lookback")
def _audit_in_lookback(ctx: Context, args: Mapping[str, Any]) -> bool:
    """The sampled audit was completed within the look-back, and not in the future."""
    completed = datetime.fromisoformat(str(ctx.payload["audit_completed_at"]))
    return Duration.parse(str(args["within"])).before(ctx.at) <= completed <= ctx.at


@vocabulary.update("moderation.sample")
def _sample(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """The sampled audit's ids, grade and completion time."""
    data = {k: v for k, v in ctx.payload.items() if k.endswith("_id")}
    data.update(
        original_grade=ctx.payload["original_grade"],
        audit_completed_at=ctx.payload["audit_completed_at"],
        sampled_at=ctx.at.isoformat(),
    )
    return data


@vocabulary.update("moderation.review")
def _review(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """BX-MOD-02, -03: the moderator's scaling, comments, and the actions checked and added."""
    grade = form_from(args["form"]).grade(ctx.payload["answer"])
    return {
        "moderator_grade": grade.name,
        "scaling": ctx.payload["answer"],
        "good_practice": ctx.payload["good_practice"],
        "areas_for_development": ctx.payload["areas_for_development"],
        "actions_completed": ctx.payload["actions_completed"],
        "actions": validate_actions(ctx.payload.get("actions", []), ctx),
    }


@vocabulary.update("moderation.agree_grade")
def _agree_grade(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """BX-MOD-05: the grading moderator and auditor agreed."""
    grade = form_from(args["form"]).grade(ctx.payload["answer"])
    return {"agreed_grade": grade.name, "agreed_scaling": ctx.payload["answer"]}


@vocabulary.effects("moderation.finalise")
def _finalise(ctx: Context, args: Mapping[str, Any]) -> list[Effect]:
    """BX-MOD-04 and -06: completion notice and tasks; if the case remains in a follow-up
    grade or actions are outstanding, the follow-up (or Inadequate) notice and tasks."""
    effects: list[Effect] = []
    completion = _notice(args.get("completion_notice"))
    if completion is not None:
        effects.append(completion)
    effects.extend(_tasks(args.get("completion_tasks", ())))
    grade = Grade[str(ctx.data["agreed_grade"])]
    remains = grade.name in args.get("follow_up_grades", ())
    outstanding = not ctx.data.get("actions_completed", True)
    notice = _notice(args.get("inadequate_notice")) if grade is Grade.INADEQUATE else None
    if notice is None and (remains or outstanding):
        notice = _notice(args.get("follow_up_notice"))
    if notice is not None:
        effects.append(notice)
    if remains or outstanding:
        effects.extend(_tasks(args.get("follow_up_tasks", ())))
    return effects


# --- load-time checks of the arguments a spec gives these entries --------------------------


@vocabulary.checks("guard", "audit.within_moderation_window")
@vocabulary.checks("guard", "audit.moderation_window_over")
@vocabulary.checks("guard", "moderation.audit_in_lookback")
def _check_within(args: Mapping[str, Any]) -> None:
    Duration.parse(str(args["within"]))


@vocabulary.checks("update", "moderation.review")
@vocabulary.checks("update", "moderation.agree_grade")
def _check_form(args: Mapping[str, Any]) -> None:
    form_from(args["form"])


@vocabulary.checks("effects", "audit.grade_effects")
def _check_rules(args: Mapping[str, Any]) -> None:
    for _, notice, tasks in args["rules"]:
        _notice(notice)
        _tasks(tasks)


@vocabulary.checks("effects", "moderation.finalise")
def _check_finalise(args: Mapping[str, Any]) -> None:
    for key in ("completion_notice", "inadequate_notice", "follow_up_notice"):
        _notice(args.get(key))
    for key in ("completion_tasks", "follow_up_tasks"):
        _tasks(args.get(key, ()))
