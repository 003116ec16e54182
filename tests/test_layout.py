"""The library's shape: one job per module, and no shipped council named in generic code.

Both checks read the installed source tree of ``qaflow`` (every ``.py`` file under it), so a
new module is covered the moment it exists.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import qaflow

SOURCE = Path(qaflow.__file__).resolve().parent
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 300
COUNCILS = re.compile(r"bexley|buckinghamshire", re.IGNORECASE)

POLICY_DATA = frozenset({"policies/bexley.py", "policies/buckinghamshire.py"})
"""Policy data files, excepted from the size limits: a council's values, one per entry."""


def _modules(root: Path) -> dict[str, str]:
    """Every module under ``root``: its path relative to ``root`` -> its text."""
    return {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*.py"))
    }


def oversized(modules: dict[str, str]) -> list[str]:
    """Each module over the line limit and each class over its limit, with its length."""
    found = []
    for name, text in modules.items():
        if name in POLICY_DATA:
            continue
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{name} ({lines} lines)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > MAX_CLASS_LINES:
                    found.append(f"{name}:{node.name} ({length} lines)")
    return found


def council_mentions(modules: dict[str, str]) -> list[str]:
    """``file:line`` of every council name outside ``policies/`` (the shipped data and the
    one catalogue of what ships)."""
    return [
        f"{name}:{n}"
        for name, text in modules.items()
        if not name.startswith("policies/")
        for n, line in enumerate(text.splitlines(), start=1)
        if COUNCILS.search(line)
    ]


def test_the_checks_find_what_they_look_for(tmp_path: Path) -> None:
    """The two scans below are not vacuous: each finds a planted offender and passes a clean
    module."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "big.py").write_text("class Big:\n" + "    x = 1\n" * MAX_CLASS_LINES)
    (tmp_path / "long.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    (tmp_path / "policies" / "bexley.py").write_text("X = 'Bexley'\n" * (MAX_MODULE_LINES + 1))
    (tmp_path / "named.py").write_text("# fine\nLADDER = 'BEXLEY_firo'\n")
    (tmp_path / "clean.py").write_text("class Small:\n    x = 1\n")
    modules = _modules(tmp_path)
    assert oversized(modules) == [
        f"big.py:Big ({MAX_CLASS_LINES + 1} lines)",
        f"long.py ({MAX_MODULE_LINES + 1} lines)",
    ]
    assert council_mentions(modules) == ["named.py:2"]


def test_no_module_over_600_lines_and_no_class_over_300() -> None:
    """Issue 17's acceptance: one job per module (policy data files excepted)."""
    assert oversized(_modules(SOURCE)) == []


def test_no_council_named_outside_the_shipped_policies() -> None:
    """Generic code (machines, engine, simulation, report, CLI, service) names no council:
    the shipped councils come from the one catalogue in ``qaflow.policies``."""
    assert council_mentions(_modules(SOURCE)) == []
