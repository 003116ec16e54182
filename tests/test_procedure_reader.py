"""The procedure reader: key paths, every problem at once, did-you-mean, format versions."""

from __future__ import annotations

import pytest

from qaflow.calendar import Duration
from qaflow.errors import PolicyError
from qaflow.procedure import FORMAT_VERSION, Node, Problems, migrate, parse_toml

DOC = """
format_version = 1
[policy]
name = "example"
roles = ["iro", "team_manager"]
[[ladders]]
name = "Bad Name"
stages = [{ holder = "tem_manager", response = "five days" }, { holdr = "iro" }]
"""


def _read(text: str) -> Problems:
    doc = migrate(parse_toml(text, source="council.toml"), source="council.toml")
    problems = Problems("council.toml")
    root = Node(doc, problems)
    policy = root.table("policy")
    assert policy is not None
    roles = policy.names("roles") or ()
    policy.text("name")
    policy.finish(also={"version"})
    for ladder in root.tables("ladders"):
        ladder.ident("name")
        for index, raw in enumerate(ladder.get("stages", list) or []):
            stage = Node(raw, problems, ladder.key_path("stages") + f"[{index}]")
            stage.choice("holder", roles, what="a declared role")
            stage.duration("response", default=None)
            stage.finish()
        ladder.finish()
    root.finish()
    return problems


def test_every_problem_is_reported_at_once_with_its_key_path() -> None:
    problems = _read(DOC)
    with pytest.raises(PolicyError) as caught:
        problems.raise_if_any()
    error = caught.value
    paths = [p.path for p in error.problems]
    assert paths == [
        "ladders[0].name",
        "ladders[0].stages[0].holder",
        "ladders[0].stages[0].response",
        "ladders[0].stages[1].holder",
        "ladders[0].stages[1].holdr",
    ]
    assert error.source == "council.toml"
    text = str(error)
    assert text.startswith("council.toml: ")
    assert "did you mean 'team_manager'?" in text  # the misspelt role
    assert "did you mean 'holder'?" in text  # the misspelt key
    assert len(error.problems) == 5


def test_a_clean_document_reads_without_problems() -> None:
    good = DOC.replace('"Bad Name"', '"iro"').replace("tem_manager", "team_manager")
    good = good.replace("five days", "5 WD").replace("holdr", "holder")
    problems = _read(good)
    assert len(problems) == 0
    problems.raise_if_any()


def test_durations_parse_and_bools_are_not_integers() -> None:
    problems = Problems("x")
    node = Node({"within": "5 WD", "count": True, "n": 3}, problems)
    assert node.duration("within") == Duration(5, "WD")
    assert node.get("count", int) is None
    assert node.get("n", int) == 3
    assert [p.path for p in problems] == ["count"]


@pytest.mark.parametrize("version", [None, 0, FORMAT_VERSION + 1, "1", True])
def test_an_unknown_format_version_is_refused_by_name(version: object) -> None:
    doc = {} if version is None else {"format_version": version}
    with pytest.raises(PolicyError) as caught:
        migrate(doc, source="f.toml")
    assert caught.value.path == "format_version"
    assert "f.toml" in str(caught.value)


def test_invalid_toml_names_the_file() -> None:
    with pytest.raises(PolicyError, match=r"^f\.toml: valid TOML"):
        parse_toml("a = [", source="f.toml")


def test_long_or_free_text_values_are_never_quoted() -> None:
    secret = "the child said something private about home " * 3
    error = PolicyError(source="f", path="x", value=secret, expected="a role")
    assert secret[:20] not in str(error)
    assert "text of" in str(error)
