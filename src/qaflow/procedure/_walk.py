"""Reading a parsed procedure file by walking the format's definitions.

:class:`Walker` reads one table of a document against its :class:`~qaflow.procedure._format.Table`
definition: unknown keys refused, each value's kind checked (the same kinds the JSON Schema is
written from), every role checked against the roles declared once for the council, and every
condition compiled as CEL. It returns plain values (a ``dict`` per table) for the model
builders, and records each problem with its key path instead of stopping.

:func:`declared_roles` finds the roles a file may name: its own ``[policy.roles]`` table, or
the council's roles file it cites (``roles = "roles.toml"``, beside the file).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import date, datetime
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final

import attrs

from qaflow.errors import PolicyError
from qaflow.procedure._format import ROLES_FILE, ROLES_FILE_PATTERN, Key, Table
from qaflow.procedure._parts import RESERVED_ROLES
from qaflow.procedure._reader import IDENT, Node, Problems, did_you_mean, parse_toml
from qaflow.procedure._versions import migrate
from qaflow.procedure.expr import compile_expression

__all__ = [
    "NOTICE_NAMES",
    "Base",
    "Roles",
    "Walker",
    "declared_roles",
    "load_roles",
    "read_roles",
]

NOTICE_NAMES: Final = ("actor", "data", "dest", "payload", "reason", "state", "trigger")
"""The names a notice's ``when`` may read (the spec's guard names)."""

ROLES_NAME: Final = re.compile(ROLES_FILE_PATTERN)
_CODE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_CODE_WORDS: Final = "an id (a letter, then letters, digits or '_')"


Base = Path | Traversable
"""A file's folder: on disk, or inside the installed package (shipped councils)."""


@attrs.frozen
class Roles:
    """The roles a file may name: ``declared`` (name -> description), where they are declared
    (``where``: the file's own ``policy.roles`` or the council's roles file), and whether
    they are the file's own (only then must each be named somewhere in the file)."""

    declared: Mapping[str, str]
    where: str = "policy.roles"
    own: bool = True


