"""Hypothesis strategies for escalation ladders and the commands run against them.

Public through :mod:`qaflow.testing`: :func:`ladders` draws valid ladders of every shape the
ladder types allow; :func:`raise_commands`, :func:`ladder_commands` and
:func:`command_sequences` draw commands, mostly valid and sometimes not (to test refusals).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import attrs
from hypothesis import strategies as st

from qaflow.calendar import Duration
from qaflow.clock import ManualClock
from qaflow.machines.escalation import OVERDUE, REFERRED, state_of
from qaflow.policies.base import Policy
from qaflow.policies.ladders import (
    EscalationLadder,
    ExtensionRule,
    ExternalReferral,
    LadderStage,
    Notice,
)
from qaflow.spec import MachineSpec
from qaflow.testing._workflow import aware_datetimes

__all__ = [
    "CONFORMANCE_POLICY",
    "LadderCommand",
    "Who",
    "clock_starts",
    "clocks",
    "command_sequences",
    "ladder_commands",
    "ladders",
    "raise_commands",
    "waits",
]

CONFORMANCE_POLICY = Policy("qaflow-conformance", "1")
"""The policy ladders are pinned to when a check is given none."""

Who = Literal["raiser", "other_raiser", "holder", "someone", "system"]
_WHO: tuple[Who, ...] = ("raiser", "other_raiser", "holder", "someone", "system")
_HOLDER_POOL = (
    "social_worker",
    "team_manager",
    "service_manager",
    "head_of_service",
    "assistant_director",
    "director",
    "fostering_manager",
    "principal_social_worker",
)
_INFORMED_POOL = ("parent", "advocate", "guardian", "iro_manager", "chair_manager")
_CUSTOM_RAISERS = ("quality_lead", "lado", "iro")
_RAISERS = {"cp_chair": "cp_chair", "iro": "iro", "firo": "firo"}


# strategies ---------------------------------------------------------------------------------


@st.composite
def _durations(draw: st.DrawFn, unit: str, low: int, high: int) -> Duration:
    return Duration(draw(st.integers(low, high)), unit)  # type: ignore[arg-type]


@st.composite
def ladders(
    draw: st.DrawFn,
    *,
    kinds: tuple[str, ...] = ("cp_chair", "iro", "firo", "custom"),
    max_stages: int = 5,
) -> EscalationLadder:
    """Valid escalation ladders of every shape the ladder types allow.

    IRO ladders keep NAT-IRO-03 (formal stages in WD adding up to at most 20); others may
    count in elapsed days or hours too. Bypass, the breach action, extension bounds, the
    external referral and who is kept informed all vary.
    """
    kind = draw(st.sampled_from(kinds))
    raiser = _RAISERS.get(kind) or draw(st.sampled_from(_CUSTOM_RAISERS))
    subject = "foster_carer" if kind == "firo" else draw(st.sampled_from(("child", "young_person")))
    n = draw(st.integers(1, max_stages))
    iro = kind == "iro" or raiser == "iro"
    unit = "WD" if iro else draw(st.sampled_from(("WD", "WD", "d", "h")))
    high = 20 // n if iro else 8

    def stage(clause: str, response: Duration | None) -> LadderStage:
        holders = draw(st.lists(st.sampled_from(_HOLDER_POOL), min_size=1, max_size=2, unique=True))
        informed = draw(st.lists(st.sampled_from(_INFORMED_POOL), max_size=1, unique=True))
        return LadderStage(tuple(holders), response, tuple(informed), clause=clause)

    stages = tuple(stage(f"T-{k}", draw(_durations(unit, 1, high))) for k in range(1, n + 1))
    informal = None
    if draw(st.booleans()):
        response = draw(st.none() | _durations(unit, 1, 5))
        informal = stage("T-0", response)
    informed = draw(st.lists(st.sampled_from((subject, *_INFORMED_POOL)), max_size=2, unique=True))
    count = draw(st.integers(0, 3))
    extensions = ExtensionRule(
        count,
        draw(_durations(unit, 1, 5)) if count else None,
        per=draw(st.sampled_from(("stage", "escalation"))),
        clause="T-EXT",
    )
    referral = None
    if draw(st.booleans()):
        referral = ExternalReferral(
            draw(st.sampled_from(("cafcass", "external_panel"))),
            when=draw(st.sampled_from(("after_last_stage", "any_time"))),
            clause="T-REF",
            any_time_clause="T-REF-ANY",
        )
    on_raise: tuple[Notice, ...] = ()
    if draw(st.booleans()):
        on_raise = (Notice((subject,), "your rights", clause="T-RIGHTS"),)
    return EscalationLadder(
        name=draw(st.sampled_from(("generated", "random_ladder", "council_own"))),
        kind=kind if kind != "custom" else "custom",
        raiser=raiser,
        subject=subject,
        stages=stages,
        informal=informal,
        informed=tuple(informed),
        informed_clause="T-INF",
        bypass=draw(st.booleans()),
        bypass_clause="T-BYPASS",
        breach=draw(st.sampled_from(("notify", "escalate"))),
        extensions=extensions,
        referral=referral,
        on_raise=on_raise,
        clause="T-LADDER",
        close_clause="T-CLOSE",
        statutory=("iro_dispute_resolution",) if iro else (),
    )


def clock_starts(min_year: int = 2020, max_year: int = 2030) -> st.SearchStrategy[datetime]:
    """Aware starting moments, often in the days around Christmas, Easter and a weekend."""
    near_holidays = st.builds(
        lambda year, day, hour: datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=day, hours=hour),
        st.integers(min_year, max_year),
        st.sampled_from((-8, -7, -6, -2, 0, 88, 94, 95, 97, 125, 145, 236, 358, 359, 363)),
        st.integers(0, 23),
    )
    return st.one_of(aware_datetimes(min_year, max_year), near_holidays)


def clocks(min_year: int = 2020, max_year: int = 2030) -> st.SearchStrategy[ManualClock]:
    """Manual clocks starting at :func:`clock_starts` moments."""
    return st.builds(ManualClock, clock_starts(min_year, max_year))


def waits() -> st.SearchStrategy[timedelta]:
    """How long to let pass before a command: from an hour to a few weeks."""
    return st.one_of(
        st.sampled_from([timedelta(hours=h) for h in (1, 8, 24, 72, 24 * 7, 24 * 12)]),
        st.integers(1, 24 * 30).map(lambda h: timedelta(hours=h)),
    )


@attrs.frozen
class LadderCommand:
    """One command against an escalation, with the actor given by what they are to it.

    ``who``: ``raiser`` (the person who raised it), ``other_raiser`` (same role, another
    person), ``holder`` (a holder of the current stage, ``pick`` chooses which), ``someone``
    (any role of the ladder) or ``system``. ``wait`` passes (and ticks) before it runs.
    """

    trigger: str
    who: Who = "raiser"
    payload: dict[str, Any] = attrs.field(factory=dict)
    pick: int = 0
    wait: timedelta = timedelta(0)


def _people(ladder: EscalationLadder) -> st.SearchStrategy[dict[str, str]]:
    roles = ladder.assignable_roles
    good = (
        st.dictionaries(st.sampled_from(roles), st.sampled_from(("P-1", "P-2")), max_size=2)
        if roles
        else st.just({})
    )
    return st.one_of(good, st.just({"raiser": "P-9"}), st.just({roles[0] if roles else "x": ""}))


def _state_names(ladder: EscalationLadder) -> tuple[str, ...]:
    return tuple(state_of(ladder, lv) for lv in ladder.levels) + (
        (REFERRED,) if ladder.referral is not None else ()
    )


@st.composite
def raise_commands(draw: st.DrawFn, ladder: EscalationLadder) -> LadderCommand:
    """``raise`` commands, mostly valid: any target (some not allowed), reasons, people."""
    payload: dict[str, Any] = {
        "subject_id": draw(st.sampled_from(("C-1", "C-2", "FC-1"))),
        "reason": _usually(draw, draw(st.sampled_from(ladder.reasons)), "not_a_reason"),
    }
    if draw(st.booleans()):
        payload["details"] = "free text about the concern"
    if draw(st.booleans()):
        payload["to"] = draw(st.sampled_from((*_state_names(ladder), "stage_99")))
    if not _usually(draw, True, False):
        payload["people"] = draw(_people(ladder))
    agreed = ladder.agreed_response
    if agreed is not None:
        low, high = agreed.min.amount, agreed.max.amount
        good = [f"{k} {agreed.min.unit}" for k in range(low, high + 1)]
        payload["response_time"] = _usually(draw, draw(st.sampled_from(good)), f"{high + 1} h")
    if ladder.bypass_consultation and draw(st.booleans()):
        payload["consulted"] = "consulted the head of service"
    who: Who = _usually(draw, "raiser", "someone")
    return LadderCommand("raise", who, payload, draw(st.integers(0, 7)))


_LATER = (  # the order matters: hypothesis favours the first
    "escalate",
    "request_extension",
    "grant_extension",
    "respond",
    "bypass",
    "refuse_extension",
    "refer_externally",
    OVERDUE,
    "accept",
    "withdraw",
    "endorse",
    "agree",
    "refer",
    "raise",
)
_BY_OTHERS = frozenset({"endorse", "agree"})
_HOLDER_TRIGGERS = frozenset({"respond", "request_extension"})
_CLOSING = frozenset({"accept", "withdraw", "refer_externally"})


def _usually(draw: st.DrawFn, good: Any, *others: Any) -> Any:
    """``good`` four times in five, else one of ``others``. Hypothesis favours (and shrinks
    towards) the first choice, so the simplest draw is the valid one."""
    return draw(st.sampled_from((good,) * 4 + others)) if others else good


@st.composite
def ladder_commands(
    draw: st.DrawFn,
    ladder: EscalationLadder,
    spec: MachineSpec | None = None,
    state: str | None = None,
) -> LadderCommand:
    """Commands after the raise. Given ``spec`` and ``state``, mostly triggers the state
    allows; mostly by the right actor with a valid payload, sometimes not (to test refusals)."""
    allowed = spec.allowed_triggers(state) if spec is not None and state is not None else ()
    if allowed and _usually(draw, True, False):
        # Closing triggers weigh less, so escalations live long enough to climb the ladder.
        weighted = [t for t in _LATER if t in allowed for _ in range(1 if t in _CLOSING else 3)]
        trigger = draw(st.sampled_from(weighted))
    else:
        trigger = draw(st.sampled_from(_LATER))
    if trigger == "raise":
        return draw(raise_commands(ladder))
    right: Who = "holder" if trigger in _HOLDER_TRIGGERS else "raiser"
    if trigger == OVERDUE:
        right = "system"
    elif trigger in _BY_OTHERS:
        right = "someone"
    who: Who = _usually(draw, right, *(w for w in _WHO if w != right))
    payload: dict[str, Any] = {}
    if trigger == "respond":
        payload = _usually(draw, {"response": "the plan will be reviewed this week"}, {})
    elif trigger == "bypass":
        payload["to"] = draw(st.sampled_from((*_state_names(ladder), "stage_0")))
    elif trigger == "request_extension":
        limit = ladder.extensions.max_length or Duration(5, "WD")
        good = [f"{k} {limit.unit}" for k in range(1, limit.amount + 1)]
        bad = (f"{limit.amount + 1} {limit.unit}", f"0 {limit.unit}", "1 h", "soon")
        payload["length"] = _usually(draw, draw(st.sampled_from(good)), *bad)
    elif trigger == OVERDUE:
        payload = {"deadline": "response", "deadline_id": "not-open"}
    elif trigger == "refer" and ladder.tracks:
        payload["track"] = draw(st.sampled_from([t.name for t in ladder.tracks]))
    if trigger == "bypass" and ladder.bypass_consultation and draw(st.booleans()):
        payload["consulted"] = "consulted the head of service"
    if trigger in ("escalate", "bypass") and not _usually(draw, True, False):
        payload["people"] = draw(_people(ladder))
    if trigger not in ("respond", OVERDUE) and not _usually(draw, True, False):
        payload["note"] = "free text"
    wait = _usually(draw, timedelta(0), draw(waits()))
    return LadderCommand(trigger, who, payload, draw(st.integers(0, 7)), wait)


def command_sequences(
    ladder: EscalationLadder, *, max_size: int = 25
) -> st.SearchStrategy[list[LadderCommand]]:
    """A raise then up to ``max_size`` commands, for :func:`run_commands`."""
    return st.tuples(
        raise_commands(ladder), st.lists(ladder_commands(ladder), max_size=max_size)
    ).map(lambda pair: [pair[0], *pair[1]])
