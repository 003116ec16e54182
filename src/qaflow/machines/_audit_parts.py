"""The audit machine's parts: guards, effects and transitions built from an AuditPolicy.

:func:`qaflow.machines.audit.audit_spec` assembles these; each cites its clause.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from qaflow.machines._audit_data import (
    form_data,
)
from qaflow.machines._audit_feedback import feedback_complete, feedback_guard, recorded_questions
from qaflow.machines._audit_review import actions_notice_effects
from qaflow.machines._audit_states import (
    ACTIONS_AGREED,
    ALLOCATED,
    AUDIT_MEETING,
    COMPLETED,
    COMPLETION_DEADLINE,
    FEEDBACK_SOUGHT,
    GRADED,
    NEW,
    SELF_ASSESSMENT_DONE,
    SELF_ASSESSMENT_REQUESTED,
    TEXT_LIMIT,
)
from qaflow.machines._audit_vocabulary import notice_data, task_data
from qaflow.machines._audit_vocabulary import record as _record
from qaflow.procedure import (
    AUDITOR,
    AuditPolicy,
    GradeRule,
    NoticeRule,
    TaskRule,
)
from qaflow.spec import (
    AddTask,
    CloseDeadline,
    DeadlineRule,
    Derived,
    Effect,
    Field,
    Guard,
    Notify,
    OpenDeadline,
    TransitionSpec,
    Update,
)


def _notice_effect(rule: NoticeRule) -> Notify:
    """The effect that writes a policy's notice: its roles, reason and clause."""
    return Notify(rule.roles, rule.reason, rule.clause)


def _task_effect(rule: TaskRule) -> AddTask:
    """The effect that opens a policy's task: its kind, owner role, due time and clause."""
    return AddTask(rule.kind, rule.owner_role, rule.within, rule.clause)


# --- helpers over workflow data ---------------------------------------------------------


def family_feedback_complete(policy: AuditPolicy, data: Mapping[str, Any]) -> bool:
    """Whether ``data`` holds the feedback the policy requires (BX-AUD-07): a complete answer
    set from each required respondent (the family: every statement scored)."""
    rule = policy.feedback
    if rule is None:
        return True
    return feedback_complete(policy.form, rule.questions, rule.required_from, data)


_MERGE: Final = Update(use="audit.merge_answers")


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


def _answers_guard(policy: AuditPolicy) -> Guard:
    """Answers that are on the form, well formed, of a stage open now, by the right person."""
    states = (
        ALLOCATED,
        SELF_ASSESSMENT_REQUESTED,
        SELF_ASSESSMENT_DONE,
        AUDIT_MEETING,
        GRADED,
        FEEDBACK_SOUGHT,
        ACTIONS_AGREED,
    )
    return Guard(
        "answers that are valid, of a stage open now, by the right person",
        use="audit.valid_answers",
        args={
            "form": form_data(policy.form),
            "open": {state: list(_open_stages(policy, state)) for state in states},
            "clauses": dict(policy.stage_clauses),
            "recorded": recorded_questions(policy),
        },
    )


def _complete_guard(policy: AuditPolicy, stage: str, condition: str) -> Guard:
    """Every required question of ``stage`` (before grading: and earlier stages) answered."""
    clause = policy.clause_for(stage)
    stages = policy.form.stages_through(stage) if stage == "grading" else (stage,)
    return Guard(
        condition,
        clause,
        use="audit.required_answered",
        args={
            "form": form_data(policy.form),
            "stages": list(stages),
            "condition": condition,
            "clause": clause,
        },
    )


def _not_under_moderation(policy: AuditPolicy) -> Guard:
    return Guard(
        "no moderation in progress",
        policy.moderation_clause,
        expr="data.moderation_open != true",
    )


def _cel(value: str) -> str:
    """``value`` as a CEL string literal (JSON's quoting and escapes are valid CEL)."""
    return json.dumps(value)


# --- the builder ------------------------------------------------------------------------


