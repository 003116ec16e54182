"""Monthly audit allocation: one case per auditor, under the policy's constraints.

Business support allocates each audit (BX-AUD-01): an auditor, a child, the allocated
worker. The constraints are those of the policy's :class:`AllocationRules`:

* an auditor never audits a case of their own team (BX-AUD-01), nor their own case;
* an auditor does not audit the same worker again within the policy's window;
* each auditor gets one audit a month (BX-AUD-13) and each case at most one auditor;
* the load is balanced: no worker has more of their cases audited this month than needed.

Allocation is a bipartite matching problem, so :func:`allocate_audits` solves it as one:
Hopcroft-Karp finds a maximum matching (so every auditor is allocated whenever any valid
allocation does that), then a max-flow with a per-worker cap finds the smallest cap that
keeps the matching maximum (the balanced allocation). When some auditor cannot be
allocated, the result says why, in terms a person can check: which constraints rule out
every case for them, or which group of auditors competes for too few cases (the Hall
condition that fails). Everything is ids; the result is deterministic for given inputs and
``seed``.
"""

from __future__ import annotations

import random
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import date

import attrs

from qaflow._matching import MaxFlow, hopcroft_karp
from qaflow.errors import QAFlowError, ValidationError

__all__ = [
    "Allocation",
    "AllocationImpossible",
    "AllocationResult",
    "AllocationRules",
    "Auditor",
    "Case",
    "PastAudit",
    "Unallocated",
    "allocate_audits",
    "hopcroft_karp",
    "ineligibility",
    "month_key",
]


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def month_key(value: str | date) -> str:
    """A month as ``"YYYY-MM"`` (from that text or any date in the month)."""
    if isinstance(value, date):
        return f"{value.year:04d}-{value.month:02d}"
    match = _MONTH.match(value) if isinstance(value, str) else None
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise ValidationError(field="month", value=value, expected="a month as 'YYYY-MM'")
    return value


def _month_index(month: str) -> int:
    year, mon = month_key(month).split("-")
    return int(year) * 12 + int(mon) - 1


@attrs.frozen
class Case:
    """An open case that may be audited: the child, the allocated worker, the worker's team."""

    child_id: str
    worker_id: str
    team_id: str


@attrs.frozen
class Auditor:
    """A manager who audits (BX-AUD-13), with their own team (for BX-AUD-01)."""

    id: str
    team_id: str | None


@attrs.frozen
class PastAudit:
    """An earlier allocation, for the no-repeat window and the one-a-month rule."""

    auditor_id: str
    worker_id: str
    month: str = attrs.field(converter=month_key)


@attrs.frozen(kw_only=True)
class AllocationRules:
    """The policy's allocation constraints.

    ``pair_window_months``: an auditor and a worker are not paired again until this many
    months have passed (1 forbids only the same month; 0 allows any repeat). The frameworks give
    no figure; qaflow's default is 6, the length of BX-MOD-01's moderation look-back and of
    BK-AUD-03's case look-back, so one auditor does not judge the same worker's practice
    twice in the period that practice is reviewed over.
    """

    exclude_own_team: bool = True
    own_team_clause: str | None = "BX-AUD-01"
    pair_window_months: int = 6
    audits_per_month_clause: str | None = "BX-AUD-13"

    def __attrs_post_init__(self) -> None:
        if isinstance(self.pair_window_months, bool) or not isinstance(
            self.pair_window_months, int
        ):
            raise ValidationError(
                field="pair_window_months", value=self.pair_window_months, expected="an int"
            )
        if self.pair_window_months < 0:
            raise ValidationError(
                field="pair_window_months", value=self.pair_window_months, expected=">= 0"
            )


@attrs.frozen
class Allocation:
    """One audit to allocate: who audits which child, whose work, in which month."""

    auditor_id: str
    child_id: str
    worker_id: str
    team_id: str
    month: str


@attrs.frozen
class Unallocated:
    """An auditor who could not be given a case this month, and why."""

    auditor_id: str
    reasons: tuple[str, ...]


