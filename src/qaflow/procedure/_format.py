"""The procedure file format, defined once: every table, its keys, their kinds and meaning.

The definitions are data (``format.toml`` beside this module), read once into :class:`Table`
and :class:`Key` records. The TOML readers (:mod:`qaflow.procedure._walk`) read a council's
file by walking them, and :func:`json_schema` writes the published JSON Schema of each file
kind (:data:`FILE_KINDS`: escalation, audit, roles) from the very same definitions, so the
schema an editor checks against and the loader cannot drift apart.
"""

from __future__ import annotations

from importlib import resources
from types import MappingProxyType
from typing import Any, Final, Literal, cast, get_args

import attrs

from qaflow._convert import IDENT
from qaflow.errors import PolicyError
from qaflow.procedure._audit import RESPONDENTS
from qaflow.procedure._forms import KINDS, ROLES, STAGES
from qaflow.procedure._grading import GRADE_VALUES
from qaflow.procedure._parts import STATUTORY
from qaflow.procedure._reader import parse_toml

__all__ = [
    "AUDIT_FILE",
    "FILE",
    "FILE_KINDS",
    "ROLES_FILE",
    "TABLES",
    "Key",
    "Kind",
    "Table",
    "json_schema",
]

Kind = Literal[
    "text",
    "code",
    "codes",
    "texts",
    "ident",
    "idents",
    "role",
    "roles",
    "role_table",
    "role_source",
    "text_table",
    "duration",
    "elapsed",
    "response",
    "bool",
    "true",
    "int",
    "number",
    "ints",
    "choice",
    "expr",
    "dates",
    "table",
    "tables",
    "bool_or_table",
]

VOCABULARIES: Final[MappingProxyType[str, tuple[str, ...]]] = MappingProxyType(
    {
        "grades": tuple(GRADE_VALUES),
        "question_kinds": tuple(KINDS),
        "form_roles": tuple(ROLES),
        "form_stages": tuple(STAGES),
        "statutory": tuple(STATUTORY),
        "respondents": tuple(RESPONDENTS),
    }
)
"""The named option lists a key definition may cite (``options = "grades"``)."""


@attrs.frozen
class Key:
    """One key of a table: its kind, whether it is required, and what it means."""

    name: str
    kind: Kind
    doc: str
    required: bool = False
    options: tuple[str, ...] = ()
    table: Table | None = None
    min_items: int = 0
    max_items: int | None = None
    minimum: float | None = None
    maximum: float | None = None


@attrs.frozen
class Table:
    """A table of a procedure file: its keys, in the order they are read, and the keys of
    which exactly one must be present (none if empty)."""

    name: str
    doc: str
    keys: tuple[Key, ...]
    exactly_one: tuple[str, ...] = ()

    def key(self, name: str) -> Key:
        for key in self.keys:
            if key.name == name:
                return key
        raise KeyError(name)

    def without(self, *names: str) -> Table:
        """This table without the keys ``names`` (read separately by the caller)."""
        keys = tuple(k for k in self.keys if k.name not in names)
        return attrs.evolve(self, keys=keys)


_KINDS: Final = frozenset(get_args(Kind))
_KEY_FIELDS: Final = frozenset(
    {"kind", "doc", "required", "options", "table", "min_items", "max_items", "minimum", "maximum"}
)


def _definitions() -> tuple[dict[str, Table], dict[str, Table]]:
    """Read ``format.toml`` into tables (by name) and file kinds (kind -> root table)."""
    source = "qaflow/procedure/format.toml"
    text = resources.files("qaflow.procedure").joinpath("format.toml").read_text("utf-8")
    doc = parse_toml(text, source=source)
    raw: dict[str, Any] = doc["tables"]
    built: dict[str, Table] = {}

    def table(name: str) -> Table:
        if name not in built:
            spec = raw[name]
            built[name] = Table(
                name,
                spec["doc"],
                tuple(key(name, k, v) for k, v in spec["keys"].items()),
                tuple(spec.get("exactly_one", ())),
            )
        return built[name]

    def key(owner: str, name: str, spec: dict[str, Any]) -> Key:
        where = f"tables.{owner}.keys.{name}"
        unknown = set(spec) - _KEY_FIELDS
        if spec.get("kind") not in _KINDS or unknown:
            raise PolicyError(source=source, path=where, value=spec, expected="a key definition")
        options = spec.get("options", ())
        if isinstance(options, str):
            options = VOCABULARIES[options]
        sub = spec.get("table")
        return Key(
            name,
            cast(Kind, spec["kind"]),
            spec["doc"],
            required=bool(spec.get("required", False)),
            options=tuple(options),
            table=None if sub is None else table(sub),
            min_items=int(spec.get("min_items", 0)),
            max_items=spec.get("max_items"),
            minimum=spec.get("minimum"),
            maximum=spec.get("maximum"),
        )

    kinds = {kind: table(name) for kind, name in doc["files"].items()}
    for name in raw:
        table(name)
    return built, kinds


