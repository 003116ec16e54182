"""Audit and moderation procedures as files: needs 8 and 9 of issue 10.

Need 8: forms, grading and audit rules written in a file, loaded, driven through the engine
(a third council whose tool gives the four Ofsted grades directly; its stateful tests run in
test_audit.py and test_moderation.py). Need 9: every value in a file is live; a value that
no machine would read is a load error, and each allocation value changes what happens.
A file with many mistakes yields one error listing every one, each at its key path.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from audit_support import (
    AUDITOR,
    BUSINESS,
    OFSTED_FILE,
    START,
    Harness,
    allocation,
    grading_answer,
    refused,
    stage_answers,
    valid_answer,
)
from qaflow import (
    Engine,
    GuardFailed,
    ManualClock,
    MemoryStore,
    TransitionNotAllowed,
    ValidationError,
    vocabulary,
)
from qaflow.allocation import Auditor, Case, PastAudit, allocate_audits
from qaflow.directory import InMemoryDirectory, Person, Team
from qaflow.errors import PolicyError
from qaflow.machines import audit as A
from qaflow.machines.moderation import moderation_spec
from qaflow.policies import SHIPPED_AUDIT_FILES, shipped_audit_procedure
from qaflow.procedure import AuditProcedure, Grade, load_audit_procedure
from qaflow.testing import check_audit_procedure

OFSTED_TEXT = OFSTED_FILE.read_text(encoding="utf-8")
SHIPPED = Path(A.__file__).parent.parent / "policies"
OF = "ofsted_example"


def _load(text: str, name: str = "council.toml") -> AuditProcedure:
    """Load ``text``; a shipped file's roles file is read from Buckinghamshire's folder."""
    return load_audit_procedure(name, text=text, base=SHIPPED / "buckinghamshire")


def _problems(text: str) -> list[tuple[str, str]]:
    """Every (path, message) the loader reports for ``text`` (which must be refused)."""
    with pytest.raises(PolicyError) as caught:
        _load(text)
    assert caught.value.source == "council.toml"
    return [(p.path, str(p)) for p in caught.value.problems]


def _edit(old: str, new: str, text: str = OFSTED_TEXT) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# --- the shipped councils are files read by the same loader --------------------------------


@pytest.mark.parametrize("name", sorted(SHIPPED_AUDIT_FILES))
def test_I17_a_shipped_file_compiles_to_the_same_spec_every_time(name: str) -> None:
    path = SHIPPED / SHIPPED_AUDIT_FILES[name]
    first, second = load_audit_procedure(path), load_audit_procedure(path)
    assert first == second == shipped_audit_procedure(name)
    assert A.audit_spec(first.audit) == A.audit_spec(second.audit)
    assert A.audit_spec(first.audit).fingerprint == A.audit_spec(second.audit).fingerprint
    assert moderation_spec(first.moderation) == moderation_spec(second.moderation)
    assert first.audit.policy.name == name


@pytest.mark.parametrize(
    "path", [*(SHIPPED / f for f in SHIPPED_AUDIT_FILES.values()), OFSTED_FILE]
)
def test_I17_audit_and_moderation_specs_are_data_with_no_closure(path: Path) -> None:
    """Guards are CEL expressions or named vocabulary entries, effects named entries: the
    spec serialises whole, and its fingerprint does not depend on the process."""
    procedure = load_audit_procedure(path)
    for spec in (A.audit_spec(procedure.audit), moderation_spec(procedure.moderation)):
        assert spec.serialisable, spec.key
        data = spec.to_data()
        assert json.loads(json.dumps(data)) == data
        uses = {g.use for t in spec.transitions for g in t.guards if g.use}
        assert uses <= set(vocabulary.names("guard"))
        assert not any(g.fn for t in spec.transitions for g in t.guards)


def test_every_shipped_entry_cites_a_clause() -> None:
    for name in SHIPPED_AUDIT_FILES:
        audit, moderation = shipped_audit_procedure(name)
        form = audit.form
        assert form.clause and all(s.clause for s in form.sections)
        assert all(q.clause for q in form.questions)
        assert all(r.clause for r in audit.grade_rules)
        assert all(t.clause for r in audit.grade_rules for t in r.tasks)
        assert all(t.clause for t in (*audit.completion_tasks, *moderation.follow_up_tasks))
        assert audit.monthly_clause and moderation.sample.clause


# --- need 8: a direct four-level Ofsted-grade tool, written only as a file -----------------


def test_need_8_ofsted_grade_tool_from_a_file_grades_directly_through_the_engine() -> None:
    h = Harness()
    policy = load_audit_procedure(OFSTED_FILE).audit
    assert policy.form.grades == frozenset(Grade)
    h.drive(OF, "AU-1", A.AUDIT_MEETING)
    answers = stage_answers(policy, "meeting")
    bad = valid_answer(policy.form.question("overall"), "excellent")
    error = refused(h, ValidationError, lambda: h.fire("AU-1", "grade", AUDITOR, {"answer": bad}))
    assert error.field == "overall.grade"  # type: ignore[attr-defined]
    assert "'requires_improvement'" in str(error)
    # OF-AUD-03: every area of practice graded before the overall grade.
    error = refused(
        h,
        GuardFailed,
        lambda: h.fire(
            "AU-1", "grade", AUDITOR, {"answer": grading_answer(policy, Grade.INADEQUATE)}
        ),
    )
    assert error.clause == "OF-AUD-04"  # type: ignore[attr-defined]
    payload = {"answer": grading_answer(policy, Grade.INADEQUATE), "answers": answers}
    step = h.fire("AU-1", "grade", AUDITOR, payload)
    assert step.snapshot.data["grade"] == "INADEQUATE"
    # OF-AUD-06: the practice alert: exactly these roles, the task within 24 hours.
    assert [(n.recipient_role, n.clause) for n in step.notifications] == [
        ("team_manager", "OF-AUD-06"),
        ("service_manager", "OF-AUD-06"),
        ("head_of_service", "OF-AUD-06"),
    ]
    (task,) = step.tasks
    assert (task.kind, task.owner_role, task.clause) == (
        "practice_alert",
        "team_manager",
        "OF-AUD-06",
    )
    assert task.due_at == step.event.at + timedelta(hours=24)
    # OF-AUD-05: below Good, an immediate action is needed.
    plain = {"action": "a", "owner_role": "worker", "within": "5 WD"}
    error = refused(
        h, GuardFailed, lambda: h.fire("AU-1", "agree_actions", AUDITOR, {"actions": [plain]})
    )
    assert error.clause == "OF-AUD-05"  # type: ignore[attr-defined]
    step = h.fire("AU-1", "agree_actions", AUDITOR, {"actions": [{**plain, "immediate": True}]})
    assert step.snapshot.state == A.ACTIONS_AGREED


def test_need_8_each_way_of_grading_is_written_in_a_file() -> None:
    """The same tool graded through 0-10 bands instead: only the grading table and the
    overall question's kind change; the bands give no Outstanding, so nothing may ask
    for it (the moderation sample says "always inadequate" only)."""
    text = _edit(
        "[form.grading]\ndirect = true",
        "[form.grading]\nbands = ["
        '{ low = 0, high = 2, grade = "inadequate" }, '
        '{ low = 3, high = 5, grade = "requires_improvement" }, '
        '{ low = 6, high = 10, grade = "good" }]',
    )
    text = _edit(
        'kind = "grade"\nanswered_by = "auditor"\ntext_fields = ["rationale"]',
        'kind = "scale_0_10"\nanswered_by = "auditor"\ntext_fields = ["rationale"]',
        text,
    )
    text = _edit('always = ["inadequate", "outstanding"]', 'always = ["inadequate"]', text)
    form = _load(text).audit.form
    assert form.grades == {Grade.INADEQUATE, Grade.REQUIRES_IMPROVEMENT, Grade.GOOD}
    assert form.grade({"score": 2, "rationale": "r"}) is Grade.INADEQUATE
    assert form.grade({"score": 6, "rationale": "r"}) is Grade.GOOD
    outstanding = _edit('always = ["inadequate"]', 'always = ["inadequate", "outstanding"]', text)
    assert [p for p, _ in _problems(outstanding)] == ["moderation.sample.always[1]"]


# --- need 9: every value is live ----------------------------------------------------------


def test_need_9_a_declared_role_that_no_rule_names_is_refused() -> None:
    text = _edit("[policy.roles]\n", '[policy.roles]\niro = "Independent reviewing officer"\n')
    assert _problems(text) == [
        (
            "policy.roles.iro",
            "policy.roles.iro: a role the file names somewhere (a declared role no rule "
            "names is read by no machine) (got 'iro')",
        ),
    ]


def test_need_9_an_undeclared_role_is_refused_with_the_nearest_declared_one() -> None:
    text = _edit(
        'notify = ["team_manager", "service_manager", "head_of_service"]',
        'notify = ["team_manager", "service_manger", "head_of_service"]',
    )
    (problem,) = _problems(text)
    assert problem[0] == "audit.grade_rules[0].notify[1]"
    assert "did you mean 'service_manager'?" in problem[1]


def test_need_9_a_grade_rule_for_a_grade_the_form_never_gives_is_refused() -> None:
    """BK-AUD-01's judgement scale never gives Inadequate, so a BK rule for it is dead."""
    text = (SHIPPED / SHIPPED_AUDIT_FILES["buckinghamshire"]).read_text(encoding="utf-8")
    text = _edit('grades = ["requires_improvement"]', 'grades = ["inadequate"]', text)
    (problem,) = _problems(text)
    assert problem[0] == "audit.grade_rules[0].grades[0]"
    assert "read by no machine" in problem[1]


