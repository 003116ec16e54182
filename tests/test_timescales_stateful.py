"""Random event streams on the case, supervision and QA calendar machines of both councils:
after every step I1, I2, I6, I7, I14 and I15 hold (``qaflow.testing``'s timescale suite, the
same a council runs on its own file with ``check_timescales``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from qaflow.machines import qa_calendar, supervision, timescales
from qaflow.machines.timescales import case_spec, load_case_timescales
from qaflow.policies import buckinghamshire
from qaflow.spec import MachineSpec
from qaflow.testing import check_timescales, timescale_state_machine

SPECS: tuple[MachineSpec, ...] = (
    *timescales.shipped_specs(),
    *supervision.shipped_specs(),
    *qa_calendar.shipped_specs(),
)


@pytest.mark.parametrize("spec", SPECS, ids=[f"{s.name}[{s.policy}]" for s in SPECS])
def test_random_event_streams_keep_the_rolling_invariants(spec: MachineSpec) -> None:
    machine = timescale_state_machine(spec)
    machine.TestCase.settings = settings(
        settings(), max_examples=min(settings().max_examples, 15), stateful_step_count=20
    )
    machine.TestCase().runTest()


def test_a_councils_own_timescale_file_runs_the_same_suite(tmp_path: Path) -> None:
    path = tmp_path / "ours.toml"
    path.write_text(
        'format_version = 1\n[policy]\nname = "buckinghamshire"\nversion = "1"\n'
        '[[rules]]\nname = "visit"\nclause = "OURS-1"\nmet_by = ["visit"]\nfollows = true\n'
        '[[rules.cadence]]\nwhen = \'data.status == "cin"\'\nevery = "3 weeks"\n'
        '[[rules]]\nname = "review"\nclause = "OURS-2"\nrestart_by = ["plan_review"]\n'
        'met_by = ["plan_updated"]\nwithin = "2 WD"\n',
        encoding="utf-8",
    )
    spec = case_spec(load_case_timescales(path, buckinghamshire.POLICY))
    check_timescales(spec, max_examples=10, stateful_step_count=20)


def test_the_suite_catches_an_engine_that_moves_a_rolling_deadline_wrongly() -> None:
    """The I15 check can fail: instances the engine opened under "4 weeks", judged against a
    policy that says 5 weeks, are reported."""
    from datetime import UTC, datetime

    import attrs

    from qaflow import Actor, Engine, ManualClock, MemoryStore
    from qaflow.testing import check_rolling

    spec = timescales.case_spec(timescales.shipped_case_timescales("buckinghamshire"))
    clock = ManualClock(datetime(2025, 3, 3, 9, tzinfo=UTC))
    engine = Engine(MemoryStore(), [spec], clock=clock)
    worker = Actor("SW", "social_worker")
    engine.start(
        spec.name,
        "C",
        "referral_received",
        worker,
        {"team_id": "T", "social_worker_id": "SW", "status": "cin"},
    )
    check_rolling(engine, "C")
    visit = next(r for r in spec.rolling if r.name == "visit")
    wrong = attrs.evolve(
        visit, cadence=(attrs.evolve(visit.cadence[0], every="5 weeks"), *visit.cadence[1:])
    )
    other = attrs.evolve(spec, rolling=tuple(wrong if r is visit else r for r in spec.rolling))
    with pytest.raises(AssertionError, match="I15"):
        check_rolling(engine, "C", policy=other)
