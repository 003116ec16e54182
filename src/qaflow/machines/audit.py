"""The collaborative case audit as a machine built from a council's :class:`AuditPolicy`.

The policy is data (:mod:`qaflow.policies.audits` defines its types; the shipped values are
``bexley.BEXLEY_AUDIT`` and ``buckinghamshire.BUCKINGHAMSHIRE_AUDIT``); this module only
builds the machine from it, and helps a host allocate (:func:`allocation_payload`).

The lifecycle::

    new -allocate-> allocated -request_self_assessment-> self_assessment_requested
        -submit_self_assessment-> self_assessment_done -hold_meeting-> audit_meeting
        -grade-> graded -seek_feedback-> feedback_sought -agree_actions-> actions_agreed
        -complete-> completed -follow_up-> followed_up -close-> closed
    any open state -cancel (with a reason)-> cancelled

States a council's policy does not use are left out when the machine is built: a form
without a self-assessment stage goes straight from ``allocated`` to the meeting, a policy
without a feedback rule from ``graded`` to agreeing actions, one without a follow-up rule
rests in ``completed``. So a new council is a new :class:`AuditPolicy` value, never code.

What the guards enforce, each citing its clause: the auditor is not from the case's team
(BX-AUD-01); the self-assessment (BX-AUD-03) and the health check (BX-AUD-04) are done
before the meeting; every required answer is given before grading (BX-AUD-05, BK-AUD-01);
family feedback, or the reason it could not be had, before completion (BX-AUD-07); at least
one action, and immediate actions below Good (BX-AUD-08, BK-AUD-05), and the practice
observation after an Inadequate grade or in Practice Week (BX-AUD-11).

What the effects do: grading maps the overall answer to a grade through the form's bands
or judgement scale; the policy's grade rules then write notifications and tasks (BX-AUD-12:
the exact roles, tasks due in 24 h). Agreed actions become tasks with an owner and a due
date. Completion opens the follow-up deadline (BX-AUD-09); allocation opens the completion
deadline (BK-AUD-02, from the allocation time). A serious safeguarding issue is escalated
in the same step that records it (BK-AUD-04).

Moderation (``qaflow.machines.moderation``) writes back to the audit through three internal
transitions, ``moderation_started``, ``moderated`` and ``moderation_cancelled``: the
moderated grade becomes the audit's grade and both grades stay in the history (BX-MOD-05).
The audit closes when its moderation window has passed (``close``, fired by ``tick``).

Answers arrive as JSON objects, ``{"answers": {"Q7": {"score": 6, ...}}}``, and are checked
by :meth:`~qaflow.policies.forms.Question.validate_answer` before anything is written: a
bad answer raises :class:`~qaflow.errors.ValidationError` naming the field and the range.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any, Final

from qaflow.calendar import LONDON, Duration
from qaflow.directory import InMemoryDirectory
from qaflow.errors import GuardFailed, PermissionDenied, ValidationError
from qaflow.policies import bexley, buckinghamshire
from qaflow.policies.audits import AUDITOR, MODERATOR, WORKER, AuditPolicy, NoticeRule, TaskRule
from qaflow.policies.forms import Grade, missing_answers
from qaflow.spec import (
    AddTask,
    CloseDeadline,
    Context,
    DeadlineRule,
    Derived,
    Effect,
    Field,
    Guard,
    MachineSpec,
    Notify,
    OpenDeadline,
    StateSpec,
    TransitionSpec,
    Update,
)

__all__ = [
    "ACTIONS_AGREED",
    "ALLOCATED",
    "AUDIT_MEETING",
    "CANCELLED",
    "CLOSED",
    "COMPLETED",
    "FEEDBACK_SOUGHT",
    "FOLLOWED_UP",
    "GRADED",
    "MACHINE",
    "NEW",
    "SELF_ASSESSMENT_DONE",
    "SELF_ASSESSMENT_REQUESTED",
    "SHIPPED_POLICIES",
    "action_task_effects",
    "allocation_payload",
    "audit_spec",
    "family_feedback_complete",
    "grade_of",
    "notice_effect",
    "shipped_specs",
    "task_effect",
    "validate_actions",
]

MACHINE: Final = "audit"
"""The machine name every audit workflow is pinned to (with its policy and version)."""

NEW: Final = "new"
ALLOCATED: Final = "allocated"
SELF_ASSESSMENT_REQUESTED: Final = "self_assessment_requested"
SELF_ASSESSMENT_DONE: Final = "self_assessment_done"
AUDIT_MEETING: Final = "audit_meeting"
GRADED: Final = "graded"
FEEDBACK_SOUGHT: Final = "feedback_sought"
ACTIONS_AGREED: Final = "actions_agreed"
COMPLETED: Final = "completed"
FOLLOWED_UP: Final = "followed_up"
CLOSED: Final = "closed"
CANCELLED: Final = "cancelled"

# Who records a practitioner's answers (the workflow roles AUDITOR, WORKER and MODERATOR are
# defined with the policy types); every other answer is recorded by the auditor.
_ANSWERED_BY_ROLE: Final[Mapping[str, str]] = {"practitioner": WORKER}

COMPLETION_DEADLINE: Final = "completion"
FOLLOW_UP_DEADLINE: Final = "follow_up"
MODERATION_WINDOW: Final = "moderation_window"

_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
_TEXT_LIMIT: Final = 4000


def notice_effect(rule: NoticeRule) -> Notify:
    """The effect that writes a policy's notice: its roles, reason and clause."""
    return Notify(rule.roles, rule.reason, rule.clause)


