"""The escalation procedure model: frozen, validated, format-neutral data.

An :class:`EscalationLadder` is what a council's escalation procedure says (BX-ESC-*,
NAT-CP-*, NAT-IRO-*): which roles may raise it (one protocol can serve CP chairs and IROs
alike), about whom, an optional informal stage, then formal stages 1..N -- per stage who
holds it and how long they have to respond (a fixed timescale, none at all, or one agreed
case by case at raise within the policy's bounds), who escalates from it, whose endorsement
it needs first, who accepts the outcome (two roles jointly where the policy says so), the
deadlines of other parties (the raiser's own stage form), who is kept informed and which
notices go only when a condition holds -- whether and where the raiser may bypass stages
and whether that needs a recorded consultation, how many extensions of what length a holder
may be granted, a terminal external referral and parallel referral tracks (a Cafcass
referral made alongside the council's own stages, which it does not end), and the statutory
rules the ladder declares itself subject to (``iro_dispute_resolution``: NAT-IRO-03).

Ladders speak in *levels*: 0 is the informal stage, 1..N the formal stages and N+1 the
terminal external referral. :mod:`qaflow.machines.escalation` maps levels onto states.

Conditions (``when``) are CEL source text, compiled by the reader and by the machine; the
model keeps them as text. This module imports nothing from the machines, engine or stores.
Every record checks itself when built and raises :class:`~qaflow.errors.PolicyError`
naming the offending part (and, for a statutory rule, its clause).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from qaflow._convert import check_ident as _check_ident
from qaflow._convert import name_tuple as _str_tuple
from qaflow._convert import optional_duration as _optional_duration
from qaflow.calendar import Duration
from qaflow.errors import PolicyError
from qaflow.procedure._parts import (
    _BREACH_ACTIONS,
    IRO_DISPUTE_RESOLUTION,
    IRO_MAX_TOTAL_RESPONSE,
    REASONS,
    RESERVED_ROLES,
    STATUTORY,
    AgreedTimescale,
    BreachAction,
    ExtensionRule,
    ExtensionScope,
    ExternalReferral,
    Notice,
    PartyDeadline,
    ReferralTrack,
    ReferralWhen,
    _check_roles,
    _dedupe,
)

__all__ = [
    "IRO_DISPUTE_RESOLUTION",
    "IRO_MAX_TOTAL_RESPONSE",
    "REASONS",
    "RESERVED_ROLES",
    "STATUTORY",
    "AgreedTimescale",
    "BreachAction",
    "EscalationLadder",
    "ExtensionRule",
    "ExtensionScope",
    "ExternalReferral",
    "LadderStage",
    "Notice",
    "PartyDeadline",
    "ReferralTrack",
    "ReferralWhen",
]


def _party_tuple(items: Iterable[PartyDeadline]) -> tuple[PartyDeadline, ...]:
    return tuple(items)


def _notices(items: Iterable[Notice]) -> tuple[Notice, ...]:
    return tuple(items)


@attrs.frozen
class LadderStage:
    """One stage: who holds it, how long they have to respond, who else is told.

    ``holders`` are the roles that respond at this stage (either may; all are notified when
    the stage is entered). ``informed`` are roles kept informed at this stage only, on top of
    the ladder-wide :attr:`EscalationLadder.informed` -- e.g. the raiser's own manager from
    stage 2 where a council's policy says so. ``task`` opens a task for the raiser when the
    stage is entered (e.g. the informal stage's case note on the child's file).
    """

    holders: tuple[str, ...] = attrs.field(converter=_str_tuple)
    response: Duration | None = attrs.field(default=None, converter=_optional_duration)
    informed: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    title: str = ""
    task: str | None = None
    clause: str | None = None
    agreed: bool = attrs.field(default=False, kw_only=True)
    """The response timescale is agreed case by case at raise (ladder ``agreed_response``)."""
    open_ended: bool = attrs.field(default=False, kw_only=True)
    """A formal stage with no response deadline (e.g. a final report to a director)."""
    escalated_by: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple, kw_only=True)
    """Who escalates from this stage (empty: the person who raised it)."""
    endorsed_by: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple, kw_only=True)
    """One of these roles (each of them, with :attr:`endorse_all`) must endorse before the
    escalation leaves this stage upwards."""
    endorse_all: bool = attrs.field(default=False, kw_only=True)
    """Whether each role of :attr:`endorsed_by` must endorse (all-of), not any one of them."""
    accepted_by: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple, kw_only=True)
    """Who accepts the outcome at this stage (empty: the person who raised it)."""
    joint: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple, kw_only=True)
    """Roles that must each record agreement (``agree``) before whoever accepts may accept:
    a joint decision of the accepter and these roles; empty: no agreement step."""
    deadlines: tuple[PartyDeadline, ...] = attrs.field(
        default=(), converter=_party_tuple, kw_only=True
    )
    notices: tuple[Notice, ...] = attrs.field(default=(), converter=_notices, kw_only=True)
    """Notices sent on entering the stage, each to its roles, when its condition holds."""

    def __attrs_post_init__(self) -> None:
        _check_roles("stage holders", self.holders, allow_empty=False)
        _check_roles("stage informed", self.informed)
        for what, roles in (
            ("escalated_by", self.escalated_by),
            ("endorsed_by", self.endorsed_by),
            ("accepted_by", self.accepted_by),
            ("joint", self.joint),
        ):
            _check_roles(f"stage {what}", roles)
        if self.endorse_all and not self.endorsed_by:
            raise PolicyError(
                f"stage {self.label!r}: endorsement by all needs 'endorsed_by' roles",
                clause=self.clause,
            )
        if self.response is not None and (self.agreed or self.open_ended):
            raise PolicyError(
                f"stage {self.label!r}: a fixed response timescale cannot also be agreed at "
                "raise or open-ended",
                clause=self.clause,
            )
        if self.agreed and self.open_ended:
            raise PolicyError(
                f"stage {self.label!r}: a stage cannot be both agreed and open-ended",
                clause=self.clause,
            )
        names = [d.name for d in self.deadlines]
        if len(set(names)) != len(names):
            raise PolicyError(f"stage {self.label!r} names a party deadline twice")
        both = sorted(set(self.holders) & set(self.informed))
        if both:
            raise PolicyError(
                f"stage {self.label!r} lists {', '.join(map(repr, both))} both as holder and "
                "as kept informed",
                clause=self.clause,
            )
        if self.response is not None and self.response.amount < 1:
            raise PolicyError(
                f"stage {self.label!r} response deadline must be at least 1 {self.response.unit} "
                f"(got {str(self.response)!r})",
                clause=self.clause,
            )
        if self.task is not None and not self.task.strip():
            raise PolicyError(f"stage {self.label!r} task must be non-empty text or omitted")

    @property
    def label(self) -> str:
        """The stage's title, or its holders when it has none."""
        return self.title or " / ".join(self.holders)

    @property
    def has_response_deadline(self) -> bool:
        """Whether entering the stage opens a response deadline (fixed or agreed)."""
        return self.response is not None or self.agreed


