"""The live server against its own OpenAPI document (schemathesis), and the payload schemas
against the engine: the documented schema of a trigger accepts what the engine accepts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from qaflow import ManualClock, SQLiteStore
from qaflow.errors import QAFlowError
from qaflow.policies import bexley
from qaflow.registry import shipped_spec, shipped_specs
from qaflow.service import KeyStore, create_app, openapi_document, payload_schema
from qaflow.spec import Field
from service_support import directory, live_server

EXAMPLES = 25 if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else 8


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    folder = tmp_path_factory.mktemp("openapi")
    keys = KeyStore(path=folder / "keys.json")
    _, key = keys.add("FIRO-1")
    _, all_key = keys.add("CMS-1")  # sees every case: the store-wide report
    store = SQLiteStore(folder / "s.db")
    clock = ManualClock(datetime(2025, 12, 19, 10, tzinfo=UTC))
    app = create_app(store, directory(), keys=keys, clock=clock)
    with live_server(app) as base:
        with httpx.Client(base_url=base) as client:  # something to find: one escalation
            started = client.post(
                "/workflows",
                json={
                    "machine": "escalation.bexley_firo",
                    "workflow_id": "ESC-1",
                    "trigger": "raise",
                    "payload": {"subject_id": "C-1", "reason": bexley.FIRO_LADDER.reasons[0]},
                },
                headers={"Authorization": f"Bearer {key}"},
            )
            assert started.status_code == 201, started.text
        yield base, key, all_key
    store.close()


def _operations(base: str) -> list[Any]:
    loaded = schemathesis.openapi.from_url(f"{base}/openapi.json")
    return [result.ok() for result in loaded.get_all_operations()]


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_every_response_is_documented_and_no_5xx(live: tuple[str, str, str]) -> None:
    """Each operation of the document the live server serves, with generated requests; the
    report also as one who sees every case (a raiser is refused it: 403)."""
    base, raiser_key, all_key = live
    operations = _operations(base)
    assert len(operations) >= 16
    report = [o for o in operations if o.definition.raw.get("operationId") == "getReport"]
    assert len(report) == 1
    for operation, key in [*((o, raiser_key) for o in operations), (report[0], all_key)]:
        _check(operation, base, {"Authorization": f"Bearer {key}"})


def _check(operation: Any, base: str, headers: dict[str, str]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)

    check()


def test_the_document_is_openapi_3_1_with_a_schema_per_trigger_payload() -> None:
    doc = openapi_document(shipped_specs())
    assert doc["openapi"] == "3.1.0"
    names = doc["components"]["schemas"]
    assert "Payload.escalation.bexley_firo.bexley.raise" in names
    assert "Payload.escalation.bexley_firo.bexley.response_overdue" not in names  # system only
    for path in doc["paths"].values():
        for op in path.values():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    assert "application/problem+json" in response["content"]
    for name, value in names.items():
        Draft202012Validator.check_schema(value)  # each is a valid JSON Schema
        assert name


def _value(field: Field) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 20),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=6),
        st.sampled_from(field.choices or ("x",)),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        st.just("2025-12-19T10:00:00+00:00"),
    )


FIELDS = [
    (spec.name, spec.policy, t.trigger, f)
    for spec in shipped_specs()
    for t in spec.transitions
    for f in t.fields
]


@settings(max_examples=300 if EXAMPLES > 8 else 120)
@given(st.sampled_from(FIELDS).flatmap(lambda x: st.tuples(st.just(x), _value(x[3]))))
def test_a_field_schema_accepts_exactly_what_the_field_accepts(item: Any) -> None:
    (machine, policy, trigger, field), value = item
    try:
        field.check(value)
        engine_ok = True
    except QAFlowError:
        engine_ok = False
    schema_of = payload_schema(shipped_spec(machine, policy), trigger)
    variants = schema_of.get("anyOf", [schema_of])
    prop = next(v["properties"][field.name] for v in variants if field.name in v["properties"])
    documented_ok = Draft202012Validator(prop).is_valid(value)
    if field.kind == "datetime" and isinstance(value, str):
        documented_ok = engine_ok  # 'format' is an annotation in JSON Schema 2020-12
    assert documented_ok == engine_ok, (field, value)
