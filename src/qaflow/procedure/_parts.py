"""The parts of an escalation ladder: extension bounds, referrals (terminal and parallel),
notices, other parties' deadlines and agreed timescales, with the shared name checks.

Format-neutral frozen records, each checked when built (:class:`~qaflow.errors.PolicyError`
naming the part); :mod:`qaflow.procedure._ladder` puts them together.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Literal, get_args

import attrs

from qaflow._convert import check_ident as _check_ident
from qaflow._convert import duration as _duration
from qaflow._convert import name_tuple as _str_tuple
from qaflow._convert import optional_duration as _optional_duration
from qaflow.calendar import Duration
from qaflow.errors import PolicyError

__all__ = [
    "IRO_DISPUTE_RESOLUTION",
    "IRO_MAX_TOTAL_RESPONSE",
    "REASONS",
    "RESERVED_ROLES",
    "STATUTORY",
    "AgreedTimescale",
    "BreachAction",
    "ExtensionRule",
    "ExtensionScope",
    "ExternalReferral",
    "Notice",
    "PartyDeadline",
    "ReferralTrack",
    "ReferralWhen",
]

BreachAction = Literal["notify", "escalate"]
"""What a missed response deadline does: tell the raiser (and holder), or move up a stage."""
ExtensionScope = Literal["stage", "escalation"]
"""Whether an extension limit counts per stage or over the whole escalation."""
ReferralWhen = Literal["after_last_stage", "any_time"]
"""When the external referral may be made: after the last stage, or at any point
(NAT-IRO-04: including at the same time as starting the process)."""

REASONS: Final[tuple[str, ...]] = (
    "plan_drift",
    "visits_not_done",
    "no_allocated_worker",
    "safeguarding_concern",
    "practice_not_as_expected",
    "resources_or_support",
    "other",
)
"""The reason categories an escalation is raised under, unless a ladder names its own.
``other`` needs free-text details."""

RESERVED_ROLES: Final = frozenset({"raiser", "subject", "system", "qaflow"})
"""Role names a ladder may not use: their ``<role>_id`` data keys are the machine's own."""

IRO_MAX_TOTAL_RESPONSE: Final = Duration(20, "WD")
"""NAT-IRO-03: an IRO ladder's formal response timescales add up to no more than 20 WD."""

IRO_DISPUTE_RESOLUTION: Final = "iro_dispute_resolution"
"""The declaration that makes a ladder an IRO dispute-resolution procedure (NAT-IRO-03)."""

STATUTORY: Final[dict[str, str]] = {
    IRO_DISPUTE_RESOLUTION: "NAT-IRO-03: the formal response timescales add up to at most 20 WD",
}
"""The statutory rule sets a ladder may declare itself subject to, with what they check."""

_BREACH_ACTIONS: Final = get_args(BreachAction)
_SCOPES: Final = get_args(ExtensionScope)
_WHENS: Final = get_args(ReferralWhen)


def _check_roles(what: str, roles: tuple[str, ...], *, allow_empty: bool = True) -> None:
    """Refuse bad, reserved or repeated role names in one list."""
    if not roles and not allow_empty:
        raise PolicyError(f"{what} must name at least one role")
    for role in roles:
        _check_ident(f"{what} role", role)
        if role in RESERVED_ROLES:
            raise PolicyError(
                f"{what} role {role!r} is reserved; reserved: {', '.join(sorted(RESERVED_ROLES))}"
            )
    repeated = sorted({r for r in roles if roles.count(r) > 1})
    if repeated:
        raise PolicyError(f"{what} names {', '.join(map(repr, repeated))} more than once")


def _dedupe(roles: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(roles))


@attrs.frozen
class ExtensionRule:
    """How much further time the raiser may grant a stage holder (BX-ESC-CP-02, -FIRO-04).

    At most ``max_count`` extensions are granted (per stage, or over the whole escalation,
    as ``per`` says), each at most ``max_length``. ``max_count=0`` allows none.
    """

    max_count: int = 0
    max_length: Duration | None = attrs.field(default=None, converter=_optional_duration)
    per: ExtensionScope = "stage"
    clause: str | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.max_count, int) or isinstance(self.max_count, bool):
            raise PolicyError(
                f"extensions max_count must be a whole number (got {self.max_count!r})"
            )
        if self.max_count < 0:
            raise PolicyError(
                f"extensions max_count must be >= 0 (got {self.max_count})", clause=self.clause
            )
        if self.per not in _SCOPES:
            raise PolicyError(
                f"extensions per must be one of {', '.join(map(repr, _SCOPES))} (got {self.per!r})"
            )
        if self.max_count and (self.max_length is None or self.max_length.amount < 1):
            raise PolicyError(
                "extensions allowed (max_count > 0) need a max_length of at least 1, e.g. '5 WD'",
                clause=self.clause,
            )

    @property
    def allowed(self) -> bool:
        """Whether any extension may be granted."""
        return self.max_count > 0

    def allows(self, length: Duration) -> bool:
        """Whether one extension of ``length`` is within the bound (same unit, not longer)."""
        limit = self.max_length
        return (
            self.allowed
            and limit is not None
            and length.unit == limit.unit
            and 1 <= length.amount <= limit.amount
        )


