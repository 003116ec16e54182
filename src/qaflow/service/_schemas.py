"""The service's contract as data: JSON Schemas of every shape, and every operation.

One table (:data:`OPERATIONS`) says, for each route, its parameters, request body and
responses. The app routes and validates requests from it and ``_openapi`` turns the same
table into the OpenAPI 3.1 document, so the documentation cannot drift from what is
enforced. Trigger payload schemas come from the machine specs' :class:`~qaflow.spec.Field`
definitions, which are also what the engine checks a payload against.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from qaflow.spec import Field, MachineSpec

__all__ = [
    "OPERATIONS",
    "SCHEMAS",
    "Operation",
    "callable_triggers",
    "payload_schema",
]

_ID = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": r"^[A-Za-z0-9][\w.:-]*$"}
_TEXT = {"type": "string"}
_NTEXT = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_NTIME = {"type": ["string", "null"], "format": "date-time"}


def _obj(required: Iterable[str], **props: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(required),
        "additionalProperties": False,
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_DEADLINE = _obj(
    ("id", "name", "state", "opened_at", "due_at", "rule", "breach_trigger", "clause", "overdue"),
    id=_TEXT,
    name=_TEXT,
    state=_NTEXT,
    opened_at=_TIME,
    due_at=_TIME,
    rule=_TEXT,
    breach_trigger=_NTEXT,
    clause=_NTEXT,
    overdue={"type": "boolean"},
)
_WF_KEYS = (
    "workflow_id",
    "machine",
    "policy",
    "policy_version",
    "state",
    "terminal",
    "version",
    "created_at",
    "updated_at",
    "data",
    "deadlines",
)
_WORKFLOW = _obj(
    _WF_KEYS,
    workflow_id=_TEXT,
    machine=_TEXT,
    policy=_TEXT,
    policy_version=_TEXT,
    state=_TEXT,
    terminal={"type": "boolean"},
    version={"type": "integer", "minimum": 1},
    created_at=_NTIME,
    updated_at=_NTIME,
    data={"type": "object"},
    deadlines={"type": "array", "items": _ref("Deadline")},
)
_EVENT = _obj(
    (
        "workflow_id",
        "seq",
        "trigger",
        "source",
        "dest",
        "actor",
        "at",
        "payload",
        "prev_hash",
        "hash",
        "idempotency_key",
    ),
    workflow_id=_TEXT,
    seq={"type": "integer", "minimum": 1},
    trigger=_TEXT,
    source=_TEXT,
    dest=_TEXT,
    actor=_obj(("id", "role"), id=_TEXT, role=_TEXT),
    at=_TIME,
    payload={"type": "object"},
    prev_hash=_TEXT,
    hash=_TEXT,
    idempotency_key=_NTEXT,
)
_NOTIFICATION = _obj(
    ("id", "workflow_id", "seq", "recipient_role", "recipient_id", "reason", "clause"),
    id=_TEXT,
    workflow_id=_TEXT,
    seq={"type": "integer"},
    recipient_role=_TEXT,
    recipient_id=_NTEXT,
    reason=_TEXT,
    clause=_NTEXT,
    created_at=_TIME,
)
_MACHINE = _obj(
    ("name", "policy", "policy_version", "initial", "states", "terminal_states", "triggers"),
    name=_TEXT,
    policy=_TEXT,
    policy_version=_TEXT,
    initial=_TEXT,
    description=_TEXT,
    states={"type": "array", "items": _TEXT},
    terminal_states={"type": "array", "items": _TEXT},
    triggers={"type": "array", "items": _TEXT},
    payload_schemas={"type": "object", "additionalProperties": {"type": "object"}},
)

#: Every shape, by component name.
SCHEMAS: dict[str, dict[str, Any]] = {
    "Problem": {
        "type": "object",
        "properties": {
            "type": _TEXT,
            "title": _TEXT,
            "status": {"type": "integer"},
            "detail": _TEXT,
            "instance": _TEXT,
        },
        "required": ["type", "title", "status", "detail"],
    },
    "Deadline": _DEADLINE,
    "Workflow": _WORKFLOW,
    "Event": _EVENT,
    "Notification": _NOTIFICATION,
    "CommandResult": _obj(
        ("workflow", "event", "opened", "notifications"),
        workflow=_ref("Workflow"),
        event=_ref("Event"),
        opened={"type": "array", "items": _ref("Deadline")},
        notifications={"type": "array", "items": _ref("Notification")},
    ),
    "WorkflowPage": _obj(
        ("items", "next_after"),
        items={"type": "array", "items": _ref("Workflow")},
        next_after=_NTEXT,
    ),
    "History": _obj(
        ("workflow_id", "events"),
        workflow_id=_TEXT,
        events={"type": "array", "items": _ref("Event")},
    ),
    "Triggers": _obj(
        ("workflow_id", "state", "version", "allowed", "enabled"),
        workflow_id=_TEXT,
        state=_TEXT,
        version={"type": "integer"},
        allowed={"type": "array", "items": _TEXT},
        enabled={
            "type": "array",
            "items": _obj(("trigger", "roles"), trigger=_TEXT, roles={"type": "array"}),
        },
    ),
    "StartRequest": _obj(
        ("machine", "workflow_id", "trigger"),
        machine=_TEXT,
        policy=_TEXT,
        workflow_id=_ID,
        trigger=_TEXT,
        payload={"type": "object", "description": "see the machine's payload_schemas"},
        as_role={"type": "string", "description": "one of the caller's own roles"},
    ),
    "FireRequest": _obj(
        ("trigger",),
        trigger=_TEXT,
        payload={"type": "object", "description": "see the machine's payload_schemas"},
        as_role={"type": "string", "description": "one of the caller's own roles"},
    ),
    "TickResult": _obj(
        ("now", "fired"), now=_TIME, fired={"type": "array", "items": _ref("Event")}
    ),
    "Outbox": _obj(("items",), items={"type": "array", "items": _ref("Notification")}),
    "AckRequest": _obj(
        ("ids",),
        ids={"type": "array", "items": _TEXT, "minItems": 1, "maxItems": 1000},
    ),
    "AckResult": _obj(("newly_acknowledged",), newly_acknowledged={"type": "integer"}),
    "VerifyResult": _obj(
        ("ok", "verified", "problem"),
        ok={"type": "boolean"},
        verified={"type": "integer"},
        problem={"type": ["object", "null"]},
    ),
    "Machine": _MACHINE,
    "MachineList": _obj(("items",), items={"type": "array", "items": _ref("Machine")}),
    "PolicyList": _obj(
        ("items",),
        items={
            "type": "array",
            "items": _obj(
                ("name", "machines"),
                name=_TEXT,
                machines={
                    "type": "array",
                    "items": _obj(("name", "policy_version"), name=_TEXT, policy_version=_TEXT),
                },
            ),
        },
    ),
    "Report": {"type": "object"},
    "Health": _obj(("status",), status={"const": "ok"}),
}


@attrs.frozen
class Operation:
    """One route: method, path, parameters, body and the responses it may give."""

    method: str
    path: str
    id: str
    summary: str
    ok: int = 200
    result: str | None = None
    params: tuple[dict[str, Any], ...] = ()
    body: str | None = None
    errors: tuple[int, ...] = ()
    writes: bool = False
    auth: bool = True
    operator: bool = False
    media: str = "application/json"
    headers: tuple[str, ...] = ()


def _q(name: str, schema: dict[str, Any], text: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": text,
    }


def _p(name: str, text: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1},
        "description": text,
    }


_WID = _p("workflow_id", "the workflow's id")
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": 'the version the caller last saw, as its ETag ("3"); 412 if it moved on',
}
_IDEM = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": "resending the same key returns the first result and writes nothing",
}
_MOMENT = {"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]}
_MACHINE_P = _p("machine", "a machine name, e.g. audit or escalation.<ladder>")
_POLICY_Q = _q("policy", {"type": "string"}, "the council policy, where several ship a machine")

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/health", "health", "Liveness", result="Health", auth=False),
    Operation(
        "GET", "/policies", "listPolicies", "Policies and their machines", result="PolicyList"
    ),
    Operation("GET", "/machines", "listMachines", "Registered machines", result="MachineList"),
    Operation(
        "GET",
        "/machines/{machine}",
        "getMachine",
        "A machine: states, triggers and a JSON Schema per trigger payload",
        result="Machine",
        params=(_MACHINE_P, _POLICY_Q),
        errors=(404, 422),
    ),
    Operation(
        "GET",
        "/machines/{machine}/diagram",
        "getDiagram",
        "A machine as a mermaid state diagram",
        params=(_MACHINE_P, _POLICY_Q),
        errors=(404, 422),
        media="text/plain",
    ),
    Operation(
        "POST",
        "/workflows",
        "startWorkflow",
        "Start a workflow (the caller is the actor)",
        ok=201,
        result="CommandResult",
        params=(_IDEM,),
        body="StartRequest",
        errors=(403, 404, 409, 422),
        writes=True,
        headers=("ETag", "Location"),
    ),
    Operation(
        "GET",
        "/workflows",
        "listWorkflows",
        "List and filter the workflows the caller sees, paged by id (a page may be short)",
        result="WorkflowPage",
        params=(
            _q("machine", {"type": "string"}, "machine name"),
            _POLICY_Q,
            _q("state", {"type": "string"}, "current state"),
            _q("team", {"type": "string"}, "data.team_id (audits)"),
            _q("overdue", {"type": "boolean"}, "only those with an open deadline past due"),
            _q("after", {"type": "string"}, "the next_after of the previous page"),
            _q("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "page size (50)"),
        ),
        errors=(422,),
    ),
    Operation(
        "GET",
        "/workflows/{workflow_id}",
        "getWorkflow",
        "A workflow: state, data, open deadlines, version (ETag)",
        result="Workflow",
        params=(_WID,),
        errors=(404,),
        headers=("ETag",),
    ),
    Operation(
        "POST",
        "/workflows/{workflow_id}/fire",
        "fireTrigger",
        "Fire a trigger as the caller",
        result="CommandResult",
        params=(_WID, _IF_MATCH, _IDEM),
        body="FireRequest",
        errors=(403, 404, 409, 412, 422),
        writes=True,
        headers=("ETag",),
    ),
    Operation(
        "GET",
        "/workflows/{workflow_id}/history",
        "getHistory",
        "A workflow's hash-chained events",
        result="History",
        params=(_WID,),
        errors=(404,),
    ),
    Operation(
        "GET",
        "/workflows/{workflow_id}/triggers",
        "getTriggers",
        "Triggers the state allows, and those the caller's roles may fire now",
        result="Triggers",
        params=(_WID,),
        errors=(404,),
    ),
    Operation(
        "POST",
        "/tick",
        "tick",
        "Fire every deadline due by the server's clock (idempotent; operators only)",
        result="TickResult",
        errors=(403,),
        writes=True,
        operator=True,
    ),
    Operation(
        "GET",
        "/outbox",
        "readOutbox",
        "Pending notifications (operators only)",
        result="Outbox",
        params=(_q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most (100)"),),
        errors=(403, 422),
        operator=True,
    ),
    Operation(
        "POST",
        "/outbox/ack",
        "ackOutbox",
        "Mark notifications sent (idempotent; operators only)",
        result="AckResult",
        body="AckRequest",
        errors=(403, 422),
        writes=True,
        operator=True,
    ),
    Operation(
        "GET",
        "/verify",
        "verify",
        "Check hash chains and replays",
        result="VerifyResult",
        params=(
            _q(
                "workflow_id",
                {"type": "string", "minLength": 1},
                "one workflow the caller sees (without it: the whole store, for a caller"
                " who sees every case)",
            ),
        ),
        errors=(403, 404),
    ),
    Operation(
        "GET",
        "/report",
        "getReport",
        "The QA report for a period [from, to): store-wide for those who see every case, "
        "else of the team or service the caller manages",
        result="Report",
        params=(
            _q("from", _MOMENT, "a date or an ISO 8601 time with offset", True),
            _q("to", _MOMENT, "a date or an ISO 8601 time with offset", True),
            _POLICY_Q,
            _q("team", {"type": "string"}, "only this team's work (a team manager's default)"),
            _q("service", {"type": "string"}, "only this service's work"),
            _q("format", {"enum": ["json", "markdown", "html"]}, "json (default)"),
        ),
        errors=(403, 422),
    ),
)


# --- trigger payloads ------------------------------------------------------------------------


def _field_schema(field: Field) -> dict[str, Any]:
    kind = field.kind
    if kind == "choice":
        return {"enum": list(field.choices)}
    if kind == "any":
        return {}
    simple = {
        "str": "string",
        "int": "integer",
        "float": "number",
        "bool": "boolean",
        "list": "array",
        "dict": "object",
        "datetime": "string",
    }
    out: dict[str, Any] = {"type": simple[kind]}
    if kind in ("int", "float"):
        if field.min is not None:
            out["minimum"] = field.min
        if field.max is not None:
            out["maximum"] = field.max
    if field.max_length is not None:
        out["maxLength" if kind == "str" else "maxItems"] = field.max_length
    if kind == "str" and field.required:
        out["pattern"] = r"\S"
    if kind == "datetime":
        out["format"] = "date-time"
    return out


def payload_schema(spec: MachineSpec, trigger: str) -> dict[str, Any]:
    """The JSON Schema of ``trigger``'s payload (``anyOf`` where transitions differ)."""
    variants: list[dict[str, Any]] = []
    for t in spec.transitions:
        if t.trigger != trigger:
            continue
        schema = _obj(
            [f.name for f in t.fields if f.required],
            **{f.name: _field_schema(f) for f in t.fields},
        )
        if schema not in variants:
            variants.append(schema)
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def callable_triggers(spec: MachineSpec) -> tuple[str, ...]:
    """Triggers some caller may fire (those only the system fires are left out)."""
    return tuple(sorted({t.trigger for t in spec.transitions if t.roles - {"system"}}))