class Walker:
    """Reads tables of one parsed document against the format's definitions.

    ``machine_roles`` are roles the machines define themselves (an audit's ``auditor``):
    allowed anywhere without being declared. Every role named is kept in :attr:`used`.
    """

    def __init__(
        self,
        problems: Problems,
        roles: Roles | None = None,
        *,
        machine_roles: Collection[str] = (),
        reserved: Collection[str] = (),
        durations_as_text: bool = False,
    ) -> None:
        self.problems = problems
        self.as_text = durations_as_text
        self.roles = roles or Roles({})
        self.known = {*self.roles.declared, *machine_roles}
        self.reserved = frozenset(reserved)
        self.used: set[str] = set()
        own = self.roles.own
        self._what = "a declared role" if own else f"a role declared in {self.roles.where}"

    # --- one table by its definition -------------------------------------------------------

    def table(self, node: Node, table: Table) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in table.keys:
            if not node.has(key.name):
                if key.required:
                    node.problem(key.name, f"required: {key.doc}")
                continue
            out[key.name] = self.value(node, key)
        if table.exactly_one:
            present = [name for name in table.exactly_one if name in node.data]
            if len(present) != 1:
                node.problem(
                    None,
                    "exactly one of " + ", ".join(map(repr, table.exactly_one)),
                    ", ".join(present) or "none of them",
                )
        node.finish()
        return out

    def value(self, node: Node, key: Key) -> Any:
        name = key.name
        match key.kind:
            case "text":
                return node.text(name)
            case "code" | "codes" | "texts":
                return self.strings(node, key)
            case "ident":
                return node.ident(name)
            case "idents" | "roles":
                return self.names(node, key)
            case "role":
                return self.role(node, name)
            case "role_table":
                return self.role_table(node, name)
            case "role_source":
                if isinstance(node.data.get(name), str):
                    return node.data[name]
                return self.role_table(node, name)
            case "text_table":
                return self.text_table(node, key)
            case "duration":
                found = node.duration(name)
                return node.data[name] if found is not None and self.as_text else found
            case "elapsed":
                return self.elapsed(node, name)
            case "response":
                raw = node.data.get(name)
                if raw in ("none", "agreed"):
                    return raw
                return node.duration(name)
            case "bool":
                return node.get(name, bool)
            case "true":
                if node.get(name, bool) is not True:
                    node.problem(name, f"true ({key.doc})", node.data.get(name))
                    return None
                return True
            case "int" | "number":
                return _number(node, key)
            case "ints":
                return _ints(node, name)
            case "choice":
                return node.choice(name, key.options)
            case "expr":
                return self.expr(node, name)
            case "dates":
                return _dates(node, name)
            case "table":
                assert key.table is not None
                sub = node.table(name)
                return None if sub is None else self.table(sub, key.table)
            case "tables":
                assert key.table is not None
                subs = node.tables(name, min_items=key.min_items)
                return [self.table(sub, key.table) for sub in subs]
            case "bool_or_table":
                assert key.table is not None
                raw = node.data.get(name)
                if isinstance(raw, bool):
                    return {"allowed": raw}
                sub = node.table(name)
                return None if sub is None else self.table(sub, key.table)
        raise AssertionError(key.kind)  # pragma: no cover - the kinds are closed

    # --- kinds ----------------------------------------------------------------------------

    def _count(self, node: Node, key: Key, found: list[Any]) -> bool:
        low, high = key.min_items, key.max_items
        if len(found) < low or (high is not None and len(found) > high):
            want = f"exactly {low}" if low == high else f"at least {low}"
            if high is not None and low != high:
                want = f"from {low} to {high}"
            node.problem(key.name, f"{want} item(s)", found)
            return False
        return True

    def names(self, node: Node, key: Key) -> tuple[str, ...] | None:
        roles = key.kind == "roles"
        if roles:
            allowed: Collection[str] | None = self.known
            what = self._what
        else:
            allowed, what = key.options or None, "a known name"
        found = node.names(key.name, allowed=allowed, what=what)
        if found is None or not self._count(node, key, list(found)):
            return None
        if roles:
            self.used.update(found)
        return found

    def role(self, node: Node, name: str) -> str | None:
        value = node.ident(name)
        if value is None:
            return None
        self.used.add(value)
        if value not in self.known:
            node.problem(
                name,
                f"{self._what} (one of {', '.join(sorted(self.known))})",
                value,
                hint=did_you_mean(value, self.known),
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
            elif role in self.reserved:
                self.problems.add(
                    where,
                    f"a role name that is not reserved ({', '.join(sorted(self.reserved))})",
                    role,
                )
            elif not isinstance(description, str) or not description.strip():
                self.problems.add(where, "the role described in words", description)
            else:
                out[role] = description
        if not raw:
            node.problem(name, "at least one role")
        return out

    def text_table(self, node: Node, key: Key) -> dict[str, str] | None:
        sub = node.table(key.name)
        if sub is None:
            return None
        out: dict[str, str] = {}
        for name in sub.data:
            if key.options and name not in key.options:
                sub.problem(
                    name,
                    "one of " + ", ".join(map(repr, key.options)),
                    name,
                    hint=did_you_mean(name, key.options),
                )
                sub.has(name)
            elif (text := sub.text(name)) is not None:
                out[name] = text
        return out

    def strings(self, node: Node, key: Key) -> Any:
        """Text of ``code`` kind, or a list of codes or texts."""
        if key.kind == "code":
            value = node.get(key.name, str, expected=_CODE_WORDS)
            return self._code(node, key.name, value)
        raw = node.get(key.name, list, expected="a list")
        if raw is None:
            return None
        bad = False
        for index, item in enumerate(raw):
            where = f"{node.key_path(key.name)}[{index}]"
            ok = isinstance(item, str) and bool(item.strip())
            if ok and key.kind == "codes":
                ok = bool(_CODE.match(item))
            if not ok:
                expected = _CODE_WORDS if key.kind == "codes" else "non-empty text"
                self.problems.add(where, expected, item)
                bad = True
        if key.kind == "codes" and len(set(raw)) != len(raw):
            node.problem(key.name, "ids not repeated", raw)
            bad = True
        if bad or not self._count(node, key, raw):
            return None
        return tuple(raw)

    def _code(self, node: Node, name: str, value: Any) -> str | None:
        if value is not None and not _CODE.match(value):
            node.problem(name, _CODE_WORDS, value)
            return None
        return value  # type: ignore[no-any-return]

    def elapsed(self, node: Node, name: str) -> Any:
        found = node.duration(name)
        if found is not None and found.is_working_days:
            node.problem(
                name, "elapsed time (h, d, weeks or months), not working days", node.data[name]
            )
            return None
        return node.data[name] if found is not None and self.as_text else found

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

    def check_all_used(self) -> None:
        """Refuse a role the file declares itself but names nowhere (read by no machine)."""
        if not self.roles.own:
            return
        for role in self.roles.declared:
            if role not in self.used:
                self.problems.add(
                    f"{self.roles.where}.{role}",
                    "a role the file names somewhere (a declared role no rule names is "
                    "read by no machine)",
                    role,
                )


def _number(node: Node, key: Key) -> Any:
    kinds: tuple[type, ...] = (int,) if key.kind == "int" else (int, float)
    expected = "an integer" if key.kind == "int" else "a number"
    value = node.get(key.name, kinds, expected=expected)
    if value is None:
        return None
    low, high = key.minimum, key.maximum
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"from {low:g}" if low is not None else ""
        bounds += f" to {high:g}" if high is not None else " or more"
        node.problem(key.name, f"{expected} {bounds.strip()}", value)
        return None
    return value


def _ints(node: Node, name: str) -> tuple[int, ...] | None:
    raw = node.get(name, list, expected="a list of stage numbers")
    if raw is None:
        return None
    bad = False
    for index, item in enumerate(raw):
        if not isinstance(item, int) or isinstance(item, bool):
            node.problems.add(f"{node.key_path(name)}[{index}]", "a stage number", item)
            bad = True
    return None if bad else tuple(raw)


def _dates(node: Node, name: str) -> tuple[date, ...] | None:
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
            node.problems.add(f"{node.key_path(name)}[{index}]", "a date like 2026-12-29", item)
        else:
            out.append(day)
    return tuple(out)


def read_roles(text: str, *, source: str) -> dict[str, str]:
    """A council's roles file (``roles.toml``): every role its procedure files name, declared
    once, ``name = "description"``. Raises one :class:`PolicyError` listing every problem."""
    doc = migrate(parse_toml(text, source=source), source=source)
    problems = Problems(source)
    walker = Walker(problems, reserved=RESERVED_ROLES)
    values = walker.table(Node(doc, problems), ROLES_FILE.without("format_version"))
    problems.raise_if_any()
    return dict(values["roles"])


def load_roles(path: str | Path) -> dict[str, str]:
    """Read the roles file at ``path`` (see :func:`read_roles`); writes nothing."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(
            source=str(path), expected=f"a readable roles file ({error.strerror})"
        ) from None
    return read_roles(text, source=str(path))


def declared_roles(
    doc: Mapping[str, Any],
    *,
    source: str,
    base: Base | None,
    reserved: Collection[str] = (),
) -> Roles:
    """The roles a parsed file may name.

    ``[policy.roles]`` declares them in the file itself; ``roles = "roles.toml"`` cites the
    council's roles file in the folder ``base`` (the file's own). A roles file with problems
    raises its own :class:`PolicyError` (naming the roles file); a missing or badly written
    reference is refused naming this file and ``policy.roles``.
    """
    policy = doc.get("policy")
    raw = policy.get("roles") if isinstance(policy, Mapping) else None
    if isinstance(raw, Mapping):
        usable = {r: d for r, d in raw.items() if isinstance(r, str) and IDENT.match(r)}
        return Roles({r: d for r, d in usable.items() if r not in reserved})
    if not isinstance(raw, str):
        return Roles({})
    if base is None or not ROLES_NAME.match(raw):
        raise PolicyError(
            source=source,
            path="policy.roles",
            value=raw,
            expected="a roles file's name beside this file (e.g. 'roles.toml'), or a table "
            "of role = description",
        )
    where = f"{source.rsplit('/', 1)[0]}/{raw}" if "/" in source else raw
    try:
        text = (base / raw).read_text(encoding="utf-8")
    except OSError:
        raise PolicyError(
            source=source, path="policy.roles", value=raw, expected="a readable roles file"
        ) from None
    return Roles(read_roles(text, source=where), where=raw, own=False)
