"""Every behaviour knob of the simulations, as validated frozen records.

:class:`StageBehaviour` is how the people at one escalation stage behave; :class:`Behaviour`
is that at every stage of a ladder, with the times of day people act at and how raises are
spread; :class:`ProgrammeBehaviour` is how a generated council runs its audit programme
(rates, and the :class:`Behaviour` of the escalations it raises). A bad value raises
:class:`~qaflow.errors.ValidationError` naming the field and what it accepts, when the
record is built: nothing here is a module constant the caller cannot change.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import time
from typing import Any

import attrs

from qaflow.errors import ValidationError
from qaflow.policies.ladders import EscalationLadder
from qaflow.procedure import Grade

__all__ = ["Behaviour", "ProgrammeBehaviour", "StageBehaviour", "clock_time"]

_HH_MM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def _probability(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise ValidationError(field=attribute.name, value=value, expected="a probability in 0..1")


def _whole(low: int, high: int) -> Callable[[object, attrs.Attribute[int], object], None]:
    def check(_: object, attribute: attrs.Attribute[int], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValidationError(
                field=attribute.name, value=value, expected=f"a whole number in {low}..{high}"
            )

    return check


def _time_of_day(_: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or _HH_MM.fullmatch(value) is None:
        raise ValidationError(
            field=attribute.name, value=value, expected="a local time of day as HH:MM"
        )


def clock_time(text: str) -> time:
    """The :class:`datetime.time` of a validated ``HH:MM`` knob."""
    return time(int(text[:2]), int(text[3:]))


def _day_weights(value: object) -> tuple[tuple[int, float], ...]:
    """``response_days`` as (working day, weight) pairs; a mapping is accepted too."""
    items = value.items() if isinstance(value, Mapping) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise ValidationError(
            field="response_days", value=value, expected="(working day, weight) pairs"
        )
    pairs: list[tuple[int, float]] = []
    for item in items:
        try:
            day, weight = item
        except (TypeError, ValueError):
            raise ValidationError(
                field="response_days", value=item, expected="a (working day, weight) pair"
            ) from None
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 365:
            raise ValidationError(
                field="response_days", value=day, expected="working days in 1..365"
            )
        if (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not math.isfinite(weight)
            or weight <= 0
        ):
            raise ValidationError(
                field="response_days", value=weight, expected="a weight greater than 0"
            )
        pairs.append((day, float(weight)))
    if not pairs:
        raise ValidationError(
            field="response_days", value=value, expected="at least one (working day, weight)"
        )
    return tuple(pairs)


@attrs.frozen
class StageBehaviour:
    """How the people at one stage behave (see :mod:`qaflow.simulate` for the play).

    ``response_days`` is the distribution of when the holder responds, in working days after
    the stage was entered: (day, weight) pairs, e.g. ``((2, 1), (5, 2))`` means day 2 one
    time in three and day 5 two times in three. A day after the response deadline means the
    response does not come in time.
    """

    respond_probability: float = attrs.field(default=0.85, validator=_probability)
    response_days: tuple[tuple[int, float], ...] = attrs.field(
        default=((1, 1.0), (2, 2.0), (3, 3.0), (4, 3.0), (5, 2.0), (7, 1.0), (10, 1.0)),
        converter=_day_weights,
    )
    accept_probability: float = attrs.field(default=0.6, validator=_probability)
    extension_probability: float = attrs.field(default=0.3, validator=_probability)
    grant_probability: float = attrs.field(default=0.8, validator=_probability)
    bypass_probability: float = attrs.field(default=0.05, validator=_probability)
    withdraw_probability: float = attrs.field(default=0.05, validator=_probability)
    decision_days: int = attrs.field(default=1, validator=_whole(0, 60))
    wait_days: int = attrs.field(default=10, validator=_whole(1, 365))

    def __attrs_post_init__(self) -> None:
        if self.bypass_probability + self.withdraw_probability > 1 + 1e-12:
            raise ValidationError(
                field="bypass_probability",
                value=self.bypass_probability,
                expected=f"at most 1 - withdraw_probability ({1 - self.withdraw_probability:g})",
            )


def _overrides(value: Mapping[int, StageBehaviour] | None) -> dict[int, StageBehaviour]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(
            field="stages", value=value, expected="a mapping of ladder level to StageBehaviour"
        )
    out: dict[int, StageBehaviour] = {}
    for level, behaviour in value.items():
        if isinstance(level, bool) or not isinstance(level, int):
            raise ValidationError(field="stages", value=level, expected="a ladder level (int)")
        if not isinstance(behaviour, StageBehaviour):
            raise ValidationError(
                field=f"stages[{level}]", value=behaviour, expected="a StageBehaviour"
            )
        out[level] = behaviour
    return out


def _stage_behaviour(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, StageBehaviour):
        raise ValidationError(field=attribute.name, value=value, expected="a StageBehaviour")


@attrs.frozen
class Behaviour:
    """Behaviour at every stage: ``default``, with per-level overrides in ``stages``.

    Levels are the ladder's: 0 the informal stage, 1..N the formal stages. ``raise_at`` is
    the level a raise lands on (``None``: the ladder's first; a later one only where the
    ladder allows a raise to bypass to it). The times are Europe/London local: a holder asks
    for more time at ``ask_at`` on the deadline's day and responds at ``reply_at``; the
    raiser decides (or moves on without an answer) at ``decide_at`` and answers a request
    for more time ``answer_after_minutes`` after it. :func:`~qaflow.simulate.simulate_escalations`
    raises each escalation at a moment within ``raise_window_minutes`` of ``raise_from`` on
    a working day, by one of ``raisers`` people taking turns.
    """

    default: StageBehaviour = attrs.field(factory=StageBehaviour, validator=_stage_behaviour)
    stages: dict[int, StageBehaviour] = attrs.field(factory=dict, converter=_overrides, hash=False)
    raise_at: int | None = None
    ask_at: str = attrs.field(default="09:00", validator=_time_of_day)
    reply_at: str = attrs.field(default="10:00", validator=_time_of_day)
    decide_at: str = attrs.field(default="11:00", validator=_time_of_day)
    answer_after_minutes: int = attrs.field(default=60, validator=_whole(1, 24 * 60))
    raise_from: str = attrs.field(default="09:00", validator=_time_of_day)
    raise_window_minutes: int = attrs.field(default=480, validator=_whole(1, 24 * 60))
    raisers: int = attrs.field(default=25, validator=_whole(1, 999))

    def at(self, level: int) -> StageBehaviour:
        """The behaviour at ``level``."""
        return self.stages.get(level, self.default)

    def check(self, ladder: EscalationLadder) -> None:
        """Raise :class:`ValidationError` unless every level named is one of ``ladder``'s."""
        levels = ladder.levels
        span = f"{levels[0]}..{levels[-1]}"
        for level in self.stages:
            if level not in levels:
                raise ValidationError(
                    field="stages",
                    value=level,
                    expected=f"a level of ladder {ladder.name!r} ({span})",
                )
        if self.raise_at is not None:
            allowed = (ladder.first_level, *ladder.bypass_targets(None))
            if self.raise_at not in allowed:
                raise ValidationError(
                    field="raise_at",
                    value=self.raise_at,
                    expected="one of " + ", ".join(map(str, allowed)) + f" for {ladder.name!r}",
                )


