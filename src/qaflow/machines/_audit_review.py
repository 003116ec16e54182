"""What follows the agreed actions of a low-graded audit (BX-AUD-12), and the review of an
audit in supervision (BX-AUD-10).

BX-AUD-12 in the seed: "the auditor will email the worker, team manager, service manager,
Head of Service and Assistant Director ... to advise of the outcome and what actions are
needed to improve the case to 'Good'"; the head of service and assistant director are told
"what action is being taken, including timescales"; the service manager "must be satisfied
the actions outlined by the Team Manager are sufficient". So a grade rule with
``notify_with = "actions"`` writes its notice in the step that records the agreed actions,
and the notice states each action's kind, owner and timescale (never its free text; the
event it points to holds the rest); a :class:`~qaflow.procedure.ReviewRule` opens the
reviewer's task then and ``review_sufficiency`` records the verdict.

BX-AUD-10: "the manager and practitioner will review the audit in supervision and a
management oversight note will record the discussion and timeframe for action ... Actions
will be reviewed in the subsequent supervision": ``review_in_supervision`` records the note
and the timeframe; the supervision workflow (``qaflow.machines.supervision``: its
``audit_reviewed`` and ``audit_actions_reviewed`` events) keeps the next-supervision review
as a deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qaflow import vocabulary
from qaflow.calendar import Duration
from qaflow.errors import ValidationError
from qaflow.machines._audit_states import TEXT_LIMIT
from qaflow.machines._audit_vocabulary import notice_data, record, task_data
from qaflow.procedure import AuditPolicy, NoticeRule
from qaflow.spec import AddTask, Context, Derived, Effect, Field, Guard, Notify, TransitionSpec

__all__ = [
    "action_summary",
    "actions_notice_effects",
    "review_transitions",
    "supervision_transitions",
]


def action_summary(actions: list[Mapping[str, Any]]) -> str:
    """The agreed actions as a notice states them: kind, owner role and timescale each."""
    parts = []
    for a in actions:
        when = f"within {a['within']}" if a.get("within") else f"due {a.get('due')}"
        urgent = ", immediate" if a.get("immediate") else ""
        parts.append(f"{a.get('kind', 'action')} by the {a.get('owner_role')} {when}{urgent}")
    return f"{len(parts)} action(s): " + "; ".join(parts)


def actions_notice_effects(policy: AuditPolicy) -> list[Effect]:
    """The effects the ``agree_actions`` step adds: the notices of grade rules that go with
    the actions, and the sufficiency reviewer's task."""
    rules = [
        [
            sorted(g.name for g in r.grades),
            notice_data(NoticeRule(roles=r.notify, reason=r.reason, clause=r.clause)),
        ]
        for r in policy.grade_rules
        if r.notify and r.notify_with == "actions"
    ]
    out: list[Effect] = []
    if rules:
        out.append(Derived(use="audit.notices_with_actions", args={"rules": rules}))
    review = policy.sufficiency_review
    if review is not None:
        grades = sorted(g.name for g in review.grades)
        out.append(
            Derived(
                use="audit.review_task", args={"grades": grades, "task": task_data(review.task)}
            )
        )
    return out


def review_transitions(policy: AuditPolicy, sources: tuple[str, ...]) -> list[TransitionSpec]:
    """``review_sufficiency`` (BX-AUD-12), where the policy has a sufficiency review."""
    review = policy.sufficiency_review
    if review is None:
        return []
    grades = ", ".join(f'"{g.name}"' for g in sorted(review.grades))
    effects: list[Effect] = [
        record(
            payload={"actions_sufficient": "sufficient", "sufficiency_note": "note"},
            now=["sufficiency_reviewed_at"],
        )
    ]
    if review.notify_if_not:
        effects.append(
            Notify(
                review.notify_if_not,
                "the agreed actions are not sufficient to bring the case to Good: revise them",
                review.clause,
                when="payload.sufficient == false",
            )
        )
    return [
        TransitionSpec(
            "review_sufficiency",
            sources,
            None,
            frozenset({review.reviewer_role}),
            fields=(
                Field("sufficient", "bool"),
                Field("note", "str", max_length=TEXT_LIMIT),
            ),
            actor_key=f"{review.reviewer_role}_id",
            guards=(
                Guard(
                    "an audit graded " + " or ".join(g.name.lower() for g in review.grades),
                    review.clause,
                    expr=f"data.grade in [{grades}]",
                ),
            ),
            effects=tuple(effects),
            clause=review.clause,
            description="The reviewer records whether the agreed actions are sufficient.",
        )
    ]


