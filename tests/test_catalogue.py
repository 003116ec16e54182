"""The one catalogue of what ships (``qaflow.policies``): the only place that names a council.

Generic code (the registry, the policy pages, the demo) reads the shipped councils from it;
these tests pin that what it lists is what the councils' modules hold, so reading from the
catalogue changed nothing.
"""

from __future__ import annotations

import pytest

from qaflow.errors import PolicyError
from qaflow.machines.escalation import escalation_machine
from qaflow.policies import (
    DEMO_COUNCIL,
    SHIPPED_AUDIT_FILES,
    SHIPPED_CLAUSE_PREFIXES,
    SHIPPED_ESCALATION_FILES,
    bexley,
    shipped_escalation_procedure,
    shipped_escalation_procedures,
)
from qaflow.policies.clauses import CLAUSES
from qaflow.registry import shipped_specs


def test_the_shipped_escalation_procedures_are_the_councils_ladders() -> None:
    """BX-ESC-01: the catalogue's Bexley ladders are the ones ``policies.bexley`` names."""
    (procedure,) = shipped_escalation_procedures()
    assert procedure == bexley.ESCALATIONS
    assert procedure.policy == bexley.POLICY
    assert procedure.ladders == bexley.ESCALATION_LADDERS
    assert shipped_escalation_procedure("bexley") is procedure  # read once


def test_the_registry_builds_every_shipped_ladder_as_before() -> None:
    """The registry's escalation machines are exactly those of the council's ladders (same
    fingerprints), now found through the catalogue."""
    expected = {
        spec.name: spec.fingerprint
        for spec in (escalation_machine(lad, bexley.POLICY) for lad in bexley.ESCALATION_LADDERS)
    }
    shipped = {s.name: s.fingerprint for s in shipped_specs() if s.name.startswith("escalation.")}
    assert shipped == expected


@pytest.mark.parametrize("name", ["nowhere", "Bexley", ""])
def test_an_unknown_council_is_refused_naming_what_ships(name: str) -> None:
    with pytest.raises(PolicyError) as caught:
        shipped_escalation_procedure(name)
    for council in SHIPPED_ESCALATION_FILES:
        assert council in str(caught.value)


def test_every_clause_is_listed_on_some_policy_page() -> None:
    """Each catalogued clause falls under the prefixes of at least one shipped policy, and
    every policy with prefixes ships."""
    assert set(SHIPPED_CLAUSE_PREFIXES) <= set(SHIPPED_AUDIT_FILES) | set(SHIPPED_ESCALATION_FILES)
    prefixes = tuple(p for group in SHIPPED_CLAUSE_PREFIXES.values() for p in group)
    assert [c for c in CLAUSES if not c.startswith(prefixes)] == []


def test_the_demo_council_ships_audits_and_escalations() -> None:
    assert DEMO_COUNCIL in SHIPPED_AUDIT_FILES
    assert DEMO_COUNCIL in SHIPPED_ESCALATION_FILES