def _grades(value: object) -> dict[Grade, float]:
    if not isinstance(value, Mapping):
        raise ValidationError(field="grades", value=value, expected="a mapping of Grade to weight")
    out: dict[Grade, float] = {}
    for grade, weight in value.items():
        if not isinstance(grade, Grade):
            raise ValidationError(field="grades", value=grade, expected="Grade keys")
        if (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not math.isfinite(weight)
            or weight < 0
        ):
            raise ValidationError(
                field=f"grades[{grade.name}]", value=weight, expected="a weight >= 0"
            )
        out[grade] = float(weight)
    return out


def _default_grades() -> dict[Grade, float]:
    return {
        Grade.OUTSTANDING: 0.10,
        Grade.GOOD: 0.50,
        Grade.REQUIRES_IMPROVEMENT: 0.30,
        Grade.INADEQUATE: 0.10,
    }


def _programme_escalations() -> Behaviour:
    return Behaviour(
        StageBehaviour(
            respond_probability=0.9,
            response_days=((1, 0.15), (2, 0.2), (3, 0.2), (4, 0.15), (5, 0.1), (6, 0.1), (8, 0.1)),
            accept_probability=0.6,
            extension_probability=0.4,
            grant_probability=0.7,
            bypass_probability=0.08,
            withdraw_probability=0.05,
            decision_days=2,
            wait_days=8,
        )
    )