def _id_fields(policy: AuditPolicy) -> tuple[Field, ...]:
    """The allocation's ids: the auditor's team is required only where the policy compares
    it with the case's team (an auditor may hold no team, e.g. a QA practitioner)."""
    required: tuple[str, ...] = ("child_id", "worker_id", "auditor_id", "team_id")
    if policy.auditor_from_other_team:
        required += ("auditor_team_id",)
    optional = sorted(
        {f"{role}_id" for role in policy.roles()} - set(required)
        | {"staying_together_worker_id", "auditor_team_id"} - set(required)
    )
    fields = [Field(name, "str", max_length=200) for name in required]
    fields += [Field(name, "str", required=False, max_length=200) for name in optional]
    fields.append(Field("allocated_at", "datetime", required=False))
    if policy.practice_week_action is not None:
        fields.append(Field("practice_week", "bool", required=False))
    return tuple(fields)


def _allocate(policy: AuditPolicy) -> TransitionSpec:
    guards = [
        Guard("well-formed ids and an allocation time not in the future", use="audit.valid_ids"),
        Guard(
            "an auditor who is not the case's worker",
            policy.other_team_clause,
            expr="payload.auditor_id != payload.worker_id",
        ),
    ]
    if policy.auditor_from_other_team:
        guards.append(
            Guard(
                "an auditor from another team than the case's",
                policy.other_team_clause,
                expr="payload.auditor_team_id != payload.team_id",
            )
        )
    allocate = Update(
        use="audit.allocate",
        args={
            "practice_week_action": policy.practice_week_action,
            "practice_week_clause": policy.practice_week_clause,
            "lookback": policy.lookback,
        },
    )
    effects: list[Effect] = [allocate]
    if policy.allocation_notice is not None:
        effects.append(_notice_effect(policy.allocation_notice))
    if policy.selection_notice is not None:  # BK-AUD-07: the practitioner is told
        effects.append(_notice_effect(policy.selection_notice))
    if policy.selection_task is not None:  # ... and the auditor arranges a meeting
        effects.append(_task_effect(policy.selection_task))
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
        guards=tuple(guards),
        effects=tuple(effects),
        clause=policy.other_team_clause,
        description="Business support allocates the audit: auditor, child, worker, team.",
    )


def _grade_effects(policy: AuditPolicy) -> Derived:
    rules = [
        [
            sorted(g.name for g in r.grades),
            notice_data(_rule_notice(r) if r.notify_with == "grading" else None),
            [task_data(t) for t in r.tasks],
        ]
        for r in policy.grade_rules
    ]
    return Derived(use="audit.grade_effects", args={"rules": rules})


def _rule_notice(rule: GradeRule) -> NoticeRule | None:
    return (
        NoticeRule(roles=rule.notify, reason=rule.reason, clause=rule.clause)
        if rule.notify
        else None
    )


def _record_grade(policy: AuditPolicy) -> Update:
    rules = [
        [sorted(g.name for g in r.grades), r.clause, list(r.required_actions), r.immediate_actions]
        for r in policy.grade_rules
    ]
    return Update(use="audit.record_grade", args={"form": form_data(policy.form), "rules": rules})


def _grade_guard(policy: AuditPolicy) -> Guard:
    return Guard(
        "a valid overall grading answer",
        policy.clause_for("grading"),
        use="audit.valid_grading",
        args={"form": form_data(policy.form)},
    )


