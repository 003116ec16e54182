"""Escalation ladders as policy data: the three default ladders, validation, TOML loading.

Each example test names the clause it enforces (``grep -r NAT-IRO-03 tests/`` finds it); the
property tests run over generated ladders from ``qaflow.testing.ladders``, and every TOML
file in ``examples/ladders/`` is loaded, built and run through ``check_ladder``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import attrs
import pytest
from hypothesis import given

from qaflow import Duration, PolicyError
from qaflow.machines.escalation import escalation_machine, state_of
from qaflow.policies import bexley
from qaflow.policies.ladders import (
    IRO_DISPUTE_RESOLUTION,
    IRO_MAX_TOTAL_RESPONSE,
    REASONS,
    EscalationLadder,
    ExtensionRule,
    ExternalReferral,
    LadderFile,
    LadderStage,
    Notice,
    ladder_from_dict,
    ladder_to_dict,
    load_ladders,
    loads_ladders,
)
from qaflow.testing import check_ladder, check_ladder_spec, ladders

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "ladders").glob("*.toml"))
DEFAULTS = {
    "cp_chair": bexley.CP_CHAIR_LADDER,
    "iro": bexley.IRO_LADDER,
    "firo": bexley.FIRO_LADDER,
}


def stage(*holders: str, response: str | None = "5 WD", **kw: object) -> LadderStage:
    return LadderStage(holders, response, **kw)  # type: ignore[arg-type]


def ladder(**kw: object) -> EscalationLadder:
    """A small valid ladder, changed by ``kw``."""
    base: dict[str, object] = {
        "name": "small",
        "kind": "custom",
        "raiser": "quality_lead",
        "stages": (stage("team_manager"), stage("director")),
    }
    base.update(kw)
    return EscalationLadder(**base)  # type: ignore[arg-type]


# --- the default ladders ----------------------------------------------------------------------


def test_BX_ESC_CP_01_informal_stage_with_social_worker_and_manager() -> None:
    informal = bexley.CP_CHAIR_LADDER.informal
    assert informal is not None
    assert informal.holders == ("social_worker", "team_manager")
    assert informal.task is not None and "child's file" in informal.task
    assert informal.clause == "BX-ESC-CP-01"


def test_BX_ESC_CP_02_four_stages_each_with_a_response_deadline() -> None:
    cp = bexley.CP_CHAIR_LADDER
    assert cp.stage_count == 4 and cp.referral is None
    assert [s.holders for s in cp.stages] == [
        ("team_manager",),
        ("service_manager",),
        ("head_of_service",),
        ("assistant_director", "director"),
    ]
    assert all(s.response == Duration(5, "WD") for s in cp.stages)
    assert cp.extensions.allowed and cp.extensions.clause == "BX-ESC-CP-02"


def test_NAT_CP_01_chair_may_bypass_any_stage() -> None:
    cp = bexley.CP_CHAIR_LADDER
    assert cp.bypass and cp.bypass_clause == "NAT-CP-01"
    # a raise may skip the informal stage, straight to any formal stage
    assert cp.bypass_targets(None) == (1, 2, 3, 4)
    assert cp.bypass_targets(0) == (2, 3, 4)
    assert cp.bypass_targets(3) == ()  # stage 4 is simply the next one
    assert cp.breach == "notify"  # no response in time: the chair decides to move on


def test_BX_ESC_IRO_01_five_stages_the_fifth_the_cafcass_referral() -> None:
    iro = bexley.IRO_LADDER
    assert iro.stage_count == 5
    assert iro.last_level == 4 and iro.referral_level == 5
    assert iro.holders(5) == ("cafcass",)
    assert iro.extensions.allowed and iro.extensions.clause == "BX-ESC-IRO-01"


def test_BX_ESC_IRO_02_rights_and_advocacy_when_raised() -> None:
    (notice,) = bexley.IRO_LADDER.on_raise
    assert notice.roles == ("child",)
    assert "advocate" in notice.reason and "legal representation" in notice.reason
    assert notice.clause == "BX-ESC-IRO-02"


def test_BX_ESC_IRO_03_child_informed_at_every_stage() -> None:
    iro = bexley.IRO_LADDER
    assert iro.informed_clause == "BX-ESC-IRO-03"
    for level in (*iro.levels, 5):
        assert "child" in iro.recipients(level), level


def test_BX_ESC_IRO_04_cafcass_referral_is_the_last_step() -> None:
    referral = bexley.IRO_LADDER.referral
    assert referral is not None and referral.role == "cafcass"
    assert referral.clause == "BX-ESC-IRO-04"


def test_NAT_IRO_01_informal_resolution_first() -> None:
    iro = bexley.IRO_LADDER
    assert iro.first_level == 0
    assert iro.informal is not None and iro.informal.clause == "NAT-IRO-01"
    assert iro.informal.task is not None and "child's file" in iro.informal.task


def test_NAT_IRO_02_iro_may_bypass_any_stage() -> None:
    iro = bexley.IRO_LADDER
    assert iro.bypass and iro.bypass_clause == "NAT-IRO-02"
    assert set(iro.bypass_targets(0)) >= {2, 3, 4}


def test_NAT_IRO_03_default_ladder_adds_up_to_20_wd() -> None:
    assert bexley.IRO_LADDER.total_formal_response == IRO_MAX_TOTAL_RESPONSE == Duration(20, "WD")


def test_NAT_IRO_03_a_ladder_over_20_wd_is_refused() -> None:
    stages = [stage("team_manager", response="10 WD"), stage("director", response="11 WD")]
    iro = {"statutory": (IRO_DISPUTE_RESOLUTION,)}
    with pytest.raises(PolicyError, match="21 WD, more than 20 WD") as info:
        ladder(kind="iro", raiser="iro", stages=stages, **iro)
    assert info.value.clause == "NAT-IRO-03"
    # the rule binds by declaration, whatever the kind or raiser are called
    with pytest.raises(PolicyError, match="NAT-IRO-03"):
        ladder(kind="dispute", raiser="reviewing_officer", stages=stages, **iro)
    with pytest.raises(PolicyError, match="working days"):
        ladder(stages=[stage("team_manager", response="3 d")], **iro)
    # exactly 20 is allowed, and an undeclared ladder is not bound by it, whatever its names
    ladder(stages=[stage("a_manager", response="20 WD")], **iro)
    ladder(kind="iro", raiser="iro", stages=stages)


def test_NAT_IRO_03_extensions_count_when_the_policy_says_so() -> None:
    stages = [stage("team_manager", response="8 WD"), stage("director", response="8 WD")]
    ext = ExtensionRule(1, "2 WD", per="stage")
    iro = {"statutory": (IRO_DISPUTE_RESOLUTION,)}
    ladder(stages=stages, extensions=ext, **iro)  # 16 WD: extensions do not count
    ladder(stages=stages, extensions=ext, extensions_count_to_cap=True, **iro)  # 16 + 2 x 2
    with pytest.raises(PolicyError, match="with the extensions that may be granted add up to 22"):
        ladder(
            stages=stages,
            extensions=ExtensionRule(1, "3 WD", per="stage"),
            extensions_count_to_cap=True,
            **iro,
        )


def test_NAT_IRO_03_refused_when_loaded_from_toml() -> None:
    text = """
