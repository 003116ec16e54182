"""The in-memory directory: roles (listed, structural, aliased), managers, loading, errors,
and its use as the engine's Directory (principle 7)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit_support import payload_for
from qaflow import Actor, Engine, ManualClock, MemoryStore, PermissionDenied
from qaflow.directory import (
    DirectoryError,
    InMemoryDirectory,
    Person,
    Service,
    Team,
    UnknownPerson,
)
from qaflow.machines import audit as A
from qaflow.policies import bexley
from qaflow.testing import check_record_round_trip, store_content

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "directory.json"


@pytest.fixture
def org() -> InMemoryDirectory:
    return InMemoryDirectory.load_json(EXAMPLE)


def test_all_is_sorted_and_importable() -> None:
    from qaflow import directory

    key = lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n)  # noqa: E731
    assert list(directory.__all__) == sorted(directory.__all__, key=key)
    assert all(hasattr(directory, n) for n in directory.__all__)


def test_roles_listed_structural_and_aliased(org: InMemoryDirectory) -> None:
    assert org.has_role("P-001", "worker")
    assert not org.has_role("P-001", "auditor")
    assert org.has_role("M-001", "team_manager")  # manages T-01
    assert org.has_role("S-001", "service_manager")
    assert org.has_role("H-002", "head_of_service")
    assert org.has_role("R-001", "moderator")  # an IRO, by alias (BX-MOD-01)
    assert org.has_role("S-001", "moderator")  # a service manager, by structure then alias
    assert not org.has_role("P-001", "moderator")
    assert not org.has_role("nobody", "worker")
    assert org.roles_of("M-001") == {"auditor", "team_manager"}


def test_who_manages_whom(org: InMemoryDirectory) -> None:
    assert org.manager_of("P-001") == "M-001"  # team manager
    assert org.manager_of("M-001") == "S-001"  # the team manager's service manager
    assert org.manager_of("S-001") == "H-002"  # head of service
    assert org.manager_of("H-002") is None  # top of the structure
    assert org.manager_of("B-001") == "Q-001"  # explicit
    assert org.team_of("P-003") == "T-02"
    assert org.team_of("D-001") is None
    assert org.service_of("P-004") == "SV-02"
    assert org.service_of("S-001") == "SV-01"
    assert org.team_manager_of("P-004") == "M-003"
    assert org.service_manager_of("P-004") == "S-001"
    assert org.head_of_service_of("P-004") == "H-002"
    assert org.members("T-01") == ("M-001", "P-001", "P-002")
    assert org.holders("psqa") == ("H-001", "Q-001")


def test_management_chain_gives_workflow_data_keys(org: InMemoryDirectory) -> None:
    assert org.management_chain("P-002") == {
        "team_manager_id": "M-001",
        "service_manager_id": "S-001",
        "head_of_service_id": "H-002",
    }
    assert org.management_chain("D-001") == {}


def test_holder_of_an_organisation_wide_role(org: InMemoryDirectory) -> None:
    assert org.holder_of("assistant_director") == "D-001"
    assert org.holder_of("director") is None
    with pytest.raises(DirectoryError, match="several"):
        org.holder_of("psqa")


def test_unknown_ids(org: InMemoryDirectory) -> None:
    with pytest.raises(UnknownPerson, match="'X-1'"):
        org.team_of("X-1")
    with pytest.raises(LookupError):
        org.person("X-1")
    with pytest.raises(DirectoryError):
        org.members("T-99")
    assert "P-001" in org and "X-1" not in org


def test_json_round_trip(org: InMemoryDirectory) -> None:
    again = InMemoryDirectory.from_json(json.dumps(org.to_mapping()))
    assert again.to_mapping() == org.to_mapping()
    for record in [*org.people(), *org.teams(), *org.services()]:
        check_record_round_trip(record)


def test_from_csv() -> None:
    people = io.StringIO(
        "id,roles,team_id,manager_id\nW-1,worker,T-1,\nM-1,auditor;psqa,T-1,\nS-1,,,\n"
    )
    teams = io.StringIO("id,service_id,manager_id\nT-1,SV-1,M-1\n")
    services = io.StringIO("id,manager_id,head_of_service_id\nSV-1,S-1,\n")
    org = InMemoryDirectory.from_csv(people, teams, services, aliases={"moderator": ["psqa"]})
    assert org.roles_of("M-1") == {"auditor", "psqa", "team_manager"}
    assert org.manager_of("W-1") == "M-1"
    assert org.manager_of("M-1") == "S-1"
    assert org.has_role("M-1", "moderator")


def test_from_csv_files(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text("id,roles,team_id\nW-1,worker,T-1\n")
    (tmp_path / "teams.csv").write_text("id,manager_id\nT-1,\n")
    org = InMemoryDirectory.from_csv(tmp_path / "people.csv", tmp_path / "teams.csv")
    assert org.team_manager_of("W-1") is None


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda: InMemoryDirectory([Person("A", team_id="T-9")]), "unknown team"),
        (lambda: InMemoryDirectory([Person("A", manager_id="B")]), "not a person"),
        (lambda: InMemoryDirectory([Person("A", manager_id="A")]), "own manager"),
        (lambda: InMemoryDirectory([Person("A"), Person("A")]), "twice"),
        (
            lambda: InMemoryDirectory([Person("A", manager_id="B"), Person("B", manager_id="A")]),
            "cycle",
        ),
        (lambda: InMemoryDirectory([], [Team("T", service_id="S")]), "unknown service"),
        (lambda: InMemoryDirectory([], [], [Service("S", manager_id="Z")]), "not a person"),
        (lambda: InMemoryDirectory([Person("A")], aliases={"x": ["x"]}), "alias of itself"),
        (lambda: InMemoryDirectory.from_json("{"), "not JSON"),
        (lambda: InMemoryDirectory.from_json("[]"), "JSON object"),
        (lambda: InMemoryDirectory.from_json('{"staff": []}'), "unknown section"),
        (lambda: InMemoryDirectory.from_json('{"people": [{"name": "x"}]}'), "column"),
        (lambda: InMemoryDirectory.from_csv(io.StringIO("name\nx\n")), "header"),
        (lambda: Person(""), "non-empty"),
        (lambda: Person("A", team_id=3), "text"),
    ],
)
def test_inconsistent_data_is_refused(build: object, problem: str) -> None:
    with pytest.raises(DirectoryError, match=problem):
        build()  # type: ignore[operator]


def test_the_engine_checks_roles_against_the_directory(org: InMemoryDirectory) -> None:
    """Principle 7: the actor must hold the role they act in, per the directory."""
    store = MemoryStore()
    clock = ManualClock(datetime(2025, 3, 3, 9, tzinfo=UTC))
    engine = Engine(store, [A.audit_spec(bexley.BEXLEY_AUDIT)], clock=clock, directory=org)
    payload = payload_for(
        bexley.BEXLEY_AUDIT,
        worker_id="P-001",
        auditor_id="M-002",
        team_id="T-01",
        auditor_team_id="T-02",
    )
    before = store_content(store)
    with pytest.raises(PermissionDenied, match="directory"):
        engine.start("audit", "AU-1", "allocate", Actor("P-001", "business_support"), payload)
    assert store_content(store) == before
    step = engine.start("audit", "AU-1", "allocate", Actor("B-001", "business_support"), payload)
    assert step.snapshot.state == A.ALLOCATED
    with pytest.raises(PermissionDenied):
        engine.fire("AU-1", "request_self_assessment", Actor("P-001", "auditor"))
    engine.fire("AU-1", "request_self_assessment", Actor("M-002", "auditor"))


@st.composite
def organisations(draw: st.DrawFn) -> InMemoryDirectory:
    """Random valid organisations: services, teams with managers, people in teams."""
    n_services = draw(st.integers(1, 3))
    n_teams = draw(st.integers(1, 4))
    n_people = draw(st.integers(1, 12))
    pids = [f"P-{i}" for i in range(n_people)]
    roles = st.frozensets(st.sampled_from(["worker", "auditor", "iro", "psqa"]), max_size=2)
    people = [
        Person(
            pid,
            draw(roles),
            draw(st.one_of(st.none(), st.sampled_from([f"T-{t}" for t in range(n_teams)]))),
        )
        for pid in pids
    ]
    teams = [
        Team(
            f"T-{t}",
            draw(st.sampled_from([f"SV-{s}" for s in range(n_services)])),
            draw(st.one_of(st.none(), st.sampled_from(pids))),
        )
        for t in range(n_teams)
    ]
    services = [
        Service(
            f"SV-{s}",
            draw(st.one_of(st.none(), st.sampled_from(pids))),
            draw(st.one_of(st.none(), st.sampled_from(pids))),
        )
        for s in range(n_services)
    ]
    try:
        return InMemoryDirectory(people, teams, services, aliases={"moderator": ["iro"]})
    except DirectoryError:
        # A random chart can loop (a head of service who is in a team managed by their own
        # report); such charts are rightly refused, so try the flat version.
        flat = [Person(p.id, p.roles) for p in people]
        return InMemoryDirectory(flat, teams, services, aliases={"moderator": ["iro"]})


@pytest.mark.slow
@given(organisations())
def test_any_valid_organisation_has_no_management_cycle(org: InMemoryDirectory) -> None:
    for person in org.people():
        seen = {person.id}
        boss = org.manager_of(person.id)
        while boss is not None:
            assert boss not in seen
            seen.add(boss)
            boss = org.manager_of(boss)


@given(organisations())
def test_holders_agree_with_has_role(org: InMemoryDirectory) -> None:
    for role in ("worker", "auditor", "moderator", "team_manager", "head_of_service"):
        held = set(org.holders(role))
        assert held == {p.id for p in org.people() if org.has_role(p.id, role)}
    assert set(org.holders("moderator")) == set(org.holders("iro"))
    again = InMemoryDirectory.from_mapping(org.to_mapping())
    assert again.to_mapping() == org.to_mapping()