def _actions_guards(policy: AuditPolicy) -> tuple[Guard, ...]:
    guards = [
        Guard(
            "valid actions (action, owner, when)", policy.actions_clause, use="audit.valid_actions"
        ),
        Guard("at least one action", policy.actions_clause, expr="size(payload.actions) > 0"),
    ]
    # Below Good (the first grade rule asking for them): at least one immediate action.
    immediate = "payload.actions.exists(a, has(a.immediate) && a.immediate == true)"
    for rule in policy.grade_rules:
        if rule.immediate_actions:
            grades = ", ".join(_cel(g.name) for g in sorted(rule.grades))
            guards.append(
                Guard(
                    "at least one immediate action to reach Good",
                    rule.clause,
                    expr=f"!(data.grade in [{grades}]) || {immediate}",
                )
            )
    # Each action kind the grade (or Practice Week) requires, under the rule that requires it.
    needs = [(k, r.clause) for r in policy.grade_rules for k in r.required_actions]
    if policy.practice_week_action is not None and policy.practice_week_clause is not None:
        needs.append((policy.practice_week_action, policy.practice_week_clause))
    for kind, clause in dict.fromkeys(needs):
        needed = f"n.kind == {_cel(kind)} && n.clause == {_cel(clause)}"
        given = f"has(a.kind) && a.kind == {_cel(kind)}"
        guards.append(
            Guard(
                f"an action of kind {kind!r}",
                clause,
                expr=f"!data.required_actions.exists(n, {needed}) || "
                f"payload.actions.exists(a, {given})",
            )
        )
    return tuple(guards)


def _agree_actions(policy: AuditPolicy, source: str) -> TransitionSpec:
    return TransitionSpec(
        "agree_actions",
        (source,),
        ACTIONS_AGREED,
        frozenset({AUDITOR}),
        fields=(Field("actions", "list", max_length=50),),
        guards=_actions_guards(policy),
        actor_key="auditor_id",
        effects=(
            Update(use="audit.record_actions"),
            Derived(use="audit.action_tasks", args={"clause": policy.actions_clause}),
            *actions_notice_effects(policy),
        ),
        clause=policy.actions_clause,
        description="Auditor and practitioner agree the actions (what, who, when).",
    )


def _complete(policy: AuditPolicy) -> TransitionSpec:
    guards = [
        Guard("at least one agreed action", policy.actions_clause, expr="size(data.actions) > 0"),
    ]
    if policy.feedback is not None:
        guards.append(feedback_guard(policy, policy.feedback))
    effects: list[Effect] = [_record(now=["completed_at"])]
    if policy.completion_limit is not None:
        effects.append(CloseDeadline(COMPLETION_DEADLINE))
    effects.extend(_task_effect(task) for task in policy.completion_tasks)
    return TransitionSpec(
        "complete",
        (ACTIONS_AGREED,),
        COMPLETED,
        frozenset({AUDITOR}),
        guards=tuple(guards),
        effects=tuple(effects),
        actor_key="auditor_id",
        clause=policy.feedback.clause if policy.feedback else policy.actions_clause,
        description="The auditor completes the audit.",
    )


def _extend_lookback(policy: AuditPolicy, sources: tuple[str, ...]) -> TransitionSpec:
    """BK-AUD-03: the audit looks back over the policy's period; the auditor may look
    further back (never less far) when a concern needs it."""

    return TransitionSpec(
        "extend_lookback",
        sources,
        None,
        frozenset({AUDITOR}),
        fields=(
            Field("look_back_from", "datetime"),
            Field("reason", "str", max_length=TEXT_LIMIT),
        ),
        guards=(Guard("an earlier start", policy.lookback_clause, use="audit.earlier_lookback"),),
        actor_key="auditor_id",
        effects=(Update(use="audit.extend_lookback"),),
        clause=policy.lookback_clause,
        description="The auditor looks further back than the default period.",
    )


def _staying_together(notice: NoticeRule) -> Derived:
    """BX-AUD-02: the Staying Together worker, where there is one, is asked the same way."""

    return Derived(
        use="audit.staying_together", args={"reason": notice.reason, "clause": notice.clause}
    )


def _arrange_meeting(policy: AuditPolicy) -> TransitionSpec | None:
    """BK-AUD-07: the auditor arranges the meeting with the practitioner (recorded)."""
    rule = policy.selection_task or policy.selection_notice
    if rule is None:
        return None
    return TransitionSpec(
        "arrange_meeting",
        (ALLOCATED,),
        None,
        frozenset({AUDITOR}),
        fields=(Field("meeting_at", "datetime"),),
        actor_key="auditor_id",
        effects=(_record(payload={"meeting_at": "meeting_at"}, now=["meeting_arranged_at"]),),
        clause=rule.clause,
        description="The auditor arranges the meeting with the practitioner.",
    )