@attrs.frozen
class AllocationResult:
    """The month's allocation, the auditors left out with the reasons, and the balance."""

    month: str
    allocations: tuple[Allocation, ...]
    unallocated: tuple[Unallocated, ...] = ()
    max_worker_load: int = 0

    @property
    def complete(self) -> bool:
        """Whether every auditor got a case (a valid allocation in the policy's sense)."""
        return not self.unallocated

    def by_auditor(self) -> dict[str, Allocation]:
        """The allocations keyed by auditor id."""
        return {a.auditor_id: a for a in self.allocations}


class AllocationImpossible(QAFlowError, ValueError):
    """No allocation gives every auditor a valid case; ``reasons`` say why, by auditor."""

    def __init__(
        self, *, month: str, reasons: Mapping[str, Sequence[str]], result: object = None
    ) -> None:
        self.month = month
        self.reasons = {k: tuple(v) for k, v in reasons.items()}
        self.result = result
        shown = "; ".join(f"{a}: {' / '.join(r)}" for a, r in sorted(self.reasons.items()))
        super().__init__(
            f"no valid allocation for {month} covers everyone "
            f"({len(self.reasons)} left out): {shown}"
        )


def ineligibility(
    case: Case,
    auditor: Auditor,
    month: str,
    rules: AllocationRules,
    paired: Mapping[tuple[str, str], Sequence[str]],
) -> tuple[str, ...]:
    """Why ``auditor`` may not audit ``case`` this month (empty when they may).

    ``paired`` maps (auditor, worker) to the months they were paired in.
    """
    reasons: list[str] = []
    if case.worker_id == auditor.id:
        reasons.append("it is their own case")
    if rules.exclude_own_team and auditor.team_id is not None and case.team_id == auditor.team_id:
        cited = f" ({rules.own_team_clause})" if rules.own_team_clause else ""
        reasons.append(f"the case is in their own team {case.team_id!r}{cited}")
    if rules.pair_window_months:
        now = _month_index(month)
        recent = sorted(
            m
            for m in paired.get((auditor.id, case.worker_id), ())
            if abs(now - _month_index(m)) < rules.pair_window_months
        )
        if recent:
            reasons.append(
                f"they audited worker {case.worker_id!r} in {recent[-1]}, within "
                f"{rules.pair_window_months} month(s)"
            )
    return tuple(reasons)


def _recent_workers(
    paired: Mapping[tuple[str, str], Sequence[str]], month: str, rules: AllocationRules
) -> dict[str, set[str]]:
    """Auditor -> the workers they may not audit this month (paired within the window)."""
    out: dict[str, set[str]] = {}
    if not rules.pair_window_months:
        return out
    now = _month_index(month)
    for (auditor_id, worker_id), months in paired.items():
        if any(abs(now - _month_index(m)) < rules.pair_window_months for m in months):
            out.setdefault(auditor_id, set()).add(worker_id)
    return out


def _eligible(
    cases: Sequence[Case],
    order: Sequence[int],
    auditor: Auditor,
    rules: AllocationRules,
    blocked: set[str],
    auditors: int,
) -> list[int]:
    """The cases (indices, in ``order``) the matching considers for ``auditor``.

    The same conditions as :func:`ineligibility`, checked directly. An auditor whose
    eligible cases span at least ``auditors`` distinct workers keeps only the first case of
    each of the first ``auditors`` such workers: that loses no optimum. Given any
    allocation, such an auditor can move to a kept case of a kept worker nobody else
    audits (the others use at most ``auditors - 1`` workers), which keeps every other
    assignment, does not enlarge any worker's load beyond one for the new worker, and so
    keeps both the allocation's size and its largest worker load. The graph shrinks from
    auditors x cases edges to about auditors squared (issue 14: 80 x 9,600 in one pass).
    """
    own = auditor.id
    team = auditor.team_id if rules.exclude_own_team else None
    full: list[int] = []
    first: dict[str, int] = {}
    for j in order:
        case = cases[j]
        worker = case.worker_id
        if worker == own or worker in blocked or (team is not None and case.team_id == team):
            continue
        full.append(j)
        if worker not in first:
            first[worker] = j
            if len(first) >= auditors:
                return list(first.values())
    return full


