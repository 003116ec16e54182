"""Audit and moderation rules as frozen, validated procedure data.

An :class:`AuditPolicy` is what a council's audit procedure says (BX-AUD-*, BK-AUD-*): the
audit form and the clause each of its stages enforces, who allocates and cancels, who is
notified and given tasks when (:class:`NoticeRule`, :class:`TaskRule`), what each grade
brings (:class:`GradeRule`), family feedback (:class:`FeedbackRule`), deadlines
(:class:`TimeLimit`), the look-back and the moderation window. A :class:`ModerationPolicy`
is what its moderation procedure says (BX-MOD-*, BK-MOD-01): which completed audits are
sampled (:class:`SampleRule`), who may moderate, who hears of the outcome.
:func:`qaflow.machines.audit.audit_spec` and :func:`qaflow.machines.moderation.moderation_spec`
turn them into machines; nothing here knows about a particular council (the shipped values
are procedure files, read by :func:`qaflow.procedure.load_audit_policy`).

Every rule is checked when it is built: a bad definition raises
:class:`~qaflow.errors.PolicyError` naming the offending part and, where it has one, its
clause.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs

from qaflow._convert import IDENT as _IDENT
from qaflow.calendar import Duration
from qaflow.errors import PolicyError, ValidationError
from qaflow.procedure._defaults import QaflowDefault
from qaflow.procedure._forms import STAGES, AuditForm
from qaflow.procedure._grading import Grade
from qaflow.procedure._policy import Policy

__all__ = [
    "AUDITOR",
    "MODERATOR",
    "RESPONDENTS",
    "WORKER",
    "AuditPolicy",
    "FeedbackRule",
    "GradeRule",
    "ModerationPolicy",
    "NoticeRule",
    "SampleRule",
    "SupervisionReview",
    "TaskRule",
    "TimeLimit",
]

# Workflow roles the audit and moderation machines always have. The practitioner answers as
# "worker" (the data key "worker_id" is also who BX-AUD-12 notifies); collaborative, family,
# child and network answers are recorded by the auditor.
AUDITOR: Final = "auditor"
WORKER: Final = "worker"
MODERATOR: Final = "moderator"


def _ident(what: str) -> Callable[[Any, Any, Any], None]:
    def check(_: Any, __: Any, value: Any) -> None:
        values = (value,) if isinstance(value, str) else tuple(value)
        for v in values:
            if not isinstance(v, str) or not _IDENT.match(v):
                raise PolicyError(f"{what} must be a lower-case identifier, got {v!r}")

    return check


def _duration_text(_: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        try:
            Duration.parse(value)
        except ValidationError as error:
            raise PolicyError(f"{attribute.name}: {error}") from None


def _tuple(items: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(items)


def _grades(items: Iterable[Grade]) -> frozenset[Grade]:
    out = frozenset(items)
    for g in out:
        if not isinstance(g, Grade):
            raise PolicyError(f"a grade rule's grades must be Grade values, got {g!r}")
    return out


def _grade_set(items: Iterable[Grade]) -> frozenset[Grade]:
    # A moderation policy's grade sets (sample.always, follow_up_grades) are only converted.
    return frozenset(items)


def _frozen_mapping(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


def _policy(_: Any, __: Any, value: Policy) -> None:
    if not isinstance(value, Policy):
        raise PolicyError(f"policy must be a qaflow.policies.Policy, got {value!r}")


def _form(_: Any, __: Any, value: AuditForm) -> None:
    if not isinstance(value, AuditForm):
        raise PolicyError(f"form must be an AuditForm, got {value!r}")


# --- audit rules ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TaskRule:
    """A task to open: its kind, the role that owns it, and when it is due (or undated)."""

    kind: str = attrs.field(validator=_ident("a task kind"))
    owner_role: str = attrs.field(validator=_ident("a task owner role"))
    within: str | None = attrs.field(default=None, validator=_duration_text)
    clause: str | None = None


@attrs.frozen(kw_only=True)
class NoticeRule:
    """Who is told, why, under which clause."""

    roles: tuple[str, ...] = attrs.field(converter=_tuple, validator=_ident("a notified role"))
    reason: str
    clause: str | None = None


@attrs.frozen(kw_only=True)
class TimeLimit:
    """A deadline: how long, who hears of a miss, which clause."""

    within: str = attrs.field(validator=_duration_text)
    notify: tuple[str, ...] = attrs.field(
        default=(), converter=_tuple, validator=_ident("a notified role")
    )
    clause: str | None = None


@attrs.frozen(kw_only=True)
class GradeRule:
    """What an audit graded in ``grades`` brings, under ``clause``.

    Notifications to ``notify`` and ``tasks`` are written in the grading step;
    ``required_actions`` are action kinds the agreed actions must include;
    ``immediate_actions`` requires at least one action marked immediate.
    """

    grades: frozenset[Grade] = attrs.field(converter=_grades)
    clause: str
    notify: tuple[str, ...] = attrs.field(
        default=(), converter=_tuple, validator=_ident("a notified role")
    )
    reason: str = ""
    tasks: tuple[TaskRule, ...] = attrs.field(default=(), converter=_tuple)
    required_actions: tuple[str, ...] = attrs.field(
        default=(), converter=_tuple, validator=_ident("a required action kind")
    )
    immediate_actions: bool = False
    notify_with: str = "grading"
    """When the notice is written: ``"grading"`` (the grading step) or ``"actions"`` (the
    step that records the agreed actions, so the notice states them and their timescales)."""

    def __attrs_post_init__(self) -> None:
        if self.notify_with not in ("grading", "actions"):
            raise PolicyError(
                f"notify_with must be 'grading' or 'actions', got {self.notify_with!r}",
                clause=self.clause,
            )
        if not self.grades:
            raise PolicyError("a grade rule must name at least one grade", clause=self.clause)
        if self.notify and not self.reason:
            raise PolicyError("a grade rule that notifies must give a reason", clause=self.clause)


#: Who may give feedback on an audit: the form's feedback sections are answered by these.
RESPONDENTS: Final = ("family", "child", "network")


@attrs.frozen(kw_only=True)
class FeedbackRule:
    """Feedback on an audit (BX-AUD-07): before completion, a complete answer set from each
    respondent in ``required_from`` (a set is complete when every one of ``questions`` the
    respondent answers is answered), or a recorded reason why it could not be obtained.

    Each respondent may give several answer sets (the same questions repeated for different
    family members, several network members); every set is kept. A respondent in
    ``consent_for`` (the child) gives feedback only where the parent/carer, or the young
    adult, agrees, and whether they agreed is recorded.
    """

    questions: tuple[str, ...] = attrs.field(converter=_tuple)
    clause: str
    required_from: tuple[str, ...] = attrs.field(default=("family",), converter=_tuple)
    consent_for: tuple[str, ...] = attrs.field(default=(), converter=_tuple)

    def __attrs_post_init__(self) -> None:
        if not self.questions:
            raise PolicyError("a feedback rule must name its questions", clause=self.clause)
        for who in (*self.required_from, *self.consent_for):
            if who not in RESPONDENTS:
                raise PolicyError(
                    f"feedback respondents must be among {', '.join(RESPONDENTS)}, got {who!r}",
                    clause=self.clause,
                )


@attrs.frozen(kw_only=True)
class ReviewRule:
    """A review of an audit's agreed actions by ``reviewer_role`` (BX-AUD-12: the service
    manager must be satisfied the team manager's actions are sufficient), for audits graded
    in ``grades``: a ``task`` opened when the actions are agreed, the verdict recorded, and
    ``notify_if_not`` told when the actions are not sufficient."""

    grades: frozenset[Grade] = attrs.field(converter=_grades)
    reviewer_role: str = attrs.field(validator=_ident("a reviewer role"))
    task: TaskRule
    notify_if_not: tuple[str, ...] = attrs.field(
        default=(), converter=_tuple, validator=_ident("a notified role")
    )
    clause: str


@attrs.frozen(kw_only=True)
class SupervisionReview:
    """The audit reviewed in supervision (BX-AUD-10): one of ``roles`` records the management
    oversight note (the discussion) and the timeframe for action; where the review finds a
    performance issue, ``performance_tasks`` are opened (personal supervision notes)."""

    roles: tuple[str, ...] = attrs.field(converter=_tuple, validator=_ident("a role"))
    clause: str
    performance_tasks: tuple[TaskRule, ...] = attrs.field(default=(), converter=_tuple)

    def __attrs_post_init__(self) -> None:
        if not self.roles:
            raise PolicyError("a supervision review names who records it", clause=self.clause)


@attrs.frozen(kw_only=True)
class AuditPolicy:
    """Everything the audit machine needs to know about one council, as data.

    ``stage_clauses`` names the clause that each form stage enforces (cited when a stage's
    answers are missing). Roles are the names the host's directory resolves.
    ``auditor_from_other_team`` (citing ``other_team_clause``): the auditor may not be from
    the case's team; the machine's ``allocate`` guard and the allocator both read it, as
    the allocator reads ``pair_window_months`` (no auditor-worker pair again within it) and
    ``monthly_clause`` (one audit per auditor a month). ``lookback_may_extend``: whether
    the auditor may look further back than ``lookback``.
    """

    policy: Policy = attrs.field(validator=_policy)
    form: AuditForm = attrs.field(validator=_form)
    stage_clauses: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    allocator_roles: tuple[str, ...] = attrs.field(
        default=("business_support",), converter=_tuple, validator=_ident("a role")
    )
    cancel_roles: tuple[str, ...] = attrs.field(
        default=("business_support", "psqa"), converter=_tuple, validator=_ident("a role")
    )
    qa_roles: tuple[str, ...] = attrs.field(
        default=("psqa",), converter=_tuple, validator=_ident("a role")
    )
    other_team_clause: str | None = None
    auditor_from_other_team: bool = True
    pair_window_months: int = 6
    monthly_clause: str | None = None
    allocation_notice: NoticeRule | None = None
    self_assessment_notice: NoticeRule | None = None
    self_assessment_task: TaskRule | None = None
    selection_notice: NoticeRule | None = None
    selection_task: TaskRule | None = None
    grade_rules: tuple[GradeRule, ...] = attrs.field(default=(), converter=_tuple)
    actions_clause: str
    feedback: FeedbackRule | None = None
    completion_tasks: tuple[TaskRule, ...] = attrs.field(default=(), converter=_tuple)
    completion_limit: TimeLimit | None = None
    follow_up: TimeLimit | None = None
    practice_week_action: str | None = None
    practice_week_clause: str | None = None
    safeguarding: NoticeRule | None = None
    lookback: str | None = attrs.field(default=None, validator=_duration_text)
    lookback_clause: str | None = None
    lookback_may_extend: bool = True
    moderation_window: str = attrs.field(default="6 months", validator=_duration_text)
    moderation_clause: str | None = None
    sufficiency_review: ReviewRule | None = None
    supervision_review: SupervisionReview | None = None
    defaults: tuple[QaflowDefault, ...] = attrs.field(default=(), converter=_tuple)
    """The file's values its framework does not give (``qaflow policy docs`` lists them)."""

    def __attrs_post_init__(self) -> None:
        for stage in self.stage_clauses:
            if stage not in STAGES:
                raise PolicyError(f"stage_clauses names unknown stage {stage!r}")
        if self.feedback is not None:
            for qid in self.feedback.questions:
                try:
                    self.form.question(qid)
                except ValidationError:
                    raise PolicyError(
                        f"feedback question {qid!r} is not on form {self.form.name!r}",
                        clause=self.feedback.clause,
                    ) from None
        window = self.pair_window_months
        if isinstance(window, bool) or not isinstance(window, int) or window < 0:
            raise PolicyError(f"pair_window_months must be an int >= 0, got {window!r}")
        if (self.practice_week_action is None) != (self.practice_week_clause is None):
            raise PolicyError("practice_week_action and practice_week_clause go together")
        for name in ("moderation_window", "lookback"):
            value = getattr(self, name)
            if value is not None and Duration.parse(value).is_working_days:
                raise PolicyError(f"{name} is elapsed time, not working days")

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def version(self) -> str:
        return self.policy.version

    @property
    def has_self_assessment(self) -> bool:
        return "self_assessment" in self.form.stages

    @property
    def has_health_check(self) -> bool:
        return "health_check" in self.form.stages

    def clause_for(self, stage: str) -> str | None:
        return self.stage_clauses.get(stage)

    def roles(self) -> tuple[str, ...]:
        """Every role the policy notifies or gives tasks to (their ids come in the payload)."""
        found: set[str] = {WORKER, AUDITOR, "team_manager"}
        rules: list[NoticeRule | None] = [
            self.allocation_notice,
            self.self_assessment_notice,
            self.selection_notice,
            self.safeguarding,
        ]
        for notice in rules:
            if notice is not None:
                found.update(notice.roles)
        for rule in self.grade_rules:
            found.update(rule.notify)
            found.update(t.owner_role for t in rule.tasks)
        if self.sufficiency_review is not None:
            review = self.sufficiency_review
            found.update((review.reviewer_role, review.task.owner_role, *review.notify_if_not))
        if self.supervision_review is not None:
            found.update(self.supervision_review.roles)
            found.update(t.owner_role for t in self.supervision_review.performance_tasks)
        for task in (*self.completion_tasks, self.self_assessment_task, self.selection_task):
            if task is not None:
                found.add(task.owner_role)
        for limit in (self.completion_limit, self.follow_up):
            if limit is not None:
                found.update(limit.notify)
        return tuple(sorted(found))

    def rules_for(self, grade: Grade) -> tuple[GradeRule, ...]:
        """The grade rules a grade triggers, in policy order."""
        return tuple(r for r in self.grade_rules if grade in r.grades)

    def notified(self, grade: Grade, *, step: str = "grading") -> tuple[str, ...]:
        """The roles the grade rules notify for ``grade`` in ``step`` ("grading", or
        "actions": the step that records the agreed actions), in policy order."""
        return tuple(
            role for r in self.rules_for(grade) if r.notify_with == step for role in r.notify
        )


