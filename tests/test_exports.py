"""The public surface: ``__all__`` is sorted, complete and importable."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import qaflow

MODULES = [
    "qaflow",
    "qaflow._audit_conformance",
    "qaflow._audit_draw",
    "qaflow._authorise",
    "qaflow._build",
    "qaflow._checks",
    "qaflow._command",
    "qaflow._compute",
    "qaflow._convert",
    "qaflow._effects",
    "qaflow._fingerprint",
    "qaflow._fold",
    "qaflow._integrity",
    "qaflow._matching",
    "qaflow._plans",
    "qaflow._program",
    "qaflow._reads",
    "qaflow._replay",
    "qaflow._specs",
    "qaflow._stats",
    "qaflow._tick",
    "qaflow._timetext",
    "qaflow.allocation",
    "qaflow.calendar",
    "qaflow.cli",
    "qaflow.clock",
    "qaflow.compliance",
    "qaflow.compliance._period",
    "qaflow.compliance._rows",
    "qaflow.demo",
    "qaflow.diagram",
    "qaflow.directory",
    "qaflow.engine",
    "qaflow.errors",
    "qaflow.machines",
    "qaflow.machines._audit_allocation",
    "qaflow.machines._audit_feedback",
    "qaflow.machines._audit_review",
    "qaflow.machines._audit_states",
    "qaflow.machines._timescale_events",
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
    "qaflow.procedure._defaults",
    "qaflow.procedure.expr",
    "qaflow.programme",
    "qaflow.records",
    "qaflow.registry",
    "qaflow.report",
    "qaflow.service",
    "qaflow.sim",
    "qaflow.sim._moments",
    "qaflow.sim._play",
    "qaflow.sim._tally",
    "qaflow.simulate",
    "qaflow.spec",
    "qaflow.store",
    "qaflow.store._due",
    "qaflow.store._find",
    "qaflow.store._period_rows",
    "qaflow.store._pg_anchor",
    "qaflow.store._pg_conn",
    "qaflow.store._pg_reads",
    "qaflow.store._pg_verify",
    "qaflow.store._protocol",
    "qaflow.store._rows",
    "qaflow.store._schema",
    "qaflow.store._sqlite_reads",
    "qaflow.store._sqlite_rows",
    "qaflow.store._sqlite_schema",
    "qaflow.store._url",
    "qaflow.testing",
    "qaflow.testing._ladder_checks",
    "qaflow.testing._ladder_draw",
    "qaflow.testing._ladder_machine",
    "qaflow.testing._rolling",
    "qaflow.testing._workflow",
    "qaflow.vocabulary",
]


POLICY_DATA = frozenset({"qaflow.policies.bexley", "qaflow.policies.buckinghamshire"})
"""Public modules that are a council's data (every name in them is its policy), not API."""

NOT_EXPORTED = {
    "qaflow.demo": {"DATABASE", "DEMO_ESCALATION_RATE", "HTML", "JSON", "MARKDOWN"},
    "qaflow.engine": {"log"},
    "qaflow.machines.audit": {"COMPLETION_DEADLINE", "FOLLOW_UP_DEADLINE", "MODERATION_WINDOW"},
    "qaflow.spec": {"Check", "resolve_duration"},
    "qaflow.vocabulary": {"DurationFn", "EffectsFn", "F", "GuardFn", "UpdateFn"},
}
"""Public-looking names a public module defines but does not export, as they stand today
(issue 17): type aliases, a logger, the demo's file names, and helpers whose owners are
restructuring those modules. Shrink it; never grow it: a new helper gets a leading ``_`` or
moves to a private module, and a new public name goes in ``__all__``."""


def _public_modules() -> list[str]:
    """Every importable module of qaflow with no private (``_``) part in its dotted name."""
    return sorted(
        m.name
        for m in pkgutil.walk_packages(qaflow.__path__, "qaflow.")
        if not any(part.startswith("_") for part in m.name.split(".")[1:])
    )


def _defined_names(module: object) -> set[str]:
    """Names a module defines at top level (functions, classes, assignments), not imports."""
    source = inspect.getsourcefile(module)
    if source is None:  # a compiled module (mypyc build): its source is installed beside it
        spec = getattr(module, "__spec__", None)
        origin = Path(spec.origin if spec and spec.origin else "")
        source = str(origin.with_name(spec.name.rpartition(".")[2] + ".py" if spec else ""))
    tree = ast.parse(Path(source).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


def test_every_public_module_has_its_all_checked() -> None:
    """A new public module joins ``MODULES`` (or is a private ``_module``)."""
    assert sorted(set(_public_modules()) - set(MODULES) - POLICY_DATA) == []


@pytest.mark.parametrize("name", [m for m in MODULES if m in _public_modules()])
def test_no_public_name_by_accident(name: str) -> None:
    """Every name a public module defines without a leading ``_`` is in its ``__all__``: an
    implementation helper is private (``_helper`` or a private module), not API by accident."""
    module = importlib.import_module(name)
    stray = _defined_names(module) - set(module.__all__) - NOT_EXPORTED.get(name, set())
    assert sorted(stray) == [], f"{name} defines public names outside __all__"


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

    helpers = {"MISSING", "PolicyProblem", "shown", "shown_value"}
    for name in set(errors.__all__) - helpers:
        cls = getattr(errors, name)
        assert issubclass(cls, qaflow.QAFlowError)
        if cls is not qaflow.QAFlowError:
            assert len(cls.__mro__) > 3, f"{name} should also be a suitable builtin"