format_version = 1
[policy]
name = "x"
version = "1"
roles = { reviewing_officer = "IRO", team_manager = "TM", director = "D", child = "C" }
[[ladders]]
name = "too_long"
kind = "dispute"
raised_by = ["reviewing_officer"]
statutory = ["iro_dispute_resolution"]
stages = [{ holders = ["team_manager"], response = "15 WD" },
          { holders = ["director"], response = "6 WD" }]
"""
    with pytest.raises(PolicyError, match="21 WD") as info:
        loads_ladders(text)
    assert info.value.clause == "NAT-IRO-03"


def test_NAT_IRO_04_referral_allowed_at_any_time() -> None:
    iro = bexley.IRO_LADDER
    assert iro.referral is not None and iro.referral.when == "any_time"
    assert iro.referral.any_time_clause == "NAT-IRO-04"
    assert 5 in iro.bypass_targets(None)  # even when raising
    assert all(5 in iro.bypass_targets(level) for level in (0, 1, 2, 3))
    assert 5 not in iro.bypass_targets(4)  # from the last stage it is the normal next step


def test_BX_ESC_FIRO_01_informal_with_supervising_worker_or_fostering_manager() -> None:
    informal = bexley.FIRO_LADDER.informal
    assert informal is not None
    assert informal.holders == ("supervising_social_worker", "fostering_manager")
    assert informal.response is None  # the seed sets no timescale for it
    assert informal.task is not None and "foster carer's file" in informal.task


def test_BX_ESC_FIRO_02_stage_holders_and_deadlines() -> None:
    firo = bexley.FIRO_LADDER
    assert [(s.holders, str(s.response)) for s in firo.stages] == [
        (("team_manager", "service_manager"), "5 WD"),
        (("head_of_service",), "5 WD"),
        (("assistant_director",), "5 WD"),
        (("director",), "8 WD"),
    ]
    assert all(s.clause == "BX-ESC-FIRO-02" for s in firo.stages)


def test_BX_ESC_FIRO_03_firo_may_bypass_any_stage() -> None:
    firo = bexley.FIRO_LADDER
    assert firo.bypass and firo.bypass_clause == "BX-ESC-FIRO-03"
    assert firo.bypass_targets(None) == (1, 2, 3, 4)
    assert firo.bypass_targets(1) == (3, 4)


def test_BX_ESC_FIRO_04_managers_may_request_further_time() -> None:
    rule = bexley.FIRO_LADDER.extensions
    assert rule.allowed and rule.clause == "BX-ESC-FIRO-04"
    assert rule.allows(Duration(5, "WD")) and not rule.allows(Duration(6, "WD"))
    assert not rule.allows(Duration(2, "d"))  # a different unit is not comparable


def test_BX_ESC_FIRO_05_foster_carer_informed_at_every_stage() -> None:
    firo = bexley.FIRO_LADDER
    assert firo.subject == "foster_carer"
    assert all("foster_carer" in firo.recipients(level) for level in firo.levels)


@pytest.mark.parametrize("kind", sorted(DEFAULTS))
def test_default_ladders_build_machines_of_their_shape(kind: str) -> None:
    lad = DEFAULTS[kind]
    spec = escalation_machine(lad, bexley.POLICY)
    check_ladder_spec(lad, spec)
    assert spec.name == f"escalation.{lad.name}"
    assert (spec.policy, spec.policy_version) == (bexley.POLICY.name, bexley.POLICY.version)


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stages": ()}, "at least one formal stage"),
        ({"name": "Has Spaces"}, "ladder name must be a lower-case identifier"),
        ({"raiser": "raiser"}, "reserved"),
        ({"subject": "quality_lead"}, "subject cannot also be the raiser"),
        ({"stages": (stage("quality_lead"),)}, "cannot be held by the raiser"),
        ({"stages": (stage("child"),)}, "cannot be held by the subject"),
        ({"stages": (stage("team_manager", response=None),)}, "has no response deadline"),
        ({"stages": (stage("tm", informed=("quality_lead",)),)}, "keeps the raiser"),
        ({"informed": ("quality_lead",)}, "cannot be in 'informed'"),
        ({"breach": "explode"}, "breach must be one of"),
        ({"bypass": "yes"}, "bypass must be true or false"),
        ({"reasons": ()}, "at least one reason"),
        ({"reasons": ("other", "other")}, "reason category twice"),
        ({"referral": ExternalReferral("quality_lead")}, "raiser or the subject"),
        ({"on_raise": (Notice(("quality_lead",), "hello"),)}, "cannot go to the raiser"),
    ],
)
def test_invalid_ladders_are_refused_naming_the_problem(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        ladder(**change)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: LadderStage(()), "at least one role"),
        (lambda: LadderStage(("tm", "tm"), "5 WD"), "more than once"),
        (lambda: LadderStage(("tm",), "0 WD"), "at least 1 WD"),
        (lambda: LadderStage(("tm",), "5 WD", ("tm",)), "both as holder and"),
        (lambda: LadderStage(("tm",), "5 WD", task=" "), "task must be non-empty"),
        (lambda: LadderStage("tm"), "not the string"),
        (lambda: ExtensionRule(-1), ">= 0"),
        (lambda: ExtensionRule(2), "need a max_length"),
        (lambda: ExtensionRule(1, "5 WD", per="week"), "per must be one of"),  # type: ignore[arg-type]
        (lambda: ExternalReferral("cafcass", when="never"), "when must be one of"),  # type: ignore[arg-type]
        (lambda: Notice((), "x"), "at least one role"),
        (lambda: Notice(("child",), " "), "non-empty reason"),
    ],
)
def test_invalid_parts_are_refused(make: object, message: str) -> None:
    with pytest.raises((PolicyError, ValueError), match=message):
        make()  # type: ignore[operator]


def test_levels_and_recipients() -> None:
    lad = ladder(
        informal=stage("social_worker", response=None),
        informed=("child", "team_manager"),
        stages=(stage("team_manager", informed=("parent",)), stage("director")),
        referral=ExternalReferral("cafcass", informed=("guardian",)),
    )
    assert lad.levels == (0, 1, 2) and lad.first_level == 0 and lad.referral_level == 3
    assert lad.recipients(0) == ("social_worker", "child", "team_manager")
    # a holder is notified once, as holder, even when also kept informed ladder-wide
    assert lad.recipients(1) == ("team_manager", "child", "parent")
    assert lad.recipients(3) == ("cafcass", "child", "team_manager", "guardian")
    assert lad.next_level(None) == 0 and lad.next_level(2) is None
    assert lad.bypass_targets(None) == ()  # no bypass, referral only after the last stage
    assert not lad.may_skip(0, 2)
    assert "child" not in lad.assignable_roles and "quality_lead" not in lad.assignable_roles
    assert lad.all_roles[0] == "quality_lead"
    with pytest.raises(PolicyError, match="no stage at level 5"):
        lad.stage_at(5)


def test_total_formal_response_needs_one_unit() -> None:
    assert ladder().total_formal_response == Duration(10, "WD")
    mixed = ladder(stages=(stage("a_manager"), stage("director", response="2 d")))
    assert mixed.total_formal_response is None


# --- TOML and plain data ------------------------------------------------------------------------


@pytest.mark.slow
@given(ladders())
def test_ladders_survive_plain_data_round_trip(lad: EscalationLadder) -> None:
    """Every valid ladder (generated) reads back equal from its plain-data form."""
    data = ladder_to_dict(lad)
    assert ladder_from_dict(data) == lad


@given(ladders())
def test_generated_ladders_build_valid_machines(lad: EscalationLadder) -> None:
    check_ladder_spec(lad, escalation_machine(lad, bexley.POLICY))


@pytest.mark.parametrize("kind", sorted(DEFAULTS))
def test_default_ladders_round_trip_through_plain_data(kind: str) -> None:
    assert ladder_from_dict(ladder_to_dict(DEFAULTS[kind])) == DEFAULTS[kind]


_HEAD = (
    "format_version = 1\n[policy]\nname='x'\nversion='1'\n"
    "roles = { iro = 'IRO', tm = 'TM', child = 'C' }\n"
)
_LADDER = "[[ladders]]\nname='l'\nraised_by=['iro']\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not = [toml", "valid TOML"),
        ("[policy]\nname='x'\n", "format_version: an integer from 1"),
        (_HEAD, "ladders: required: Escalation ladders"),
        ("format_version = 1\n[[ladders]]\nname='x'\n", "policy: required"),
        (_HEAD + "[extra]\n", "extra: is not a known key"),
        ("format_version = 1\n[policy]\nname='x'\nroles={a='b'}\n", "policy.version: required"),
        (
            _HEAD.replace("roles", "closure_days=['someday']\nroles") + _LADDER,
            "policy.closure_days\\[0\\]: a date like",
        ),
        (
            _HEAD + _LADDER + "stages=[{holders=['tm'], response='5 WD', respnse='x'}]\n",
            "ladders\\[0\\].stages\\[0\\].respnse: is not a known key.*did you mean 'response'",
        ),
        (
            _HEAD + _LADDER + "stages=[{holders=['tm'], response='five days'}]\n",
            "ladders\\[0\\].stages\\[0\\].response: a duration like '5 WD'",
        ),
        (
            _HEAD + _LADDER + "breach='sometimes'\nstages=[{holders=['tm'], response='5 WD'}]\n",
            "ladders\\[0\\].breach: one of \\('escalate', 'notify'\\)",
        ),
        (
            _HEAD + _LADDER + "stages=[{holders=['tim'], response='5 WD'}]\n",
            "ladders\\[0\\].stages\\[0\\].holders\\[0\\]: a declared role.*did you mean 'tm'",
        ),
    ],
)
def test_bad_toml_is_refused_with_a_useful_message(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        loads_ladders(text)


def test_ladder_names_are_unique_in_a_file() -> None:
    with pytest.raises(PolicyError, match="used twice"):
        LadderFile(bexley.POLICY, (bexley.IRO_LADDER, bexley.IRO_LADDER))
    book = LadderFile(bexley.POLICY, (bexley.IRO_LADDER,))
    with pytest.raises(PolicyError, match="no ladder 'nope'; ladders: 'bexley_iro'"):
        book.ladder("nope")


def test_load_ladders_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "council.toml"
    path.write_text(
        "format_version = 1\n[policy]\nname = 'c'\nversion = '2'\n"
        "roles = {firo = 'F', foster_carer = 'FC', director = 'D'}\n"
        "[[ladders]]\nname = 'mine'\nkind = 'firo'\n"
        "raised_by = ['firo']\nsubject = 'foster_carer'\nstages = [{holders = ['director'], "
        "response = '8 WD'}]\n",
        encoding="utf-8",
    )
    book = load_ladders(path)
    assert book.policy.name == "c" and book.policy.version == "2"
    assert book.ladder("mine").stages[0].response == Duration(8, "WD")
    assert book.ladder("mine").reasons == REASONS


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_toml_ladders_load_build_and_conform(path: Path) -> None:
    """A council's own ladders, from examples/ladders/, pass the same conformance suite."""
    book = load_ladders(path)
    assert book.ladders
    for lad in book.ladders:
        spec = escalation_machine(lad, book.policy)
        assert state_of(lad, lad.last_level) in spec.state_names
        check_ladder(lad, book.policy, max_examples=15, stateful_step_count=25)


