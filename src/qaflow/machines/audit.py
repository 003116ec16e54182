"""The collaborative case audit as a machine built from a council's :class:`AuditPolicy`.

The policy is data (:mod:`qaflow.procedure` defines its types and reads it from a procedure
file; the shipped files are listed in :mod:`qaflow.policies`); this module only builds the
machine from it, imports no council, and helps a host allocate (:func:`allocation_payload`,
:func:`allocation_rules`).

The lifecycle::

    new -allocate-> allocated -request_self_assessment-> self_assessment_requested
        -submit_self_assessment-> self_assessment_done -hold_meeting-> audit_meeting
        -grade-> graded -seek_feedback-> feedback_sought -agree_actions-> actions_agreed
        -complete-> completed -follow_up-> followed_up -close-> closed
    any open state -cancel (with a reason)-> cancelled

States a council's policy does not use are left out when the machine is built: a form
without a self-assessment stage goes straight from ``allocated`` to the meeting, a policy
without a feedback rule from ``graded`` to agreeing actions, one without a follow-up rule
rests in ``completed``. So a new council is a new procedure file (read into an
:class:`AuditPolicy`), never code.

What the guards enforce, each citing its clause: the auditor is not from the case's team
where the policy says so (BX-AUD-01); the self-assessment (BX-AUD-03) and the health
check (BX-AUD-04) are done before the meeting; every required answer is given before
grading (BX-AUD-05, BK-AUD-01); family feedback, or the reason it could not be had, before
completion (BX-AUD-07); at least one action, and immediate actions below Good (BX-AUD-08,
BK-AUD-05), and the practice observation after an Inadequate grade or in Practice Week
(BX-AUD-11). The spec holds no closure: each guard is a CEL expression or a named entry of
the vocabulary (``machines/_audit_vocabulary.py``) with plain-data arguments, and returns a
verdict; the engine raises ``GuardFailed``. Who may act is the transition's ``actor_key``.

What the effects do (named vocabulary entries too): grading maps the overall answer to a
grade through the form's bands, its judgement scale, or directly; the policy's grade rules
then write notifications and tasks (BX-AUD-12: the exact roles, tasks due in 24 h). Agreed
actions become tasks with an owner and a due date. Completion opens the follow-up deadline
(BX-AUD-09); allocation opens the completion deadline (BK-AUD-02, from the allocation
time). A serious safeguarding issue is escalated in the same step that records it
(BK-AUD-04).

Moderation (``qaflow.machines.moderation``) writes back to the audit through three internal
transitions, ``moderation_started``, ``moderated`` and ``moderation_cancelled``: the
moderated grade becomes the audit's grade and both grades stay in the history (BX-MOD-05).
The audit closes when its moderation window has passed (``close``, fired by ``tick``).

Answers arrive as JSON objects, ``{"answers": {"Q7": {"score": 6, ...}}}``, and are checked
by :meth:`~qaflow.procedure.Question.validate_answer` before anything is written: a
bad answer raises :class:`~qaflow.errors.ValidationError` naming the field and the range.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from qaflow.allocation import AllocationRules
from qaflow.directory import InMemoryDirectory
from qaflow.errors import ValidationError
from qaflow.machines._audit_data import (
    _answers,
    form_data,
)
from qaflow.machines._audit_vocabulary import feedback_args, notice_data, task_data
from qaflow.machines._audit_vocabulary import record as _record
from qaflow.procedure import (
    AUDITOR,
    MODERATOR,
    WORKER,
    AuditPolicy,
    Grade,
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
    "allocation_payload",
    "allocation_rules",
    "audit_spec",
    "family_feedback_complete",
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


COMPLETION_DEADLINE: Final = "completion"
FOLLOW_UP_DEADLINE: Final = "follow_up"
MODERATION_WINDOW: Final = "moderation_window"

_TEXT_LIMIT: Final = 4000


def _notice_effect(rule: NoticeRule) -> Notify:
    """The effect that writes a policy's notice: its roles, reason and clause."""
    return Notify(rule.roles, rule.reason, rule.clause)


def _task_effect(rule: TaskRule) -> AddTask:
    """The effect that opens a policy's task: its kind, owner role, due time and clause."""
    return AddTask(rule.kind, rule.owner_role, rule.within, rule.clause)


# --- helpers over workflow data ---------------------------------------------------------


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
            notice_data(_rule_notice(r)),
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
        ),
        clause=policy.actions_clause,
        description="Auditor and practitioner agree the actions (what, who, when).",
    )


def _complete(policy: AuditPolicy) -> TransitionSpec:
    guards = [
        Guard("at least one agreed action", policy.actions_clause, expr="size(data.actions) > 0"),
    ]
    if policy.feedback is not None:
        feedback = policy.feedback
        questions = [policy.form.question(qid) for qid in feedback.questions]
        guards.append(
            Guard(
                "family feedback, or the reason it could not be obtained",
                feedback.clause,
                use="audit.feedback_or_reason",
                args=feedback_args(questions),
            )
        )
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