def task_effect(rule: TaskRule) -> AddTask:
    """The effect that opens a policy's task: its kind, owner role, due time and clause."""
    return AddTask(rule.kind, rule.owner_role, rule.within, rule.clause)


# --- helpers over workflow data ---------------------------------------------------------


def _copy(value: Any) -> Any:
    """A deep, JSON-only copy: workflow data never shares structure with a payload."""
    return json.loads(json.dumps(value))


def _answers(data: Mapping[str, Any]) -> dict[str, Any]:
    found = data.get("answers")
    return dict(found) if isinstance(found, dict) else {}


def grade_of(data: Mapping[str, Any]) -> Grade | None:
    """The audit's current grade (after moderation, the moderated one), if graded."""
    name = data.get("grade")
    return Grade[name] if isinstance(name, str) else None


def family_feedback_complete(policy: AuditPolicy, data: Mapping[str, Any]) -> bool:
    """Whether every family feedback question of the policy has a valid answer."""
    if policy.feedback is None:
        return True
    answers = _answers(data)
    for qid in policy.feedback.questions:
        answer = answers.get(qid)
        if not isinstance(answer, dict):
            return False
        try:
            policy.form.question(qid).validate_answer(answer)
        except ValidationError:
            return False
    return True


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


# --- guards: return a bool, or raise the typed error that explains the refusal ----------


def _fail(ctx: Context, condition: str, clause: str | None) -> GuardFailed:
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


def _open_stages(policy: AuditPolicy, state: str) -> tuple[str, ...]:
    """The form stages whose questions may be answered in ``state``."""
    feedback_state = FEEDBACK_SOUGHT if policy.feedback is not None else GRADED
    table: dict[str, tuple[str, ...]] = {
        ALLOCATED: ("health_check",),
        SELF_ASSESSMENT_REQUESTED: ("self_assessment", "health_check"),
        SELF_ASSESSMENT_DONE: ("health_check",),
        AUDIT_MEETING: ("meeting", "grading"),
        feedback_state: ("feedback",),
        ACTIONS_AGREED: ("feedback",),
    }
    used = set(policy.form.stages)
    return tuple(s for s in table.get(state, ()) if s in used)


def _check_answers(policy: AuditPolicy, ctx: Context, answers: object, field: str) -> None:
    """Validate answers given in a payload: known question, well-formed, its stage open in
    this state, given by the right person. Raises the typed error, else returns."""
    form = policy.form
    if not isinstance(answers, dict):
        raise ValidationError(field=field, value=answers, expected="an object of answers")
    open_stages = _open_stages(policy, ctx.source)
    for qid, answer in answers.items():
        question = form.question(qid)
        if not isinstance(answer, dict):
            raise ValidationError(field=qid, value=answer, expected="an object (the answer)")
        question.validate_answer(answer)
        stage = form.section(question.section).stage
        if qid == form.grading_question:
            raise _fail(ctx, f"the overall grading ({qid}) given as 'answer' of 'grade'", None)
        if stage not in open_stages:
            raise _fail(
                ctx,
                f"question {qid} to be answered in the {stage} stage, not in state "
                f"{ctx.source!r} (open here: {', '.join(open_stages) or 'none'})",
                policy.clause_for(stage),
            )
        role = _ANSWERED_BY_ROLE.get(question.answered_by, AUDITOR)
        if question.answered_by == MODERATOR:
            raise _fail(ctx, f"question {qid} is answered in moderation", None)
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


def _merged(ctx: Context, *fields: str) -> dict[str, Any]:
    merged = _answers(ctx.data)
    for name in fields:
        extra = ctx.payload.get(name)
        if isinstance(extra, dict):
            merged.update(extra)
    return merged