# --- moderation rules -------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SampleRule:
    """Which completed audits are moderated: within ``lookback``, every audit graded in
    ``always``, plus ``share`` of the rest (rounded up), and at least ``minimum`` in all."""

    lookback: str
    always: frozenset[Grade] = attrs.field(default=frozenset(), converter=_grade_set)
    share: float = 0.0
    minimum: int = 0
    clause: str | None = None

    def __attrs_post_init__(self) -> None:
        try:
            duration = Duration.parse(self.lookback)
        except ValidationError as error:
            raise PolicyError(f"sample look-back: {error}", clause=self.clause) from None
        if duration.is_working_days:
            raise PolicyError("the sample look-back is elapsed time", clause=self.clause)
        if not (isinstance(self.share, (int, float)) and 0.0 <= self.share <= 1.0):
            raise PolicyError(
                f"sample share must be in 0..1 (got {self.share!r})", clause=self.clause
            )
        if isinstance(self.minimum, bool) or not isinstance(self.minimum, int) or self.minimum < 0:
            raise PolicyError(
                f"sample minimum must be an int >= 0 (got {self.minimum!r})", clause=self.clause
            )


@attrs.frozen(kw_only=True)
class ModerationPolicy:
    """Everything the moderation machine needs to know about one council, as data.

    ``audit`` is the council's :class:`AuditPolicy`: its form gives the scaling the
    moderator records, its name and version what the workflow pins.
    ``follow_up_grades``: a finalised grade among these "remains" a concern (BX-MOD-06).
    """

    audit: AuditPolicy
    sample: SampleRule
    allocator_roles: tuple[str, ...] = attrs.field(default=("psqa",), converter=_tuple)
    moderator_roles: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    allocation_clause: str | None = None
    scaling_clause: str | None = None
    actions_clause: str | None = None
    agreement_clause: str | None = None
    disagreement_clause: str | None = None
    completion_notice: NoticeRule | None = None
    completion_tasks: tuple[TaskRule, ...] = attrs.field(default=(), converter=_tuple)
    follow_up_grades: frozenset[Grade] = attrs.field(
        default=frozenset({Grade.INADEQUATE}), converter=_grade_set
    )
    follow_up_notice: NoticeRule | None = None
    inadequate_notice: NoticeRule | None = None
    follow_up_tasks: tuple[TaskRule, ...] = attrs.field(default=(), converter=_tuple)

    @property
    def name(self) -> str:
        return self.audit.name

    @property
    def version(self) -> str:
        return self.audit.version

    def roles(self) -> tuple[str, ...]:
        """Every role the policy notifies or gives tasks to."""
        found: set[str] = {WORKER, AUDITOR, MODERATOR, "team_manager"}
        for notice in (self.completion_notice, self.follow_up_notice, self.inadequate_notice):
            if notice is not None:
                found.update(notice.roles)
        for task in (*self.completion_tasks, *self.follow_up_tasks):
            found.add(task.owner_role)
        return tuple(sorted(found))