def _stage_tuple(items: Iterable[LadderStage]) -> tuple[LadderStage, ...]:
    return tuple(items)


def _notice_tuple(items: Iterable[Notice]) -> tuple[Notice, ...]:
    return tuple(items)


def _no_extensions() -> ExtensionRule:
    return ExtensionRule()


def _track_tuple(items: Iterable[ReferralTrack]) -> tuple[ReferralTrack, ...]:
    return tuple(items)


def _referral_tuple(items: Iterable[ExternalReferral]) -> tuple[ExternalReferral, ...]:
    return tuple(items)


def _int_tuple(items: Iterable[int]) -> tuple[int, ...]:
    return tuple(items)


@attrs.frozen
class EscalationLadder:
    """A whole escalation procedure as data; validated on construction (:class:`PolicyError`).

    ``kind`` names the procedure (``cp_chair``, ``iro``, ``firo`` or a council's own);
    statutory rules attach by declaration (``statutory``), never by a name. ``raiser`` is
    the role that raises, escalates, bypasses, grants extensions and closes (``co_raisers``
    may raise too: the person who raised drives it on); ``subject`` is the role of the
    person the escalation is about (``child``, ``foster_carer``), whose id is recorded as
    ``<subject>_id`` so a ladder can keep them informed by naming that role in ``informed``.
    ``clause`` is cited by the raise and by each escalation to the next stage,
    ``close_clause`` by resolving and withdrawing (BX-ESC-CP-03).
    """

    name: str
    kind: str
    raiser: str
    stages: tuple[LadderStage, ...] = attrs.field(converter=_stage_tuple)
    informal: LadderStage | None = None
    subject: str = "child"
    title: str = ""
    informed: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    informed_clause: str | None = None
    bypass: bool = False
    bypass_clause: str | None = None
    breach: BreachAction = "notify"
    breach_clause: str | None = None
    extensions: ExtensionRule = attrs.field(factory=_no_extensions)
    referral: ExternalReferral | None = None
    on_raise: tuple[Notice, ...] = attrs.field(default=(), converter=_notice_tuple)
    reasons: tuple[str, ...] = attrs.field(default=REASONS, converter=_str_tuple)
    clause: str | None = None
    close_clause: str | None = None
    co_raisers: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple, kw_only=True)
    statutory: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple, kw_only=True)
    """Statutory rule sets the ladder is subject to (:data:`STATUTORY`)."""
    extensions_count_to_cap: bool = attrs.field(default=False, kw_only=True)
    """Whether granted extensions count towards the NAT-IRO-03 cap."""
    agreed_response: AgreedTimescale | None = attrs.field(default=None, kw_only=True)
    bypass_to: tuple[int, ...] = attrs.field(default=(), converter=_int_tuple, kw_only=True)
    """The levels a bypass may enter (empty: any later stage)."""
    bypass_consultation: bool = attrs.field(default=False, kw_only=True)
    """Whether a bypass needs a recorded consultation (``consulted`` in the command, or a
    ``consult`` command by a :attr:`bypass_consulted` role)."""
    bypass_consulted: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple, kw_only=True)
    """Who is consulted before a bypass: a person in one of these roles records it with a
    ``consult`` command at the stage; the bypass from that stage needs it (role-checked).
    Empty: the consultation, if needed, is a ``consulted`` field of the bypass itself."""
    more_referrals: tuple[ExternalReferral, ...] = attrs.field(
        default=(), converter=_referral_tuple, kw_only=True
    )
    """Terminal referral routes besides :attr:`referral` (each named; state
    ``referred_<name>``), made after the last stage or, with ``when = "any_time"``, from any
    stage."""
    tracks: tuple[ReferralTrack, ...] = attrs.field(
        default=(), converter=_track_tuple, kw_only=True
    )

    def __attrs_post_init__(self) -> None:
        _check_ident("ladder name", self.name)
        _check_ident(f"ladder {self.name!r} kind", self.kind)
        _check_roles(f"ladder {self.name!r} raiser", self.raisers)
        _check_roles(f"ladder {self.name!r} subject", (self.subject,))
        if self.subject in self.raisers:
            raise PolicyError(f"ladder {self.name!r}: the subject cannot also be the raiser")
        _check_parts(self)
        _check_roles(f"ladder {self.name!r} informed", self.informed)
        if not isinstance(self.bypass, bool):
            raise PolicyError(f"ladder {self.name!r}: bypass must be true or false")
        if self.breach not in _BREACH_ACTIONS:
            raise PolicyError(
                f"ladder {self.name!r}: breach must be one of "
                f"{', '.join(map(repr, _BREACH_ACTIONS))} (got {self.breach!r})"
            )
        if not self.stages:
            raise PolicyError(f"ladder {self.name!r} needs at least one formal stage")
        for stage in self.stages:
            if not isinstance(stage, LadderStage):
                raise PolicyError(f"ladder {self.name!r}: {stage!r} is not a LadderStage")
        for level in self.levels:
            stage = self.stage_at(level)
            if level > 0 and not (stage.has_response_deadline or stage.open_ended):
                raise PolicyError(
                    f"ladder {self.name!r}: formal stage {level} ({stage.label!r}) has no "
                    "response deadline",
                    clause=stage.clause,
                )
            if stage.agreed and self.agreed_response is None:
                raise PolicyError(
                    f"ladder {self.name!r}: stage {level} has its timescale agreed at raise "
                    "but the ladder sets no 'agreed_response' bounds",
                    clause=stage.clause,
                )
            for role in stage.holders:
                if role in (*self.raisers, self.subject):
                    raise PolicyError(
                        f"ladder {self.name!r}: stage {level} cannot be held by the "
                        f"{'subject' if role == self.subject else 'raiser'} ({role!r})",
                        clause=stage.clause,
                    )
            if self.raiser in stage.informed:
                raise PolicyError(
                    f"ladder {self.name!r}: stage {level} keeps the raiser ({self.raiser!r}) "
                    "informed; the raiser is told of everything already",
                    clause=stage.clause,
                )
        if self.raiser in self.informed:
            raise PolicyError(
                f"ladder {self.name!r}: the raiser ({self.raiser!r}) cannot be in 'informed'"
            )
        if self.referral is not None and self.referral.role in (self.raiser, self.subject):
            raise PolicyError(
                f"ladder {self.name!r}: the referral goes to {self.referral.role!r}, which is the "
                "raiser or the subject",
                clause=self.referral.clause,
            )
        for notice in self.on_raise:
            if self.raiser in notice.roles:
                raise PolicyError(
                    f"ladder {self.name!r}: a raise notice cannot go to the raiser",
                    clause=notice.clause,
                )
        if not self.reasons:
            raise PolicyError(f"ladder {self.name!r} needs at least one reason category")
        for reason in self.reasons:
            _check_ident(f"ladder {self.name!r} reason", reason)
        if len(set(self.reasons)) != len(self.reasons):
            raise PolicyError(f"ladder {self.name!r} names a reason category twice")
        if self.is_iro:
            _check_iro_total(self)

    # --- levels ---------------------------------------------------------------------------

    @property
    def is_iro(self) -> bool:
        """Whether the IRO statutory rules apply: the ladder declares itself an IRO
        dispute-resolution procedure (whatever its kind, name or role ids)."""
        return IRO_DISPUTE_RESOLUTION in self.statutory

    @property
    def raisers(self) -> tuple[str, ...]:
        """Every role that may raise: ``raiser`` first, then ``co_raisers``."""
        return _dedupe((self.raiser, *self.co_raisers))

    @property
    def first_level(self) -> int:
        """Where a plain raise lands: 0 (informal) if the ladder has one, else 1."""
        return 0 if self.informal is not None else 1

    @property
    def last_level(self) -> int:
        """The last formal stage, N."""
        return len(self.stages)

    @property
    def referral_level(self) -> int | None:
        """N+1 when the ladder has an external referral."""
        return self.last_level + 1 if self.referral is not None else None

    @property
    def levels(self) -> tuple[int, ...]:
        """The council's own stages, informal first: (0,) 1..N."""
        return tuple(range(self.first_level, self.last_level + 1))

    @property
    def stage_count(self) -> int:
        """Formal stages, counting the external referral as the last (IRO: 4 + Cafcass = 5)."""
        return self.last_level + (1 if self.referral is not None else 0)

    def stage_at(self, level: int) -> LadderStage:
        """The stage at ``level`` (0 informal, 1..N formal)."""
        if level == 0 and self.informal is not None:
            return self.informal
        if 1 <= level <= self.last_level:
            return self.stages[level - 1]
        raise PolicyError(f"ladder {self.name!r} has no stage at level {level!r}")

    def next_level(self, level: int | None) -> int | None:
        """Where ``escalate`` goes from ``level`` (``None``: before raising); None at the top."""
        if level is None:
            return self.first_level
        return level + 1 if level < self.last_level else None

    def bypass_targets(self, level: int | None) -> tuple[int, ...]:
        """Levels reachable from ``level`` only by skipping (``None``: when raising).

        Later council stages when the ladder allows bypass (NAT-IRO-02, NAT-CP-01,
        BX-ESC-FIRO-03); the external referral when it may be made at any time (NAT-IRO-04)
        and is not simply the next level. A ladder whose bypass needs a consultation
        recorded at a stage (:attr:`bypass_consulted`) skips no stage when raising.
        """
        # A plain raise lands on the first level and escalate on the next: only beyond is a skip.
        beyond = self.first_level if level is None else level + 1
        targets: list[int] = []
        if self.bypass and not (level is None and self.bypass_consulted):
            targets.extend(
                lv
                for lv in self.levels
                if lv > beyond and (not self.bypass_to or lv in self.bypass_to)
            )
        referral = self.referral_level
        if (
            referral is not None
            and self.referral is not None
            and self.referral.when == "any_time"
            and (level is None or level < self.last_level)
        ):
            targets.append(referral)
        return tuple(targets)

    def may_skip(self, source: int | None, dest: int) -> bool:
        """Whether going from ``source`` to ``dest`` is allowed as a bypass."""
        return dest in self.bypass_targets(source)

    def holders(self, level: int) -> tuple[str, ...]:
        """Who responds at ``level`` (the referral's role at the referral level)."""
        if level == self.referral_level and self.referral is not None:
            return (self.referral.role,)
        return self.stage_at(level).holders

    def informed_at(self, level: int) -> tuple[str, ...]:
        """Who is kept informed on entering ``level`` (ladder-wide first, then the stage's),
        leaving out anyone already notified as holder."""
        if level == self.referral_level and self.referral is not None:
            own = self.referral.informed
        else:
            own = self.stage_at(level).informed
        holders = set(self.holders(level))
        return tuple(r for r in _dedupe((*self.informed, *own)) if r not in holders)

    def recipients(self, level: int) -> tuple[str, ...]:
        """Everyone notified on entering ``level``: holders, then those kept informed."""
        return (*self.holders(level), *self.informed_at(level))

    @property
    def total_formal_response(self) -> Duration | None:
        """The formal stages' response timescales added up, when they share one unit."""
        units = {s.response.unit for s in self.stages if s.response is not None}
        if len(units) != 1 or any(s.response is None for s in self.stages):
            return None
        return Duration(sum(s.response.amount for s in self.stages if s.response), units.pop())

    @property
    def assignable_roles(self) -> tuple[str, ...]:
        """Roles whose person ids a command may record (``people``): everyone the ladder
        notifies except the raiser and the subject, whose ids the raise records itself."""
        roles: list[str] = []
        for level in self.levels:
            roles.extend(self.recipients(level))
        if self.referral is not None:
            roles.extend(self.recipients(self.last_level + 1))
        for notice in self.on_raise:
            roles.extend(notice.roles)
        for level in self.levels:
            stage = self.stage_at(level)
            roles.extend(stage.escalated_by)
            roles.extend(stage.endorsed_by)
            roles.extend(stage.accepted_by)
            roles.extend(stage.joint)
            roles.extend(d.party for d in stage.deadlines)
            for notice in stage.notices:
                roles.extend(notice.roles)
        for track in self.tracks:
            roles.extend((track.role, *track.informed))
        for route in self.more_referrals:
            roles.extend((route.role, *route.informed))
        roles.extend(self.bypass_consulted)
        return tuple(r for r in _dedupe(roles) if r not in (*self.raisers, self.subject))

    @property
    def all_roles(self) -> tuple[str, ...]:
        """Every role the ladder names, the raiser first."""
        return _dedupe((*self.raisers, self.subject, *self.assignable_roles))


