"""The procedure file format, defined once: every table, its keys, their kinds and meaning.

The reader (:mod:`qaflow.procedure._toml`) reads a file by walking these definitions, and
:func:`json_schema` writes the published JSON Schema from the very same definitions, so the
schema an editor checks against and the loader cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import attrs

from qaflow._convert import IDENT

__all__ = ["FILE", "Key", "Kind", "Table", "json_schema"]

Kind = Literal[
    "text",
    "ident",
    "idents",
    "role",
    "roles",
    "role_table",
    "duration",
    "response",
    "bool",
    "int",
    "ints",
    "choice",
    "expr",
    "dates",
    "table",
    "tables",
    "bool_or_table",
]


@attrs.frozen
class Key:
    """One key of a table: its kind, whether it is required, and what it means."""

    name: str
    kind: Kind
    doc: str
    required: bool = False
    options: tuple[str, ...] = ()
    table: Table | None = None


@attrs.frozen
class Table:
    """A table of a procedure file: its keys, in the order they are read."""

    name: str
    doc: str
    keys: tuple[Key, ...]

    def key(self, name: str) -> Key:
        for key in self.keys:
            if key.name == name:
                return key
        raise KeyError(name)


NOTICE: Final = Table(
    "notice",
    "A notification: to whom, why, under which clause, and when it is sent.",
    (
        Key("to", "roles", "Declared roles to notify.", required=True),
        Key("reason", "text", "What the notice says (no personal data).", required=True),
        Key("when", "expr", "CEL condition; the notice is sent only when it holds."),
        Key("clause", "text", "The clause ID the notice enforces."),
    ),
)

PARTY_DEADLINE: Final = Table(
    "party deadline",
    "A deadline on a party other than the stage holder, opened on entering the stage.",
    (
        Key("name", "ident", "The deadline's name (unique in its stage).", required=True),
        Key("party", "role", "Who must act (a declared role).", required=True),
        Key("within", "duration", "How long they have, e.g. '3 WD'.", required=True),
        Key("action", "text", "What they must do.", required=True),
        Key("clause", "text", "The clause ID."),
    ),
)

STAGE: Final = Table(
    "stage",
    "One stage of an escalation ladder.",
    (
        Key("title", "text", "The stage's name."),
        Key("holders", "roles", "Who responds at this stage.", required=True),
        Key(
            "response",
            "response",
            "The holder's response timescale: a duration like '5 WD', 'none' (no deadline), "
            "or 'agreed' (agreed case by case at raise, within the ladder's agreed_response).",
            required=True,
        ),
        Key("informed", "roles", "Copy list: roles kept informed on entering this stage."),
        Key("task", "text", "A task opened for the raiser on entering the stage."),
        Key("escalated_by", "roles", "Who escalates from this stage (default: the raiser)."),
        Key("endorsed_by", "roles", "One of these must endorse before escalating from here."),
        Key("accepted_by", "roles", "Who accepts the outcome here (default: the raiser)."),
        Key("joint", "roles", "Roles that must each agree before the outcome is accepted."),
        Key("deadlines", "tables", "Deadlines on other parties.", table=PARTY_DEADLINE),
        Key("notices", "tables", "Notices on entering the stage.", table=NOTICE),
        Key("clause", "text", "The clause ID the stage enforces."),
    ),
)

EXTENSIONS: Final = Table(
    "extensions",
    "How much further time the raiser may grant a stage holder.",
    (
        Key("max_count", "int", "How many extensions (0: none).", required=True),
        Key("max_length", "duration", "The longest one extension may be."),
        Key("per", "choice", "Count per stage or per escalation.", options=("escalation", "stage")),
        Key("count_to_cap", "bool", "Whether extensions count towards a statutory cap."),
        Key("clause", "text", "The clause ID."),
    ),
)

BYPASS: Final = Table(
    "bypass",
    "Whether and where the raiser may skip stages (true/false, or this table).",
    (
        Key("allowed", "bool", "Whether bypass is allowed (default true in a table)."),
        Key("to", "ints", "The stage numbers a bypass may enter (default: any later)."),
        Key("consultation", "bool", "Whether a bypass needs a recorded consultation."),
        Key("clause", "text", "The clause ID."),
    ),
)

REFERRAL: Final = Table(
    "referral",
    "A terminal referral outside the council (ends the escalation).",
    (
        Key("role", "role", "Who the referral goes to.", required=True),
        Key("title", "text", "The referral's name."),
        Key(
            "when",
            "choice",
            "After the last stage only, or at any time (also when raising).",
            options=("after_last_stage", "any_time"),
        ),
        Key("by", "roles", "Raiser roles that may make it (default: every raiser role)."),
        Key("informed", "roles", "Roles kept informed when it is made."),
        Key("clause", "text", "The clause ID."),
        Key("any_time_clause", "text", "The clause allowing it at any time."),
    ),
)

TRACK: Final = Table(
    "track",
    "A parallel referral outside the council, made alongside the stages, which go on.",
    (
        Key("name", "ident", "The track's name (unique in the ladder).", required=True),
        Key("role", "role", "Who the referral goes to.", required=True),
        Key("title", "text", "The referral's name."),
        Key("by", "roles", "Raiser roles that may make it (default: every raiser role)."),
        Key("informed", "roles", "Roles kept informed when it is made."),
        Key("clause", "text", "The clause ID."),
    ),
)

AGREED: Final = Table(
    "agreed_response",
    "Bounds for a response timescale agreed case by case at raise.",
    (
        Key("min", "duration", "The shortest timescale that may be agreed.", required=True),
        Key("max", "duration", "The longest timescale that may be agreed.", required=True),
        Key("clause", "text", "The clause ID."),
    ),
)

LADDER: Final = Table(
    "ladder",
    "An escalation procedure.",
    (
        Key("name", "ident", "The ladder's name (machine 'escalation.<name>').", required=True),
        Key("kind", "ident", "What kind of procedure (a label; rules attach by 'statutory')."),
        Key("title", "text", "The procedure's name."),
        Key(
            "raised_by",
            "roles",
            "The roles that may raise it; the first is the main one.",
            required=True,
        ),
        Key("subject", "role", "The role of the person it is about (default 'child')."),
        Key(
            "statutory",
            "idents",
            "Statutory rule sets it declares (iro_dispute_resolution: NAT-IRO-03).",
            options=("iro_dispute_resolution",),
        ),
        Key("reasons", "idents", "The reason categories it is raised under."),
        Key("informal", "table", "The informal stage, before the formal ones.", table=STAGE),
        Key("stages", "tables", "The formal stages, 1..N.", required=True, table=STAGE),
        Key("informed", "roles", "Roles kept informed at every stage."),
        Key("informed_clause", "text", "The clause for keeping them informed."),
        Key("bypass", "bool_or_table", "Whether and where stages may be skipped.", table=BYPASS),
        Key("breach", "choice", "What a missed response does.", options=("escalate", "notify")),
        Key("breach_clause", "text", "The clause for a missed response."),
        Key("extensions", "table", "Further time for stage holders.", table=EXTENSIONS),
        Key("agreed_response", "table", "Bounds of a timescale agreed at raise.", table=AGREED),
        Key("referral", "table", "A terminal external referral.", table=REFERRAL),
        Key("tracks", "tables", "Parallel external referrals.", table=TRACK),
        Key("on_raise", "tables", "Notices sent when it is raised.", table=NOTICE),
        Key("clause", "text", "The clause cited by raising and escalating."),
        Key("close_clause", "text", "The clause cited by resolving and withdrawing."),
    ),
)

POLICY: Final = Table(
    "policy",
    "The policy every procedure in the file pins to, and the roles it names.",
    (
        Key("name", "text", "The policy name workflows pin.", required=True),
        Key("version", "text", "The policy version workflows pin.", required=True),
        Key("title", "text", "The council and procedure, in words."),
        Key("source", "text", "The public address the procedure is written from."),
        Key("closure_days", "dates", "The council's own closure days."),
        Key(
            "migration_roles",
            "roles",
            "Who may move a running workflow off this policy version (none if absent).",
        ),
        Key("roles", "role_table", "Every role, declared once: name = description.", required=True),
    ),
)

FILE: Final = Table(
    "procedure file",
    "A council's procedures as data (qaflow procedure file format).",
    (
        Key("format_version", "int", "The format version (1).", required=True),
        Key("policy", "table", "The policy.", required=True, table=POLICY),
        Key("ladders", "tables", "Escalation ladders.", table=LADDER),
    ),
)

_IDENT_PATTERN: Final = IDENT.pattern
_DURATION_PATTERN: Final = r"^\s*[0-9]+\s*(WD|h|d|weeks?|months?)\s*$"


def _schema(key: Key) -> dict[str, Any]:
    ident = {"type": "string", "pattern": _IDENT_PATTERN}
    duration = {"type": "string", "pattern": _DURATION_PATTERN}
    table = key.table
    match key.kind:
        case "text" | "expr":
            out: dict[str, Any] = {"type": "string", "minLength": 1}
        case "ident" | "role":
            out = dict(ident)
        case "idents" | "roles":
            items = {"enum": list(key.options)} if key.options else ident
            out = {"type": "array", "items": items, "uniqueItems": True}
        case "role_table":
            out = {
                "type": "object",
                "propertyNames": ident,
                "additionalProperties": {"type": "string"},
                "minProperties": 1,
            }
        case "duration":
            out = dict(duration)
        case "response":
            out = {"anyOf": [duration, {"enum": ["none", "agreed"]}]}
        case "bool":
            out = {"type": "boolean"}
        case "int":
            out = {"type": "integer"}
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
            out = {"type": "array", "items": _object(table)}
        case "bool_or_table":
            assert table is not None
            out = {"anyOf": [{"type": "boolean"}, _object(table)]}
    out["description"] = key.doc
    return out


def _object(table: Table) -> dict[str, Any]:
    return {
        "type": "object",
        "description": table.doc,
        "properties": {key.name: _schema(key) for key in table.keys},
        "required": [key.name for key in table.keys if key.required],
        "additionalProperties": False,
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a procedure file (as parsed from TOML, dates as ISO text)."""
    schema = _object(FILE)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "urn:qaflow:procedure-file:1"
    schema["title"] = "qaflow procedure file"
    return schema