def _moderation_transitions(
    policy: AuditPolicy, rest: tuple[str, ...], final: str
) -> list[TransitionSpec]:
    clause = policy.moderation_clause

    window = {"within": policy.moderation_window}
    start_guards = (
        Guard("no other moderation in progress", clause, expr="data.moderation_open != true"),
        Guard("an audit not yet moderated", clause, expr="data.moderated != true"),
        Guard(
            f"an audit completed within the last {policy.moderation_window}",
            clause,
            use="audit.within_moderation_window",
            args=window,
        ),
    )
    in_progress = Guard("a moderation in progress", clause, expr="data.moderation_open == true")

    matches = Guard(
        "the id of the moderation in progress", clause, use="audit.moderation_id_matches"
    )
    moderated_fields = (
        Field("moderation_id", "str", max_length=200),
        Field("moderator_id", "str", max_length=200),
        Field("grade", "choice", choices=tuple(g.name for g in Grade)),
        Field("agreed", "bool"),
    )
    moderated_guards = (
        in_progress,
        matches,
        Guard(
            "a moderator who is not the audit's auditor",
            clause,
            expr="payload.moderator_id != data.auditor_id",
        ),
        Guard("the allocated moderator, named in the payload", clause, use="audit.named_moderator"),
    )
    window_over = Guard(
        "the moderation window is over", use="audit.moderation_window_over", args=window
    )
    return [
        TransitionSpec(
            "moderation_started",
            rest,
            None,
            frozenset(policy.qa_roles),
            fields=(Field("moderation_id", "str", max_length=200),),
            guards=start_guards,
            effects=(
                _record(
                    values={"moderation_open": True}, payload={"moderation_id": "moderation_id"}
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
            guards=(*moderated_guards, window_over),
            effects=(Update(use="audit.moderated"),),
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
            effects=(Update(use="audit.moderated"),),
            clause="BX-MOD-05",
            description="Written by the moderation code: the agreed grade (both kept).",
        ),
        TransitionSpec(
            "moderation_cancelled",
            rest,
            None,
            frozenset(policy.qa_roles),
            fields=(Field("moderation_id", "str", max_length=200),),
            guards=(in_progress, matches),
            effects=(_record(values={"moderation_open": False, "moderation_id": None}),),
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

    return TransitionSpec(
        "extend_lookback",
        sources,
        None,
        frozenset({AUDITOR}),
        fields=(
            Field("look_back_from", "datetime"),
            Field("reason", "str", max_length=_TEXT_LIMIT),
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


def audit_spec(policy: AuditPolicy) -> MachineSpec:
    """Build the audit machine for ``policy`` (validated: raises PolicyError if broken)."""
    auditor = frozenset({AUDITOR})
    answers = _answers_guard(policy)  # one guard (its form frozen once), cited four times
    states: list[StateSpec] = [StateSpec(NEW, description="Not yet allocated.")]
    transitions: list[TransitionSpec] = [_allocate(policy)]

    # Allocation -> (self-assessment) -> meeting.
    states.append(StateSpec(ALLOCATED, description="Allocated to an auditor (BX-AUD-01)."))
    before_meeting = ALLOCATED
    if policy.has_self_assessment:
        clause = policy.clause_for("self_assessment")
        on_enter: list[Effect] = []
        if policy.self_assessment_notice is not None:
            on_enter.append(_notice_effect(policy.self_assessment_notice))
            on_enter.append(_staying_together(policy.self_assessment_notice))
        if policy.self_assessment_task is not None:
            on_enter.append(_task_effect(policy.self_assessment_task))
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
                actor_key="auditor_id",
                effects=(_record(payload={"meeting_at": "meeting_at"}),),
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
                actor_key="worker_id",
                guards=(
                    answers,
                    _complete_guard(policy, "self_assessment", "every self-assessment answer"),
                ),
                effects=(_MERGE,),
                clause=clause,
                description="The practitioner submits the self-assessment.",
            ),
        ]
        before_meeting = SELF_ASSESSMENT_DONE
    meeting_guards: list[Guard] = [answers]
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
            actor_key="auditor_id",
            effects=(_MERGE,),
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
            actor_key="auditor_id",
            guards=(
                _grade_guard(policy),
                answers,
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
                actor_key="auditor_id",
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
                actor_key="auditor_id",
                effects=(_record(payload={"feedback_reason": "reason"}),),
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
                actor_key="auditor_id",
                effects=(_record(now=["followed_up_at"]),),
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
            effects=(_record(payload={"cancel_reason": "reason"}, now=["cancelled_at"]),),
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
            guards=(answers,),
            effects=(_MERGE,),
            description="Record answers to form questions whose stage is open.",
        )
    )
    if policy.lookback is not None and policy.lookback_may_extend:
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
                actor_key="auditor_id",
                effects=(
                    _record(increment=["safeguarding_escalations"]),
                    _notice_effect(safeguarding),
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
    own (a service manager) is given the service they manage as ``auditor_team_id``; under a
    policy that does not compare them, an auditor with neither is allocated without one.
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
        if not found and (key == "team_id" or policy.auditor_from_other_team):
            raise ValidationError(
                field=key, value=found, expected=f"{whose} in the directory, or given as {key}=..."
            )
    payload: dict[str, Any] = {
        "child_id": child_id,
        "worker_id": worker_id,
        "auditor_id": auditor_id,
        "team_id": team,
    }
    if auditor_team:
        payload["auditor_team_id"] = auditor_team
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


def allocation_rules(policy: AuditPolicy) -> AllocationRules:
    """The constraints :func:`qaflow.allocation.allocate_audits` applies under ``policy``.

    Read from the policy's allocation rules: whether the auditor must be from another team
    than the case's (and the clause that says so), how long before an auditor and a worker
    are paired again, and the clause of one audit per auditor a month.
    """
    return AllocationRules(
        exclude_own_team=policy.auditor_from_other_team,
        own_team_clause=policy.other_team_clause,
        pair_window_months=policy.pair_window_months,
        audits_per_month_clause=policy.monthly_clause,
    )
