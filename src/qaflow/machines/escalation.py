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
``response_overdue``   qaflow       fired by ``tick`` when a response deadline passes
=====================  ===========  =========================================================

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
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final, Literal

import attrs

from qaflow.calendar import Duration, WorkingCalendar
from qaflow.errors import PolicyError, ValidationError
from qaflow.policies.base import Policy
from qaflow.policies.ladders import EscalationLadder
from qaflow.records import WorkflowSnapshot, converter, utc_isoformat
from qaflow.spec import (
    AddTask,
    CloseDeadline,
    Context,
    DeadlineRule,
    Derived,
    Effect,
    ExtendDeadline,
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
    "state_of",
]

NEW: Final = "new"
INFORMAL: Final = "informal"
RESOLVED: Final = "resolved"
WITHDRAWN: Final = "withdrawn"
REFERRED: Final = "referred"
TERMINAL_STATES: Final = (RESOLVED, WITHDRAWN, REFERRED)
RESPONSE_DEADLINE: Final = "response"
"""The name of each stage's response deadline."""
OVERDUE: Final = "response_overdue"
"""The breach trigger ``tick`` fires when a response deadline passes."""
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
    OVERDUE,
)

_NOBODY: Final[dict[str, str]] = {}
_TEXT_MAX: Final = 4000
_ID_MAX: Final = 64
_STAGE_RE: Final = re.compile(r"^stage_([1-9][0-9]*)$")


def machine_name(ladder: EscalationLadder) -> str:
    """The machine name workflows of ``ladder`` pin: ``escalation.<ladder name>``."""
    return f"escalation.{ladder.name}"


def state_of(ladder: EscalationLadder, level: int) -> str:
    """The state of a ladder level: 0 ``informal``, k ``stage_k``, N+1 ``referred``."""
    if level == 0 and ladder.informal is not None:
        return INFORMAL
    if 1 <= level <= ladder.last_level:
        return f"stage_{level}"
    if level == ladder.referral_level:
        return REFERRED
    raise PolicyError(f"ladder {ladder.name!r} has no level {level!r}")


def level_of(ladder: EscalationLadder, state: str) -> int | None:
    """The ladder level of ``state``, or ``None`` for ``new``, ``resolved`` and ``withdrawn``."""
    if state == INFORMAL and ladder.informal is not None:
        return 0
    if state == REFERRED:
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


# --- data helpers (pure: every Update returns new values, never mutates the old ones) -------


def _iso(moment: datetime) -> str:
    return utc_isoformat(moment)


def _history(ctx: Context) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = list(ctx.data.get("history", ()))
    return history


def _last(ctx: Context) -> dict[str, Any]:
    """The current stage's history entry, to read (never changed in place), or ``{}``."""
    history = ctx.data.get("history")
    if not history:
        return {}
    last: dict[str, Any] = history[-1]
    return last


def _with_last(ctx: Context, **changes: Any) -> list[dict[str, Any]]:
    """The history with its last entry replaced by a copy carrying ``changes``."""
    history = _history(ctx)
    history[-1] = {**history[-1], **changes}
    return history


def _pending(ctx: Context) -> dict[str, Any] | None:
    """The extension request of the current stage still waiting for a decision, if any."""
    extensions = _last(ctx).get("extensions", ())
    if extensions and extensions[-1].get("decision") is None:
        pending: dict[str, Any] = extensions[-1]
        return pending
    return None


def _with_pending(ctx: Context, **changes: Any) -> list[dict[str, Any]]:
    """The history with the pending extension request decided (``changes``)."""
    extensions = list(_last(ctx)["extensions"])
    extensions[-1] = {**extensions[-1], **changes}
    return _with_last(ctx, extensions=extensions)


def _length(ctx: Context) -> Duration | None:
    try:
        return Duration.parse(ctx.payload.get("length", ""))
    except ValidationError:
        return None


def _people(ctx: Context) -> dict[str, str]:
    people = ctx.payload.get("people")
    if not people:
        return {}
    return {f"{role}_id": person for role, person in sorted(people.items())}


