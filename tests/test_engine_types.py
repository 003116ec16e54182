"""A wrongly typed argument to any parameter of ``Engine``'s commands is a ``ValidationError``
naming that parameter, and writes nothing, in both builds.

The command path runs compiled in a compiled build (``qaflow._command``), and compiled code
raises ``TypeError`` for an argument that does not match its annotation before qaflow's own
checks run. ``Engine`` stays a Python facade and the compiled functions take ``object`` for
what a caller supplies, so the error is the same as in pure Python: CI runs this file in the
compiled leg too (``tests/test_compiled.py`` proves that leg imports compiled modules).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from qaflow import Actor, Engine, ManualClock, MemoryStore, ValidationError
from qaflow.testing import store_content
from review_machine import review_spec

T0 = datetime(2025, 12, 19, 10, tzinfo=UTC)
WORKER = Actor("P-1", "worker")
MANAGER = Actor("M-1", "manager")

WRONG: tuple[object, ...] = (3, 2.5, b"R1", ["R1"], {"R1": 1}, object(), True)
"""Values of the wrong type for every parameter (None is left out: several accept it)."""


def _engine() -> Engine:
    engine = Engine(MemoryStore(), [review_spec()], clock=ManualClock(T0 + timedelta(hours=1)))
    engine.start("example.review", "R1", "submit", WORKER, {"document_ref": "D-1"}, at=T0)
    return engine


Call = Callable[[Engine, Any], object]
GOOD_PAYLOAD = {"document_ref": "D-2"}
CALLS: dict[tuple[str, str], Call] = {
    ("start", "machine"): lambda e, v: e.start(v, "N1", "submit", WORKER, GOOD_PAYLOAD),
    ("start", "workflow_id"): lambda e, v: e.start(
        "example.review", v, "submit", WORKER, GOOD_PAYLOAD
    ),
    ("start", "trigger"): lambda e, v: e.start("example.review", "N1", v, WORKER, GOOD_PAYLOAD),
    ("start", "actor"): lambda e, v: e.start("example.review", "N1", "submit", v, GOOD_PAYLOAD),
    ("start", "payload"): lambda e, v: e.start("example.review", "N1", "submit", WORKER, v),
    ("start", "at"): lambda e, v: e.start(
        "example.review", "N1", "submit", WORKER, GOOD_PAYLOAD, at=v
    ),
    ("start", "idempotency_key"): lambda e, v: e.start(
        "example.review", "N1", "submit", WORKER, GOOD_PAYLOAD, idempotency_key=v
    ),
    ("fire", "workflow_id"): lambda e, v: e.fire(v, "comment", MANAGER, {"text": "t"}),
    ("fire", "trigger"): lambda e, v: e.fire("R1", v, MANAGER, {"text": "t"}),
    ("fire", "actor"): lambda e, v: e.fire("R1", "comment", v, {"text": "t"}),
    ("fire", "payload"): lambda e, v: e.fire("R1", "comment", MANAGER, v),
    ("fire", "at"): lambda e, v: e.fire("R1", "comment", MANAGER, {"text": "t"}, at=v),
    ("fire", "expected_version"): lambda e, v: e.fire(
        "R1", "comment", MANAGER, {"text": "t"}, expected_version=v
    ),
    ("fire", "idempotency_key"): lambda e, v: e.fire(
        "R1", "comment", MANAGER, {"text": "t"}, idempotency_key=v
    ),
    ("tick", "now"): lambda e, v: e.tick(v),
    ("tick", "batch"): lambda e, v: e.tick(batch=v),
    ("migrate", "workflow_id"): lambda e, v: e.migrate(
        v, e.spec("example.review"), MANAGER, reason="r"
    ),
    ("migrate", "to"): lambda e, v: e.migrate("R1", v, MANAGER, reason="r"),
    ("migrate", "actor"): lambda e, v: e.migrate("R1", e.spec("example.review"), v, reason="r"),
    ("migrate", "reason"): lambda e, v: e.migrate(
        "R1", e.spec("example.review"), MANAGER, reason=v
    ),
    ("migrate", "at"): lambda e, v: e.migrate(
        "R1", e.spec("example.review"), MANAGER, reason="r", at=v
    ),
    ("migrate", "expected_version"): lambda e, v: e.migrate(
        "R1", e.spec("example.review"), MANAGER, reason="r", expected_version=v
    ),
}

FIELDS = {"payload": ("payload",), "actor": ("actor",)}
"""The fields an error may name for a parameter, where it is not the parameter's own name
(an actor's or a payload's parts are named by their own path)."""


RIGHT_TYPE: dict[str, type] = {"expected_version": int, "batch": int, "payload": dict}
"""Parameters for which one of :data:`WRONG` is of the accepted type (bool aside)."""
CASES = [
    (command, parameter, value)
    for command, parameter in sorted(CALLS)
    for value in WRONG
    if type(value) is not RIGHT_TYPE.get(parameter)
]


@pytest.mark.parametrize(
    ("command", "parameter", "value"),
    CASES,
    ids=[f"{c}.{p}={type(v).__name__}" for c, p, v in CASES],
)
def test_a_wrongly_typed_argument_is_a_validation_error_naming_it(
    command: str, parameter: str, value: object
) -> None:
    engine = _engine()
    before = store_content(engine.store)
    with pytest.raises(ValidationError) as raised:
        CALLS[command, parameter](engine, value)
    assert raised.value.field in FIELDS.get(parameter, (parameter,)), str(raised.value)
    assert store_content(engine.store) == before