def test_need_9_a_sample_rule_for_a_grade_the_form_never_gives_is_refused() -> None:
    text = (SHIPPED / SHIPPED_AUDIT_FILES["buckinghamshire"]).read_text(encoding="utf-8")
    text = _edit("[moderation.sample]\n", '[moderation.sample]\nalways = ["inadequate"]\n', text)
    assert [p for p, _ in _problems(text)] == ["moderation.sample.always[0]"]


def test_need_9_a_clause_for_a_stage_the_form_does_not_use_is_refused() -> None:
    text = _edit(
        'stage_clauses = { meeting = "OF-AUD-03", grading = "OF-AUD-04" }',
        'stage_clauses = { meeting = "OF-AUD-03", grading = "OF-AUD-04", '
        'health_check = "OF-AUD-03" }',
    )
    assert [p for p, _ in _problems(text)] == ["audit.stage_clauses.health_check"]


def test_need_9_follow_up_grades_with_nothing_to_follow_up_are_refused() -> None:
    text = OFSTED_TEXT[: OFSTED_TEXT.index("# OF-MOD-03")]
    assert [p for p, _ in _problems(text)] == ["moderation.follow_up_grades"]


def test_need_9_an_unknown_or_misspelt_key_is_refused_never_ignored() -> None:
    text = _edit("pair_window_months = 12", "pair_window_months = 12\naudits_per_manager = 1")
    text = _edit('within = "10 WD"', 'within = "10 WD"\nwithn = "5 WD"', text)
    found = _problems(text)
    assert [p for p, _ in found] == ["allocation.audits_per_manager", "audit.follow_up.withn"]
    assert "did you mean 'within'?" in found[1][1]


