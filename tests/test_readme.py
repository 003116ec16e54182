"""The README's Python snippets run as written (in a temporary folder)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from qaflow.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


@pytest.mark.parametrize(
    "index",
    # A snippet that runs the conformance suite (hypothesis) is slow.
    [pytest.param(i, marks=[pytest.mark.slow] * ("check_" in b)) for i, b in enumerate(BLOCKS)],
)
def test_readme_snippet_runs(
    index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.chdir(tmp_path)
    if "QAFLOW_DB" in BLOCKS[index]:  # the PostgreSQL snippet runs on the test server
        monkeypatch.setenv("QAFLOW_DB", request.getfixturevalue("pg_dsn"))
    source = BLOCKS[index].replace("examples/", f"{ROOT}/examples/")
    exec(compile(source, f"README.md block {index + 1}", "exec"), {"__name__": "readme"})


DEMO = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/qaflow demo"
TESTS = (
    'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/python -m pytest -q'
)


def test_readme_has_the_two_commands_and_ci_runs_exactly_them() -> None:
    """Both set up their own virtual environment (a Debian system Python refuses ``pip
    install``), and CI runs the README's lines word for word, not a variant of them."""
    text = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in (DEMO, TESTS):
        assert f"```bash\n{command}\n```" in text
        assert command in ci


def _commands(group: click.Group, path: str = "qaflow") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = [(path, group)]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, f"{path} {name}")
        else:
            found.append((f"{path} {name}", command))
    return found


@pytest.mark.parametrize(("path", "command"), _commands(main), ids=lambda x: str(x))
def test_readme_documents_every_command_and_option(path: str, command: click.Command) -> None:
    """Like sqlite-utils' docs test: every command the CLI has appears in the README as
    ``qaflow ...`` in backticks, and each of its options on a line that names the command."""
    lines = [line for line in README.splitlines() if f"`{path}" in line]
    assert lines, f"README.md never shows `{path}`"
    for param in command.params:
        if not isinstance(param, click.Option) or param.name == "help":
            continue
        names = [*param.opts, *param.secondary_opts]
        pattern = re.compile("|".join(rf"(?<![\w-]){re.escape(n)}(?![\w-])" for n in names))
        assert any(pattern.search(line) for line in lines), (
            f"README.md does not document {'/'.join(names)} on a line showing `{path}`"
        )
