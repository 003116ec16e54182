"""Escalation ladders as frozen, validated policy data, and their TOML form.

An :class:`EscalationLadder` is what a council's escalation procedure says (BX-ESC-*,
NAT-CP-*, NAT-IRO-*): who raises it, about whom, an optional informal stage, then formal
stages 1..N (who holds each, how long they have to respond, who is kept informed), whether
the raiser may bypass stages, how many extensions of what length a holder may be granted, an
optional external referral (the IRO's Cafcass referral) and when it is allowed, and what a
missed response deadline does. :func:`qaflow.machines.escalation.escalation_machine` turns
any ladder into a machine; nothing here knows about a particular council.

Ladders speak in *levels*: 0 is the informal stage, 1..N the formal stages and N+1 the
external referral. The machine maps levels onto states.

Every ladder is checked when it is built, so a broken policy fails when it is loaded, not at
the first escalation: a bad definition raises :class:`~qaflow.errors.PolicyError` naming the
offending part and, for a statutory rule, its clause (NAT-IRO-03: an IRO ladder whose formal
response timescales add up to more than 20 WD is refused).

A council adds its own ladders without code, in a TOML file read by :func:`load_ladders`::

    [policy]
    name = "example-council"
    version = "2026.1"
    closure_days = [2026-12-29]

    [[ladders]]
    name = "iro"
    kind = "iro"
    raiser = "iro"
    stages = [
        { holders = ["team_manager"], response = "5 WD" },
        { holders = ["director"], response = "5 WD" },
    ]

The file goes through the same validation (and unknown keys are refused, so a typo cannot
silently drop a rule).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, Literal, get_args, get_origin

import attrs
import cattrs
from cattrs.v import format_exception

from qaflow.calendar import Duration
from qaflow.errors import PolicyError, ValidationError
from qaflow.policies.base import Policy

__all__ = [
    "IRO_MAX_TOTAL_RESPONSE",
    "REASONS",
    "RESERVED_ROLES",
    "BreachAction",
    "EscalationLadder",
    "ExtensionRule",
    "ExtensionScope",
    "ExternalReferral",
    "LadderFile",
    "LadderStage",
    "Notice",
    "ReferralWhen",
    "ladder_from_dict",
    "ladder_to_dict",
    "load_ladders",
    "loads_ladders",
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

_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
_BREACH_ACTIONS: Final = get_args(BreachAction)
_SCOPES: Final = get_args(ExtensionScope)
_WHENS: Final = get_args(ReferralWhen)


def _check_ident(what: str, value: object, clause: str | None = None) -> None:
    """Refuse a name that could not be a role, state or ``<role>_id`` data key."""
    if not isinstance(value, str) or not _IDENT.match(value):
        raise PolicyError(
            f"{what} must be a lower-case identifier (a letter, then letters, digits or '_'), "
            f"got {value!r}",
            clause=clause,
        )


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


def _str_tuple(items: Iterable[str]) -> tuple[str, ...]:
    if isinstance(items, str):
        raise PolicyError(f"expected a list of names, not the text {items!r}")
    return tuple(items)


def _optional_duration(value: Duration | str | None) -> Duration | None:
    return None if value is None else Duration.parse(value)


def _dedupe(roles: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(roles))


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

    def __attrs_post_init__(self) -> None:
        _check_roles("stage holders", self.holders, allow_empty=False)
        _check_roles("stage informed", self.informed)
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

    def __attrs_post_init__(self) -> None:
        _check_roles("referral", (self.role,))
        _check_roles("referral informed", self.informed)
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

    def __attrs_post_init__(self) -> None:
        _check_roles("notice", self.roles, allow_empty=False)
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise PolicyError("a notice needs a non-empty reason", clause=self.clause)


def _stage_tuple(items: Iterable[LadderStage]) -> tuple[LadderStage, ...]:
    return tuple(items)


def _notice_tuple(items: Iterable[Notice]) -> tuple[Notice, ...]:
    return tuple(items)


def _no_extensions() -> ExtensionRule:
    return ExtensionRule()


@attrs.frozen
class EscalationLadder:
    """A whole escalation procedure as data; validated on construction (:class:`PolicyError`).

    ``kind`` names the procedure (``cp_chair``, ``iro``, ``firo`` or a council's own);
    statutory rules attach to it (NAT-IRO-03 for ``iro``). ``raiser`` is the role that
    raises, escalates, bypasses, grants extensions and closes; ``subject`` is the role of the
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

    def __attrs_post_init__(self) -> None:
        _check_ident("ladder name", self.name)
        _check_ident(f"ladder {self.name!r} kind", self.kind)
        _check_roles(f"ladder {self.name!r} raiser", (self.raiser,))
        _check_roles(f"ladder {self.name!r} subject", (self.subject,))
        if self.subject == self.raiser:
            raise PolicyError(f"ladder {self.name!r}: the subject cannot also be the raiser")
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
            if level > 0 and stage.response is None:
                raise PolicyError(
                    f"ladder {self.name!r}: formal stage {level} ({stage.label!r}) has no "
                    "response deadline",
                    clause=stage.clause,
                )
            for role in stage.holders:
                if role in (self.raiser, self.subject):
                    raise PolicyError(
                        f"ladder {self.name!r}: stage {level} cannot be held by the "
                        f"{'raiser' if role == self.raiser else 'subject'} ({role!r})",
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
            self._check_iro_total()

    def _check_iro_total(self) -> None:
        """NAT-IRO-03: the formal stages' response timescales add up to at most 20 WD."""
        responses = [s.response for s in self.stages]
        if any(r is None or r.unit != "WD" for r in responses):
            raise PolicyError(
                f"IRO ladder {self.name!r}: every formal response timescale must be in working "
                "days (WD) so their total can be checked",
                clause="NAT-IRO-03",
            )
        total = self.total_formal_response
        assert total is not None
        if total.amount > IRO_MAX_TOTAL_RESPONSE.amount:
            raise PolicyError(
                f"IRO ladder {self.name!r}: formal response timescales add up to {total}, "
                f"more than {IRO_MAX_TOTAL_RESPONSE}",
                clause="NAT-IRO-03",
            )

    # --- levels ---------------------------------------------------------------------------

    @property
    def is_iro(self) -> bool:
        """Whether the IRO statutory rules apply (kind or raiser ``iro``)."""
        return self.kind == "iro" or self.raiser == "iro"

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
        and is not simply the next level.
        """
        # A plain raise lands on the first level and escalate on the next: only beyond is a skip.
        beyond = self.first_level if level is None else level + 1
        targets: list[int] = []
        if self.bypass:
            targets.extend(lv for lv in self.levels if lv > beyond)
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
        return tuple(r for r in _dedupe(roles) if r not in (self.raiser, self.subject))

    @property
    def all_roles(self) -> tuple[str, ...]:
        """Every role the ladder names, the raiser first."""
        return _dedupe((self.raiser, self.subject, *self.assignable_roles))


# --- TOML -----------------------------------------------------------------------------------


@attrs.frozen
class LadderFile:
    """A council's ladders as loaded from TOML: the policy they pin to, and the ladders."""

    policy: Policy
    ladders: tuple[EscalationLadder, ...]

    def __attrs_post_init__(self) -> None:
        names = [ladder.name for ladder in self.ladders]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise PolicyError(f"ladder name(s) {', '.join(map(repr, repeated))} used twice")

    def ladder(self, name: str) -> EscalationLadder:
        """The ladder called ``name`` (raises :class:`PolicyError` listing the names)."""
        for ladder in self.ladders:
            if ladder.name == name:
                return ladder
        raise PolicyError(
            f"no ladder {name!r}; ladders: {', '.join(repr(lad.name) for lad in self.ladders)}"
        )


@attrs.frozen
class _PolicyTable:
    name: str
    version: str
    closure_days: tuple[date, ...] = ()
    migration_roles: tuple[str, ...] = ()


def _structure_duration(value: object, _: type) -> Duration:
    if isinstance(value, Duration):
        return value
    if not isinstance(value, str):
        raise ValidationError(field="duration", value=value, expected="text like '5 WD'")
    return Duration.parse(value)


def _structure_date(value: object, _: type) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValidationError(field="date", value=value, expected="a date like 2026-12-29")


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(Duration, _structure_duration)
    conv.register_unstructure_hook(Duration, str)
    conv.register_structure_hook(date, _structure_date)
    conv.register_unstructure_hook(date, date.isoformat)
    return conv


_converter: Final = _make_converter()


def _format(exc: BaseException, type_: type | None) -> str:
    """One failure as text: our own errors as they are, cattrs' in plain words."""
    if isinstance(exc, PolicyError):
        text = str(exc)
        return text.removesuffix(f" ({exc.clause})") if exc.clause else text
    if isinstance(exc, ValidationError):
        return str(exc)
    if get_origin(type_) is Literal:
        return "must be one of " + ", ".join(map(repr, get_args(type_)))
    if isinstance(exc, KeyError):
        return f"required key {exc.args[0]!r} missing" if exc.args else "required key missing"
    return format_exception(exc, type_)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, cattrs.BaseValidationError):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def _structure(data: object, cls: type[Any], what: str) -> Any:
    """Structure ``data`` into ``cls``; every failure becomes one :class:`PolicyError`."""
    if not isinstance(data, Mapping):
        raise PolicyError(f"{what} must be a table of keys, not {type(data).__name__}")
    try:
        return _converter.structure(dict(data), cls)
    except PolicyError as error:
        raise PolicyError(f"{what}: {error}", clause=error.clause) from None
    except cattrs.BaseValidationError as error:
        messages = [
            m.removesuffix(" @ $")
            for m in cattrs.transform_error(error, path="$", format_exception=_format)
        ]
        clause = next(
            (e.clause for e in _leaves(error) if isinstance(e, PolicyError) and e.clause), None
        )
        raise PolicyError(f"{what}: " + "; ".join(messages), clause=clause) from None


def ladder_from_dict(data: Mapping[str, Any]) -> EscalationLadder:
    """A validated ladder from plain data (a parsed TOML table, JSON, a dict)."""
    name = data.get("name", "?") if isinstance(data, Mapping) else "?"
    ladder: EscalationLadder = _structure(data, EscalationLadder, f"ladder {name!r}")
    return ladder


def ladder_to_dict(ladder: EscalationLadder) -> dict[str, Any]:
    """The ladder as plain data (durations as text); :func:`ladder_from_dict` reads it back."""
    data: dict[str, Any] = _converter.unstructure(ladder)
    return data


def loads_ladders(text: str, *, source: str = "<string>") -> LadderFile:
    """Read a ladders TOML document (see the module docstring); writes nothing."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{source} is not valid TOML: {error}") from None
    extra = sorted(set(doc) - {"policy", "ladders"})
    if extra:
        raise PolicyError(
            f"{source}: unknown top-level key(s) {', '.join(map(repr, extra))}; "
            "expected 'policy' and 'ladders'"
        )
    if "policy" not in doc:
        raise PolicyError(f"{source}: a [policy] table (name, version) is required")
    table: _PolicyTable = _structure(doc["policy"], _PolicyTable, f"{source} [policy]")
    raw = doc.get("ladders", [])
    if not isinstance(raw, list) or not raw:
        raise PolicyError(f"{source}: at least one [[ladders]] table is required")
    ladders = tuple(
        _structure(item, EscalationLadder, f"{source} ladder {_name_of(item)!r}") for item in raw
    )
    # Policy converts closure_days with ``frozenset``, which the attrs mypy plugin types as
    # an unbound ``Iterable[_T_co]``; the value is a tuple of dates.
    policy = Policy(table.name, table.version, table.closure_days, table.migration_roles)
    return LadderFile(policy, ladders)


def _name_of(item: object) -> object:
    return item.get("name", "?") if isinstance(item, Mapping) else "?"


def load_ladders(path: str | Path) -> LadderFile:
    """Read and validate a ladders TOML file; writes nothing."""
    path = Path(path)
    return loads_ladders(path.read_text(encoding="utf-8"), source=str(path))