def test_need_9_auditor_from_other_team_is_read_by_the_machine_and_the_allocator() -> None:
    """BX-AUD-01 requires an auditor from another team; the example's policy does not: the
    same allocation is refused under one and accepted under the other."""
    h = Harness()
    refused(h, GuardFailed, lambda: h.start("bexley", "AU-1", auditor_team_id="T-01"))
    step = h.start(OF, "AU-2", auditor_team_id="T-01")
    assert step.snapshot.data["auditor_team_id"] == step.snapshot.data["team_id"]
    cases, auditors = [Case("C-1", "W-1", "T-1")], [Auditor("A-1", "T-1")]
    bexley = A.allocation_rules(shipped_audit_procedure("bexley").audit)
    example = A.allocation_rules(load_audit_procedure(OFSTED_FILE).audit)
    left = allocate_audits(cases, auditors, "2025-03", rules=bexley).unallocated
    assert "own team 'T-1' (BX-AUD-01)" in " ".join(left[0].reasons)
    assert allocate_audits(cases, auditors, "2025-03", rules=example).complete


def test_need_9_an_auditor_with_no_team_is_allocated_where_teams_are_not_compared() -> None:
    """Under the example's policy (no other-team rule) a QA practitioner with no team is
    allocated; under Bexley's (BX-AUD-01) the same auditor is refused for want of a team."""
    directory = InMemoryDirectory(
        [Person("W-01", {"worker"}, "T-01"), Person("M-01", (), "T-01"), Person("QA-1")],
        [Team("T-01", None, "M-01")],
    )
    example = load_audit_procedure(OFSTED_FILE).audit
    ids = {"child_id": "C-01", "worker_id": "W-01", "auditor_id": "QA-1"}
    payload = A.allocation_payload(example, directory=directory, **ids)
    assert "auditor_team_id" not in payload
    spec = A.audit_spec(example)
    engine = Engine(MemoryStore(), [spec], clock=ManualClock(START))
    assert engine.start(spec, "AU-1", "allocate", BUSINESS, payload).snapshot.state == A.ALLOCATED
    with pytest.raises(ValidationError) as caught:
        A.allocation_payload(shipped_audit_procedure("bexley").audit, directory=directory, **ids)
    assert caught.value.field == "auditor_team_id"