def _answers_guard(policy: AuditPolicy) -> Guard:
    def check(ctx: Context) -> bool:
        if "answers" in ctx.payload:
            if ctx.trigger == "answer" and not ctx.payload["answers"]:
                raise ValidationError(field="answers", value=0, expected="at least one answer")
            _check_answers(policy, ctx, ctx.payload["answers"], "answers")
        return True

    return Guard("answers that are valid, of a stage open now, by the right person", check)


def _complete_guard(policy: AuditPolicy, stage: str, condition: str) -> Guard:
    """Every required question of ``stage`` (and earlier stages) answered, naming the gaps."""
    clause = policy.clause_for(stage)

    def check(ctx: Context) -> bool:
        answers = _merged(ctx, "answers")
        if ctx.trigger == "grade":
            answers[policy.form.grading_question] = ctx.payload.get("answer")
            stages: Iterable[str] = policy.form.stages_through(stage)
        else:
            stages = (stage,)
        missing = missing_answers(policy.form, answers, stages=stages)
        if missing:
            raise _fail(ctx, f"{condition} (missing: {', '.join(missing)})", clause)
        return True

    return Guard(condition, check, clause)


def _actor_is(key: str) -> Guard:
    def check(ctx: Context) -> bool:
        _only(ctx, key)
        return True

    return Guard(f"the actor is the person recorded as {key!r}", check)


def _not_under_moderation(policy: AuditPolicy) -> Guard:
    return Guard(
        "no moderation in progress",
        lambda ctx: not ctx.data.get("moderation_open"),
        policy.moderation_clause,
    )


def _window_end(policy: AuditPolicy, data: Mapping[str, Any]) -> datetime | None:
    completed = data.get("completed_at")
    if not isinstance(completed, str):
        return None
    return Duration.parse(policy.moderation_window).after(datetime.fromisoformat(completed))


# --- the builder ------------------------------------------------------------------------


def _id_fields(policy: AuditPolicy) -> tuple[Field, ...]:
    required = ("child_id", "worker_id", "auditor_id", "team_id", "auditor_team_id")
    optional = sorted(
        {f"{role}_id" for role in policy.roles()} - set(required) | {"staying_together_worker_id"}
    )
    fields = [Field(name, "str", max_length=200) for name in required]
    fields += [Field(name, "str", required=False, max_length=200) for name in optional]
    fields.append(Field("allocated_at", "datetime", required=False))
    if policy.practice_week_action is not None:
        fields.append(Field("practice_week", "bool", required=False))
    return tuple(fields)


def _allocate(policy: AuditPolicy) -> TransitionSpec:
    def check_ids(ctx: Context) -> bool:
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

    def allocate(ctx: Context) -> Mapping[str, Any]:
        raw = ctx.payload.get("allocated_at")
        at = datetime.fromisoformat(raw) if raw is not None else ctx.at
        data: dict[str, Any] = {k: v for k, v in ctx.payload.items() if k.endswith("_id")}
        required: list[dict[str, Any]] = []
        if ctx.payload.get("practice_week") and policy.practice_week_action is not None:
            required.append(
                {"kind": policy.practice_week_action, "clause": policy.practice_week_clause}
            )
        if policy.lookback is not None:
            data["look_back_from"] = Duration.parse(policy.lookback).before(at).isoformat()
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

    effects: list[Effect] = [Update(allocate)]
    if policy.allocation_notice is not None:
        effects.append(notice_effect(policy.allocation_notice))
    if policy.completion_limit is not None:
        limit = policy.completion_limit
        effects.append(
            OpenDeadline(
                DeadlineRule(
                    COMPLETION_DEADLINE,
                    limit.within,
                    notify=limit.notify,
                    clause=limit.clause,
                    from_key="allocated_at",
                )
            )
        )
    return TransitionSpec(
        "allocate",
        (NEW,),
        ALLOCATED,
        frozenset(policy.allocator_roles),
        fields=_id_fields(policy),
        guards=(
            Guard("well-formed ids and an allocation time not in the future", check_ids),
            Guard(
                "an auditor who is not the case's worker",
                lambda ctx: ctx.payload["auditor_id"] != ctx.payload["worker_id"],
                policy.other_team_clause,
            ),
            Guard(
                "an auditor from another team than the case's",
                lambda ctx: ctx.payload["auditor_team_id"] != ctx.payload["team_id"],
                policy.other_team_clause,
            ),
        ),
        effects=tuple(effects),
        clause=policy.other_team_clause,
        description="Business support allocates the audit: auditor, child, worker, team.",
    )