@attrs.frozen
class ExternalReferral:
    """A referral outside the council that ends the escalation (IRO: Cafcass, BX-ESC-IRO-04).

    ``role`` is notified when it is made; ``when`` says whether it may be made only from the
    last stage (``after_last_stage``) or also by bypassing stages, even when raising
    (``any_time``, NAT-IRO-04), which ``any_time_clause`` cites.
    """

    role: str
    title: str = ""
    when: ReferralWhen = "after_last_stage"
    informed: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    clause: str | None = None
    any_time_clause: str | None = None
    by: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple, kw_only=True)
    """The raiser roles that may make this referral (empty: every raiser role)."""
    name: str = attrs.field(default="", kw_only=True)
    """The route's name where a ladder has several referral routes (else empty)."""

    def __attrs_post_init__(self) -> None:
        if self.name:
            _check_ident("referral route name", self.name)
        _check_roles("referral", (self.role,))
        _check_roles("referral informed", self.informed)
        _check_roles("referral by", self.by)
        if self.when not in _WHENS:
            raise PolicyError(
                f"referral when must be one of {', '.join(map(repr, _WHENS))} (got {self.when!r})",
                clause=self.clause,
            )

    @property
    def label(self) -> str:
        return self.title or f"referral to {self.role}"


@attrs.frozen
class Notice:
    """A notification sent when an escalation is raised (e.g. BX-ESC-IRO-02: the child is told
    their rights and how to get an advocate or legal representation)."""

    roles: tuple[str, ...] = attrs.field(converter=_str_tuple)
    reason: str
    clause: str | None = None
    when: str | None = None
    """A CEL condition (source text): the notice goes only when it holds, e.g.
    ``reason == "immediate_risk"``."""

    def __attrs_post_init__(self) -> None:
        _check_roles("notice", self.roles, allow_empty=False)
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise PolicyError("a notice needs a non-empty reason", clause=self.clause)
        if self.when is not None and (not isinstance(self.when, str) or not self.when.strip()):
            raise PolicyError("a notice's 'when' must be a CEL expression", clause=self.clause)


@attrs.frozen
class PartyDeadline:
    """A deadline on someone other than the stage holder, opened on entering the stage:
    ``party`` does ``action`` ``within`` the time (e.g. the chair completes the stage-1 form
    within 3 WD). A miss is recorded and the party and the raiser are told."""

    name: str
    party: str
    within: Duration = attrs.field(converter=_duration)
    action: str
    clause: str | None = None

    def __attrs_post_init__(self) -> None:
        _check_ident("party deadline name", self.name)
        if self.name == "response":
            raise PolicyError("a party deadline cannot be called 'response' (the holder's own)")
        _check_roles("party deadline party", (self.party,))
        if self.within.amount < 1:
            raise PolicyError(
                f"party deadline {self.name!r} must be at least 1 {self.within.unit}",
                clause=self.clause,
            )
        if not isinstance(self.action, str) or not self.action.strip():
            raise PolicyError(f"party deadline {self.name!r} needs an action", clause=self.clause)


@attrs.frozen
class ReferralTrack:
    """A referral outside the council made alongside its stages, which go on (a parallel
    track: NAT-IRO-04, "at any point, including at the same time as starting the process").

    It is recorded in the escalation's own workflow (``refer`` at any open stage, or with the
    raise), tells ``role`` and those ``informed``, and may be made once per escalation.
    """

    name: str
    role: str
    title: str = ""
    by: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    informed: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    clause: str | None = None

    def __attrs_post_init__(self) -> None:
        _check_ident("referral track name", self.name)
        _check_roles("referral track", (self.role,))
        _check_roles("referral track by", self.by)
        _check_roles("referral track informed", self.informed)

    @property
    def label(self) -> str:
        return self.title or f"referral to {self.role}"


@attrs.frozen
class AgreedTimescale:
    """The bounds within which a response timescale is agreed case by case at raise."""

    min: Duration = attrs.field(converter=_duration)
    max: Duration = attrs.field(converter=_duration)
    clause: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.min.unit != self.max.unit:
            raise PolicyError(
                f"agreed timescale bounds must share a unit (got {self.min} and {self.max})",
                clause=self.clause,
            )
        if not 1 <= self.min.amount <= self.max.amount:
            raise PolicyError(
                f"agreed timescale needs 1 <= min <= max (got {self.min} to {self.max})",
                clause=self.clause,
            )

    def allows(self, length: Duration) -> bool:
        """Whether ``length`` is within the bounds (same unit)."""
        return length.unit == self.min.unit and self.min.amount <= length.amount <= self.max.amount