_TABLES, _FILES = _definitions()

TABLES: Final = MappingProxyType(_TABLES)
"""Every table of the format, by name."""
FILE_KINDS: Final = MappingProxyType(_FILES)
"""Each kind of procedure file (``escalation``, ``audit``, ``roles``) and its root table."""
FILE: Final = FILE_KINDS["escalation"]
AUDIT_FILE: Final = FILE_KINDS["audit"]
ROLES_FILE: Final = FILE_KINDS["roles"]

IDENT_PATTERN: Final = IDENT.pattern
CODE_PATTERN: Final = "^[A-Za-z][A-Za-z0-9_]*$"
DURATION_PATTERN: Final = r"^\s*[0-9]+\s*(WD|h|d|weeks?|months?)\s*$"
ELAPSED_PATTERN: Final = r"^\s*[0-9]+\s*(h|d|weeks?|months?)\s*$"
ROLES_FILE_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.toml$"


def _items(key: Key, items: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "array", "items": items}
    if key.min_items:
        out["minItems"] = key.min_items
    if key.max_items is not None:
        out["maxItems"] = key.max_items
    return out


def _bounded(out: dict[str, Any], key: Key) -> dict[str, Any]:
    if key.minimum is not None:
        out["minimum"] = key.minimum
    if key.maximum is not None:
        out["maximum"] = key.maximum
    return out


def _role_table() -> dict[str, Any]:
    return {
        "type": "object",
        "propertyNames": {"type": "string", "pattern": IDENT_PATTERN},
        "additionalProperties": {"type": "string", "minLength": 1, "pattern": r"\S"},
        "minProperties": 1,
    }


def _schema(key: Key) -> dict[str, Any]:
    ident = {"type": "string", "pattern": IDENT_PATTERN}
    code = {"type": "string", "pattern": CODE_PATTERN}
    duration = {"type": "string", "pattern": DURATION_PATTERN}
    text = {"type": "string", "minLength": 1, "pattern": r"\S"}
    table = key.table
    match key.kind:
        case "text" | "expr":
            out: dict[str, Any] = dict(text)
        case "code":
            out = dict(code)
        case "codes":
            out = _items(key, code) | {"uniqueItems": True}
        case "texts":
            out = _items(key, text)
        case "ident" | "role":
            out = dict(ident)
        case "idents" | "roles":
            items = {"enum": list(key.options)} if key.options else ident
            out = _items(key, items) | {"uniqueItems": True}
        case "role_table":
            out = _role_table()
        case "role_source":
            out = {"anyOf": [_role_table(), {"type": "string", "pattern": ROLES_FILE_PATTERN}]}
        case "text_table":
            names = {"enum": list(key.options)} if key.options else ident
            out = {"type": "object", "propertyNames": names, "additionalProperties": text}
        case "duration":
            out = dict(duration)
        case "elapsed":
            out = {"type": "string", "pattern": ELAPSED_PATTERN}
        case "response":
            out = {"anyOf": [duration, {"enum": ["none", "agreed"]}]}
        case "bool":
            out = {"type": "boolean"}
        case "true":
            out = {"const": True}
        case "int":
            out = _bounded({"type": "integer"}, key)
        case "number":
            out = _bounded({"type": "number"}, key)
        case "ints":
            out = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
        case "choice":
            out = {"enum": list(key.options)}
        case "dates":
            out = {"type": "array", "items": {"type": "string", "format": "date"}}
        case "table":
            assert table is not None
            out = _object(table)
        case "tables":
            assert table is not None
            out = _items(key, _object(table))
        case "bool_or_table":
            assert table is not None
            out = {"anyOf": [{"type": "boolean"}, _object(table)]}
    out["description"] = key.doc
    return out


def _object(table: Table) -> dict[str, Any]:
    out = {
        "type": "object",
        "description": table.doc,
        "properties": {key.name: _schema(key) for key in table.keys},
        "required": [key.name for key in table.keys if key.required],
        "additionalProperties": False,
    }
    if table.exactly_one:
        out["oneOf"] = [{"required": [name]} for name in table.exactly_one]
    return out


def json_schema(kind: str = "escalation") -> dict[str, Any]:
    """The JSON Schema of a procedure file of ``kind`` (one of :data:`FILE_KINDS`), as
    parsed from TOML, dates as ISO text."""
    root = FILE_KINDS.get(kind)
    if root is None:
        raise PolicyError(
            source="procedure file format",
            path="kind",
            value=kind,
            expected="a file kind (" + ", ".join(sorted(FILE_KINDS)) + ")",
        )
    schema = _object(root)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    if kind == "escalation":
        schema["$id"] = "urn:qaflow:procedure-file:1"
        schema["title"] = "qaflow procedure file"
    else:
        schema["$id"] = f"urn:qaflow:{kind}-file:1"
        schema["title"] = f"qaflow {kind} file"
    return schema