def _grade_effects(policy: AuditPolicy) -> Derived:
    def fire(ctx: Context) -> list[Effect]:
        grade = Grade[str(ctx.data["grade"])]
        effects: list[Effect] = []
        for rule in policy.rules_for(grade):
            if rule.notify:
                effects.append(Notify(rule.notify, rule.reason, rule.clause))
            effects.extend(task_effect(task) for task in rule.tasks)
        return effects

    return Derived(fire)


def _record_grade(policy: AuditPolicy) -> Update:
    def record(ctx: Context) -> Mapping[str, Any]:
        answer = _copy(ctx.payload["answer"])
        grade = policy.form.grade(answer)
        answers = _answers(ctx.data)
        answers.update(_copy(ctx.payload.get("answers", {})))
        answers[policy.form.grading_question] = answer
        required = list(ctx.data.get("required_actions", []))
        immediate: str | None = None
        for rule in policy.rules_for(grade):
            required.extend({"kind": k, "clause": rule.clause} for k in rule.required_actions)
            if rule.immediate_actions and immediate is None:
                immediate = rule.clause
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

    return Update(record)


def _grade_guard(policy: AuditPolicy) -> Guard:
    def check(ctx: Context) -> bool:
        answer = ctx.payload.get("answer")
        if not isinstance(answer, dict):
            raise ValidationError(field="answer", value=answer, expected="an object")
        policy.form.grade(answer)  # raises ValidationError naming e.g. 'overall.score'
        return True

    return Guard("a valid overall grading answer", check, policy.clause_for("grading"))


def _actions_guards(policy: AuditPolicy) -> tuple[Guard, ...]:
    def valid(ctx: Context) -> bool:
        validate_actions(ctx.payload.get("actions"), ctx)
        return True

    def at_least_one(ctx: Context) -> bool:
        return bool(ctx.payload.get("actions"))

    def immediate(ctx: Context) -> bool:
        clause = ctx.data.get("immediate_actions_clause")
        if clause is None:
            return True
        if any(a.get("immediate") is True for a in ctx.payload["actions"]):
            return True
        raise _fail(ctx, "at least one immediate action to reach Good", clause)

    def required(ctx: Context) -> bool:
        kinds = {a.get("kind", "action") for a in ctx.payload["actions"]}
        for need in ctx.data.get("required_actions", []):
            if need["kind"] not in kinds:
                raise _fail(ctx, f"an action of kind {need['kind']!r}", need["clause"])
        return True

    return (
        Guard("valid actions (action, owner, when)", valid, policy.actions_clause),
        Guard("at least one action", at_least_one, policy.actions_clause),
        Guard("immediate actions when graded below Good", immediate, policy.actions_clause),
        Guard("the actions the grade requires", required),
    )


def _agree_actions(policy: AuditPolicy, source: str) -> TransitionSpec:
    def record(ctx: Context) -> Mapping[str, Any]:
        return {"actions": validate_actions(_copy(ctx.payload["actions"]), ctx)}

    return TransitionSpec(
        "agree_actions",
        (source,),
        ACTIONS_AGREED,
        frozenset({AUDITOR}),
        fields=(Field("actions", "list", max_length=50),),
        guards=(_actor_is("auditor_id"), *_actions_guards(policy)),
        effects=(
            Update(record),
            Derived(
                lambda ctx: action_task_effects(ctx, ctx.data["actions"], policy.actions_clause)
            ),
        ),
        clause=policy.actions_clause,
        description="Auditor and practitioner agree the actions (what, who, when).",
    )


def _complete(policy: AuditPolicy) -> TransitionSpec:
    guards = [
        _actor_is("auditor_id"),
        Guard(
            "at least one agreed action",
            lambda ctx: bool(ctx.data.get("actions")),
            policy.actions_clause,
        ),
    ]
    if policy.feedback is not None:
        feedback = policy.feedback
        guards.append(
            Guard(
                "family feedback, or the reason it could not be obtained",
                lambda ctx: (
                    family_feedback_complete(policy, ctx.data)
                    or bool(ctx.data.get("feedback_reason"))
                ),
                feedback.clause,
            )
        )
    effects: list[Effect] = [Update(lambda ctx: {"completed_at": ctx.at.isoformat()})]
    if policy.completion_limit is not None:
        effects.append(CloseDeadline(COMPLETION_DEADLINE))
    effects.extend(task_effect(task) for task in policy.completion_tasks)
    return TransitionSpec(
        "complete",
        (ACTIONS_AGREED,),
        COMPLETED,
        frozenset({AUDITOR}),
        guards=tuple(guards),
        effects=tuple(effects),
        clause=policy.feedback.clause if policy.feedback else policy.actions_clause,
        description="The auditor completes the audit.",
    )


