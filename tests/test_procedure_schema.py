"""The published JSON Schemas and the readers come from the same definitions (issue 10).

Every shipped and example file of each kind (escalation, audit, roles) validates against the
schema generated for its kind; the schemas shipped beside the package are the generated ones;
and on a set of broken files the schema and the reader agree: both refuse, the reader naming
a key path at or below the place the schema points to.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from qaflow.cli import main
from qaflow.errors import PolicyError
from qaflow.procedure import (
    FILE_KINDS,
    json_schema,
    load_audit_procedure,
    load_roles,
    loads_procedure,
    read_roles,
)
from test_procedure_files import _plain  # the parsed TOML as JSON carries it

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "qaflow"
PUBLISHED = {
    "escalation": PACKAGE / "procedure" / "procedure.schema.json",
    "audit": PACKAGE / "procedure" / "audit.schema.json",
    "roles": PACKAGE / "procedure" / "roles.schema.json",
}


def _kind(path: Path) -> str | None:
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    if "ladders" in doc:
        return "escalation"
    if "form" in doc or "audit" in doc:
        return "audit"
    if "roles" in doc and "policy" not in doc:
        return "roles"
    return None  # a timescale, supervision or QA calendar file: its own reader


FILES = sorted(
    p
    for p in [
        *(ROOT / "examples" / "councils").glob("*.toml"),
        *(ROOT / "examples" / "ladders").glob("*.toml"),
        *(PACKAGE / "policies").glob("*/*.toml"),
    ]
    if _kind(p) is not None
)


def _load(kind: str, text: str, base: Path) -> object:
    if kind == "escalation":
        return loads_procedure(text, source="council.toml", base=base)
    if kind == "audit":
        return load_audit_procedure("council.toml", text=text, base=base)
    return read_roles(text, source="council.toml")


def test_each_file_kind_of_the_shipped_and_example_files_is_covered() -> None:
    kinds = {_kind(p) for p in FILES}
    assert kinds == set(FILE_KINDS) == {"escalation", "audit", "roles"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_and_example_file_validates_against_its_generated_schema(
    path: Path,
) -> None:
    kind = _kind(path)
    assert kind is not None
    doc = _plain(tomllib.loads(path.read_text(encoding="utf-8")))
    jsonschema.validate(doc, json_schema(kind), format_checker=jsonschema.FormatChecker())
    _load(kind, path.read_text(encoding="utf-8"), path.parent)  # and the reader reads it


@pytest.mark.parametrize("kind", sorted(PUBLISHED))
def test_the_published_schema_of_each_kind_is_the_generated_one(kind: str) -> None:
    published = json.loads(PUBLISHED[kind].read_text(encoding="utf-8"))
    assert published == json_schema(kind)
    jsonschema.Draft202012Validator.check_schema(published)


@pytest.mark.parametrize("kind", sorted(PUBLISHED))
def test_policy_schema_prints_the_schema_of_each_kind(kind: str) -> None:
    result = CliRunner().invoke(main, ["policy", "schema", kind])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json_schema(kind)


def test_policy_schema_refuses_an_unknown_kind_without_a_traceback() -> None:
    result = CliRunner().invoke(main, ["policy", "schema", "ladders"])
    assert result.exit_code != 0
    assert "escalation" in result.output and "Traceback" not in result.output


def test_json_schema_refuses_an_unknown_kind_with_the_known_ones() -> None:
    with pytest.raises(PolicyError, match="audit, escalation, roles"):
        json_schema("ladder")


# --- broken files: the schema and the reader both refuse, at the same place ------------------

OFSTED = ROOT / "examples" / "councils" / "ofsted_grade_audit.toml"
BEXLEY_AUDIT = PACKAGE / "policies" / "bexley" / "audit.toml"
ALERTS = ROOT / "examples" / "councils" / "alerts_protocol.toml"

# (file, kind, the text replaced, its replacement); each breaks the file in one place.
BROKEN: list[tuple[Path, str, str, str]] = [
    (OFSTED, "audit", "pair_window_months = 12", 'pair_window_months = "a year"'),
    (OFSTED, "audit", "pair_window_months = 12", "pair_window_months = -1"),
    (OFSTED, "audit", "auditor_from_other_team = false\n", ""),
    (OFSTED, "audit", 'qa_roles = ["psqa"]', 'qa_roles = ["psqa"]\nqa_rolls = ["psqa"]'),
    (OFSTED, "audit", "share = 0.2", "share = 1.5"),
    (OFSTED, "audit", "share = 0.2", 'share = "a fifth"'),
    (OFSTED, "audit", 'lookback = "3 months"', 'lookback = "60 WD"'),
    (OFSTED, "audit", 'stage = "meeting"', 'stage = "meting"'),
    (OFSTED, "audit", 'answered_by = "collaborative"', 'answered_by = "colaborative"'),
    (OFSTED, "audit", 'grades = ["inadequate"]', 'grades = ["awful"]'),
    (OFSTED, "audit", 'grades = ["inadequate"]', "grades = []"),
    (OFSTED, "audit", 'within = "24 h"', 'within = "a day"'),
    (OFSTED, "audit", "direct = true", "direct = false"),
    (
        OFSTED,
        "audit",
        "direct = true",
        'direct = true\nbands = [{ low = 0, high = 10, grade = "good" }]',
    ),
    (OFSTED, "audit", 'id = "practice"', 'id = "practice area"'),
    (OFSTED, "audit", "stage_clauses = { meeting", "stage_clauses = { meetings"),
    (OFSTED, "audit", 'version = "1"', "version = 1"),
    (
        BEXLEY_AUDIT,
        "audit",
        'anchors = ["No difference", "Significant difference"]',
        'anchors = ["No difference"]',
    ),
    (BEXLEY_AUDIT, "audit", "[moderation.sample]", "[moderation.sampled]"),
    (BEXLEY_AUDIT, "audit", 'kind = "yes_no"', 'kind = "yes-no"'),
    (ALERTS, "escalation", 'response = "5 WD"', 'response = "ten days"'),
    (ALERTS, "escalation", 'name = "practice_alert"', 'name = "Practice Alert"'),
    (ALERTS, "escalation", "[[ladders.stages]]\n", "[[ladders.stage]]\n"),
]


def _schema_paths(doc: Any, kind: str) -> list[str]:
    """Where the schema refuses ``doc``, as key paths (``a.b[0].c``)."""
    validator = jsonschema.Draft202012Validator(json_schema(kind))
    out = []
    for error in validator.iter_errors(doc):
        path = ""
        for part in error.absolute_path:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
        out.append(path)
    return out


@pytest.mark.parametrize(
    ("path", "kind", "old", "new"),
    BROKEN,
    ids=[f"{p.stem}:{new[:28]}" for p, _, _, new in BROKEN],
)
def test_schema_and_reader_refuse_the_same_broken_file_at_the_same_place(
    path: Path, kind: str, old: str, new: str
) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    broken = text.replace(old, new, 1)
    where = _schema_paths(_plain(tomllib.loads(broken)), kind)
    assert where, "the schema accepted the broken file"
    with pytest.raises(PolicyError) as caught:
        _load(kind, broken, path.parent)
    found = [p.path for p in caught.value.problems]
    assert found, "the reader named no key path"
    for schema_path in where:
        assert any(p == schema_path or p.startswith(schema_path) for p in found), (
            schema_path,
            found,
        )


# --- the roles file ------------------------------------------------------------------------


def test_a_roles_file_with_mistakes_is_refused_naming_each() -> None:
    text = 'format_version = 1\n[roles]\nraiser = "reserved"\n"Team Manager" = "TM"\niro = ""\n'
    with pytest.raises(PolicyError) as caught:
        read_roles(text, source="roles.toml")
    assert [p.path for p in caught.value.problems] == [
        "roles.raiser",
        "roles.Team Manager",
        "roles.iro",
    ]
    assert caught.value.source == "roles.toml"


def test_policy_check_reads_a_roles_file(tmp_path: Path) -> None:
    path = tmp_path / "roles.toml"
    path.write_text('format_version = 1\n[roles]\niro = "IRO"\ntm = "TM"\n', encoding="utf-8")
    assert load_roles(path) == {"iro": "IRO", "tm": "TM"}
    result = CliRunner().invoke(main, ["policy", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 role(s): iro, tm" in result.output


# --- roles declared once per council -------------------------------------------------------

COUNCILS = sorted(p.parent for p in (PACKAGE / "policies").glob("*/roles.toml"))


@pytest.mark.parametrize("folder", COUNCILS, ids=lambda p: p.name)
def test_every_file_of_a_shipped_council_cites_its_one_roles_file(folder: Path) -> None:
    """No shipped file declares roles of its own; each cites the council's roles.toml."""
    for path in sorted(folder.glob("*.toml")):
        if path.name == "roles.toml":
            continue
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        if "policy" not in doc:  # the report's targets: no procedure, no role named
            continue
        assert doc["policy"]["roles"] == "roles.toml", path.name