def _check_parts(ladder: EscalationLadder) -> None:
    """Statutory declarations, bypass limits, referral routes and per-stage actors."""
    where = f"ladder {ladder.name!r}"
    for declared in ladder.statutory:
        if declared not in STATUTORY:
            raise PolicyError(
                f"{where}: unknown statutory declaration {declared!r}; known: "
                + ", ".join(map(repr, sorted(STATUTORY)))
            )
    if ladder.bypass_to and not ladder.bypass:
        raise PolicyError(f"{where}: 'bypass_to' needs bypass allowed", clause=ladder.clause)
    for level in ladder.bypass_to:
        if level not in ladder.levels or level <= ladder.first_level:
            raise PolicyError(
                f"{where}: bypass may only enter a later council stage "
                f"({', '.join(str(lv) for lv in ladder.levels if lv > ladder.first_level)}), "
                f"not {level!r}",
                clause=ladder.bypass_clause,
            )
    if ladder.referral is not None:
        _check_by(ladder, "referral", ladder.referral.by)
    if ladder.bypass_consulted and not ladder.bypass:
        raise PolicyError(f"{where}: 'consulted' needs bypass allowed", clause=ladder.clause)
    if ladder.more_referrals and ladder.referral is None:
        raise PolicyError(f"{where}: more referral routes need a first one")
    routes = [r.name for r in ladder.more_referrals]
    if ladder.more_referrals and (not ladder.referral or not ladder.referral.name or "" in routes):
        raise PolicyError(f"{where}: each of several referral routes needs a name")
    if ladder.referral is not None and len({ladder.referral.name, *routes}) != len(routes) + 1:
        raise PolicyError(f"{where} names a referral route twice")
    names = [t.name for t in ladder.tracks]
    if len(set(names)) != len(names):
        raise PolicyError(f"{where} names a referral track twice")
    others = [("route", r.name, r.role, r.by, r.clause) for r in ladder.more_referrals]
    others += [("track", t.name, t.role, t.by, t.clause) for t in ladder.tracks]
    for what, name, role, by, clause in others:
        if role in (*ladder.raisers, ladder.subject):
            raise PolicyError(
                f"{where}: referral {what} {name!r} goes to the raiser or the subject",
                clause=clause,
            )
        _check_by(ladder, f"referral {what} {name!r}", by)