def _moderation_transitions(
    policy: AuditPolicy, rest: tuple[str, ...], final: str
) -> list[TransitionSpec]:
    clause = policy.moderation_clause

    def start_ok(ctx: Context) -> bool:
        if ctx.data.get("moderation_open"):
            raise _fail(ctx, "no other moderation in progress", clause)
        if ctx.data.get("moderated"):
            raise _fail(ctx, "an audit not yet moderated", clause)
        end = _window_end(policy, ctx.data)
        if end is not None and ctx.at > end:
            raise _fail(
                ctx, f"an audit completed within the last {policy.moderation_window}", clause
            )
        return True

    def matches(ctx: Context) -> bool:
        if not ctx.data.get("moderation_open"):
            raise _fail(ctx, "a moderation in progress", clause)
        if ctx.payload["moderation_id"] != ctx.data.get("moderation_id"):
            raise ValidationError(
                field="moderation_id",
                value=ctx.payload["moderation_id"],
                expected="the id of the moderation in progress",
            )
        return True

    def moderator_ok(ctx: Context) -> bool:
        if ctx.payload["moderator_id"] == ctx.data.get("auditor_id"):
            raise _fail(ctx, "a moderator who is not the audit's auditor", clause)
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

    def window_over(ctx: Context) -> bool:
        end = _window_end(policy, ctx.data)
        return end is not None and ctx.at >= end

    def moderated(ctx: Context) -> Mapping[str, Any]:
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

    moderated_fields = (
        Field("moderation_id", "str", max_length=200),
        Field("moderator_id", "str", max_length=200),
        Field("grade", "choice", choices=tuple(g.name for g in Grade)),
        Field("agreed", "bool"),
    )
    moderated_guards = (
        Guard("the moderation in progress", matches, clause),
        Guard("the allocated moderator, who is not the auditor", moderator_ok, clause),
    )
    return [
        TransitionSpec(
            "moderation_started",
            rest,
            None,
            frozenset(policy.qa_roles),
            fields=(Field("moderation_id", "str", max_length=200),),
            guards=(Guard("an audit open to moderation", start_ok, clause),),
            effects=(
                Update(
                    lambda ctx: {
                        "moderation_open": True,
                        "moderation_id": ctx.payload["moderation_id"],
                    }
                ),
            ),
            clause=clause,
            description="Written by the moderation code: this audit was sampled.",
        ),
        # Several specs share "moderated" in the final state: the first whose guards pass
        # is taken. After the moderation window the write-back also closes the audit.
        TransitionSpec(
            "moderated",
            (final,),
            CLOSED,
            frozenset({MODERATOR}),
            fields=moderated_fields,
            guards=(Guard("the moderation window is over", window_over), *moderated_guards),
            effects=(Update(moderated),),
            clause="BX-MOD-05",
            description="Written by the moderation code: the agreed grade; closes late ones.",
        ),
        TransitionSpec(
            "moderated",
            rest,
            None,
            frozenset({MODERATOR}),
            fields=moderated_fields,
            guards=moderated_guards,
            effects=(Update(moderated),),
            clause="BX-MOD-05",
            description="Written by the moderation code: the agreed grade (both kept).",
        ),
        TransitionSpec(
            "moderation_cancelled",
            rest,
            None,
            frozenset(policy.qa_roles),
            fields=(Field("moderation_id", "str", max_length=200),),
            guards=(Guard("the moderation in progress", matches, clause),),
            effects=(Update(lambda ctx: {"moderation_open": False, "moderation_id": None}),),
            clause=clause,
            description="Written by the moderation code: the moderation was cancelled.",
        ),
        TransitionSpec(
            "close",
            (final,),
            CLOSED,
            frozenset(policy.qa_roles),
            guards=(_not_under_moderation(policy),),
            clause=clause,
            description="The moderation window has passed (fired by tick), or QA closes it.",
        ),
    ]


def _extend_lookback(policy: AuditPolicy, sources: tuple[str, ...]) -> TransitionSpec:
    """BK-AUD-03: the audit looks back over the policy's period; the auditor may look
    further back (never less far) when a concern needs it."""

    def earlier(ctx: Context) -> bool:
        wanted = datetime.fromisoformat(str(ctx.payload["look_back_from"]))
        current = datetime.fromisoformat(str(ctx.data["look_back_from"]))
        if wanted >= current:
            raise ValidationError(
                field="look_back_from",
                value=str(ctx.payload["look_back_from"]),
                expected=f"earlier than the current look-back start ({current.isoformat()})",
            )
        return True

    return TransitionSpec(
        "extend_lookback",
        sources,
        None,
        frozenset({AUDITOR}),
        fields=(
            Field("look_back_from", "datetime"),
            Field("reason", "str", max_length=_TEXT_LIMIT),
        ),
        guards=(
            _actor_is("auditor_id"),
            Guard("an earlier start", earlier, policy.lookback_clause),
        ),
        effects=(
            Update(
                lambda ctx: {
                    "look_back_from": datetime.fromisoformat(str(ctx.payload["look_back_from"]))
                    .astimezone(UTC)
                    .isoformat()
                }
            ),
        ),
        clause=policy.lookback_clause,
        description="The auditor looks further back than the default period.",
    )


