"""qaflow defaults: the values a shipped file holds that its framework does not give are
marked in the file, by key path and the clause they fill, and listed by ``qaflow policy
docs`` under "Defaults to confirm"."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from qaflow.cli import main
from qaflow.errors import PolicyError
from qaflow.policies import SHIPPED_AUDIT_FILES, shipped_defaults
from qaflow.procedure import load_audit_procedure

POLICIES = resources.files("qaflow.policies")
#: The files of this area (escalation files mark theirs in their own format).
FILES = ("audit", "timescales", "supervision", "qa_calendar")


def _text(council: str, name: str) -> str:
    return (POLICIES / council / f"{name}.toml").read_text(encoding="utf-8")


def test_every_default_the_comments_name_is_marked() -> None:
    """A comment calling a value qaflow's default has a [[defaults]] mark beside it."""
    marks = shipped_defaults()
    for council in SHIPPED_AUDIT_FILES:
        for name in FILES:
            text = _text(council, name)
            said = len(re.findall(r"qaflow(?:'s)? default", text, flags=re.IGNORECASE))
            marked = [m for m in marks[council] if m.path.startswith(f"{name}.toml: ")]
            assert len(marked) >= said, (council, name)


@pytest.mark.parametrize(
    ("council", "path", "fills"),
    [
        ("bexley", "audit.toml: moderation.sample.share", "BX-MOD-01"),
        ("bexley", "audit.toml: moderation.sample.always", "BX-MOD-01"),
        ("bexley", "audit.toml: form.grading.bands[3]", "BX-AUD-06"),
        ("bexley", "audit.toml: allocation.pair_window_months", "BX-AUD-01"),
        ("bexley", "audit.toml: audit.sufficiency_review.notify_if_not", "BX-AUD-12"),
        ("bexley", "audit.toml: audit.follow_up.notify", "BX-AUD-09"),
        ("buckinghamshire", "audit.toml: moderation.sample.share", "BK-MOD-01"),
        ("buckinghamshire", "audit.toml: moderation.sample.minimum", "BK-MOD-01"),
        ("buckinghamshire", "audit.toml: audit.safeguarding.roles", "BK-AUD-04"),
        ("buckinghamshire", "audit.toml: audit.completion_limit.notify", "BK-AUD-02"),
        ("buckinghamshire", "audit.toml: allocation.pair_window_months", "BK-QA-01"),
    ],
)
def test_the_invented_values_are_marked_with_the_clause_they_fill(
    council: str, path: str, fills: str
) -> None:
    found = {m.path: m for m in shipped_defaults()[council]}
    assert path in found and found[path].fills == fills and found[path].why


def test_a_mark_holds_the_value_the_file_holds() -> None:
    marks = {m.path: m.value for m in shipped_defaults()["bexley"]}
    assert marks["audit.toml: moderation.sample.share"] == 0.1
    assert marks["audit.toml: form.grading.bands[3]"] == {
        "low": 7,
        "high": 10,
        "grade": "outstanding",
    }


def test_a_mark_on_nothing_is_a_load_error() -> None:
    text = (
        _text("bexley", "audit") + '\n[[defaults]]\nvalue = "moderation.sample.size"\nwhy = "x"\n'
    )
    with pytest.raises(PolicyError) as caught:
        base = resources.files("qaflow.policies") / "bexley"  # where its roles.toml is
        load_audit_procedure("audit.toml", text=text, base=base)
    assert "defaults[9].value" in str(caught.value)


def test_policy_docs_lists_the_defaults_to_confirm(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["policy", "docs", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for council in SHIPPED_AUDIT_FILES:
        page = (tmp_path / f"{council}.md").read_text(encoding="utf-8")
        section = page.split("## Defaults to confirm", 1)[1].split("\n## ", 1)[0]
        for mark in shipped_defaults()[council]:
            assert f"`{mark.path}`" in section
    bexley = (tmp_path / "bexley.md").read_text(encoding="utf-8")
    clause = bexley.split("### BX-MOD-01", 1)[1].split("\n### ", 1)[0]
    assert "- qaflow default: `audit.toml: moderation.sample.share` = `0.1`" in clause
