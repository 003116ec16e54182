"""Monthly audit allocation: the clause examples, explanations when no allocation exists, and
property tests against a brute-force oracle on small random organisations."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qaflow.allocation import (
    Allocation,
    AllocationImpossible,
    AllocationResult,
    AllocationRules,
    Auditor,
    Case,
    PastAudit,
    allocate_audits,
    hopcroft_karp,
    ineligibility,
    month_key,
)
from qaflow.errors import QAFlowError, ValidationError
from qaflow.testing import check_record_round_trip

MONTH = "2025-03"


def test_all_is_sorted_and_importable() -> None:
    from qaflow import allocation

    key = lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n)  # noqa: E731
    assert list(allocation.__all__) == sorted(allocation.__all__, key=key)
    assert all(hasattr(allocation, n) for n in allocation.__all__)


def test_BX_AUD_01_no_auditor_gets_a_case_of_their_own_team() -> None:
    cases = [Case("C-1", "W-1", "T-1"), Case("C-2", "W-2", "T-2")]
    auditors = [Auditor("A-1", "T-1"), Auditor("A-2", "T-2")]
    result = allocate_audits(cases, auditors, MONTH)
    assert result.complete
    assert {(a.auditor_id, a.child_id) for a in result.allocations} == {
        ("A-1", "C-2"),
        ("A-2", "C-1"),
    }


def test_BX_AUD_01_never_their_own_case_even_without_the_team_rule() -> None:
    rules = AllocationRules(exclude_own_team=False, pair_window_months=0)
    result = allocate_audits(
        [Case("C-1", "A-1", "T-1")], [Auditor("A-1", "T-1")], MONTH, rules=rules
    )
    assert not result.complete
    assert "own case" in " ".join(result.unallocated[0].reasons)


def test_BX_AUD_13_one_audit_per_auditor_a_month() -> None:
    cases = [Case(f"C-{i}", f"W-{i}", "T-1") for i in range(5)]
    auditors = [Auditor("A-1", "T-2"), Auditor("A-2", "T-3")]
    result = allocate_audits(cases, auditors, MONTH, history=[PastAudit("A-2", "W-9", MONTH)])
    assert [a.auditor_id for a in result.allocations] == ["A-1"]
    (left,) = result.unallocated
    assert left.auditor_id == "A-2"
    assert left.reasons == ("already allocated an audit in 2025-03 (BX-AUD-13)",)


def test_no_auditor_worker_pair_repeats_within_the_window() -> None:
    cases = [Case("C-1", "W-1", "T-1"), Case("C-2", "W-2", "T-1")]
    history = [PastAudit("A-1", "W-1", "2024-10")]
    result = allocate_audits(cases, [Auditor("A-1", "T-2")], MONTH, history=history)
    assert result.allocations[0].worker_id == "W-2"
    # Outside the window the pair is allowed again.
    old = [PastAudit("A-1", "W-1", "2024-09"), PastAudit("A-1", "W-2", "2025-01")]
    result = allocate_audits(cases, [Auditor("A-1", "T-2")], MONTH, history=old)
    assert result.allocations[0].worker_id == "W-1"


def test_a_valid_allocation_is_found_where_greedy_would_fail() -> None:
    """A-1 could take either case; taking C-1 first (as a greedy pass by id would) leaves A-2
    with nothing. The matching finds the allocation that serves both."""
    cases = [Case("C-1", "W-1", "T-1"), Case("C-2", "W-2", "T-3")]
    auditors = [Auditor("A-1", "T-2"), Auditor("A-2", "T-3")]
    result = allocate_audits(cases, auditors, MONTH)
    assert result.complete
    assert result.by_auditor()["A-2"].child_id == "C-1"


def test_load_is_balanced_across_workers() -> None:
    cases = [Case(f"C-{i}", "W-1", "T-1") for i in range(3)] + [
        Case("C-7", "W-2", "T-1"),
        Case("C-8", "W-3", "T-1"),
    ]
    auditors = [Auditor(f"A-{i}", "T-2") for i in range(3)]
    result = allocate_audits(cases, auditors, MONTH)
    assert result.complete and result.max_worker_load == 1
    assert sorted(a.worker_id for a in result.allocations) == ["W-1", "W-2", "W-3"]


def test_explains_which_constraints_rule_everything_out() -> None:
    cases = [Case("C-1", "W-1", "T-1"), Case("C-2", "W-2", "T-1")]
    history = [PastAudit("A-1", "W-2", "2025-02")]
    result = allocate_audits(cases, [Auditor("A-1", "T-1")], MONTH, history=history)
    (left,) = result.unallocated
    assert left.reasons[0] == "no case is open to them:"
    assert "2 case(s): the case is in their own team 'T-1' (BX-AUD-01)" in left.reasons
    assert "1 case(s): they audited worker 'W-2' in 2025-02, within 6 month(s)" in left.reasons


def test_explains_hall_violations_by_naming_the_competing_group() -> None:
    cases = [Case("C-1", "W-1", "T-1")]
    auditors = [Auditor("A-1", "T-2"), Auditor("A-2", "T-3"), Auditor("A-3", "T-1")]
    result = allocate_audits(cases, auditors, MONTH)
    assert len(result.allocations) == 1
    reasons = dict((u.auditor_id, u.reasons) for u in result.unallocated)
    loser = next(a for a in ("A-1", "A-2") if a in reasons)
    assert "Hall" in reasons[loser][0] and "C-1" in reasons[loser][0]
    assert "own team" in " ".join(reasons["A-3"])


def test_strict_raises_a_typed_error_with_the_reasons() -> None:
    with pytest.raises(AllocationImpossible) as caught:
        allocate_audits([], [Auditor("A-1", "T-1")], MONTH, strict=True)
    error = caught.value
    assert isinstance(error, QAFlowError) and isinstance(error, ValueError)
    assert error.reasons == {"A-1": ("there are no open cases",)}
    assert isinstance(error.result, AllocationResult)
    assert "A-1" in str(error)


def test_seeded_tie_breaking_is_reproducible() -> None:
    cases = [Case(f"C-{i}", f"W-{i}", "T-1") for i in range(8)]
    auditors = [Auditor(f"A-{i}", "T-2") for i in range(3)]
    first = allocate_audits(cases, auditors, MONTH, seed=7)
    assert first == allocate_audits(cases, auditors, MONTH, seed=7)
    assert first.complete
    picks = {
        tuple(a.child_id for a in allocate_audits(cases, auditors, MONTH, seed=s).allocations)
        for s in range(10)
    }
    assert len(picks) > 1


def test_inputs_are_checked() -> None:
    with pytest.raises(ValidationError):
        month_key("2025-13")
    with pytest.raises(ValidationError):
        month_key("March")
    assert month_key(__import__("datetime").date(2025, 3, 17)) == MONTH
    with pytest.raises(ValidationError):
        allocate_audits([Case("C", "W", "T"), Case("C", "W2", "T")], [], MONTH)
    with pytest.raises(ValidationError):
        allocate_audits([], [Auditor("A", "T"), Auditor("A", "U")], MONTH)
    with pytest.raises(ValidationError):
        AllocationRules(pair_window_months=-1)


def test_records_round_trip() -> None:
    result = allocate_audits(
        [Case("C-1", "W-1", "T-1")], [Auditor("A-1", "T-2"), Auditor("A-2", "T-2")], MONTH
    )
    check_record_round_trip(result)
    check_record_round_trip(PastAudit("A-1", "W-1", MONTH))


# --- properties ---------------------------------------------------------------------------


@st.composite
def organisations(draw: st.DrawFn) -> tuple[list[Case], list[Auditor], list[PastAudit]]:
    """A small council: teams, workers in teams with cases, auditors, and past pairings."""
    n_teams = draw(st.integers(1, 4))
    teams = [f"T-{i}" for i in range(n_teams)]
    workers = {f"W-{i}": draw(st.sampled_from(teams)) for i in range(draw(st.integers(1, 4)))}
    cases = [
        Case(f"C-{i}", w, workers[w])
        for i, w in enumerate(draw(st.lists(st.sampled_from(sorted(workers)), max_size=6)))
    ]
    auditors = [
        Auditor(f"A-{i}", draw(st.one_of(st.none(), st.sampled_from(teams))))
        for i in range(draw(st.integers(0, 4)))
    ]
    history = [
        PastAudit(a.id, draw(st.sampled_from(sorted(workers))), f"2024-{m:02d}")
        for a in auditors
        for m in draw(st.lists(st.integers(1, 12), max_size=2))
    ]
    return cases, auditors, history


def _allowed(
    cases: Sequence[Case], auditors: Sequence[Auditor], history: Sequence[PastAudit]
) -> dict[str, list[int]]:
    paired: dict[tuple[str, str], list[str]] = {}
    for p in history:
        paired.setdefault((p.auditor_id, p.worker_id), []).append(p.month)
    rules = AllocationRules()
    return {
        a.id: [j for j, c in enumerate(cases) if not ineligibility(c, a, MONTH, rules, paired)]
        for a in auditors
    }


def _brute_force(cases: Sequence[Case], allowed: dict[str, list[int]]) -> tuple[int, int]:
    """(largest number of auditors served, least worker load among such allocations)."""
    best = (0, 0)
    names = sorted(allowed)
    options = [[None, *allowed[a]] for a in names]
    for choice in itertools.product(*options):
        taken = [j for j in choice if j is not None]
        if len(taken) != len(set(taken)):
            continue
        load = max(Counter(cases[j].worker_id for j in taken).values(), default=0)
        if len(taken) > best[0] or (len(taken) == best[0] and load < best[1]):
            best = (len(taken), load)
    return best


@given(organisations())
def test_constraints_always_hold_and_the_allocation_is_optimal(
    org: tuple[list[Case], list[Auditor], list[PastAudit]],
) -> None:
    cases, auditors, history = org
    result = allocate_audits(cases, auditors, MONTH, history=history)
    by_id = {a.id: a for a in auditors}
    by_child = {c.child_id: c for c in cases}
    recent = {(p.auditor_id, p.worker_id) for p in history if p.month >= "2024-10"}
    # Every auditor at most one audit; every case at most one auditor.
    assert len({a.auditor_id for a in result.allocations}) == len(result.allocations)
    assert len({a.child_id for a in result.allocations}) == len(result.allocations)
    for a in result.allocations:
        case = by_child[a.child_id]
        auditor = by_id[a.auditor_id]
        assert (a.worker_id, a.team_id) == (case.worker_id, case.team_id)
        assert auditor.team_id is None or auditor.team_id != case.team_id  # BX-AUD-01
        assert auditor.id != case.worker_id
        assert (auditor.id, case.worker_id) not in recent
    # Every auditor is either allocated or explained.
    served = {a.auditor_id for a in result.allocations}
    explained = {u.auditor_id for u in result.unallocated}
    assert served | explained == set(by_id) and not served & explained
    assert all(u.reasons for u in result.unallocated)
    # A valid allocation (one case for every auditor) is found whenever one exists, and the
    # worker load is the least any maximum allocation achieves.
    size, load = _brute_force(cases, _allowed(cases, auditors, history))
    assert len(result.allocations) == size
    assert result.complete == (size == len(auditors))
    assert result.max_worker_load == load


@given(
    st.dictionaries(
        st.integers(0, 5), st.lists(st.integers(0, 5), unique=True, max_size=6), max_size=6
    )
)
def test_hopcroft_karp_finds_a_maximum_matching(graph: dict[int, list[int]]) -> None:
    matching = hopcroft_karp(graph)
    assert all(v in graph[u] for u, v in matching.items())
    assert len(set(matching.values())) == len(matching)
    best = 0
    lefts = sorted(graph)
    for choice in itertools.product(*[[None, *graph[u]] for u in lefts]):
        taken = [v for v in choice if v is not None]
        if len(taken) == len(set(taken)):
            best = max(best, len(taken))
    assert len(matching) == best


def test_a_larger_council_is_allocated_quickly() -> None:
    cases = [Case(f"C-{i:04d}", f"W-{i % 300:03d}", f"T-{i % 40:02d}") for i in range(1500)]
    auditors = [Auditor(f"A-{i:03d}", f"T-{i % 40:02d}") for i in range(60)]
    result = allocate_audits(cases, auditors, MONTH, seed=1)
    assert result.complete and result.max_worker_load == 1
    assert all(isinstance(a, Allocation) for a in result.allocations)


@given(
    st.integers(2, 12),
    st.integers(1, 60),
    st.integers(1, 15),
    st.integers(1, 6),
    st.integers(0, 40),
    st.integers(0, 2**16),
)
def test_pruned_graph_keeps_the_full_graphs_optimum(
    n_auditors: int, n_cases: int, n_workers: int, n_teams: int, n_past: int, seed: int
) -> None:
    """Issue 14: the matching runs on at most auditors-squared edges; the allocation's size
    and its largest worker load equal those the full auditors x cases graph gives."""
    import random

    from qaflow.allocation import _balanced

    rng = random.Random(seed)
    teams = [f"T-{t}" for t in range(n_teams)]
    workers = [(f"W-{w}", rng.choice(teams)) for w in range(n_workers)]
    cases = [Case(f"C-{i:03d}", *rng.choice(workers)) for i in range(n_cases)]
    auditors = [Auditor(f"A-{a:02d}", rng.choice([*teams, None])) for a in range(n_auditors)]
    months = ["2024-11", "2024-12", "2025-01", "2025-02"]
    history = [
        PastAudit(rng.choice(auditors).id, rng.choice(workers)[0], rng.choice(months))
        for _ in range(n_past)
    ]
    rules = AllocationRules()
    result = allocate_audits(cases, auditors, MONTH, history=history, seed=seed)
    ordered = sorted(cases, key=lambda c: (c.child_id, c.worker_id, c.team_id))
    paired: dict[tuple[str, str], list[str]] = {}
    for p in history:
        paired.setdefault((p.auditor_id, p.worker_id), []).append(p.month)
    full = {
        a.id: [j for j, c in enumerate(ordered) if not ineligibility(c, a, MONTH, rules, paired)]
        for a in auditors
    }
    size = len(hopcroft_karp(full))
    assert len(result.allocations) == size
    if size:
        _, cap = _balanced(sorted(full), ordered, full, size)
        assert result.max_worker_load == cap


def test_eighty_managers_and_9600_cases_in_one_pass() -> None:
    """The issue-14 size: the graph is pruned, so this takes well under a second."""
    cases = [Case(f"C-{i:05d}", f"W-{i % 2400:04d}", f"T-{i % 120:03d}") for i in range(9600)]
    auditors = [Auditor(f"A-{i:03d}", f"T-{i % 120:03d}") for i in range(80)]
    result = allocate_audits(cases, auditors, MONTH, seed=3)
    assert result.complete and result.max_worker_load == 1
    assert len({a.worker_id for a in result.allocations}) == 80
