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

from qaflow.machines._audit_allocation import allocation_payload, allocation_rules
from qaflow.machines._audit_feedback import feedback_transitions
from qaflow.machines._audit_parts import (
    _MERGE,
    _agree_actions,
    _allocate,
    _answers_guard,
    _arrange_meeting,
    _complete,
    _complete_guard,
    _extend_lookback,
    _grade_effects,
    _grade_guard,
    _not_under_moderation,
    _notice_effect,
    _open_stages,
    _record_grade,
    _staying_together,
    _task_effect,
    family_feedback_complete,
)
from qaflow.machines._audit_review import review_transitions, supervision_transitions
from qaflow.machines._audit_states import (
    ACTIONS_AGREED,
    ALLOCATED,
    AUDIT_MEETING,
    CANCELLED,
    CLOSED,
    COMPLETED,
    COMPLETION_DEADLINE,
    FEEDBACK_SOUGHT,
    FOLLOW_UP_DEADLINE,
    FOLLOWED_UP,
    GRADED,
    MACHINE,
    MODERATION_WINDOW,
    NEW,
    SELF_ASSESSMENT_DONE,
    SELF_ASSESSMENT_REQUESTED,
    TEXT_LIMIT,
)
from qaflow.machines._audit_vocabulary import record as _record
from qaflow.machines._audit_writeback import _moderation_transitions
from qaflow.procedure import (
    AUDITOR,
    WORKER,
    AuditPolicy,
)
from qaflow.spec import (
    DeadlineRule,
    Effect,
    Field,
    Guard,
    MachineSpec,
    StateSpec,
    TransitionSpec,
)

__all__ = [
    "ACTIONS_AGREED",
    "ALLOCATED",
    "AUDIT_MEETING",
    "CANCELLED",
    "CLOSED",
    "COMPLETED",
    "COMPLETION_DEADLINE",
    "FEEDBACK_SOUGHT",
    "FOLLOWED_UP",
    "FOLLOW_UP_DEADLINE",
    "GRADED",
    "MACHINE",
    "MODERATION_WINDOW",
    "NEW",
    "SELF_ASSESSMENT_DONE",
    "SELF_ASSESSMENT_REQUESTED",
    "allocation_payload",
    "allocation_rules",
    "audit_spec",
    "family_feedback_complete",
]


def audit_spec(policy: AuditPolicy) -> MachineSpec:
    """Build the audit machine for ``policy`` (validated: raises PolicyError if broken)."""
    auditor = frozenset({AUDITOR})
    answers = _answers_guard(policy)  # one guard (its form frozen once), cited four times
    states: list[StateSpec] = [StateSpec(NEW, description="Not yet allocated.")]
    transitions: list[TransitionSpec] = [_allocate(policy)]
    arrange = _arrange_meeting(policy)
    if arrange is not None:
        transitions.append(arrange)

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
    transitions += feedback_transitions(policy, feedback_states)
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
                fields=(Field("note", "str", max_length=TEXT_LIMIT),),
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
    transitions += review_transitions(policy, (ACTIONS_AGREED, *rest))
    transitions += supervision_transitions(policy, rest)
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
            fields=(Field("reason", "str", max_length=TEXT_LIMIT),),
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
                    Field("concern", "str", max_length=TEXT_LIMIT),
                    Field("corrective_action", "str", max_length=TEXT_LIMIT),
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
