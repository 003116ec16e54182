"""The README's Python snippets run as written (in a temporary folder)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_snippet_runs(
    index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.chdir(tmp_path)
    if "QAFLOW_DB" in BLOCKS[index]:  # the PostgreSQL snippet runs on the test server
        monkeypatch.setenv("QAFLOW_DB", request.getfixturevalue("pg_dsn"))
    source = BLOCKS[index].replace("examples/", f"{ROOT}/examples/")
    exec(compile(source, f"README.md block {index + 1}", "exec"), {"__name__": "readme"})


def test_readme_has_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert "pip install -e . && qaflow demo" in text
    assert 'pip install -e ".[test]" && python -m pytest -q' in text
    assert os.path.exists(ROOT / ".ci" / "run")