def _staying_together(notice: NoticeRule) -> Derived:
    """BX-AUD-02: the Staying Together worker, where there is one, is asked the same way."""

    def fire(ctx: Context) -> list[Effect]:
        if not ctx.data.get("staying_together_worker_id"):
            return []
        return [Notify(("staying_together_worker",), notice.reason, notice.clause)]

    return Derived(fire)


def audit_spec(policy: AuditPolicy) -> MachineSpec:
    """Build the audit machine for ``policy`` (validated: raises PolicyError if broken)."""
    auditor = frozenset({AUDITOR})
    states: list[StateSpec] = [StateSpec(NEW, description="Not yet allocated.")]
    transitions: list[TransitionSpec] = [_allocate(policy)]

    # Allocation -> (self-assessment) -> meeting.
    states.append(StateSpec(ALLOCATED, description="Allocated to an auditor (BX-AUD-01)."))
    before_meeting = ALLOCATED
    if policy.has_self_assessment:
        clause = policy.clause_for("self_assessment")
        on_enter: list[Effect] = []
        if policy.self_assessment_notice is not None:
            on_enter.append(notice_effect(policy.self_assessment_notice))
            on_enter.append(_staying_together(policy.self_assessment_notice))
        if policy.self_assessment_task is not None:
            on_enter.append(task_effect(policy.self_assessment_task))
        states += [
            StateSpec(
                SELF_ASSESSMENT_REQUESTED,
                on_enter=tuple(on_enter),
                description="Meeting booked; the practitioner self-assesses first.",
            ),
            StateSpec(SELF_ASSESSMENT_DONE, description="Self-assessment done."),
        ]
        transitions += [
            TransitionSpec(
                "request_self_assessment",
                (ALLOCATED,),
                SELF_ASSESSMENT_REQUESTED,
                auditor,
                fields=(Field("meeting_at", "datetime", required=False),),
                guards=(_actor_is("auditor_id"),),
                effects=(
                    Update(
                        lambda ctx: (
                            {"meeting_at": ctx.payload["meeting_at"]}
                            if "meeting_at" in ctx.payload
                            else {}
                        )
                    ),
                ),
                clause=policy.self_assessment_notice.clause
                if policy.self_assessment_notice
                else clause,
                description="The auditor books the meeting and asks for the self-assessment.",
            ),
            TransitionSpec(
                "submit_self_assessment",
                (SELF_ASSESSMENT_REQUESTED,),
                SELF_ASSESSMENT_DONE,
                frozenset({WORKER}),
                fields=(Field("answers", "dict", required=False),),
                guards=(
                    _actor_is("worker_id"),
                    _answers_guard(policy),
                    _complete_guard(policy, "self_assessment", "every self-assessment answer"),
                ),
                effects=(Update(lambda ctx: {"answers": _copy(_merged(ctx, "answers"))}),),
                clause=clause,
                description="The practitioner submits the self-assessment.",
            ),
        ]
        before_meeting = SELF_ASSESSMENT_DONE
    meeting_guards: list[Guard] = [_actor_is("auditor_id"), _answers_guard(policy)]
    if policy.has_health_check:
        meeting_guards.append(
            _complete_guard(policy, "health_check", "the case-file health check before the meeting")
        )
    states.append(StateSpec(AUDIT_MEETING, description="Auditor and practitioner meet."))
    transitions.append(
        TransitionSpec(
            "hold_meeting",
            (before_meeting,),
            AUDIT_MEETING,
            auditor,
            fields=(Field("answers", "dict", required=False),),
            guards=tuple(meeting_guards),
            effects=(Update(lambda ctx: {"answers": _copy(_merged(ctx, "answers"))}),),
            clause=policy.clause_for("health_check") or policy.clause_for("meeting"),
            description="The collaborative audit meeting starts.",
        )
    )

    # Grading.
    states.append(StateSpec(GRADED, description="Graded by the auditor."))
    transitions.append(
        TransitionSpec(
            "grade",
            (AUDIT_MEETING,),
            GRADED,
            auditor,
            fields=(Field("answer", "dict"), Field("answers", "dict", required=False)),
            guards=(
                _actor_is("auditor_id"),
                _grade_guard(policy),
                _answers_guard(policy),
                _complete_guard(policy, "grading", "every required answer before grading"),
            ),
            effects=(_record_grade(policy), _grade_effects(policy)),
            clause=policy.clause_for("grading"),
            description="The auditor grades the audit (the policy's bands or judgements).",
        )
    )

    # Feedback and actions.
    before_actions = GRADED
    if policy.feedback is not None:
        states.append(StateSpec(FEEDBACK_SOUGHT, description="Feedback sought (BX-AUD-07)."))
        transitions.append(
            TransitionSpec(
                "seek_feedback",
                (GRADED,),
                FEEDBACK_SOUGHT,
                auditor,
                guards=(_actor_is("auditor_id"),),
                clause=policy.feedback.clause,
                description="The auditor seeks feedback from the family and the child.",
            )
        )
        before_actions = FEEDBACK_SOUGHT
    feedback_states = tuple(
        s
        for s in (GRADED, FEEDBACK_SOUGHT, ACTIONS_AGREED)
        if "feedback" in _open_stages(policy, s)
    )
    if policy.feedback is not None:
        transitions.append(
            TransitionSpec(
                "feedback_not_obtained",
                feedback_states,
                None,
                auditor,
                fields=(Field("reason", "str", max_length=_TEXT_LIMIT),),
                guards=(_actor_is("auditor_id"),),
                effects=(Update(lambda ctx: {"feedback_reason": ctx.payload["reason"]}),),
                clause=policy.feedback.clause,
                description="Records why family feedback could not be obtained.",
            )
        )
    states.append(StateSpec(ACTIONS_AGREED, description="Actions agreed (BX-AUD-08)."))
    transitions.append(_agree_actions(policy, before_actions))

    # Completion, follow-up, closure.
    completed_deadlines: tuple[DeadlineRule, ...] = ()
    if policy.follow_up is not None:
        completed_deadlines = (
            DeadlineRule(
                FOLLOW_UP_DEADLINE,
                policy.follow_up.within,
                notify=policy.follow_up.notify,
                clause=policy.follow_up.clause,
            ),
        )
    window = DeadlineRule(
        MODERATION_WINDOW,
        policy.moderation_window,
        breach_trigger="close",
        clause=policy.moderation_clause,
        from_key="completed_at",
    )
    rest: tuple[str, ...]
    if policy.follow_up is not None:
        states += [
            StateSpec(COMPLETED, deadlines=completed_deadlines, description="Completed."),
            StateSpec(FOLLOWED_UP, deadlines=(window,), description="Followed up (BX-AUD-09)."),
        ]
        transitions.append(
            TransitionSpec(
                "follow_up",
                (COMPLETED,),
                FOLLOWED_UP,
                auditor,
                fields=(Field("note", "str", max_length=_TEXT_LIMIT),),
                guards=(_actor_is("auditor_id"),),
                effects=(Update(lambda ctx: {"followed_up_at": ctx.at.isoformat()}),),
                clause=policy.follow_up.clause,
                description="The auditor follows up with the manager and case-notes it.",
            )
        )
        rest, final = (COMPLETED, FOLLOWED_UP), FOLLOWED_UP
    else:
        states.append(StateSpec(COMPLETED, deadlines=(window,), description="Completed."))
        rest, final = (COMPLETED,), COMPLETED
    transitions.append(_complete(policy))
    transitions += _moderation_transitions(policy, rest, final)
    states += [
        StateSpec(CLOSED, terminal=True, description="Closed after its moderation window."),
        StateSpec(CANCELLED, terminal=True, description="Cancelled, with a reason."),
    ]

    # Cancellation and the answers and safeguarding commands of any open state.
    open_states = tuple(s.name for s in states if not s.terminal and s.name != NEW)
    transitions.append(
        TransitionSpec(
            "cancel",
            open_states,
            CANCELLED,
            frozenset(policy.cancel_roles),
            fields=(Field("reason", "str", max_length=_TEXT_LIMIT),),
            guards=(_not_under_moderation(policy),),
            effects=(
                Update(
                    lambda ctx: {
                        "cancel_reason": ctx.payload["reason"],
                        "cancelled_at": ctx.at.isoformat(),
                    }
                ),
            ),
            description="Cancel the audit, recording why.",
        )
    )
    answering = tuple(s for s in open_states if _open_stages(policy, s))
    transitions.append(
        TransitionSpec(
            "answer",
            answering,
            None,
            frozenset({AUDITOR, WORKER}),
            fields=(Field("answers", "dict"),),
            guards=(_answers_guard(policy),),
            effects=(Update(lambda ctx: {"answers": _copy(_merged(ctx, "answers"))}),),
            description="Record answers to form questions whose stage is open.",
        )
    )
    if policy.lookback is not None:
        transitions.append(_extend_lookback(policy, open_states))
    if policy.safeguarding is not None:
        safeguarding = policy.safeguarding
        transitions.append(
            TransitionSpec(
                "escalate_safeguarding",
                open_states,
                None,
                auditor,
                fields=(
                    Field("concern", "str", max_length=_TEXT_LIMIT),
                    Field("corrective_action", "str", max_length=_TEXT_LIMIT),
                ),
                guards=(_actor_is("auditor_id"),),
                effects=(
                    Update(
                        lambda ctx: {
                            "safeguarding_escalations": int(
                                ctx.data.get("safeguarding_escalations", 0)
                            )
                            + 1
                        }
                    ),
                    notice_effect(safeguarding),
                ),
                clause=safeguarding.clause,
                description="Escalate a serious safeguarding issue to senior managers now.",
            )
        )
    return MachineSpec(
        name=MACHINE,
        policy=policy.name,
        policy_version=policy.version,
        initial=NEW,
        states=tuple(states),
        transitions=tuple(transitions),
        calendar=policy.policy.calendar,
        migration_roles=policy.policy.migration_roles,
        description=f"Case audit under {policy.name}'s policy ({policy.form.name}).",
    )


