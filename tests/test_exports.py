"""The public surface: ``__all__`` is sorted, complete and importable."""

from __future__ import annotations

import importlib

import pytest

import qaflow

MODULES = [
    "qaflow",
    "qaflow._checks",
    "qaflow._effects",
    "qaflow._fingerprint",
    "qaflow._integrity",
    "qaflow.allocation",
    "qaflow.calendar",
    "qaflow.cli",
    "qaflow.clock",
    "qaflow.compliance",
    "qaflow.diagram",
    "qaflow.directory",
    "qaflow.engine",
    "qaflow.errors",
    "qaflow.machines.audit",
    "qaflow.machines.escalation",
    "qaflow.machines.moderation",
    "qaflow.machines.qa_calendar",
    "qaflow.machines.supervision",
    "qaflow.machines.timescales",
    "qaflow.policies",
    "qaflow.policies.audits",
    "qaflow.policies.base",
    "qaflow.policies.clauses",
    "qaflow.policies.forms",
    "qaflow.policies.ladders",
    "qaflow.policydocs",
    "qaflow.procedure",
    "qaflow.procedure.expr",
    "qaflow.records",
    "qaflow.registry",
    "qaflow.report",
    "qaflow.service",
    "qaflow.spec",
    "qaflow.store",
    "qaflow.store._find",
    "qaflow.store._pg_reads",
    "qaflow.store._protocol",
    "qaflow.store._rows",
    "qaflow.store._schema",
    "qaflow.store._sqlite_reads",
    "qaflow.store._sqlite_rows",
    "qaflow.store._sqlite_schema",
    "qaflow.store._url",
    "qaflow.testing",
    "qaflow.vocabulary",
]


def _isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions: the order ruff's RUF022 keeps."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=_isort_key), f"{name}.__all__ is not sorted"
    for attr in exported:
        assert hasattr(module, attr), f"{name}.__all__ names missing {attr!r}"


def test_every_public_name_of_the_package_is_exported() -> None:
    public = {n for n in vars(qaflow) if not n.startswith("_") and n[0].isupper()}
    modules = {
        "calendar",
        "clock",
        "engine",
        "errors",
        "records",
        "spec",
        "store",
        "policies",
        "machines",
        "testing",
    }
    assert public - modules <= set(qaflow.__all__)


def test_every_error_derives_from_qaflow_error_and_a_builtin() -> None:
    from qaflow import errors

    helpers = {"MISSING", "PolicyProblem", "shown_value"}
    for name in set(errors.__all__) - helpers:
        cls = getattr(errors, name)
        assert issubclass(cls, qaflow.QAFlowError)
        if cls is not qaflow.QAFlowError:
            assert len(cls.__mro__) > 3, f"{name} should also be a suitable builtin"
