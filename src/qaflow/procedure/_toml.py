"""The TOML reader: a procedure file into the model, every problem reported at once.

``tomllib`` parses the text; :func:`~qaflow.procedure._versions.migrate` brings an older
format version up to date; then the reader walks the format's definitions
(:mod:`qaflow.procedure._format`), refusing unknown keys, checking each value's kind, that
every role is declared once in ``[policy.roles]`` (with a "did you mean" for a misspelt
one) and that every condition compiles as CEL, and builds the frozen model records. The
records' own checks (and the statutory ones, NAT-IRO-03) run as they are built; their
refusals join the list. One :class:`~qaflow.errors.PolicyError` names every problem with
its file and key path (``ladders[0].stages[2].escalated_by[0]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from qaflow.calendar import Duration
from qaflow.errors import MISSING, PolicyError, QAFlowError
from qaflow.procedure._format import FILE
from qaflow.procedure._ladder import (
    RESERVED_ROLES,
    AgreedTimescale,
    EscalationLadder,
    ExtensionRule,
    ExternalReferral,
    LadderStage,
    Notice,
    PartyDeadline,
    ReferralTrack,
)
from qaflow.procedure._policy import Policy
from qaflow.procedure._reader import Node, Problems, did_you_mean, parse_toml
from qaflow.procedure._versions import migrate
from qaflow.procedure._walk import Base, Walker, declared_roles

__all__ = ["ProcedureFile", "load_procedure", "loads_procedure"]


@attrs.frozen
class ProcedureFile:
    """A council's procedures as loaded from one file: the policy they pin to, the roles it
    declares (name, description), its ladders, and where it came from."""

    policy: Policy
    ladders: tuple[EscalationLadder, ...]
    roles: tuple[tuple[str, str], ...] = ()
    title: str = ""
    cites: str = ""
    source: str = ""

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
            f"no ladder {name!r}; ladders: {', '.join(repr(lad.name) for lad in self.ladders)}",
            hint=did_you_mean(name, [lad.name for lad in self.ladders]),
        )


# --- building the model -----------------------------------------------------------------------


def _build(problems: Problems, path: str, factory: Any, /, **fields: Any) -> Any:
    try:
        return factory(**fields)
    except QAFlowError as error:
        problems.absorb(path, error)
        return None
    except (TypeError, ValueError) as error:  # pragma: no cover - kinds are checked first
        problems.add(path, f"a valid definition ({type(error).__name__})")
        return None


def _notice(p: Problems, path: str, v: Mapping[str, Any]) -> Notice | None:
    if v.get("to") is None or v.get("reason") is None:
        return None
    return _build(  # type: ignore[no-any-return]
        p,
        path,
        Notice,
        roles=v["to"],
        reason=v["reason"],
        clause=v.get("clause"),
        when=v.get("when"),
    )


def _stage(p: Problems, path: str, v: Mapping[str, Any]) -> LadderStage | None:
    holders, response = v.get("holders"), v.get("response", MISSING)
    if not holders or response is None:
        return None
    deadlines = [
        _build(p, f"{path}.deadlines[{i}]", PartyDeadline, **d)
        for i, d in enumerate(v.get("deadlines", ()))
        if None not in d.values()
    ]
    notices = [_notice(p, f"{path}.notices[{i}]", n) for i, n in enumerate(v.get("notices", ()))]
    if None in deadlines or None in notices:
        return None
    return _build(  # type: ignore[no-any-return]
        p,
        path,
        LadderStage,
        holders=holders,
        response=response if isinstance(response, Duration) else None,
        informed=v.get("informed") or (),
        title=v.get("title") or "",
        task=v.get("task"),
        clause=v.get("clause"),
        agreed=response == "agreed",
        open_ended=response == "none",
        escalated_by=v.get("escalated_by") or (),
        endorsed_by=v.get("endorsed_by") or (),
        endorse_all=v.get("endorsement") == "all",
        accepted_by=v.get("accepted_by") or (),
        joint=v.get("joint") or (),
        deadlines=deadlines,
        notices=notices,
    )


def _ladder(p: Problems, path: str, v: Mapping[str, Any]) -> EscalationLadder | None:
    raisers = v.get("raised_by")
    stages = [_stage(p, f"{path}.stages[{i}]", s) for i, s in enumerate(v.get("stages") or ())]
    informal = v.get("informal")
    informal_stage = _stage(p, f"{path}.informal", informal) if informal else None
    on_raise = [_notice(p, f"{path}.on_raise[{i}]", n) for i, n in enumerate(v.get("on_raise", ()))]
    ext_v = v.get("extensions")
    extensions = ExtensionRule()
    if ext_v:
        extensions = _build(
            p,
            f"{path}.extensions",
            ExtensionRule,
            max_count=ext_v.get("max_count", 0),
            max_length=ext_v.get("max_length"),
            per=ext_v.get("per", "stage"),
            clause=ext_v.get("clause"),
        )
    routes = [_referral(p, f"{path}.referral", v["referral"])] if v.get("referral") else []
    if v.get("referrals"):
        if v.get("referral"):
            p.add(f"{path}.referrals", "either 'referral' or 'referrals', not both")
        for i, route in enumerate(v["referrals"]):
            if route and not route.get("name"):
                p.add(f"{path}.referrals[{i}].name", "required: a name for each of several routes")
            routes.append(_referral(p, f"{path}.referrals[{i}]", route))
    referral = routes[0] if routes else None
    tracks = [
        _build(p, f"{path}.tracks[{i}]", ReferralTrack, **{k: x for k, x in t.items() if x})
        for i, t in enumerate(v.get("tracks", ()))
        if t.get("name") and t.get("role")
    ]
    agreed_v = v.get("agreed_response")
    agreed = None
    if agreed_v and agreed_v.get("min") and agreed_v.get("max"):
        agreed = _build(p, f"{path}.agreed_response", AgreedTimescale, **agreed_v)
    bypass = v.get("bypass") or {"allowed": False}
    parts = [*stages, informal_stage if informal else True, *on_raise, extensions, *tracks]
    if (
        not raisers
        or not stages
        or None in parts
        or None in routes
        or (agreed_v and agreed is None)
        or None in (v.get("name"), v.get("breach", ""), v.get("reasons", ()))
    ):
        return None
    return _build(  # type: ignore[no-any-return]
        p,
        path,
        EscalationLadder,
        name=v["name"],
        kind=v.get("kind") or v["name"],
        raiser=raisers[0],
        co_raisers=raisers[1:],
        stages=stages,
        informal=informal_stage,
        subject=v.get("subject") or "child",
        title=v.get("title") or "",
        informed=v.get("informed") or (),
        informed_clause=v.get("informed_clause"),
        bypass=bool(bypass.get("allowed", True)),
        bypass_clause=bypass.get("clause"),
        bypass_to=bypass.get("to") or (),
        bypass_consultation=bool(bypass.get("consultation") or bypass.get("consulted")),
        bypass_consulted=bypass.get("consulted") or (),
        breach=v.get("breach") or "notify",
        breach_clause=v.get("breach_clause"),
        extensions=extensions,
        extensions_count_to_cap=bool((ext_v or {}).get("count_to_cap", False)),
        referral=referral,
        more_referrals=routes[1:],
        tracks=tracks,
        on_raise=on_raise,
        reasons=v["reasons"] if v.get("reasons") else _default_reasons(),
        clause=v.get("clause"),
        close_clause=v.get("close_clause"),
        statutory=v.get("statutory") or (),
        agreed_response=agreed,
    )


def _referral(p: Problems, path: str, v: Mapping[str, Any]) -> ExternalReferral | None:
    if not v.get("role"):
        return None
    return _build(  # type: ignore[no-any-return]
        p,
        path,
        ExternalReferral,
        role=v["role"],
        name=v.get("name") or "",
        title=v.get("title") or "",
        when=v.get("when") or "after_last_stage",
        informed=v.get("informed") or (),
        clause=v.get("clause"),
        any_time_clause=v.get("any_time_clause"),
        by=v.get("by") or (),
    )


def _default_reasons() -> tuple[str, ...]:
    from qaflow.procedure._ladder import REASONS

    return REASONS


def loads_procedure(
    text: str, *, source: str = "<string>", base: Base | None = None
) -> ProcedureFile:
    """Read a procedure file's text into the model; raise one :class:`PolicyError` listing
    every problem. ``base`` is the file's folder, where a roles file it cites is read from.
    Writes nothing."""
    doc = migrate(parse_toml(text, source=source), source=source)
    problems = Problems(source)
    roles = declared_roles(doc, source=source, base=base, reserved=RESERVED_ROLES)
    reader = Walker(problems, roles, reserved=RESERVED_ROLES)
    values = reader.table(Node(doc, problems), FILE.without("format_version"))
    policy_v = values.get("policy") or {}
    ladders: list[EscalationLadder] = []
    for index, ladder_v in enumerate(values.get("ladders") or ()):
        built = _ladder(problems, f"ladders[{index}]", ladder_v)
        if built is not None:
            ladders.append(built)
    names = [lad.name for lad in ladders]
    for index, name in enumerate(names):
        if names.index(name) != index:
            problems.add(f"ladders[{index}].name", "a ladder name not already used", name)
    problems.raise_if_any()
    policy = Policy(
        policy_v["name"],
        policy_v["version"],
        policy_v.get("closure_days") or (),
        policy_v.get("migration_roles") or (),
    )
    return ProcedureFile(
        policy,
        tuple(ladders),
        roles=tuple(sorted(roles.declared.items())),
        title=policy_v.get("title") or "",
        cites=policy_v.get("source") or "",
        source=source,
    )


def load_procedure(path: str | Path) -> ProcedureFile:
    """Read a procedure file (see :func:`loads_procedure`); writes nothing."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(
            source=str(path), expected=f"a readable file ({error.strerror})"
        ) from None
    return loads_procedure(text, source=str(path), base=path.parent)