@pytest.mark.parametrize("folder", COUNCILS, ids=lambda p: p.name)
def test_every_role_a_council_declares_is_named_by_one_of_its_files(folder: Path) -> None:
    """A declared role that no file of the council names would be read by no machine."""
    declared = load_roles(folder / "roles.toml")
    named = " ".join(
        p.read_text(encoding="utf-8") for p in folder.glob("*.toml") if p.name != "roles.toml"
    )
    assert [r for r in declared if f'"{r}"' not in named] == []


def _council(tmp_path: Path) -> Path:
    """A copy of Bexley's folder to break."""
    for path in (PACKAGE / "policies" / "bexley").glob("*.toml"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path


def test_an_unknown_role_in_an_escalation_file_names_file_path_and_the_known_roles(
    tmp_path: Path,
) -> None:
    from qaflow.procedure import load_procedure

    path = _council(tmp_path) / "escalation.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace('holders = ["service_manager"]', 'holders = ["service_manger"]', 1)
    )
    with pytest.raises(PolicyError) as caught:
        load_procedure(path)
    (problem,) = caught.value.problems
    assert caught.value.source == str(path)
    assert problem.path == "ladders[0].stages[1].holders[0]"
    assert "a role declared in roles.toml" in problem.expected
    assert "cp_chair, deputy_director, director" in problem.expected  # the known roles
    assert problem.hint == "service_manager"