def _balanced(
    auditors: Sequence[str],
    cases: Sequence[Case],
    adjacency: Mapping[str, Sequence[int]],
    target: int,
) -> tuple[dict[str, int], int]:
    """A matching of size ``target`` minimising the most cases audited for any one worker.

    Returns (auditor -> case index, the cap reached). The cap is searched by bisection;
    each probe is a max-flow source -> auditor -> case -> worker(cap) -> sink.
    """
    # Only cases some auditor may take carry flow; the network is built on those alone
    # (renumbered in their original order).
    used = sorted({j for a in auditors for j in adjacency[a]})
    local = {j: k for k, j in enumerate(used)}
    sub_cases = [cases[j] for j in used]
    sub_adjacency = {a: [local[j] for j in adjacency[a]] for a in auditors}
    workers = sorted({c.worker_id for c in sub_cases})
    widx = {w: i for i, w in enumerate(workers)}
    best: dict[str, int] = {}
    lo, hi = 1, max(1, target)
    best_cap = hi
    while lo <= hi:
        cap = (lo + hi) // 2
        flow, edges = _network(auditors, sub_cases, sub_adjacency, workers, widx, cap)
        if flow == target:
            best, best_cap, hi = edges, cap, cap - 1
        else:
            lo = cap + 1
    return {a: used[k] for a, k in best.items()}, best_cap


def _network(
    auditors: Sequence[str],
    cases: Sequence[Case],
    adjacency: Mapping[str, Sequence[int]],
    workers: Sequence[str],
    widx: Mapping[str, int],
    cap: int,
) -> tuple[int, dict[str, int]]:
    n_a, n_c = len(auditors), len(cases)
    source, sink = 0, 1
    a0, c0 = 2, 2 + n_a
    w0 = c0 + n_c
    net = MaxFlow(w0 + len(workers))
    arcs: list[tuple[int, str, int]] = []
    for i, auditor in enumerate(auditors):
        net.add(source, a0 + i, 1)
        for j in adjacency[auditor]:
            arcs.append((net.add(a0 + i, c0 + j, 1), auditor, j))
    for j, case in enumerate(cases):
        net.add(c0 + j, w0 + widx[case.worker_id], 1)
    for k in range(len(workers)):
        net.add(w0 + k, sink, cap)
    flow = net.run(source, sink)
    chosen = {auditor: j for e, auditor, j in arcs if net.cap[e] == 0}
    return flow, chosen


def _hall_violation(
    start: str,
    adjacency: Mapping[str, Sequence[int]],
    matching: Mapping[str, int],
) -> tuple[list[str], list[int]]:
    """Auditors reachable from an unmatched one by alternating paths, and their cases.

    In a maximum matching these auditors S share the case set N(S) with |N(S)| < |S|:
    Hall's condition fails for S, which is why one of them must go without.
    """
    owner = {j: a for a, j in matching.items()}
    seen_a = {start}
    seen_c: set[int] = set()
    queue = deque([start])
    while queue:
        a = queue.popleft()
        for j in adjacency[a]:
            if j in seen_c:
                continue
            seen_c.add(j)
            b = owner.get(j)
            if b is not None and b not in seen_a:
                seen_a.add(b)
                queue.append(b)
    return sorted(seen_a), sorted(seen_c)


def _summarise(reasons_by_case: Iterable[tuple[Case, tuple[str, ...]]]) -> tuple[str, ...]:
    counts: dict[str, int] = {}
    for _, reasons in reasons_by_case:
        for reason in reasons:
            counts[reason] = counts.get(reason, 0) + 1
    return tuple(f"{n} case(s): {reason}" for reason, n in sorted(counts.items()))