def test_need_9_pair_window_and_monthly_clause_are_read_by_the_allocator() -> None:
    rules = A.allocation_rules(load_audit_procedure(OFSTED_FILE).audit)
    assert (rules.pair_window_months, rules.audits_per_month_clause) == (12, "OF-AUD-02")
    cases, auditors = [Case("C-1", "W-1", "T-1")], [Auditor("A-1", None)]
    ten_months_ago = [PastAudit("A-1", "W-1", "2024-05")]
    shorter = A.allocation_rules(shipped_audit_procedure("bexley").audit)
    assert allocate_audits(
        cases, auditors, "2025-03", history=ten_months_ago, rules=shorter
    ).complete
    result = allocate_audits(cases, auditors, "2025-03", history=ten_months_ago, rules=rules)
    assert not result.complete
    done = [PastAudit("A-1", "W-9", "2025-03")]
    result = allocate_audits(cases, auditors, "2025-03", history=done, rules=rules)
    assert "OF-AUD-02" in " ".join(result.unallocated[0].reasons)


def test_need_9_BK_AUD_03_lookback_may_extend_is_read_by_the_machine() -> None:
    shipped = shipped_audit_procedure("buckinghamshire").audit
    assert "extend_lookback" in A.audit_spec(shipped).triggers
    text = (SHIPPED / SHIPPED_AUDIT_FILES["buckinghamshire"]).read_text(encoding="utf-8")
    fixed = _load(_edit("may_extend = true", "may_extend = false", text)).audit
    spec = A.audit_spec(fixed)
    engine = Engine(MemoryStore(), [spec], clock=ManualClock(START))
    accepted = {f.name for f in spec.candidates(A.NEW, "allocate")[0].fields}
    payload = {k: v for k, v in allocation().items() if k in accepted}
    engine.start(spec, "AU-1", "allocate", BUSINESS, payload)
    further = {"look_back_from": "2023-09-01T00:00:00+00:00", "reason": "earlier concerns"}
    with pytest.raises(TransitionNotAllowed):
        engine.fire("AU-1", "extend_lookback", AUDITOR, further)


# --- one error listing every mistake --------------------------------------------------------


