"""Issue 10, the weaker parts made whole: endorsement by all of several roles, a bypass
consultation recorded by a role-checked ``consult`` command, and more than one terminal
referral route per ladder. Each is written in a file, loaded, and driven through the engine;
each ladder also passes the hypothesis conformance kit and simulates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from qaflow import Actor, Engine, GuardFailed, ManualClock, MemoryStore, PermissionDenied
from qaflow.errors import PolicyError, ValidationError
from qaflow.machines.escalation import escalation_machine, escalation_record, level_of
from qaflow.procedure import ProcedureFile, loads_procedure
from qaflow.simulate import simulate_escalations
from qaflow.testing import check_ladder

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)  # a Monday
HEAD = """
format_version = 1
[policy]
name = "routes"
version = "1"
[policy.roles]
cp_chair = "CP chair"
iro = "IRO"
child = "Child"
team_manager = "Team manager"
head_of_qa = "Head of QA"
head_of_service = "Head of service"
director = "Director"
cafcass = "Cafcass"
lado = "Local authority designated officer"
"""
CHAIR, IRO = Actor("CH-1", "cp_chair"), Actor("IRO-1", "iro")
HQA, HOS = Actor("HQA-1", "head_of_qa"), Actor("HOS-1", "head_of_service")


def _load(body: str) -> ProcedureFile:
    return loads_procedure(HEAD + body, source="routes.toml")


def _engine(book: ProcedureFile) -> Engine:
    specs = [escalation_machine(lad, book.policy) for lad in book.ladders]
    return Engine(MemoryStore(), specs, clock=ManualClock(T0))


def _raise(engine: Engine, who: Actor, wid: str, **payload: Any) -> None:
    body = {"subject_id": "C-1", "reason": "plan_drift", **payload}
    engine.start("escalation.routes", wid, "raise", who, body)


ENDORSE_ALL = """
[[ladders]]
name = "routes"
raised_by = ["cp_chair"]
[[ladders.stages]]
holders = ["team_manager"]
response = "5 WD"
endorsed_by = ["head_of_qa", "head_of_service"]
endorsement = "all"
clause = "R-END"
[[ladders.stages]]
holders = ["director"]
response = "5 WD"
"""

CONSULT = """
[[ladders]]
name = "routes"
raised_by = ["cp_chair"]
bypass = { allowed = true, to = [3, 4], consulted = ["head_of_qa"], clause = "R-BYPASS" }
stages = [
  { holders = ["team_manager"], response = "5 WD" },
  { holders = ["head_of_service"], response = "5 WD" },
  { holders = ["director"], response = "5 WD" },
  { holders = ["lado"], response = "5 WD" },
]
"""

ROUTES = """
[[ladders]]
name = "routes"
raised_by = ["iro", "cp_chair"]
stages = [
  { holders = ["team_manager"], response = "5 WD" },
  { holders = ["director"], response = "5 WD" },
]
[[ladders.referrals]]
name = "cafcass"
role = "cafcass"
title = "Referral to Cafcass"
by = ["iro"]
clause = "R-CAFCASS"
[[ladders.referrals]]
name = "lado"
role = "lado"
title = "Referral to the LADO"
when = "any_time"
clause = "R-LADO"
any_time_clause = "R-LADO-ANY"
"""


def test_endorsement_by_all_needs_each_role_once() -> None:
    engine = _engine(_load(ENDORSE_ALL))
    _raise(engine, CHAIR, "E1")
    with pytest.raises(GuardFailed, match="each of head_of_qa and head_of_service") as caught:
        engine.fire("E1", "escalate", CHAIR, {})
    assert caught.value.clause == "R-END"
    engine.fire("E1", "endorse", HQA, {})
    with pytest.raises(GuardFailed):  # one endorsement is not enough, and once per role
        engine.fire("E1", "escalate", CHAIR, {})
    with pytest.raises(GuardFailed, match="no endorsement by this role"):
        engine.fire("E1", "endorse", HQA, {})
    with pytest.raises(PermissionDenied):
        engine.fire("E1", "endorse", Actor("D-1", "director"), {})
    engine.fire("E1", "endorse", HOS, {})
    assert engine.fire("E1", "escalate", CHAIR, {}).snapshot.state == "stage_2"


def test_endorsement_any_stays_the_default_and_all_needs_roles() -> None:
    book = _load(ENDORSE_ALL.replace('endorsement = "all"\n', ""))
    engine = _engine(book)
    _raise(engine, CHAIR, "E1")
    engine.fire("E1", "endorse", HOS, {})
    assert engine.fire("E1", "escalate", CHAIR, {}).snapshot.state == "stage_2"
    with pytest.raises(PolicyError, match=r"ladders\[0\]\.stages\[1\].*endorsed_by"):
        _load(
            ENDORSE_ALL.replace(
                'holders = ["director"]', 'holders = ["director"]\nendorsement = "all"'
            )
        )


def test_a_bypass_consultation_is_a_command_only_the_consulted_role_may_give() -> None:
    engine = _engine(_load(CONSULT))
    with pytest.raises(ValidationError):  # consulted at a stage: no bypass when raising
        _raise(engine, CHAIR, "E1", to="stage_3")
    _raise(engine, CHAIR, "E1")
    with pytest.raises(GuardFailed, match="consultation recorded at this stage") as caught:
        engine.fire("E1", "bypass", CHAIR, {"to": "stage_3"})
    assert caught.value.clause == "R-BYPASS"
    with pytest.raises(GuardFailed):  # a field the raiser fills in no longer counts
        engine.fire("E1", "bypass", CHAIR, {"to": "stage_3", "consulted": "I asked"})
    with pytest.raises(PermissionDenied):  # the raiser cannot record it for them
        engine.fire("E1", "consult", CHAIR, {})
    engine.fire("E1", "consult", HQA, {"note": "agreed to go to the director"})
    stage = engine.get("E1").data["history"][-1]
    assert [c["role"] for c in stage["consultations"]] == ["head_of_qa"]
    assert engine.fire("E1", "bypass", CHAIR, {"to": "stage_3"}).snapshot.state == "stage_3"
    # a consultation belongs to its stage: after escalating, it must be had again
    _raise(engine, CHAIR, "E2")
    engine.fire("E2", "consult", HQA, {})
    engine.fire("E2", "escalate", CHAIR, {})
    with pytest.raises(GuardFailed):
        engine.fire("E2", "bypass", CHAIR, {"to": "stage_4"})


def test_a_ladder_has_several_terminal_referral_routes() -> None:
    book = _load(ROUTES)
    (ladder,) = book.ladders
    spec = escalation_machine(ladder, book.policy)
    assert {"referred", "referred_lado"} <= set(spec.state_names)
    engine = _engine(book)
    # the any-time route, from the first stage, tells only its own role
    _raise(engine, CHAIR, "E1")
    step = engine.fire("E1", "refer_externally", CHAIR, {"route": "lado"})
    assert step.snapshot.state == "referred_lado"
    assert level_of(ladder, "referred_lado") == ladder.referral_level
    told = {n.recipient_role for n in step.notifications}
    assert "lado" in told and "cafcass" not in told
    assert escalation_record(engine.get("E1")).outcome == "referred"
    assert [d for d in engine.get("E1").deadlines] == []
    # the main route: only after the last stage, only by an IRO, with 'route' omitted or named
    _raise(engine, IRO, "E2")
    with pytest.raises(GuardFailed):  # not from stage 1
        engine.fire("E2", "refer_externally", IRO, {"route": "cafcass"})
    engine.fire("E2", "escalate", IRO, {})
    with pytest.raises(ValidationError):
        engine.fire("E2", "refer_externally", IRO, {"route": "police"})
    step = engine.fire("E2", "refer_externally", IRO, {"route": "cafcass"})
    assert step.snapshot.state == "referred"
    assert "cafcass" in {n.recipient_role for n in step.notifications}
    _raise(engine, IRO, "E3")
    engine.fire("E3", "escalate", IRO, {})
    assert engine.fire("E3", "refer_externally", IRO, {}).snapshot.state == "referred"
    _raise(engine, CHAIR, "E4")
    engine.fire("E4", "escalate", CHAIR, {})
    with pytest.raises(GuardFailed):  # Cafcass is open to IROs only: the chair's one route
        engine.fire("E4", "refer_externally", CHAIR, {"route": "cafcass"})  # is the LADO
    assert engine.get("E4").state == "stage_2"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (ROUTES.replace('name = "lado"\n', ""), "ladders[0].referrals[1].name"),
        (
            ROUTES.replace("stages = [", 'referral = { role = "cafcass" }\nstages = [', 1),
            "ladders[0].referrals",
        ),
        (ROUTES.replace('role = "lado"', 'role = "ladoo"'), "ladders[0].referrals[1].role"),
    ],
    ids=["unnamed", "both", "undeclared"],
)
def test_referral_route_mistakes_are_refused_with_their_key_path(body: str, path: str) -> None:
    with pytest.raises(PolicyError) as caught:
        _load(body)
    assert path in [p.path for p in caught.value.problems]


@pytest.mark.parametrize("body", [ENDORSE_ALL, CONSULT, ROUTES], ids=["all", "consult", "routes"])
def test_each_keeps_the_invariants_under_random_commands_and_simulates(body: str) -> None:
    book = _load(body)
    for ladder in book.ladders:
        check_ladder(ladder, book.policy, max_examples=10, stateful_step_count=20)
        assert simulate_escalations(ladder, book.policy, n=20, seed=5).summary.paths == 20
