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
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import attrs

from qaflow.calendar import Duration
from qaflow.errors import MISSING, PolicyError, QAFlowError
from qaflow.procedure._format import FILE, Key, Table
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
from qaflow.procedure._reader import IDENT, Node, Problems, did_you_mean, parse_toml
from qaflow.procedure._versions import migrate
from qaflow.procedure.expr import compile_expression

__all__ = ["ProcedureFile", "load_procedure", "loads_procedure"]

NOTICE_NAMES: Final = ("actor", "data", "dest", "payload", "reason", "state", "trigger")
"""The names a notice's ``when`` may read (the spec's guard names)."""


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


class _Reader:
    """Reads one parsed document against the format's definitions."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.roles: dict[str, str] = {}

    # --- generic: one table by its definition ---------------------------------------------

    def table(self, node: Node, table: Table) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in table.keys:
            if not node.has(key.name):
                if key.required:
                    node.problem(key.name, f"required: {key.doc}")
                continue
            out[key.name] = self.value(node, key)
        node.finish()
        return out

    def value(self, node: Node, key: Key) -> Any:
        name = key.name
        match key.kind:
            case "text":
                return node.text(name)
            case "ident":
                return node.ident(name)
            case "idents":
                if key.options:
                    return node.names(name, allowed=key.options, what="a known name")
                return node.names(name)
            case "role":
                return self.role(node, name)
            case "roles":
                return node.names(name, allowed=self.roles, what="a declared role")
            case "role_table":
                return self.role_table(node, name)
            case "duration":
                return node.duration(name)
            case "response":
                raw = node.data.get(name)
                if raw in ("none", "agreed"):
                    return raw
                return node.duration(name)
            case "bool":
                return node.get(name, bool)
            case "int":
                return node.get(name, int)
            case "ints":
                return self.ints(node, name)
            case "choice":
                return node.choice(name, key.options)
            case "expr":
                return self.expr(node, name)
            case "dates":
                return self.dates(node, name)
            case "table":
                assert key.table is not None
                sub = node.table(name)
                return None if sub is None else self.table(sub, key.table)
            case "tables":
                assert key.table is not None
                return [self.table(sub, key.table) for sub in node.tables(name)]
            case "bool_or_table":
                assert key.table is not None
                raw = node.data.get(name)
                if isinstance(raw, bool):
                    return {"allowed": raw}
                sub = node.table(name)
                return None if sub is None else self.table(sub, key.table)
        raise AssertionError(key.kind)  # pragma: no cover - the kinds are closed

    def role(self, node: Node, name: str) -> str | None:
        value = node.ident(name)
        if value is not None and value not in self.roles:
            node.problem(
                name,
                f"a declared role (one of {', '.join(sorted(self.roles))})",
                value,
                hint=did_you_mean(value, self.roles),
            )
            return None
        return value  # type: ignore[no-any-return]

    def role_table(self, node: Node, name: str) -> dict[str, str] | None:
        raw = node.get(name, dict, expected="a table of role = description")
        if raw is None:
            return None
        out: dict[str, str] = {}
        for role, description in raw.items():
            where = node.key_path(name) + f".{role}"
            if not IDENT.match(role):
                self.problems.add(where, "a lower-case identifier as role name", role)
            elif role in RESERVED_ROLES:
                self.problems.add(
                    where,
                    f"a role name that is not reserved ({', '.join(sorted(RESERVED_ROLES))})",
                    role,
                )
            elif not isinstance(description, str):
                self.problems.add(where, "a description (text)", description)
            else:
                out[role] = description
        if not raw:
            node.problem(name, "at least one role")
        return out

    def ints(self, node: Node, name: str) -> tuple[int, ...] | None:
        raw = node.get(name, list, expected="a list of stage numbers")
        if raw is None:
            return None
        bad = False
        for index, item in enumerate(raw):
            if not isinstance(item, int) or isinstance(item, bool):
                self.problems.add(f"{node.key_path(name)}[{index}]", "a stage number", item)
                bad = True
        return None if bad else tuple(raw)

    def expr(self, node: Node, name: str) -> str | None:
        source = node.get(name, str, expected="a CEL expression")
        if source is None:
            return None
        try:
            compile_expression(source, NOTICE_NAMES, path=node.key_path(name))
        except PolicyError as error:
            self.problems.absorb("", error)
            return None
        return source  # type: ignore[no-any-return]

    def dates(self, node: Node, name: str) -> tuple[date, ...] | None:
        raw = node.get(name, list, expected="a list of dates like 2026-12-29")
        if raw is None:
            return None
        out: list[date] = []
        for index, item in enumerate(raw):
            day: date | None = None
            if isinstance(item, date) and not isinstance(item, datetime):
                day = item
            elif isinstance(item, str):
                try:
                    day = date.fromisoformat(item)
                except ValueError:
                    day = None
            if day is None:
                self.problems.add(f"{node.key_path(name)}[{index}]", "a date like 2026-12-29", item)
            else:
                out.append(day)
        return tuple(out)


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
    ref_v = v.get("referral")
    referral = None
    if ref_v and ref_v.get("role"):
        referral = _build(
            p,
            f"{path}.referral",
            ExternalReferral,
            role=ref_v["role"],
            title=ref_v.get("title") or "",
            when=ref_v.get("when") or "after_last_stage",
            informed=ref_v.get("informed") or (),
            clause=ref_v.get("clause"),
            any_time_clause=ref_v.get("any_time_clause"),
            by=ref_v.get("by") or (),
        )
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
        or (ref_v and referral is None)
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
        bypass_consultation=bool(bypass.get("consultation", False)),
        breach=v.get("breach") or "notify",
        breach_clause=v.get("breach_clause"),
        extensions=extensions,
        extensions_count_to_cap=bool((ext_v or {}).get("count_to_cap", False)),
        referral=referral,
        tracks=tracks,
        on_raise=on_raise,
        reasons=v["reasons"] if v.get("reasons") else _default_reasons(),
        clause=v.get("clause"),
        close_clause=v.get("close_clause"),
        statutory=v.get("statutory") or (),
        agreed_response=agreed,
    )


def _default_reasons() -> tuple[str, ...]:
    from qaflow.procedure._ladder import REASONS

    return REASONS


def loads_procedure(text: str, *, source: str = "<string>") -> ProcedureFile:
    """Read a procedure file's text into the model; raise one :class:`PolicyError` listing
    every problem. Writes nothing."""
    doc = migrate(parse_toml(text, source=source), source=source)
    problems = Problems(source)
    reader = _Reader(problems)
    root = Node(doc, problems)
    # Roles first: every other table checks its role names against them.
    policy_node = root.table("policy")
    if policy_node is not None and isinstance(policy_node.data.get("roles"), dict):
        reader.roles = {
            r: d
            for r, d in policy_node.data["roles"].items()
            if isinstance(r, str) and IDENT.match(r) and r not in RESERVED_ROLES
        }
    values = reader.table(root, _without_version(FILE))
    policy_v = values.get("policy") or {}
    ladders: list[EscalationLadder] = []
    raw_ladders = values.get("ladders") or []
    if "ladders" in doc and not raw_ladders:
        problems.add("ladders", "at least one [[ladders]] table")
    if "ladders" not in doc:
        problems.add("ladders", "at least one procedure ([[ladders]])")
    for index, ladder_v in enumerate(raw_ladders):
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
        roles=tuple(sorted((policy_v.get("roles") or {}).items())),
        title=policy_v.get("title") or "",
        cites=policy_v.get("source") or "",
        source=source,
    )


def _without_version(table: Table) -> Table:
    return Table(table.name, table.doc, tuple(k for k in table.keys if k.name != "format_version"))


def load_procedure(path: str | Path) -> ProcedureFile:
    """Read a procedure file (see :func:`loads_procedure`); writes nothing."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(
            source=str(path), expected=f"a readable file ({error.strerror})"
        ) from None
    return loads_procedure(text, source=str(path))