def allocation_payload(
    policy: AuditPolicy,
    *,
    child_id: str,
    worker_id: str,
    auditor_id: str,
    directory: InMemoryDirectory,
    allocated_at: datetime | None = None,
    practice_week: bool | None = None,
    **extra_ids: str,
) -> dict[str, Any]:
    """The ``allocate`` payload for one audit, with every notified role's id looked up.

    ``directory`` supplies the teams and managers (a host's own directory needs its
    ``team_of``, ``service_of``, ``management_chain`` and ``holder_of``): the case's team is
    the worker's, the managers are the worker's chain, organisation-wide roles (assistant
    director, PSQA, ...) their single holders. Only the ids the policy's ``allocate`` accepts
    are kept: under a policy that notifies no service manager (BK) the worker's chain gives
    no ``service_manager_id``.

    BX-AUD-01 compares the auditor's team with the case's. An auditor with no team of their
    own (a service manager) is given the service they manage as ``auditor_team_id``.
    ``extra_ids`` (``staying_together_worker_id=...``, ``auditor_team_id=...``) are passed as
    given and override what was looked up. Raises :class:`~qaflow.errors.ValidationError`
    when the worker has no team, or the auditor neither team nor service, and ``extra_ids``
    does not give one.
    """
    team = extra_ids.get("team_id") or directory.team_of(worker_id)
    auditor_team = (
        extra_ids.get("auditor_team_id")
        or directory.team_of(auditor_id)
        or directory.service_of(auditor_id)
    )
    for key, found, whose in (
        ("team_id", team, f"the team of {worker_id!r}"),
        ("auditor_team_id", auditor_team, f"the team or service of {auditor_id!r}"),
    ):
        if not found:
            raise ValidationError(
                field=key, value=found, expected=f"{whose} in the directory, or given as {key}=..."
            )
    payload: dict[str, Any] = {
        "child_id": child_id,
        "worker_id": worker_id,
        "auditor_id": auditor_id,
        "team_id": team,
        "auditor_team_id": auditor_team,
    }
    payload.update(directory.management_chain(worker_id))
    for role in policy.roles():
        key = f"{role}_id"
        if key not in payload:
            holder = directory.holder_of(role)
            if holder is not None:
                payload[key] = holder
    accepted = {f.name for f in _id_fields(policy)}
    payload = {k: v for k, v in payload.items() if k in accepted}
    if allocated_at is not None:
        payload["allocated_at"] = allocated_at.astimezone(UTC).isoformat()
    if practice_week is not None and policy.practice_week_action is not None:
        payload["practice_week"] = practice_week
    payload.update(extra_ids)
    return payload


SHIPPED_POLICIES: Final = (bexley.BEXLEY_AUDIT, buckinghamshire.BUCKINGHAMSHIRE_AUDIT)
"""The audit policies qaflow ships, one per council (defined in the council modules)."""


def shipped_specs() -> tuple[MachineSpec, ...]:
    """The audit machine under every shipped council policy (for the registry and CLI)."""
    return tuple(audit_spec(policy) for policy in SHIPPED_POLICIES)