def allocate_audits(
    cases: Iterable[Case],
    auditors: Iterable[Auditor],
    month: str | date,
    *,
    history: Iterable[PastAudit] = (),
    rules: AllocationRules | None = None,
    seed: int | str | None = None,
    strict: bool = False,
) -> AllocationResult:
    """Allocate one case to each auditor for ``month`` (BX-AUD-01, BX-AUD-13).

    Finds an allocation that gives every auditor a case whenever one exists, and among
    those one where no worker has more cases audited than necessary. Auditors already
    allocated in ``month`` (in ``history``) are left out with that reason. With ``seed``
    the tie-breaking between equally good allocations is shuffled reproducibly (so the same
    cases are not always picked first); without it, ids decide. With ``strict``, an
    incomplete allocation raises :class:`AllocationImpossible` instead of being returned.
    Writes nothing.
    """
    rules = rules or AllocationRules()
    month = month_key(month)
    case_list = sorted(cases, key=lambda c: (c.child_id, c.worker_id, c.team_id))
    auditor_list = sorted(auditors, key=lambda a: a.id)
    _check_unique("child_id", [c.child_id for c in case_list])
    _check_unique("auditor id", [a.id for a in auditor_list])
    past = list(history)
    paired: dict[tuple[str, str], list[str]] = {}
    done_this_month: set[str] = set()
    for p in past:
        paired.setdefault((p.auditor_id, p.worker_id), []).append(p.month)
        if p.month == month:
            done_this_month.add(p.auditor_id)
    rng = random.Random(seed) if seed is not None else None
    order = list(range(len(case_list)))
    if rng is not None:
        rng.shuffle(order)
    adjacency: dict[str, list[int]] = {}
    unallocated: dict[str, tuple[str, ...]] = {}
    blocked = _recent_workers(paired, month, rules)
    active_auditors = [a for a in auditor_list if a.id not in done_this_month]
    for auditor in auditor_list:
        if auditor.id in done_this_month:
            cited = f" ({rules.audits_per_month_clause})" if rules.audits_per_month_clause else ""
            unallocated[auditor.id] = (f"already allocated an audit in {month}{cited}",)
            continue
        adjacency[auditor.id] = _eligible(
            case_list, order, auditor, rules, blocked.get(auditor.id, set()), len(active_auditors)
        )
    matching = hopcroft_karp(adjacency)
    target = len(matching)
    active = [a.id for a in auditor_list if a.id in adjacency]
    balanced, cap = _balanced(active, case_list, adjacency, target) if target else ({}, 0)
    for auditor_id in active:
        if auditor_id in balanced:
            continue
        if not adjacency[auditor_id]:
            auditor = next(a for a in auditor_list if a.id == auditor_id)
            why_not = [
                (case_list[j], ineligibility(case_list[j], auditor, month, rules, paired))
                for j in order
            ]
            unallocated[auditor_id] = (
                ("there are no open cases",)
                if not case_list
                else ("no case is open to them:", *_summarise(why_not))
            )
            continue
        group, shared = _hall_violation(auditor_id, adjacency, balanced)
        unallocated[auditor_id] = (
            f"auditors {', '.join(group)} can between them take only the "
            f"{len(shared)} case(s) of children {', '.join(case_list[j].child_id for j in shared)}"
            f", so {len(group) - len(shared)} of them must go without (Hall's condition fails)",
        )
    allocations = tuple(
        Allocation(
            auditor_id=a,
            child_id=case_list[j].child_id,
            worker_id=case_list[j].worker_id,
            team_id=case_list[j].team_id,
            month=month,
        )
        for a, j in sorted(balanced.items())
    )
    result = AllocationResult(
        month=month,
        allocations=allocations,
        unallocated=tuple(Unallocated(a, r) for a, r in sorted(unallocated.items())),
        max_worker_load=cap if allocations else 0,
    )
    if strict and not result.complete:
        raise AllocationImpossible(month=month, reasons=unallocated, result=result)
    return result


def _check_unique(field: str, values: Sequence[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValidationError(field=field, value=value, expected="unique ids")
        seen.add(value)