def test_example_toml_has_the_promised_rules() -> None:
    book = load_ladders(ROOT / "examples" / "ladders" / "example_council.toml")
    iro, cp = book.ladder("example_iro"), book.ladder("example_cp_chair")
    assert iro.total_formal_response == Duration(20, "WD")  # NAT-IRO-03, exactly
    assert "iro_manager" not in iro.recipients(1) and "iro_manager" in iro.recipients(2)
    assert iro.extensions == ExtensionRule(2, "3 WD", per="escalation", clause="EX-ESC-03")
    assert cp.breach == "escalate" and not cp.bypass
    assert len(book.policy.closure_days) == 3
    assert not book.policy.calendar.is_working_day(sorted(book.policy.closure_days)[0])


def test_ladder_repr_is_a_constructor_call() -> None:
    """Hypothesis prints failing ladders with repr: it must rebuild the same ladder."""
    from qaflow.calendar import Duration as _Duration  # noqa: F401 (used by eval)

    namespace = {
        "EscalationLadder": EscalationLadder,
        "LadderStage": LadderStage,
        "ExtensionRule": ExtensionRule,
        "ExternalReferral": ExternalReferral,
        "Notice": Notice,
        "Duration": Duration,
    }
    for lad in DEFAULTS.values():
        assert eval(repr(lad), namespace) == lad


def test_ladders_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        bexley.IRO_LADDER.bypass = False  # type: ignore[misc]


@pytest.mark.parametrize(
    "name", ["qaflow.policies.ladders", "qaflow.machines.escalation", "qaflow.diagram"]
)
def test_all_is_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    key = lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n)  # noqa: E731
    assert exported == sorted(exported, key=key)
    for attr in exported:
        assert hasattr(module, attr), attr


def test_module_docstring_example_loads() -> None:
    import qaflow.policies.ladders as module

    doc = module.__doc__ or ""
    block = doc.split("::\n\n", 1)[1].split("\n\nThe file", 1)[0]
    text = "\n".join(line.removeprefix("    ") for line in block.splitlines())
    book = loads_ladders(text, source="docstring")
    assert book.ladder("iro").total_formal_response == Duration(10, "WD")
