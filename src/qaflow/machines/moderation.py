"""Moderation of completed audits as a machine, and the code that ties it to the audits.

The lifecycle::

    new -sample-> sampled -allocate-> allocated -review-> reviewed
        reviewed -agree-> agreed -finalise-> finalised
        reviewed -disagree-> disagreed -meet-> meeting -agree_grade-> grade_agreed
            -finalise-> finalised
    any open state -cancel (with a reason)-> cancelled

The policy is data (:class:`~qaflow.procedure.ModerationPolicy`, read from a procedure file;
the shipped files are listed in :mod:`qaflow.policies`); this module builds the machine from
it, imports no council, and runs the sampling and the write-backs.

Sampling (BX-MOD-01, BK-MOD-01) draws from audits completed within the policy's look-back:
every audit with a grade the :class:`~qaflow.procedure.SampleRule` always takes (all
Inadequate), plus a share of the rest chosen by a seeded random generator, so a run is
reproducible. The moderator is never the audit's auditor; the review records the
moderator's own scaling, comments, whether the audit's actions were completed and any new
actions (BX-MOD-02, BX-MOD-03). Agreement, or disagreement then a meeting with the auditor
and an agreed grade (BX-MOD-04, BX-MOD-05), leads to ``finalise``, which notifies the worker
and manager and, if the case remains Inadequate or actions are outstanding, the roles of
BX-MOD-06 with tasks due in 24 h.

The audit hears of its moderation through events on its own workflow, written by the
functions here after the moderation step commits: :func:`open_moderation` fires
``moderation_started``, :func:`finalise_moderation` fires ``moderated`` (the agreed grade;
the auditor's grade stays in the history) and :func:`cancel_moderation` fires
``moderation_cancelled``. Each write-back carries an idempotency key, so
:func:`reconcile` can safely re-send any that a crash between the two commits lost.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from qaflow.allocation import AllocationImpossible
from qaflow.calendar import Duration
from qaflow.directory import InMemoryDirectory as Directory
from qaflow.engine import Engine
from qaflow.errors import IdempotencyConflict, QAFlowError, ValidationError
from qaflow.machines import audit as audit_machine
from qaflow.machines._audit_data import form_data, grade_of
from qaflow.machines._audit_vocabulary import notice_data, task_data
from qaflow.machines._audit_vocabulary import record as _record
from qaflow.procedure import MODERATOR, Grade, ModerationPolicy
from qaflow.records import Actor, Step, WorkflowSnapshot
from qaflow.spec import Derived, Field, Guard, MachineSpec, StateSpec, TransitionSpec, Update

__all__ = [
    "AGREED",
    "ALLOCATED",
    "CANCELLED",
    "DISAGREED",
    "FINALISED",
    "GRADE_AGREED",
    "MACHINE",
    "MEETING",
    "NEW",
    "REVIEWED",
    "SAMPLED",
    "assign_moderators",
    "cancel_moderation",
    "eligible_audits",
    "eligible_moderators",
    "finalise_moderation",
    "moderation_spec",
    "open_moderation",
    "reconcile",
    "sample_audits",
    "sample_payload",
]

MACHINE: Final = "moderation"

NEW: Final = "new"
SAMPLED: Final = "sampled"
ALLOCATED: Final = "allocated"
REVIEWED: Final = "reviewed"
AGREED: Final = "agreed"
DISAGREED: Final = "disagreed"
MEETING: Final = "meeting"
GRADE_AGREED: Final = "grade_agreed"
FINALISED: Final = "finalised"
CANCELLED: Final = "cancelled"

_OPEN: Final = (SAMPLED, ALLOCATED, REVIEWED, AGREED, DISAGREED, MEETING, GRADE_AGREED)
_TEXT_LIMIT: Final = 4000


# --- the machine ----------------------------------------------------------------------


def _grading_guard(policy: ModerationPolicy, clause: str | None) -> Guard:
    return Guard(
        "a valid scaling on the audit form's overall question",
        clause,
        use="audit.valid_grading",
        args={"form": form_data(policy.audit.form)},
    )


def _sample_fields(policy: ModerationPolicy) -> tuple[Field, ...]:
    required = ("audit_id", "auditor_id", "worker_id")
    optional = sorted({f"{r}_id" for r in policy.roles()} - set(required) - {"moderator_id"})
    return (
        *(Field(name, "str", max_length=200) for name in required),
        *(Field(name, "str", required=False, max_length=200) for name in optional),
        Field("original_grade", "choice", choices=tuple(g.name for g in Grade)),
        Field("audit_completed_at", "datetime"),
    )


def _finalise_effects(policy: ModerationPolicy) -> Derived:
    return Derived(
        use="moderation.finalise",
        args={
            "completion_notice": notice_data(policy.completion_notice),
            "completion_tasks": [task_data(t) for t in policy.completion_tasks],
            "follow_up_grades": sorted(g.name for g in policy.follow_up_grades),
            "follow_up_notice": notice_data(policy.follow_up_notice),
            "inadequate_notice": notice_data(policy.inadequate_notice),
            "follow_up_tasks": [task_data(t) for t in policy.follow_up_tasks],
        },
    )


def moderation_spec(policy: ModerationPolicy) -> MachineSpec:
    """Build the moderation machine for ``policy`` (validated: raises PolicyError)."""
    moderator = frozenset({MODERATOR})
    allocators = frozenset(policy.allocator_roles)

    form = {"form": form_data(policy.audit.form)}
    transitions = (
        TransitionSpec(
            "sample",
            (NEW,),
            SAMPLED,
            allocators,
            fields=_sample_fields(policy),
            guards=(
                Guard(
                    f"an audit completed within the last {policy.sample.lookback}",
                    policy.sample.clause,
                    use="moderation.audit_in_lookback",
                    args={"within": policy.sample.lookback},
                ),
            ),
            effects=(Update(use="moderation.sample"),),
            clause=policy.sample.clause,
            description="PSQA puts a completed audit on the moderation list.",
        ),
        TransitionSpec(
            "allocate",
            (SAMPLED, ALLOCATED),
            ALLOCATED,
            allocators,
            fields=(Field("moderator_id", "str", max_length=200),),
            guards=(
                Guard(
                    "a moderator who is not the audit's auditor",
                    policy.allocation_clause,
                    expr="payload.moderator_id != data.auditor_id",
                ),
            ),
            effects=(_record(payload={"moderator_id": "moderator_id"}),),
            clause=policy.allocation_clause,
            description="PSQA allocates the moderation (never to the audit's auditor).",
        ),
        TransitionSpec(
            "review",
            (ALLOCATED,),
            REVIEWED,
            moderator,
            fields=(
                Field("answer", "dict"),
                Field("good_practice", "str", max_length=_TEXT_LIMIT),
                Field("areas_for_development", "str", max_length=_TEXT_LIMIT),
                Field("actions_completed", "bool"),
                Field("actions", "list", required=False, max_length=50),
            ),
            guards=(
                _grading_guard(policy, policy.scaling_clause),
                Guard(
                    "valid actions (action, owner, when)",
                    policy.actions_clause,
                    use="audit.valid_actions",
                    args={"optional": True},
                ),
            ),
            effects=(
                Update(use="moderation.review", args=form),
                Derived(use="audit.action_tasks", args={"clause": policy.actions_clause}),
            ),
            clause=policy.scaling_clause,
            actor_key="moderator_id",
            description="The moderator scales the audit, comments and checks its actions.",
        ),
        TransitionSpec(
            "agree",
            (REVIEWED,),
            AGREED,
            moderator,
            effects=(_record(values={"agreed": True}, data={"agreed_grade": "original_grade"}),),
            clause=policy.agreement_clause,
            actor_key="moderator_id",
            description="The moderator agrees with the audit's grade.",
        ),
        TransitionSpec(
            "disagree",
            (REVIEWED,),
            DISAGREED,
            moderator,
            fields=(Field("reason", "str", max_length=_TEXT_LIMIT),),
            effects=(_record(values={"agreed": False}, payload={"disagreement": "reason"}),),
            clause=policy.disagreement_clause,
            actor_key="moderator_id",
            description="The moderator disagrees with the audit's grade.",
        ),
        TransitionSpec(
            "meet",
            (DISAGREED,),
            MEETING,
            moderator,
            clause=policy.disagreement_clause,
            actor_key="moderator_id",
            description="Moderator and auditor meet to agree a grading.",
        ),
        TransitionSpec(
            "agree_grade",
            (MEETING,),
            GRADE_AGREED,
            moderator,
            fields=(
                Field("answer", "dict"),
                Field("rationale", "str", max_length=_TEXT_LIMIT),
            ),
            guards=(_grading_guard(policy, policy.disagreement_clause),),
            effects=(Update(use="moderation.agree_grade", args=form),),
            clause=policy.disagreement_clause,
            actor_key="moderator_id",
            description="The grading moderator and auditor agreed.",
        ),
        TransitionSpec(
            "finalise",
            (AGREED, GRADE_AGREED),
            FINALISED,
            moderator,
            effects=(_record(now=["finalised_at"]), _finalise_effects(policy)),
            clause=policy.agreement_clause,
            actor_key="moderator_id",
            description="The moderation is final; the agreed grade goes back to the audit.",
        ),
        TransitionSpec(
            "cancel",
            _OPEN,
            CANCELLED,
            allocators,
            fields=(Field("reason", "str", max_length=_TEXT_LIMIT),),
            effects=(_record(payload={"cancel_reason": "reason"}),),
            description="PSQA cancels the moderation, recording why.",
        ),
    )
    states = (
        StateSpec(NEW, description="Not yet sampled."),
        StateSpec(SAMPLED, description="On the moderation list (BX-MOD-01)."),
        StateSpec(ALLOCATED, description="Allocated to a moderator (never the auditor)."),
        StateSpec(REVIEWED, description="Scaled and commented (BX-MOD-02, BX-MOD-03)."),
        StateSpec(AGREED, description="The moderator agrees (BX-MOD-04)."),
        StateSpec(DISAGREED, description="The moderator disagrees (BX-MOD-05)."),
        StateSpec(MEETING, description="Moderator and auditor meet (BX-MOD-05)."),
        StateSpec(GRADE_AGREED, description="A grade agreed with the auditor (BX-MOD-05)."),
        StateSpec(FINALISED, terminal=True, description="Final; written back to the audit."),
        StateSpec(CANCELLED, terminal=True, description="Cancelled, with a reason."),
    )
    return MachineSpec(
        name=MACHINE,
        policy=policy.name,
        policy_version=policy.version,
        initial=NEW,
        states=states,
        transitions=transitions,
        calendar=policy.audit.policy.calendar,
        migration_roles=policy.audit.policy.migration_roles,
        description=f"Moderation of case audits under {policy.name}'s policy.",
    )


# --- sampling and allocation ------------------------------------------------------------


def eligible_audits(
    snapshots: Iterable[WorkflowSnapshot], policy: ModerationPolicy, *, now: datetime
) -> list[WorkflowSnapshot]:
    """Audits of ``policy``'s council completed within the look-back and not yet moderated
    nor under moderation, sorted by id (BX-MOD-01, BK-MOD-01)."""
    start = Duration.parse(policy.sample.lookback).before(now)
    found: list[WorkflowSnapshot] = []
    for snap in snapshots:
        if snap.machine != audit_machine.MACHINE or snap.policy != policy.name:
            continue
        if snap.state not in (audit_machine.COMPLETED, audit_machine.FOLLOWED_UP):
            continue
        raw = snap.data.get("completed_at")
        if not isinstance(raw, str) or not start <= datetime.fromisoformat(raw) <= now:
            continue
        if snap.data.get("moderation_open") or snap.data.get("moderated"):
            continue
        found.append(snap)
    return sorted(found, key=lambda s: s.workflow_id)


def sample_audits(
    snapshots: Iterable[WorkflowSnapshot],
    policy: ModerationPolicy,
    *,
    now: datetime,
    seed: int | str,
) -> tuple[str, ...]:
    """Ids of the audits to moderate under the policy's sample rule, sorted.

    Every eligible audit graded in ``always``, then ``ceil(share * rest)`` of the rest
    (at least enough to reach ``minimum``), drawn by ``random.Random(seed)``. The same
    audits and seed always give the same sample. Writes nothing.
    """
    rule = policy.sample
    eligible = eligible_audits(snapshots, policy, now=now)
    always = [s.workflow_id for s in eligible if _grade(s) in rule.always]
    rest = [s.workflow_id for s in eligible if _grade(s) not in rule.always]
    k = math.ceil(rule.share * len(rest) - 1e-9)
    k = max(k, rule.minimum - len(always))
    k = min(max(k, 0), len(rest))
    chosen = random.Random(seed).sample(rest, k)
    return tuple(sorted([*always, *chosen]))


def _grade(snapshot: WorkflowSnapshot) -> Grade | None:
    return grade_of(snapshot.data)


def assign_moderators(
    audits: Mapping[str, str],
    moderators: Iterable[str],
    *,
    load: Mapping[str, int] | None = None,
) -> dict[str, str]:
    """Give each audit (id -> its auditor id) a moderator who is not its auditor.

    Balanced: each audit goes to the least-loaded eligible moderator (``load`` counts work
    they already hold), ties by id; audits with the fewest eligible moderators go first.
    Raises :class:`~qaflow.allocation.AllocationImpossible` naming any audit whose only
    possible moderator is its own auditor. Writes nothing.
    """
    pool = sorted(set(moderators))
    counts = {m: (load or {}).get(m, 0) for m in pool}
    impossible = {
        audit_id: ("its only possible moderator is its own auditor",)
        if pool
        else ("there are no moderators",)
        for audit_id, auditor in audits.items()
        if not [m for m in pool if m != auditor]
    }
    if impossible:
        raise AllocationImpossible(month="this moderation round", reasons=impossible)
    out: dict[str, str] = {}
    order = sorted(audits, key=lambda a: (len([m for m in pool if m != audits[a]]), a))
    for audit_id in order:
        best = min((m for m in pool if m != audits[audit_id]), key=lambda m: (counts[m], m))
        out[audit_id] = best
        counts[best] += 1
    return out


# --- tying moderations to their audits --------------------------------------------------

_SPECS: dict[int, tuple[ModerationPolicy, MachineSpec]] = {}


def _spec(policy: ModerationPolicy) -> MachineSpec:
    cached = _SPECS.get(id(policy))
    if cached is None or cached[0] is not policy:
        cached = _SPECS[id(policy)] = (policy, moderation_spec(policy))
    return cached[1]


def sample_payload(audit: WorkflowSnapshot, policy: ModerationPolicy) -> dict[str, Any]:
    """The ``sample`` payload for an audit: its ids, grade and completion time."""
    if audit.machine != audit_machine.MACHINE or audit.policy != policy.name:
        raise ValidationError(
            field="audit_id",
            value=audit.workflow_id,
            expected=f"an audit under policy {policy.name!r}",
        )
    data = audit.data
    if not isinstance(data.get("grade"), str) or not isinstance(data.get("completed_at"), str):
        raise ValidationError(
            field="audit_id", value=audit.workflow_id, expected="a graded, completed audit"
        )
    payload: dict[str, Any] = {
        "audit_id": audit.workflow_id,
        "original_grade": data["grade"],
        "audit_completed_at": data["completed_at"],
    }
    for name in (f.name for f in _sample_fields(policy)):
        if name.endswith("_id") and name != "audit_id" and isinstance(data.get(name), str):
            payload[name] = data[name]
    return payload


def open_moderation(
    engine: Engine,
    policy: ModerationPolicy,
    audit_id: str,
    moderation_id: str,
    actor: Actor,
    *,
    at: datetime | None = None,
) -> tuple[Step, Step]:
    """Start moderation ``moderation_id`` of an audit and mark the audit as sampled.

    The moderation's ``sample`` commits first; then ``moderation_started`` is written on
    the audit. If the audit refuses (already under moderation, cancelled meanwhile), the
    new moderation is cancelled with that reason and the refusal is re-raised.
    """
    spec = _spec(policy)
    payload = sample_payload(engine.get(audit_id), policy)
    try:
        first = engine.start(
            spec, moderation_id, "sample", actor, payload, at=at, idempotency_key="sample"
        )
    except IdempotencyConflict:
        first = None
    if first is None or first.snapshot.data.get("audit_id") != audit_id:
        # A resent start returns the first result only for the same command: this id
        # already moderates another audit.
        other = engine.get(moderation_id).data.get("audit_id")
        raise ValidationError(
            field="moderation_id",
            value=moderation_id,
            expected=f"a new moderation id (it moderates {other!r})",
        )
    if engine.get(moderation_id).state not in _OPEN:
        raise ValidationError(
            field="moderation_id", value=moderation_id, expected="an open moderation"
        )
    try:
        second = engine.fire(
            audit_id,
            "moderation_started",
            actor,
            {"moderation_id": moderation_id},
            at=_not_before(engine, audit_id, first.event.at),
            idempotency_key=f"{moderation_id}:started",
        )
    except QAFlowError as error:
        if engine.get(moderation_id).state not in (FINALISED, CANCELLED):
            engine.fire(
                moderation_id,
                "cancel",
                actor,
                {"reason": f"the audit refused the moderation: {type(error).__name__}"},
                at=first.event.at,
            )
        raise
    return first, second


def _not_before(engine: Engine, workflow_id: str, at: datetime | None) -> datetime | None:
    """``at``, moved forward to the workflow's last event if that is later (time is monotone
    per workflow, and the write-back follows the moderation step)."""
    last = engine.get(workflow_id).updated_at
    if at is None or last is None:
        return at
    return max(at, last)


def _write_back(engine: Engine, moderation: WorkflowSnapshot, at: datetime | None) -> Step:
    data = moderation.data
    moderator_id = str(data["moderator_id"])
    audit_id = str(data["audit_id"])
    return engine.fire(
        audit_id,
        "moderated",
        Actor(moderator_id, MODERATOR),
        {
            "moderation_id": moderation.workflow_id,
            "moderator_id": moderator_id,
            "grade": data["agreed_grade"],
            "agreed": bool(data.get("agreed")),
        },
        at=_not_before(engine, audit_id, at),
        idempotency_key=f"{moderation.workflow_id}:moderated",
    )


def finalise_moderation(
    engine: Engine, moderation_id: str, actor: Actor, *, at: datetime | None = None
) -> tuple[Step, Step]:
    """Finalise the moderation, then write the agreed grade back to its audit.

    The audit's ``moderated`` event records the agreed grade (BX-MOD-05: it replaces the
    audit's grade; the auditor's grade stays in the audit's history and data).
    """
    first = engine.fire(moderation_id, "finalise", actor, at=at)
    second = _write_back(engine, first.snapshot, first.event.at)
    return first, second


def cancel_moderation(
    engine: Engine, moderation_id: str, actor: Actor, reason: str, *, at: datetime | None = None
) -> tuple[Step, Step | None]:
    """Cancel the moderation, then release its audit (``moderation_cancelled``)."""
    first = engine.fire(moderation_id, "cancel", actor, {"reason": reason}, at=at)
    audit_id = str(first.snapshot.data["audit_id"])
    audit = engine.get(audit_id)
    if audit.data.get("moderation_id") != moderation_id or not audit.data.get("moderation_open"):
        return first, None
    second = engine.fire(
        audit_id,
        "moderation_cancelled",
        actor,
        {"moderation_id": moderation_id},
        at=_not_before(engine, audit_id, first.event.at),
        idempotency_key=f"{moderation_id}:cancelled",
    )
    return first, second


def reconcile(engine: Engine, *, at: datetime | None = None) -> list[Step]:
    """Re-send every audit write-back a crash may have lost; return the steps written.

    For each open moderation whose audit has not recorded its start, ``moderation_started``
    (or, if the audit now refuses it, the moderation is cancelled); for each finalised one
    whose audit has not recorded it, ``moderated``; for each cancelled one whose audit still
    holds it open, ``moderation_cancelled``. Idempotent: a second run writes nothing.
    """
    steps: list[Step] = []
    for moderation in list(engine.store.snapshots(MACHINE)):
        mid = moderation.workflow_id
        audit_id = moderation.data.get("audit_id")
        if not isinstance(audit_id, str):
            continue
        audit = engine.get(audit_id)
        holds = audit.data.get("moderation_id") == mid and bool(audit.data.get("moderation_open"))
        when = max(t for t in (at, audit.updated_at, moderation.updated_at) if t is not None)
        first_actor = engine.history(mid)[0].actor
        if moderation.state == FINALISED and holds:
            steps.append(_write_back(engine, moderation, when))
        elif moderation.state == CANCELLED and holds:
            steps.append(
                engine.fire(
                    audit_id,
                    "moderation_cancelled",
                    first_actor,
                    {"moderation_id": mid},
                    at=when,
                    idempotency_key=f"{mid}:cancelled",
                )
            )
        elif moderation.state in _OPEN and not holds and not _recorded(engine, audit_id, mid):
            try:
                steps.append(
                    engine.fire(
                        audit_id,
                        "moderation_started",
                        first_actor,
                        {"moderation_id": mid},
                        at=when,
                        idempotency_key=f"{mid}:started",
                    )
                )
            except QAFlowError as error:
                steps.append(
                    engine.fire(
                        mid,
                        "cancel",
                        first_actor,
                        {"reason": f"the audit refused the moderation: {type(error).__name__}"},
                        at=_not_before(engine, mid, when),
                    )
                )
    return steps


def _recorded(engine: Engine, audit_id: str, moderation_id: str) -> bool:
    """Whether the audit's history already holds an event of this moderation."""
    return any(e.payload.get("moderation_id") == moderation_id for e in engine.history(audit_id))


def eligible_moderators(directory: Directory, policy: ModerationPolicy) -> tuple[str, ...]:
    """Ids of everyone who holds one of the policy's moderator roles (BX-MOD-01), sorted."""
    found = {person for role in policy.moderator_roles for person in directory.holders(role)}
    return tuple(sorted(found))