def test_an_unknown_role_in_an_audit_file_names_file_path_and_the_known_roles(
    tmp_path: Path,
) -> None:
    path = _council(tmp_path) / "audit.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('qa_roles = ["psqa"]', 'qa_roles = ["pqsa"]', 1))
    with pytest.raises(PolicyError) as caught:
        load_audit_procedure(path)
    (problem,) = caught.value.problems
    assert caught.value.source == str(path)
    assert problem.path == "audit.qa_roles[0]"
    assert "a role declared in roles.toml" in problem.expected and "psqa" in problem.expected
    assert problem.hint == "psqa"


def test_an_unknown_role_in_a_timescale_file_names_file_path_and_the_known_roles(
    tmp_path: Path,
) -> None:
    from qaflow.machines.timescales import load_case_timescales
    from qaflow.policies import shipped_audit_procedure

    path = _council(tmp_path) / "timescales.toml"
    text = path.read_text(encoding="utf-8")
    rule = 'met_by = ["icpc_held"]\n'
    path.write_text(text.replace(rule, rule + 'notify = ["team_manger"]\n', 1))
    with pytest.raises(PolicyError) as caught:
        load_case_timescales(path, shipped_audit_procedure("bexley").audit.policy)
    (problem,) = caught.value.problems
    assert problem.path == "rules[0].notify[0]"
    assert (
        "a role declared in roles.toml" in problem.expected and "team_manager" in problem.expected
    )
    assert problem.hint == "team_manager"
    path.write_text(text.replace(rule, rule + 'notify = ["team_manager"]\n', 1))
    loaded = load_case_timescales(path, shipped_audit_procedure("bexley").audit.policy)
    assert loaded is not None


def test_a_missing_or_unsafe_roles_file_reference_is_refused(tmp_path: Path) -> None:
    path = _council(tmp_path) / "audit.toml"
    (tmp_path / "roles.toml").unlink()
    with pytest.raises(PolicyError, match=r"policy\.roles: a readable roles file"):
        load_audit_procedure(path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('roles = "roles.toml"', 'roles = "../etc/roles.toml"', 1))
    with pytest.raises(PolicyError, match=r"policy\.roles: a roles file's name beside this file"):
        load_audit_procedure(path)


def test_a_broken_roles_file_is_refused_naming_the_roles_file(tmp_path: Path) -> None:
    folder = _council(tmp_path)
    roles = folder / "roles.toml"
    roles.write_text(roles.read_text(encoding="utf-8") + 'system = "reserved"\n')
    with pytest.raises(PolicyError) as caught:
        load_audit_procedure(folder / "audit.toml")
    assert caught.value.source.endswith("roles.toml")
    assert [p.path for p in caught.value.problems] == ["roles.system"]
