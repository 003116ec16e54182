"""The escalation machine: one builder turns any :class:`EscalationLadder` into a MachineSpec.

States: ``new`` (before the raise), ``informal`` when the ladder has an informal stage,
``stage_1`` .. ``stage_N``, and the terminal ``resolved``, ``withdrawn`` and, when the ladder
has an external referral, ``referred``. Commands (BX-ESC-*, NAT-CP-01, NAT-IRO-*):

=====================  ===========  =========================================================
trigger                who          what
=====================  ===========  =========================================================
``raise``              raiser       open the escalation at the first stage, or (``to``) at a
                                    later one / the referral where the ladder allows bypass
``respond``            stage holder record the holder's response (closes the response deadline)
``accept``             raiser       the concern is resolved (terminal)
``escalate``           raiser       move to the next stage
``bypass``             raiser       skip to a later stage (``to``), only where allowed
``request_extension``  stage holder ask for ``length`` more time (bounded by the ladder)
``grant_extension``    raiser       agree the pending request: the response deadline moves
``refuse_extension``   raiser       refuse the pending request
``withdraw``           raiser       withdraw the escalation (terminal)
``refer_externally``   raiser       after the last stage: refer outside the council (terminal)
``refer``              raiser       a parallel referral (``track``): recorded, stages go on
``endorse``            endorser     where a stage needs it, before escalating from it
``agree``              joint party  one party's agreement where a stage decides jointly
``consult``            consulted    a consultation a bypass from the stage needs (role-checked)
``response_overdue``   qaflow       fired by ``tick`` when a response deadline passes
=====================  ===========  =========================================================

Where a stage names them, ``escalated_by`` and ``accepted_by`` replace the raiser for those
commands, and ``joint`` roles must each ``agree`` before the outcome is accepted. Guards and
updates are named entries of :mod:`qaflow.vocabulary` (``machines/_escalation_vocab.py``) or
CEL expressions, so the spec holds no closure and has a stable fingerprint.

Only the person who raised an escalation may drive it on (``actor_key="raiser_id"``). Each
stage opens a ``response`` deadline; its breach records the miss in the stage history and
tells the raiser to escalate or extend, and moves up a stage by itself only when the ladder
says ``breach = "escalate"``. Entering a stage notifies its holders and everyone the ladder
keeps informed there (IRO: the child at every stage; FIRO: the foster carer).

The workflow data is the escalation record (JSON-compatible, datetimes as UTC ISO text);
:func:`escalation_record` reads it as an :class:`EscalationRecord`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final, Literal

import attrs

from qaflow.calendar import Duration
from qaflow.errors import PolicyError, ValidationError
from qaflow.machines._escalation_parts import (
    _TEXT_MAX,
    INFORMAL,
    NEW,
    REFERRED,
    RESOLVED,
    WITHDRAWN,
    _dedupe,
    _g,
    _StageCommands,
    _u,
    raiser_role,
    state_of,
)
from qaflow.machines._escalation_routes import _Routes, route_state
from qaflow.machines._escalation_vocab import ID_MAX as _ID_MAX
from qaflow.machines._escalation_vocab import OVERDUE as OVERDUE
from qaflow.machines._escalation_vocab import RESPONSE_DEADLINE as RESPONSE_DEADLINE
from qaflow.policies.base import Policy
from qaflow.procedure._ladder import EscalationLadder
from qaflow.records import WorkflowSnapshot, converter
from qaflow.spec import (
    AddTask,
    CloseDeadline,
    DeadlineRule,
    DurationRef,
    Effect,
    Field,
    Guard,
    MachineSpec,
    Notify,
    StateSpec,
    TransitionSpec,
    Update,
)

__all__ = [
    "INFORMAL",
    "NEW",
    "OVERDUE",
    "REFERRED",
    "RESOLVED",
    "RESPONSE_DEADLINE",
    "TERMINAL_STATES",
    "TRIGGERS",
    "WITHDRAWN",
    "EscalationRecord",
    "ExtensionRecord",
    "StageResponse",
    "StageVisit",
    "escalation_machine",
    "escalation_record",
    "level_of",
    "machine_name",
    "raiser_role",
    "state_of",
]

TERMINAL_STATES: Final = (RESOLVED, WITHDRAWN, REFERRED)
TRIGGERS: Final = (
    "raise",
    "respond",
    "accept",
    "escalate",
    "bypass",
    "request_extension",
    "grant_extension",
    "refuse_extension",
    "withdraw",
    "refer_externally",
    "refer",
    "endorse",
    "agree",
    "consult",
    OVERDUE,
)

_AGREED: Final = "escalation.agreed_response"
_STAGE_RE: Final = re.compile(r"^stage_([1-9][0-9]*)$")


def machine_name(ladder: EscalationLadder) -> str:
    """The machine name workflows of ``ladder`` pin: ``escalation.<ladder name>``."""
    return f"escalation.{ladder.name}"


def level_of(ladder: EscalationLadder, state: str) -> int | None:
    """The ladder level of ``state``, or ``None`` for ``new``, ``resolved`` and ``withdrawn``."""
    if state == INFORMAL and ladder.informal is not None:
        return 0
    if state == REFERRED or state in {route_state(r) for r in ladder.more_referrals}:
        return ladder.referral_level
    match = _STAGE_RE.match(state)
    if match and int(match.group(1)) <= ladder.last_level:
        return int(match.group(1))
    return None


# --- the record -----------------------------------------------------------------------------


@attrs.frozen
class StageResponse:
    """What a stage holder answered, when and who."""

    at: datetime
    by: str
    text: str


@attrs.frozen
class ExtensionRecord:
    """One request for further time and what the raiser decided."""

    requested_at: datetime
    requested_by: str
    length: str
    decision: Literal["granted", "refused"] | None = None
    decided_at: datetime | None = None
    due_at: datetime | None = None
    note: str | None = None
    decision_note: str | None = None


@attrs.frozen
class StageVisit:
    """One stage of an escalation's history: when it was entered and how, its deadline, the
    response, extensions, breaches, and when it was left."""

    state: str
    level: int
    entered_at: datetime
    via: str
    holders: tuple[str, ...]
    due_at: datetime | None = None
    note: str | None = None
    response: StageResponse | None = None
    extensions: tuple[ExtensionRecord, ...] = ()
    breaches: int = 0
    breached_at: datetime | None = None
    left_at: datetime | None = None


@attrs.frozen
class EscalationRecord:
    """The record of one escalation, read from its workflow (:func:`escalation_record`)."""

    workflow_id: str
    ladder: str
    kind: str
    state: str
    subject_role: str
    subject_id: str
    raiser_role: str
    raiser_id: str
    reason: str
    raised_at: datetime
    stages: tuple[StageVisit, ...]
    details: str | None = None
    level: int | None = None
    extensions_granted: int = 0
    outcome: Literal["resolved", "withdrawn", "referred"] | None = None
    closed_at: datetime | None = None
    working_days_open: int | None = None
    working_days_to_resolution: int | None = None


_RECORD_KEYS: Final = frozenset(a.name for a in attrs.fields(EscalationRecord)) - {
    "workflow_id",
    "state",
    "stages",
}


def escalation_record(snapshot: WorkflowSnapshot) -> EscalationRecord:
    """The escalation record of a workflow of an escalation machine."""
    data = snapshot.data
    if "raiser_id" not in data:
        raise ValidationError(
            field="workflow", value=snapshot.workflow_id, expected="a raised escalation"
        )
    raw = {k: v for k, v in data.items() if k in _RECORD_KEYS}
    raw.update(
        workflow_id=snapshot.workflow_id, state=snapshot.state, stages=data.get("history", [])
    )
    record: EscalationRecord = converter.structure(raw, EscalationRecord)
    return record


# --- the builder ----------------------------------------------------------------------------


def escalation_machine(ladder: EscalationLadder, policy: Policy) -> MachineSpec:
    """The machine of ``ladder`` under ``policy`` (whose name, version and calendar it pins).

    Pure: the same ladder and policy give an equal spec with the same fingerprint; the spec
    holds no closure (its guards and updates are named vocabulary entries). Raises
    :class:`PolicyError` if the ladder cannot be made into a valid machine.
    """
    return _Builder(ladder, policy).build()


class _Builder(_Routes, _StageCommands):
    """Builds one ladder's states and transitions; each method returns declarative specs."""

    def __init__(self, ladder: EscalationLadder, policy: Policy) -> None:
        if not isinstance(ladder, EscalationLadder):
            raise PolicyError(f"expected an EscalationLadder, got {type(ladder).__name__}")
        if not isinstance(policy, Policy):
            raise PolicyError(f"expected a Policy, got {type(policy).__name__}")
        self.ladder = ladder
        self.policy = policy
        self.raiser = frozenset(ladder.raisers)
        # Who hears of what the raiser must act on: the raiser role, or (where several roles
        # may raise) the person who raised it, by the role "raiser" and its raiser_id.
        self.raiser_roles = raiser_role(ladder)
        self.ext = ladder.extensions
        self.agreed = any(ladder.stage_at(lv).agreed for lv in ladder.levels)
        self._people: Guard | None = None  # one shared guard: every command may name people

    def build(self) -> MachineSpec:
        ladder = self.ladder
        states = [StateSpec(NEW, description="before the escalation is raised")]
        states.extend(self._stage_state(level) for level in ladder.levels)
        for name, word in (
            (RESOLVED, "the raiser accepted the response"),
            (WITHDRAWN, "the raiser withdrew the escalation"),
        ):
            states.append(
                StateSpec(
                    name, terminal=True, on_enter=(_u("close", outcome=name),), description=word
                )
            )
        if ladder.referral is not None:
            states.append(self._referral_state())
        states.extend(self._route_states())
        transitions: list[TransitionSpec] = [*self._raise()]
        for level in ladder.levels:
            transitions.extend(self._stage_transitions(level))
        return MachineSpec(
            name=machine_name(ladder),
            policy=self.policy.name,
            policy_version=self.policy.version,
            initial=NEW,
            states=tuple(states),
            transitions=tuple(transitions),
            calendar=self.policy.calendar,
            migration_roles=self.policy.migration_roles,
            description=ladder.title or f"{ladder.kind} escalation ladder {ladder.name!r}",
        )

    # --- labels and shared pieces ---------------------------------------------------------

    def _response_rule(self, level: int) -> DeadlineRule | None:
        stage = self.ladder.stage_at(level)
        if not stage.has_response_deadline:
            return None
        duration: Duration | DurationRef = (
            stage.response if stage.response is not None else DurationRef(_AGREED)
        )
        return DeadlineRule(
            RESPONSE_DEADLINE,
            duration,
            breach_trigger=OVERDUE,
            notify=(*self.raiser_roles, *stage.holders),
            clause=stage.clause,
        )

    def _stage_state(self, level: int) -> StateSpec:
        ladder = self.ladder
        stage = ladder.stage_at(level)
        rule = self._response_rule(level)
        due = ""
        if stage.response is not None:
            due = f": a response is due within {stage.response}"
        elif stage.agreed:
            due = ": a response is due within the timescale agreed at raise"
        effects: list[Effect] = [
            self._enter_update(level),
            *self._entry_notices(level, f"escalation at {self.label(level)}{due}"),
        ]
        effects.extend(Notify(n.roles, n.reason, n.clause, when=n.when) for n in stage.notices)
        if stage.task:
            effects.append(AddTask(stage.task, self.raiser_roles[0], None, stage.clause))
        deadlines = [rule] if rule else []
        deadlines.extend(
            DeadlineRule(
                d.name, d.within, notify=_dedupe((d.party, *self.raiser_roles)), clause=d.clause
            )
            for d in stage.deadlines
        )
        return StateSpec(
            state_of(ladder, level),
            deadlines=tuple(deadlines),
            on_enter=tuple(effects),
            description=self.label(level),
        )

    def _referral_state(self) -> StateSpec:
        ladder = self.ladder
        level = ladder.referral_level
        assert level is not None and ladder.referral is not None
        return StateSpec(
            REFERRED,
            terminal=True,
            on_enter=(
                self._enter_update(level),
                *self._entry_notices(level, f"escalation referred: {ladder.referral.label}"),
                _u("close", outcome=REFERRED),
            ),
            description=ladder.referral.label,
        )

    def _enter_update(self, level: int) -> Update:
        ladder = self.ladder
        holders = list(ladder.holders(level))
        if level == ladder.referral_level:
            return _u("enter", level=level, holders=holders, response=None)
        stage = ladder.stage_at(level)
        response = None if stage.response is None else str(stage.response)
        return _u("enter", level=level, holders=holders, response=response, agreed=stage.agreed)

    # --- raise ----------------------------------------------------------------------------

    def _raise(self) -> list[TransitionSpec]:
        """One ``raise`` per destination: the first level, then each bypass target."""
        ladder = self.ladder
        first = ladder.first_level
        targets = (first, *ladder.bypass_targets(None))
        names = tuple(state_of(ladder, lv) for lv in targets)
        fields = [
            Field("subject_id", "str", max_length=_ID_MAX),
            Field("reason", "choice", choices=ladder.reasons),
            Field("details", "str", required=False, max_length=_TEXT_MAX),
            Field("to", "choice", required=False, choices=names),
            self._people_field(),
            Field("consulted", "str", required=False, max_length=_TEXT_MAX),
        ]
        agreed = ladder.agreed_response
        guards = [
            _g("'details' describing the concern when the reason is 'other'", "details_when_other")
        ]
        if self.agreed and agreed is not None:
            fields.append(Field("response_time", "str", max_length=16))
            guards.append(
                _g(
                    f"'response_time' agreed between {agreed.min} and {agreed.max}",
                    "length_within",
                    agreed.clause,
                    key="response_time",
                    min=str(agreed.min),
                    max=str(agreed.max),
                )
            )
        effects: tuple[Effect, ...] = (
            _u(
                "raise",
                ladder=ladder.name,
                kind=ladder.kind,
                subject=ladder.subject,
                agreed=self.agreed,
            ),
            *(Notify(n.roles, n.reason, n.clause, when=n.when) for n in ladder.on_raise),
        )
        specs = []
        for level, name in zip(targets, names, strict=True):
            skip = level != first
            consult: tuple[Guard, ...] = ()
            if skip and ladder.bypass_consultation and level != ladder.referral_level:
                consult = (self._consult_guard(),)
            specs.append(
                TransitionSpec(
                    "raise",
                    (NEW,),
                    name,
                    self._roles_to(level),
                    fields=tuple(fields),
                    guards=(
                        self._to_guard(name, default=level == first),
                        self._people_guard(),
                        *guards,
                        *consult,
                    ),
                    effects=effects,
                    clause=ladder.clause if level == first else self._skip_clause(level),
                    description=f"raise the escalation at {self.label(level)}",
                )
            )
        return specs

    def _roles_to(self, level: int) -> frozenset[str]:
        """Who may go to ``level`` by raising or bypassing: the referral may be limited."""
        ladder = self.ladder
        if level == ladder.referral_level and ladder.referral is not None and ladder.referral.by:
            return frozenset(ladder.referral.by)
        return self.raiser

    def _skip_clause(self, level: int) -> str | None:
        ladder = self.ladder
        if level == ladder.referral_level and ladder.referral is not None:
            return ladder.referral.any_time_clause or ladder.referral.clause
        return ladder.bypass_clause

    # --- a stage's commands ---------------------------------------------------------------

    def _stage_transitions(self, level: int) -> list[TransitionSpec]:
        ladder = self.ladder
        stage = ladder.stage_at(level)
        here = (state_of(ladder, level),)
        specs = [self._respond(level, here)]
        nxt = ladder.next_level(level)
        leave = (CloseDeadline(RESPONSE_DEADLINE), _u("people"))
        if nxt is not None:
            endorse: tuple[Guard, ...] = ()
            if stage.endorsed_by and stage.endorse_all:
                endorse = (
                    _g(
                        f"an endorsement by each of {' and '.join(stage.endorsed_by)} first",
                        "endorsed_by_all",
                        stage.clause,
                        roles=list(stage.endorsed_by),
                    ),
                )
            elif stage.endorsed_by:
                endorse = (
                    _g(
                        f"an endorsement by {' or '.join(stage.endorsed_by)} first",
                        "endorsed",
                        stage.clause,
                    ),
                )
            if stage.endorsed_by:
                specs.append(self._endorse(level, here))
            specs.append(
                TransitionSpec(
                    "escalate",
                    here,
                    state_of(ladder, nxt),
                    frozenset(stage.escalated_by) or self.raiser,
                    fields=(self._note(), self._people_field()),
                    guards=(self._people_guard(), *endorse),
                    effects=leave,
                    clause=ladder.clause,
                    actor_key=None if stage.escalated_by else "raiser_id",
                    description="not satisfied, or no response in time: move up a stage",
                )
            )
        targets = ladder.bypass_targets(level)
        names = tuple(state_of(ladder, lv) for lv in targets)
        for target, name in zip(targets, names, strict=True):
            consult: tuple[Guard, ...] = ()
            if ladder.bypass_consultation and target != ladder.referral_level:
                consult = (self._consult_guard(),)
            specs.append(
                TransitionSpec(
                    "bypass",
                    here,
                    name,
                    self._roles_to(target),
                    fields=(
                        Field("to", "choice", choices=names),
                        self._note(),
                        self._people_field(),
                        Field("consulted", "str", required=False, max_length=_TEXT_MAX),
                    ),
                    guards=(self._to_guard(name, default=False), self._people_guard(), *consult),
                    effects=leave,
                    clause=self._skip_clause(target),
                    actor_key="raiser_id",
                    description=f"skip to {self.label(target)}",
                )
            )
        if level == ladder.last_level and ladder.referral is not None:
            several = (self._route_field(),) if ladder.more_referrals else ()
            specs.append(
                TransitionSpec(
                    "refer_externally",
                    here,
                    REFERRED,
                    self._roles_to(ladder.last_level + 1),
                    fields=(self._note(), *several),
                    guards=self._main_route_guards(),
                    effects=(CloseDeadline(RESPONSE_DEADLINE),),
                    clause=ladder.referral.clause,
                    actor_key="raiser_id",
                    description=ladder.referral.label,
                )
            )
        specs.extend(self._routes(level, here))
        specs.extend(self._consult(level, here))
        specs.extend(self._closing(level, here))
        specs.extend(self._tracks(here))
        if stage.joint:
            specs.append(self._agree(level, here))
        if stage.has_response_deadline:
            specs.append(self._overdue(level, here))
            if self.ext.allowed:
                specs.extend(self._extensions(level, here))
        return specs