def test_a_file_with_many_mistakes_yields_one_error_listing_all() -> None:
    mistakes = [
        ('version = "1"', "version = 1"),
        ("auditor_from_other_team = false", 'auditor_from_other_team = "no"'),
        ('allocator_roles = ["business_support"]', 'allocator_roles = ["busines_support"]'),
        ('within = "4 weeks"', 'within = "a month or so"'),
        ('kind = "practice_alert"', 'kind = "Practice Alert"'),
        ('stage = "meeting"', 'stage = "meting"'),
        (
            'id = "management_oversight"\ntext = "Management oversight is evident and decisions '
            'are recorded with reasons"\nkind = "grade"',
            'id = "management_oversight"\ntext = "Management oversight is evident and decisions '
            'are recorded with reasons"\nkind = "grades"',
        ),
        ('answered_by = "collaborative"', 'answered_by = "colaborative"'),
        ("share = 0.2", 'share = "a fifth"'),
        ('lookback = "3 months"', 'lookback = "60 WD"'),
        ('qa_roles = ["psqa"]', 'qa_roles = ["psqa"]\nqa_rolls = ["psqa"]'),
        ('id = "practice"', 'id = "practice"\ncolour = "blue"'),
    ]
    text = OFSTED_TEXT
    for old, new in mistakes:
        text = _edit(old, new, text)
    with pytest.raises(PolicyError) as caught:
        _load(text)
    error = caught.value
    paths = [p.path for p in error.problems]
    assert paths == [  # in the order the format defines the tables
        "policy.version",
        "allocation.allocator_roles[0]",
        "allocation.auditor_from_other_team",
        "audit.grade_rules[0].tasks[0].kind",
        "audit.completion_limit.within",
        "audit.qa_rolls",
        "form.sections[0].stage",
        "form.sections[0].questions[0].answered_by",
        "form.sections[0].questions[4].kind",
        "form.sections[0].colour",
        "moderation.sample.lookback",
        "moderation.sample.share",
    ]
    text = str(error)
    assert text.startswith("council.toml: 12 problems:")
    assert "did you mean 'meeting'?" in text
    assert "did you mean 'grade'?" in text
    assert "did you mean 'business_support'?" in text
    assert "did you mean 'qa_roles'?" in text
    assert "did you mean 'collaborative'?" in text
    assert all(line.startswith("  - ") for line in text.splitlines()[1:])


def test_an_unreadable_file_names_itself(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"missing\.toml: a readable file"):
        load_audit_procedure(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("format_version = 1\n[policy\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"bad\.toml: valid TOML"):
        load_audit_procedure(tmp_path / "bad.toml")
    (tmp_path / "council.toml").write_text(OFSTED_TEXT, encoding="utf-8")
    assert load_audit_procedure(tmp_path / "council.toml").audit.name == OF


@pytest.mark.parametrize(
    "path", [*(SHIPPED / f for f in SHIPPED_AUDIT_FILES.values()), OFSTED_FILE]
)
def test_the_audit_conformance_suite_runs_on_any_procedure_file(path: Path) -> None:
    """qaflow.testing.check_audit_procedure: what a council runs on its own file."""
    check_audit_procedure(load_audit_procedure(path), max_examples=8, stateful_step_count=25)


def test_policy_check_reads_an_audit_file_and_runs_its_conformance_suite(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from qaflow.cli import main

    result = CliRunner().invoke(
        main, ["policy", "check", str(OFSTED_FILE), "--examples", "5", "--steps", "15"]
    )
    assert result.exit_code == 0, result.output
    assert "ofsted_example" in result.output and "conformance ok" in result.output
    assert "Outstanding" in result.output
    broken = OFSTED_TEXT.replace('stage = "meeting"', 'stage = "meting"')
    (tmp_path / "broken.toml").write_text(broken, encoding="utf-8")
    result = CliRunner().invoke(main, ["policy", "check", str(tmp_path / "broken.toml")])
    assert result.exit_code == 1
    assert "form.sections[0].stage" in result.output and "Traceback" not in result.output