def _check_by(ladder: EscalationLadder, what: str, by: tuple[str, ...]) -> None:
    strangers = [r for r in by if r not in ladder.raisers]
    if strangers:
        raise PolicyError(
            f"ladder {ladder.name!r}: {what} may be made only by raiser roles "
            f"({', '.join(ladder.raisers)}), not {', '.join(map(repr, strangers))}"
        )


def _check_iro_total(ladder: EscalationLadder) -> None:
    """NAT-IRO-03: the formal stages' response timescales add up to at most 20 WD
    (with the extensions that may be granted, where the policy says they count)."""
    agreed = ladder.agreed_response
    responses = [
        agreed.max if s.agreed and agreed is not None else s.response for s in ladder.stages
    ]
    if any(r is None or r.unit != "WD" for r in responses):
        raise PolicyError(
            f"IRO ladder {ladder.name!r}: every formal response timescale must be in working "
            "days (WD) so their total can be checked",
            clause="NAT-IRO-03",
        )
    amount = sum(r.amount for r in responses if r is not None)
    ext = ladder.extensions
    if ladder.extensions_count_to_cap and ext.allowed and ext.max_length is not None:
        if ext.max_length.unit != "WD":
            raise PolicyError(
                f"IRO ladder {ladder.name!r}: extensions that count towards the cap must be "
                "in working days (WD)",
                clause="NAT-IRO-03",
            )
        times = ext.max_count * (len(ladder.stages) if ext.per == "stage" else 1)
        amount += times * ext.max_length.amount
    if amount > IRO_MAX_TOTAL_RESPONSE.amount:
        counted = (
            " with the extensions that may be granted"
            if amount != sum(r.amount for r in responses if r is not None)
            else ""
        )
        raise PolicyError(
            f"IRO ladder {ladder.name!r}: formal response timescales{counted} add up to "
            f"{amount} WD, more than {IRO_MAX_TOTAL_RESPONSE}",
            clause="NAT-IRO-03",
        )
