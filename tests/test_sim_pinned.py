"""Seeded simulations give exactly the output they gave before the driver was made faster.

The digests below were recorded from main at 810e88c (before issue 14's round-4 work on the
simulation driver: the actors' per-stage tables, the scheduler's keys, the store's commit),
with the script in this module's ``_record`` run against that code. A seeded run is defined
by the order in which the scheduler plays actions and the actors draw random numbers, so any
change of order, of a draw, of a moment or of a count changes the JSON and fails here: the
driver may get cheaper, but never different. Every shipped ladder is played with the default
behaviour, a busy one (extensions asked, granted and refused, bypasses, withdrawals) and a slow
one (late and missing responses, evening raises, moments clamped to now, per-stage overrides),
in several chunks; the audit programme, which shares the scheduler and the escalation actors,
is pinned by its whole store's content. ``workers=2`` must give the one-process digest.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date

import pytest

from qaflow import MemoryStore
from qaflow.policies import bexley, shipped_escalation_procedures
from qaflow.policies.base import Policy
from qaflow.policies.ladders import EscalationLadder
from qaflow.programme import generate_council, run_programme
from qaflow.simulate import Behaviour, StageBehaviour, simulate_escalations
from qaflow.testing import store_content

BUSY = StageBehaviour(
    extension_probability=0.5,
    grant_probability=0.6,
    bypass_probability=0.15,
    withdraw_probability=0.1,
)
SLOW = Behaviour(
    StageBehaviour(
        respond_probability=0.5,
        response_days=((1, 1.0), (3, 1.0), (12, 2.0)),
        extension_probability=0.9,
        grant_probability=0.5,
        decision_days=0,
        wait_days=2,
    ),
    stages={1: StageBehaviour(accept_probability=0.1, bypass_probability=0.3)},
    ask_at="17:30",
    reply_at="08:15",
    decide_at="16:45",
    answer_after_minutes=600,
    raise_from="18:00",
    raise_window_minutes=360,
    raisers=3,
)
BEHAVIOURS: dict[str, Behaviour | StageBehaviour | None] = {
    "default": None,
    "busy": BUSY,
    "slow": SLOW,
}

#: (first 24 hex digits of the SHA-256 of ``to_json()``, commands) per ladder/behaviour.
PINNED: dict[str, tuple[str, int]] = {
    "bexley_cp_chair/default": ("0ec8d8c684dc9e9f4b2cc2a4", 1566),
    "bexley_cp_chair/busy": ("2ad90f295e63664ade0dc625", 1512),
    "bexley_cp_chair/slow": ("448745f84f543d439617fea6", 2200),
    "bexley_iro/default": ("2110a01eb3596abd30351124", 1514),
    "bexley_iro/busy": ("34367ed5799d54043524af98", 1514),
    "bexley_iro/slow": ("ceb220f31b089a688eb45e25", 2132),
    "bexley_firo/default": ("e7488905cad446e287905b4a", 1437),
    "bexley_firo/busy": ("d9ef0a6d769132ae6a333563", 1391),
    "bexley_firo/slow": ("c8b388943dd05e596dc79878", 2081),
}
#: The Bexley audit programme (council 11, two months, seed 5): digest, events written.
PINNED_PROGRAMME = ("ca1e42be93f745e9a8ac6585", 264)

SHIPPED = [
    (procedure.policy, ladder)
    for procedure in shipped_escalation_procedures()
    for ladder in procedure.ladders
]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _record(
    ladder: EscalationLadder, policy: Policy, behaviour: str, workers: int = 1
) -> tuple[str, int]:
    sim = simulate_escalations(
        ladder, policy, n=300, seed=11, behaviour=BEHAVIOURS[behaviour], chunk=120, workers=workers
    )
    return _digest(sim.to_json()), sim.summary.commands


def test_every_shipped_ladder_and_behaviour_is_pinned() -> None:
    assert set(PINNED) == {f"{ladder.name}/{b}" for _, ladder in SHIPPED for b in BEHAVIOURS}


@pytest.mark.parametrize(("policy", "ladder"), SHIPPED, ids=[ladder.name for _, ladder in SHIPPED])
@pytest.mark.parametrize("behaviour", list(BEHAVIOURS))
def test_a_seeded_simulation_is_byte_identical_to_the_pinned_one(
    policy: Policy, ladder: EscalationLadder, behaviour: str
) -> None:
    assert _record(ladder, policy, behaviour) == PINNED[f"{ladder.name}/{behaviour}"]


def test_two_workers_give_the_pinned_paths_too() -> None:
    ladder = bexley.IRO_LADDER
    assert _record(ladder, bexley.POLICY, "slow", workers=2) == PINNED["bexley_iro/slow"]


def test_the_audit_programme_writes_the_pinned_store() -> None:
    store = MemoryStore()
    result = run_programme(
        generate_council(11),
        bexley.BEXLEY_AUDIT,
        months=2,
        start=date(2026, 1, 1),
        seed=5,
        store=store,
        escalation_rate=0.08,
    )
    text = json.dumps(result.to_dict(), sort_keys=True) + repr(store_content(store))
    assert (_digest(text), result.events_written) == PINNED_PROGRAMME