def _day_range(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
        or not 0 <= value[0] <= value[1] <= 365
    ):
        raise ValidationError(
            field=attribute.name,
            value=value,
            expected="working days (low, high), 0 <= low <= high <= 365",
        )


def _behaviour(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Behaviour):
        raise ValidationError(field=attribute.name, value=value, expected="a Behaviour")


@attrs.frozen(kw_only=True)
class ProgrammeBehaviour:
    """How a generated council runs its audit programme (:func:`~qaflow.programme.run_programme`).

    ``grades`` weights the auditors' grades (grades the form cannot give are dropped);
    ``feedback_rate`` is the share of audits where family feedback is obtained (else the
    reason is recorded); ``escalation_rate`` the monthly chance that a case on a plan, a
    case in care or a foster carer sees an escalation raised, played with ``escalation``;
    ``cancel_rate`` the share of audits cancelled before completion; ``slow_auditor_share``
    the share of managers who follow up or complete late and do their tasks late more
    often; ``moderation_agreement`` the chance a moderator agrees with the grade, and
    ``regrade_kept`` the chance the moderator's grade (not the auditor's) is agreed at the
    meeting after a disagreement; ``moderator_actions_done`` the chance the moderator finds
    the audit's actions completed; ``task_on_time_rate`` the chance a task is done before it
    falls due; ``safeguarding_rate`` the share of audits that escalate a serious
    safeguarding issue where the policy has that rule; ``practice_week_rate`` the share of
    audits held in a practice week. Without a self-assessment an auditor holds the meeting
    ``meeting_days`` working days after allocation (``slow_meeting_days`` for a slow one); a
    completed audit is followed up ``follow_up_days`` later (``slow_follow_up_days``): each
    a (low, high) range drawn uniformly.
    """

    grades: dict[Grade, float] = attrs.field(factory=_default_grades, converter=_grades, hash=False)
    feedback_rate: float = attrs.field(default=0.7, validator=_probability)
    escalation_rate: float = attrs.field(default=0.03, validator=_probability)
    cancel_rate: float = attrs.field(default=0.04, validator=_probability)
    slow_auditor_share: float = attrs.field(default=0.2, validator=_probability)
    moderation_agreement: float = attrs.field(default=0.75, validator=_probability)
    regrade_kept: float = attrs.field(default=0.6, validator=_probability)
    moderator_actions_done: float = attrs.field(default=0.85, validator=_probability)
    task_on_time_rate: float = attrs.field(default=0.85, validator=_probability)
    safeguarding_rate: float = attrs.field(default=0.02, validator=_probability)
    practice_week_rate: float = attrs.field(default=0.05, validator=_probability)
    meeting_days: tuple[int, int] = attrs.field(default=(2, 7), validator=_day_range)
    slow_meeting_days: tuple[int, int] = attrs.field(default=(9, 15), validator=_day_range)
    follow_up_days: tuple[int, int] = attrs.field(default=(1, 4), validator=_day_range)
    slow_follow_up_days: tuple[int, int] = attrs.field(default=(4, 9), validator=_day_range)
    escalation: Behaviour = attrs.field(factory=_programme_escalations, validator=_behaviour)
