"""The OpenAPI 3.1 document, built from ``_schemas.OPERATIONS`` and ``SCHEMAS``: the very
definitions the app validates requests with, plus a schema per trigger payload."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qaflow.service._schemas import (
    OPERATIONS,
    SCHEMAS,
    Operation,
    callable_triggers,
    payload_schema,
)
from qaflow.spec import MachineSpec

__all__ = ["openapi_document"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_NO_STORE = ("/health", "/policies", "/machines")
"""Paths answered from the registered machines alone, never the store (so never a 503)."""


def _responses(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    content: dict[str, Any]
    if op.media == "application/json":
        content = {"application/json": {"schema": _ref(op.result or "Health")}}
    else:
        content = {op.media: {"schema": {"type": "string"}}}
    if op.id == "getReport":
        content = {
            "application/json": {"schema": _ref("Report")},
            "text/markdown": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
        }
    ok: dict[str, Any] = {"description": "success", "content": content}
    if op.headers:
        ok["headers"] = {h: {"schema": {"type": "string"}} for h in op.headers}
    out[str(op.ok)] = ok
    errors = set(op.errors) | ({401} if op.auth else set())
    if op.body or any(p["in"] in ("query", "header") for p in op.params):
        errors.add(422)
    if not op.path.startswith(_NO_STORE):
        errors.add(503)
    if op.writes:
        errors.add(500)
    problem = {"application/problem+json": {"schema": _ref("Problem")}}
    texts = {
        401: "no valid credentials",
        403: "the caller's roles may not do this",
        404: "unknown workflow, machine or policy",
        409: (
            "a concurrent change, a reused key, a trigger the state does not allow, or "
            "(id-unavailable) a start under an id held by a workflow the caller may not see"
        ),
        412: "If-Match names another version",
        422: "a value, payload or policy condition is not accepted",
        500: (
            "(outcome-unknown) the store lost its connection after the commit was sent: read "
            "the workflow's version, or resend with the same Idempotency-Key, before resending"
        ),
        503: "(store-busy, store-unavailable) nothing was written: retry after Retry-After",
    }
    for status in sorted(errors):
        out[str(status)] = {"description": texts[status], "content": problem}
    if 503 in errors:
        out["503"]["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 0}}}
    return out


def openapi_document(specs: Iterable[MachineSpec], *, title: str = "qaflow") -> dict[str, Any]:
    """The OpenAPI 3.1 document of :data:`OPERATIONS`, with a schema per trigger payload."""
    specs = tuple(specs)
    machines = sorted({s.name for s in specs})
    policies = sorted({s.policy for s in specs})
    named = {
        "machine": {"type": "string", "enum": machines},
        "policy": {"type": "string", "enum": policies},
    }
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        entry: dict[str, Any] = {
            "operationId": op.id,
            "summary": op.summary,
            "responses": _responses(op),
        }
        if op.params:
            entry["parameters"] = [
                dict(p, schema=named[p["name"]]) if p["name"] in named else p for p in op.params
            ]
        if op.body:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(op.body)}},
            }
        entry["security"] = [{"bearer": []}, {"apiKey": []}] if op.auth else []
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    schemas = dict(SCHEMAS)
    start = schemas["StartRequest"]
    schemas["StartRequest"] = dict(start, properties=dict(start["properties"], **named))
    for spec in specs:
        for trigger in callable_triggers(spec):
            schemas[f"Payload.{spec.name}.{spec.policy}.{trigger}"] = payload_schema(spec, trigger)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": "1",
            "description": "Council QA and escalation workflows over HTTP. Errors are "
            "RFC 9457 problem+json; a workflow's version is its ETag; times are ISO 8601 "
            "with an offset.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