def supervision_transitions(policy: AuditPolicy, sources: tuple[str, ...]) -> list[TransitionSpec]:
    """``review_in_supervision`` (BX-AUD-10), where the policy has a supervision review."""
    review = policy.supervision_review
    if review is None:
        return []
    effects: list[Effect] = [
        record(
            payload={
                "oversight_note": "note",
                "action_timeframe": "timeframe",
                "performance_issue": "performance_issue",
            },
            now=["supervision_reviewed_at"],
        )
    ]
    if review.performance_tasks:
        tasks = [task_data(t) for t in review.performance_tasks]
        effects.append(Derived(use="audit.performance_tasks", args={"tasks": tasks}))
    return [
        TransitionSpec(
            "review_in_supervision",
            sources,
            None,
            frozenset(review.roles),
            fields=(
                Field("note", "str", max_length=TEXT_LIMIT),
                Field("timeframe", "str", max_length=40),
                Field("performance_issue", "bool", required=False),
            ),
            guards=(
                Guard(
                    "a timeframe for action like '2 weeks' or '5 WD'",
                    review.clause,
                    use="audit.valid_timeframe",
                ),
            ),
            effects=tuple(effects),
            clause=review.clause,
            description="The audit reviewed in supervision: oversight note and timeframe.",
        )
    ]


# --- vocabulary -------------------------------------------------------------------------------


@vocabulary.effects("audit.notices_with_actions")
def _notices_with_actions(ctx: Context, args: Mapping[str, Any]) -> list[Effect]:
    """BX-AUD-12: the notice of each rule the grade triggers, stating the agreed actions."""
    grade = str(ctx.data.get("grade"))
    summary = action_summary(list(ctx.data.get("actions", [])))
    out: list[Effect] = []
    for grades, notice in args["rules"]:
        if grade in grades:
            roles, reason, clause = notice
            out.append(Notify(tuple(roles), f"{reason}. {summary}", clause))
    return out


@vocabulary.effects("audit.review_task")
def _review_task(ctx: Context, args: Mapping[str, Any]) -> list[Effect]:
    """BX-AUD-12: the reviewer's task, for an audit graded in ``grades``."""
    if str(ctx.data.get("grade")) not in args["grades"]:
        return []
    kind, owner, within, clause = args["task"]
    return [AddTask(kind, owner, within, clause)]


@vocabulary.guard("audit.valid_timeframe")
def _valid_timeframe(ctx: Context, args: Mapping[str, Any]) -> bool:
    """Input check: the timeframe for action is a duration ("2 weeks", "5 WD")."""
    try:
        Duration.parse(str(ctx.payload["timeframe"]))
    except ValidationError:
        raise ValidationError(
            field="timeframe",
            value=ctx.payload["timeframe"],
            expected="a number and a unit, e.g. '5 WD', '2 weeks', '1 months'",
        ) from None
    return True


@vocabulary.effects("audit.performance_tasks")
def _performance_tasks(ctx: Context, args: Mapping[str, Any]) -> list[Effect]:
    """BX-AUD-10: a performance issue goes in the personal supervision notes."""
    if not ctx.payload.get("performance_issue"):
        return []
    return [AddTask(kind, owner, within, clause) for kind, owner, within, clause in args["tasks"]]