# --- the builder ----------------------------------------------------------------------------


def escalation_machine(ladder: EscalationLadder, policy: Policy) -> MachineSpec:
    """The machine of ``ladder`` under ``policy`` (whose name, version and calendar it pins).

    Pure: the same ladder and policy give an equal spec. Raises :class:`PolicyError` if the
    ladder cannot be made into a valid machine.
    """
    return _Builder(ladder, policy).build()


class _Builder:
    """Builds one ladder's states and transitions; each method returns declarative specs."""

    def __init__(self, ladder: EscalationLadder, policy: Policy) -> None:
        if not isinstance(ladder, EscalationLadder):
            raise PolicyError(f"expected an EscalationLadder, got {type(ladder).__name__}")
        if not isinstance(policy, Policy):
            raise PolicyError(f"expected a Policy, got {type(policy).__name__}")
        self.ladder = ladder
        self.policy = policy
        self.raiser = frozenset({ladder.raiser})
        self.raiser_roles = (ladder.raiser,)
        self.ext = ladder.extensions

    def build(self) -> MachineSpec:
        ladder = self.ladder
        states = [StateSpec(NEW, description="before the escalation is raised")]
        states.extend(self._stage_state(level) for level in ladder.levels)
        states.append(
            StateSpec(
                RESOLVED,
                terminal=True,
                on_enter=(self._close_update(RESOLVED),),
                description="the raiser accepted the response",
            )
        )
        states.append(
            StateSpec(
                WITHDRAWN,
                terminal=True,
                on_enter=(self._close_update(WITHDRAWN),),
                description="the raiser withdrew the escalation",
            )
        )
        if ladder.referral is not None:
            states.append(self._referral_state())
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

    def label(self, level: int) -> str:
        ladder = self.ladder
        if level == ladder.referral_level and ladder.referral is not None:
            return ladder.referral.label
        stage = ladder.stage_at(level)
        if level == 0:
            return f"informal stage ({stage.label})"
        return f"stage {level} ({stage.label})"

    def _clause(self, level: int) -> str | None:
        ladder = self.ladder
        if level == ladder.referral_level and ladder.referral is not None:
            return ladder.referral.clause
        return ladder.stage_at(level).clause

    def _entry_notices(self, level: int, what: str) -> tuple[Notify, ...]:
        """Notify the level's holders, then everyone kept informed there, citing clauses."""
        ladder = self.ladder
        notices = [Notify(ladder.holders(level), what, self._clause(level))]
        informed = ladder.informed_at(level)
        wide = tuple(r for r in informed if r in ladder.informed)
        own = tuple(r for r in informed if r not in ladder.informed)
        if wide:
            clause = ladder.informed_clause or self._clause(level)
            notices.append(Notify(wide, f"{what} (kept informed)", clause))
        if own:
            notices.append(Notify(own, f"{what} (kept informed)", self._clause(level)))
        return tuple(notices)

    def _people_guard(self) -> Guard:
        allowed = frozenset(self.ladder.assignable_roles)

        def check(ctx: Context) -> bool:
            people = ctx.payload.get("people", _NOBODY)
            if people is _NOBODY:  # the usual case: no one new to record
                return True
            return isinstance(people, dict) and all(
                role in allowed and isinstance(pid, str) and 0 < len(pid.strip()) <= _ID_MAX
                for role, pid in people.items()
            )

        return Guard(
            "'people' to map this ladder's roles ("
            + ", ".join(sorted(allowed))
            + f") to person ids of at most {_ID_MAX} characters",
            check,
        )

    @staticmethod
    def _to_guard(target: str, *, default: bool) -> Guard:
        if default:
            return Guard(
                f"'to' omitted or {target!r}",
                lambda c: c.payload.get("to", target) == target,
            )
        return Guard(f"'to' is {target!r}", lambda c: c.payload.get("to") == target)

    def _note(self) -> Field:
        return Field("note", "str", required=False, max_length=_TEXT_MAX)

    def _people_field(self) -> Field:
        return Field("people", "dict", required=False)

    # --- states ---------------------------------------------------------------------------

    def _response_rule(self, level: int) -> DeadlineRule | None:
        stage = self.ladder.stage_at(level)
        if stage.response is None:
            return None
        return DeadlineRule(
            RESPONSE_DEADLINE,
            stage.response,
            breach_trigger=OVERDUE,
            notify=(self.ladder.raiser, *stage.holders),
            clause=stage.clause,
        )

    def _stage_state(self, level: int) -> StateSpec:
        ladder = self.ladder
        stage = ladder.stage_at(level)
        rule = self._response_rule(level)
        due = f": a response is due within {stage.response}" if stage.response else ""
        effects: list[Effect] = [
            self._enter_update(level),
            *self._entry_notices(level, f"escalation at {self.label(level)}{due}"),
        ]
        if stage.task:
            effects.append(AddTask(stage.task, ladder.raiser, None, stage.clause))
        return StateSpec(
            state_of(ladder, level),
            deadlines=(rule,) if rule else (),
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
                self._close_update(REFERRED),
            ),
            description=ladder.referral.label,
        )

    def _enter_update(self, level: int) -> Update:
        """Append a stage visit to the history (closing the one before)."""
        ladder = self.ladder
        holders = list(ladder.holders(level))
        response = None if level == ladder.referral_level else ladder.stage_at(level).response
        # The due time for an entry moment (the engine's deadline for the same rule): many
        # escalations enter a stage at the same moment, so it is remembered (bounded).
        due_at: dict[tuple[datetime, WorkingCalendar], str] = {}

        def fn(ctx: Context) -> Mapping[str, Any]:
            history = _history(ctx)
            if history and history[-1].get("left_at") is None:
                history[-1] = {**history[-1], "left_at": _iso(ctx.at)}
            due = None
            if response is not None:
                key = (ctx.at, ctx.calendar)
                due = due_at.get(key)
                if due is None:
                    if len(due_at) >= 4096:
                        due_at.clear()
                    due = due_at[key] = _iso(max(response.after(ctx.at, key[1]), ctx.at))
            entry = {
                "state": ctx.dest,
                "level": level,
                "entered_at": _iso(ctx.at),
                "via": ctx.trigger,
                "holders": holders,
                "due_at": due,
                "note": ctx.payload.get("note"),
                "response": None,
                "extensions": [],
                "breaches": 0,
                "breached_at": None,
                "left_at": None,
            }
            return {"history": [*history, entry], "level": level}

        return Update(fn)

    def _close_update(self, outcome: str) -> Update:
        """Record the outcome, when, and the working days the escalation was open."""

        def fn(ctx: Context) -> Mapping[str, Any]:
            history = _history(ctx)
            if outcome != REFERRED and history and history[-1].get("left_at") is None:
                history[-1] = {**history[-1], "left_at": _iso(ctx.at)}
            raised = datetime.fromisoformat(ctx.data["raised_at"])
            days = ctx.calendar.working_days_between(raised, ctx.at)
            return {
                "history": history,
                "outcome": outcome,
                "closed_at": _iso(ctx.at),
                "working_days_open": days,
                "working_days_to_resolution": days if outcome == RESOLVED else None,
            }

        return Update(fn)

    # --- raise ----------------------------------------------------------------------------

    def _raise(self) -> list[TransitionSpec]:
        """One ``raise`` per destination: the first level, then each bypass target."""
        ladder = self.ladder
        first = ladder.first_level
        targets = (first, *ladder.bypass_targets(None))
        names = tuple(state_of(ladder, lv) for lv in targets)
        fields = (
            Field("subject_id", "str", max_length=_ID_MAX),
            Field("reason", "choice", choices=ladder.reasons),
            Field("details", "str", required=False, max_length=_TEXT_MAX),
            Field("to", "choice", required=False, choices=names),
            self._people_field(),
        )
        details = Guard(
            "'details' describing the concern when the reason is 'other'",
            lambda c: (
                c.payload["reason"] != "other" or bool(str(c.payload.get("details", "")).strip())
            ),
        )
        effects: tuple[Effect, ...] = (
            self._raise_update(),
            *(Notify(n.roles, n.reason, n.clause) for n in ladder.on_raise),
        )
        specs = []
        for level, name in zip(targets, names, strict=True):
            specs.append(
                TransitionSpec(
                    "raise",
                    (NEW,),
                    name,
                    self.raiser,
                    fields=fields,
                    guards=(
                        self._to_guard(name, default=level == first),
                        self._people_guard(),
                        details,
                    ),
                    effects=effects,
                    clause=ladder.clause if level == first else self._skip_clause(level),
                    description=f"raise the escalation at {self.label(level)}",
                )
            )
        return specs

    def _raise_update(self) -> Update:
        ladder = self.ladder

        def fn(ctx: Context) -> Mapping[str, Any]:
            payload = ctx.payload
            data: dict[str, Any] = {
                "ladder": ladder.name,
                "kind": ladder.kind,
                "subject_role": ladder.subject,
                "subject_id": payload["subject_id"],
                f"{ladder.subject}_id": payload["subject_id"],
                "raiser_role": ladder.raiser,
                "raiser_id": ctx.actor.id,
                f"{ladder.raiser}_id": ctx.actor.id,
                "reason": payload["reason"],
                "details": payload.get("details"),
                "raised_at": _iso(ctx.at),
                "history": [],
                "level": None,
                "extensions_granted": 0,
                "outcome": None,
                "closed_at": None,
                "working_days_open": None,
                "working_days_to_resolution": None,
            }
            data.update(_people(ctx))
            return data

        return Update(fn)

    def _skip_clause(self, level: int) -> str | None:
        ladder = self.ladder
        if level == ladder.referral_level and ladder.referral is not None:
            return ladder.referral.any_time_clause or ladder.referral.clause
        return ladder.bypass_clause

    # --- a stage's commands ---------------------------------------------------------------

    def _stage_transitions(self, level: int) -> list[TransitionSpec]:
        ladder = self.ladder
        here = (state_of(ladder, level),)
        specs = [self._respond(level, here)]
        nxt = ladder.next_level(level)
        leave = (CloseDeadline(RESPONSE_DEADLINE), Update(_people))
        if nxt is not None:
            specs.append(
                TransitionSpec(
                    "escalate",
                    here,
                    state_of(ladder, nxt),
                    self.raiser,
                    fields=(self._note(), self._people_field()),
                    guards=(self._people_guard(),),
                    effects=leave,
                    clause=ladder.clause,
                    actor_key="raiser_id",
                    description="not satisfied, or no response in time: move up a stage",
                )
            )
        targets = ladder.bypass_targets(level)
        names = tuple(state_of(ladder, lv) for lv in targets)
        for target, name in zip(targets, names, strict=True):
            specs.append(
                TransitionSpec(
                    "bypass",
                    here,
                    name,
                    self.raiser,
                    fields=(
                        Field("to", "choice", choices=names),
                        self._note(),
                        self._people_field(),
                    ),
                    guards=(self._to_guard(name, default=False), self._people_guard()),
                    effects=leave,
                    clause=self._skip_clause(target),
                    actor_key="raiser_id",
                    description=f"skip to {self.label(target)}",
                )
            )
        if level == ladder.last_level and ladder.referral is not None:
            specs.append(
                TransitionSpec(
                    "refer_externally",
                    here,
                    REFERRED,
                    self.raiser,
                    fields=(self._note(),),
                    effects=(CloseDeadline(RESPONSE_DEADLINE),),
                    clause=ladder.referral.clause,
                    actor_key="raiser_id",
                    description=ladder.referral.label,
                )
            )
        for trigger, dest, word in (
            ("accept", RESOLVED, "resolved"),
            ("withdraw", WITHDRAWN, "withdrawn"),
        ):
            specs.append(
                TransitionSpec(
                    trigger,
                    here,
                    dest,
                    self.raiser,
                    fields=(self._note(),),
                    effects=self._entry_notices(level, f"escalation {word} at {self.label(level)}"),
                    clause=ladder.close_clause,
                    actor_key="raiser_id",
                    description=f"the raiser closes the escalation: {word}",
                )
            )
        if ladder.stage_at(level).response is not None:
            specs.append(self._overdue(level, here))
            if self.ext.allowed:
                specs.extend(self._extensions(level, here))
        return specs

    def _respond(self, level: int, here: tuple[str, ...]) -> TransitionSpec:
        stage = self.ladder.stage_at(level)

        def record(ctx: Context) -> Mapping[str, Any]:
            response = {"at": _iso(ctx.at), "by": ctx.actor.id, "text": ctx.payload["response"]}
            return {"history": _with_last(ctx, response=response)}

        return TransitionSpec(
            "respond",
            here,
            None,
            frozenset(stage.holders),
            fields=(Field("response", "str", max_length=_TEXT_MAX),),
            guards=(
                Guard(
                    "no response recorded at this stage yet",
                    lambda c: _last(c).get("response") is None,
                    stage.clause,
                ),
            ),
            effects=(
                CloseDeadline(RESPONSE_DEADLINE),
                Update(record),
                Notify(
                    self.raiser_roles,
                    f"response received at {self.label(level)}: accept, escalate or withdraw",
                    stage.clause,
                ),
            ),
            clause=stage.clause,
            description="the stage holder responds",
        )

    def _overdue(self, level: int, here: tuple[str, ...]) -> TransitionSpec:
        ladder = self.ladder
        stage = ladder.stage_at(level)
        nxt = ladder.next_level(level)
        moves = ladder.breach == "escalate" and nxt is not None
        clause = ladder.breach_clause or stage.clause

        def record(ctx: Context) -> Mapping[str, Any]:
            entry = _last(ctx)
            first = entry.get("breached_at") or _iso(ctx.at)
            breaches = int(entry.get("breaches", 0)) + 1
            return {"history": _with_last(ctx, breaches=breaches, breached_at=first)}

        def names_open_response(ctx: Context) -> bool:
            wanted = ctx.payload.get("deadline_id")
            for d in ctx.snapshot.deadlines:
                if d.id == wanted and d.name == RESPONSE_DEADLINE:
                    return True
            return False

        then = "moved up a stage" if moves else "escalate, bypass or grant further time"
        effects: list[Effect] = [
            Update(record),
            Notify(self.raiser_roles, f"response overdue at {self.label(level)}: {then}", clause),
            Notify(stage.holders, f"response overdue at {self.label(level)}", stage.clause),
        ]
        if moves:
            effects.append(CloseDeadline(RESPONSE_DEADLINE))
        return TransitionSpec(
            OVERDUE,
            here,
            state_of(ladder, nxt) if moves and nxt is not None else None,
            frozenset(),  # only tick's breach may fire it (the system actor skips role checks)
            guards=(
                Guard("the breach names this stage's open response deadline", names_open_response),
            ),
            effects=tuple(effects),
            clause=clause,
            description="the response deadline passed",
        )

    def _extensions(self, level: int, here: tuple[str, ...]) -> list[TransitionSpec]:
        ladder = self.ladder
        ext = self.ext
        stage = ladder.stage_at(level)
        assert ext.max_length is not None
        scope = "at this stage" if ext.per == "stage" else "in this escalation"

        def granted(ctx: Context) -> int:
            if ext.per == "escalation":
                return int(ctx.data.get("extensions_granted", 0))
            return sum(
                1 for e in _last(ctx).get("extensions", ()) if e.get("decision") == "granted"
            )

        pending = Guard(
            "an extension request waiting for a decision", lambda c: _pending(c) is not None
        )
        under_limit = Guard(
            f"fewer than {ext.max_count} extension(s) granted {scope}",
            lambda c: granted(c) < ext.max_count,
            ext.clause,
        )

        def request(ctx: Context) -> Mapping[str, Any]:
            length = _length(ctx)
            assert length is not None
            item = {
                "requested_at": _iso(ctx.at),
                "requested_by": ctx.actor.id,
                "length": str(length),
                "decision": None,
                "decided_at": None,
                "due_at": None,
                "note": ctx.payload.get("note"),
                "decision_note": None,
            }
            extensions = [*_last(ctx).get("extensions", ()), item]
            return {"history": _with_last(ctx, extensions=extensions)}

        def pending_length(ctx: Context) -> Duration:
            item = _pending(ctx)
            assert item is not None
            return Duration.parse(item["length"])

        def new_due(ctx: Context) -> datetime:
            length = pending_length(ctx)
            current = ctx.open_deadline(RESPONSE_DEADLINE)
            start = current.due_at if current is not None else ctx.at
            return max(length.after(start, ctx.calendar), ctx.at)

        def extend(ctx: Context) -> Iterable[Effect]:
            # The engine's ExtendDeadline moves an open deadline; once a breach has closed it,
            # the granted time runs from now as a new workflow-level deadline, which leaving
            # the stage closes (CloseDeadline on every way out).
            length = pending_length(ctx)
            if ctx.open_deadline(RESPONSE_DEADLINE) is not None:
                return (ExtendDeadline(RESPONSE_DEADLINE, length),)
            rule = DeadlineRule(
                RESPONSE_DEADLINE,
                length,
                breach_trigger=OVERDUE,
                notify=(ladder.raiser, *stage.holders),
                clause=ext.clause or stage.clause,
            )
            return (OpenDeadline(rule),)

        def grant(ctx: Context) -> Mapping[str, Any]:
            due = _iso(new_due(ctx))
            history = _with_pending(
                ctx,
                decision="granted",
                decided_at=_iso(ctx.at),
                due_at=due,
                decision_note=ctx.payload.get("note"),
            )
            history[-1] = {**history[-1], "due_at": due}
            return {
                "history": history,
                "extensions_granted": int(ctx.data.get("extensions_granted", 0)) + 1,
            }

        def refuse(ctx: Context) -> Mapping[str, Any]:
            history = _with_pending(
                ctx,
                decision="refused",
                decided_at=_iso(ctx.at),
                decision_note=ctx.payload.get("note"),
            )
            return {"history": history}

        assert ext.max_length is not None
        return [
            TransitionSpec(
                "request_extension",
                here,
                None,
                frozenset(stage.holders),
                fields=(Field("length", "str", max_length=16), self._note()),
                guards=(
                    Guard(
                        "no other extension request waiting for a decision",
                        lambda c: _pending(c) is None,
                    ),
                    Guard(
                        "no response recorded at this stage yet",
                        lambda c: _last(c).get("response") is None,
                        stage.clause,
                    ),
                    under_limit,
                    Guard(
                        f"'length' of at most {ext.max_length} (e.g. '{ext.max_length}')",
                        lambda c: (n := _length(c)) is not None and ext.allows(n),
                        ext.clause,
                    ),
                ),
                effects=(
                    Update(request),
                    Notify(
                        self.raiser_roles,
                        f"further time requested at {self.label(level)}: grant or refuse",
                        ext.clause,
                    ),
                ),
                clause=ext.clause,
                description="the holder asks for further time before the next stage",
            ),
            TransitionSpec(
                "grant_extension",
                here,
                None,
                self.raiser,
                fields=(self._note(),),
                guards=(pending, under_limit),
                effects=(
                    Derived(extend),
                    Update(grant),
                    Notify(
                        stage.holders, f"further time granted at {self.label(level)}", ext.clause
                    ),
                ),
                clause=ext.clause,
                actor_key="raiser_id",
                description="the raiser grants the further time asked for",
            ),
            TransitionSpec(
                "refuse_extension",
                here,
                None,
                self.raiser,
                fields=(self._note(),),
                guards=(pending,),
                effects=(
                    Update(refuse),
                    Notify(
                        stage.holders, f"further time refused at {self.label(level)}", ext.clause
                    ),
                ),
                clause=ext.clause,
                actor_key="raiser_id",
                description="the raiser refuses the further time asked for",
            ),
        ]
