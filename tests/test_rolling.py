"""Rolling and recurring deadlines in the engine (DESIGN I15), the timescale file reader,
and durability: instances are ordinary deadline rows, replayed and fired by ``tick``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from qaflow import (
    Actor,
    Engine,
    Field,
    MachineSpec,
    ManualClock,
    MemoryStore,
    PolicyError,
    SQLiteStore,
    StateSpec,
    TransitionSpec,
    Update,
)
from qaflow.calendar import Duration
from qaflow.machines.timescales import EVENTS, case_spec, load_case_timescales
from qaflow.policies import buckinghamshire
from qaflow.spec import Cadence, RollingRule, Window
from qaflow.testing import check_rolling, check_tick, check_workflow

T0 = datetime(2025, 3, 3, 9, tzinfo=UTC)  # a Monday
WORKER = Actor("W-1", "worker")


def _spec(rule: RollingRule) -> MachineSpec:
    level = Field("level", "choice", required=False, choices=("low", "high", "none"))
    record = Update(lambda ctx: {"level": ctx.payload.get("level", ctx.data.get("level"))})
    return MachineSpec(
        name="example.rolling",
        policy="example",
        policy_version="1",
        initial="new",
        states=(StateSpec("new"), StateSpec("open"), StateSpec("closed", terminal=True)),
        transitions=(
            TransitionSpec(
                "open", ("new",), "open", frozenset({"worker"}), (level,), (), (record,)
            ),
            TransitionSpec("visit", ("open",), None, frozenset({"worker"})),
            TransitionSpec("restart", ("open",), None, frozenset({"worker"})),
            TransitionSpec("note", ("open",), None, frozenset({"worker"})),
            TransitionSpec(
                "change", ("open",), None, frozenset({"worker"}), (level,), (), (record,)
            ),
            TransitionSpec("close", ("open",), "closed", frozenset({"worker"})),
        ),
        rolling=(rule,),
    )


VISITS = RollingRule(
    name="visit",
    cadence=(
        Cadence(when='data.level == "high"', first="2 WD", every="5 WD"),
        Cadence(when='data.level == "low"', every="4 weeks"),
    ),
    met_by=("visit",),
    restart_by=("restart",),
    clause="X-1",
)


def _engine(rule: RollingRule = VISITS, store: object | None = None) -> tuple[Engine, ManualClock]:
    clock = ManualClock(T0)
    return Engine(store or MemoryStore(), [_spec(rule)], clock=clock), clock  # type: ignore[arg-type]


def _open(engine: Engine, level: str = "low") -> list[str]:
    engine.start("example.rolling", "R", "open", WORKER, {"level": level})
    return [d.id for d in engine.get("R").deadlines]


def _only(engine: Engine, name: str = "visit") -> tuple[str, datetime]:
    found = [d for d in engine.get("R").deadlines if d.name == name]
    assert len(found) == 1
    return found[0].id, found[0].due_at


def _after(length: str, start: datetime) -> datetime:
    from qaflow.calendar import default_calendar

    return Duration.parse(length).after(start, default_calendar())


def test_each_qualifying_event_closes_the_instance_and_opens_the_next_from_it() -> None:
    """I15: one open instance; a visit closes it (met) and the next runs from the visit."""
    engine, clock = _engine()
    _open(engine)
    first, due = _only(engine)
    assert due == _after("4 weeks", T0)
    clock.advance(timedelta(days=9))
    step = engine.fire("R", "visit", WORKER)
    assert step.closed == (first,) and len(step.opened) == 1
    assert _only(engine)[1] == _after("4 weeks", clock.now())
    check_rolling(engine, "R")


def test_other_events_leave_the_instance_alone() -> None:
    """I15: an event that neither meets, restarts nor changes the cadence moves nothing."""
    engine, clock = _engine()
    _open(engine)
    before = _only(engine)
    clock.advance(timedelta(days=1))
    step = engine.fire("R", "note", WORKER)
    assert step.opened == () and step.closed == ()
    assert _only(engine) == before
    check_rolling(engine, "R")


def test_a_cadence_change_takes_effect_from_the_event_that_changes_it() -> None:
    """I15: low -> high restarts from the change with the entry's first length."""
    engine, clock = _engine()
    _open(engine)
    clock.advance(timedelta(days=3))
    engine.fire("R", "change", WORKER, {"level": "high"})
    assert _only(engine)[1] == _after("2 WD", clock.now())
    clock.advance(timedelta(hours=5))
    engine.fire("R", "visit", WORKER)
    assert _only(engine)[1] == _after("5 WD", clock.now())
    engine.fire("R", "change", WORKER, {"level": "none"})  # no entry applies: closed
    assert engine.get("R").deadlines == ()
    engine.fire("R", "visit", WORKER)
    assert engine.get("R").deadlines == ()
    check_rolling(engine, "R")


def test_restart_events_open_afresh_and_terminal_states_close_everything() -> None:
    engine, clock = _engine()
    _open(engine, "high")
    clock.advance(timedelta(days=1))
    engine.fire("R", "restart", WORKER)
    assert _only(engine)[1] == _after("2 WD", clock.now())
    engine.fire("R", "close", WORKER)
    assert engine.get("R").deadlines == ()


def test_each_missed_period_is_its_own_breach_and_a_second_tick_writes_nothing() -> None:
    """I7 with rolling deadlines: after a long silence tick breaches every period once, opens
    the next from each missed due time, and a second tick writes nothing."""
    engine, clock = _engine()
    _open(engine)
    now = clock.set(T0 + timedelta(weeks=13))
    steps = engine.tick(now)
    assert [s.event.trigger for s in steps] == ["deadline_missed"] * 3
    _, due = _only(engine)
    assert due == _after("4 weeks", _after("4 weeks", _after("4 weeks", _after("4 weeks", T0))))
    check_tick(engine, now)
    check_workflow(engine, "R")
    check_rolling(engine, "R")


def test_calendar_cadence_runs_from_the_period_not_the_event() -> None:
    """``anchor = "due"``: met early in a month, the next falls due a month after this one."""
    monthly = RollingRule("duty", (Cadence(every="1 months"),), met_by=("visit",), anchor="due")
    engine, clock = _engine(monthly)
    _open(engine)
    _, first = _only(engine, "duty")
    clock.advance(timedelta(days=3))
    engine.fire("R", "visit", WORKER)
    second = _only(engine, "duty")
    assert second[1] == _after("1 months", first)
    clock.advance(timedelta(days=3))
    step = engine.fire("R", "visit", WORKER)  # a second one in the same month
    assert _only(engine, "duty") == second and step.closed == ()  # not next month's duty
    clock.set(first + timedelta(days=1))
    engine.fire("R", "visit", WORKER)  # in the next month's period: meets it
    assert _only(engine, "duty")[1] == _after("1 months", second[1])


def test_windows_give_the_length_by_time_since_the_anchor() -> None:
    """Time since an anchor: weekly in the first 4 weeks, 4-weekly after."""
    rule = RollingRule(
        "visit",
        (Cadence(since="opened_at", windows=(Window("4 weeks", "1 weeks"),), every="4 weeks"),),
        met_by=("visit",),
    )
    spec = _spec(rule)
    stamp = Update(lambda ctx: {"opened_at": ctx.at.isoformat()})
    opener = spec.transitions[0]
    spec = MachineSpec(
        name=spec.name,
        policy="example",
        policy_version="1",
        initial="new",
        states=spec.states,
        transitions=(
            TransitionSpec(
                opener.trigger, opener.sources, opener.dest, opener.roles, (), (), (stamp,)
            ),
            *spec.transitions[1:],
        ),
        rolling=(rule,),
    )
    clock = ManualClock(T0)
    engine = Engine(MemoryStore(), [spec], clock=clock)
    engine.start(spec.name, "R", "open", WORKER, {})
    assert _only(engine)[1] == _after("1 weeks", T0)
    clock.set(T0 + timedelta(weeks=4, hours=1))
    engine.fire("R", "visit", WORKER)
    assert _only(engine)[1] == _after("4 weeks", clock.now())


def test_instances_are_durable_rows_replayed_and_ticked_after_reopening(tmp_path: Path) -> None:
    """Durable like every deadline: a reopened SQLite store holds the instance, tick fires it,
    verify replays it."""
    db = tmp_path / "q.db"
    engine, clock = _engine(store=SQLiteStore(db))
    _open(engine)
    engine.fire("R", "visit", WORKER)
    engine.store.close()  # type: ignore[attr-defined]
    store = SQLiteStore(db)
    again = Engine(store, [_spec(VISITS)], clock=clock)
    [row] = store.open_deadlines("R")
    assert row.name == "visit" and row.clause == "X-1"
    steps = again.tick(clock.set(row.due_at))
    assert [s.event.trigger for s in steps] == ["deadline_missed"]
    assert again.verify("R") == 1
    store.close()


def test_a_spec_refuses_rolling_rules_that_name_unknown_triggers_or_repeat_a_name() -> None:
    bad = RollingRule("visit", (Cadence(every="1 weeks"),), met_by=("vist",))
    with pytest.raises(PolicyError, match="vist"):
        _spec(bad)
    spec = _spec(VISITS)
    with pytest.raises(PolicyError, match="no other deadline"):
        attrs.evolve(spec, rolling=(VISITS, VISITS))
    with pytest.raises(PolicyError):
        Cadence(when="data.level ==", every="1 weeks")
    with pytest.raises(PolicyError):
        Cadence(when="datum.level", every="1 weeks")
    with pytest.raises(PolicyError):
        Cadence()


def test_the_fingerprint_sees_every_rolling_value() -> None:
    """I17: a changed length, condition or trigger changes the pinned fingerprint."""
    base = _spec(VISITS).fingerprint
    assert _spec(VISITS).fingerprint == base
    longer = RollingRule(
        "visit",
        (Cadence(when='data.level == "high"', first="2 WD", every="6 WD"), VISITS.cadence[1]),
        met_by=("visit",),
        restart_by=("restart",),
        clause="X-1",
    )
    assert _spec(longer).fingerprint != base
    assert _spec(longer).to_data()["rolling"] != _spec(VISITS).to_data()["rolling"]
    assert _spec(VISITS).serialisable is False  # the example's updates are closures


BAD_FILE = """
format_version = 1
[policy]
name = "buckinghamshire"
version = "2"
[[rules]]
name = "Visit"
clause = "BK-TS-03"
met_by = ["vist"]
anchr = "due"
[[rules.cadence]]
when = 'data.status = "cin"'
every = "four weeks"
[[rules]]
name = "ok"
clause = "BK-TS-01"
within = "72 h"
every = "1 weeks"
restart_by = ["referral_received"]
[[rules.cadence]]
first = "1 WD"
"""


def test_a_timescale_file_with_many_mistakes_reports_them_all_with_key_paths(
    tmp_path: Path,
) -> None:
    path = tmp_path / "timescales.toml"
    path.write_text(BAD_FILE, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_case_timescales(path, buckinghamshire.POLICY)
    paths = [p.path for p in caught.value.problems]
    for expected in (
        "policy.version",
        "rules[0].name",
        "rules[0].met_by[0]",
        "rules[0].anchr",
        "rules[0].cadence[0].every",
        "rules[1].cadence",
    ):
        assert expected in paths, (expected, paths)
    assert "did you mean 'visit'?" in str(caught.value)
    assert "timescales.toml" in str(caught.value)


def test_a_councils_own_file_builds_the_same_machine(tmp_path: Path) -> None:
    path = tmp_path / "ours.toml"
    path.write_text(
        'format_version = 1\n[policy]\nname = "buckinghamshire"\nversion = "1"\n'
        '[[rules]]\nname = "visit"\nclause = "OURS-1"\nmet_by = ["visit"]\nevery = "3 weeks"\n',
        encoding="utf-8",
    )
    spec = case_spec(load_case_timescales(path, buckinghamshire.POLICY))
    assert [r.name for r in spec.rolling] == ["visit"]
    assert {t.trigger for t in spec.transitions} == {e.trigger for e in EVENTS}


def test_cadence_conditions_read_only_their_keys_and_give_the_same_verdicts() -> None:
    """The verdict memo (by the keys a condition reads) agrees with a plain evaluation,
    including for unhashable values and for conditions that read ``data`` as a whole."""
    by_key = Cadence(when='data.level == "high" && !has(data.gone)', every="1 weeks")
    whole = Cadence(when='"level" in data', every="1 weeks")
    listed = Cadence(when='data.tags.exists(t, t == "x")', every="1 weeks")
    assert by_key.reads == ("gone", "level") and whole.reads is None
    assert by_key.applies({"level": "high", "other": [1]})
    assert not by_key.applies({"level": "high", "gone": True})
    assert not by_key.applies({"level": "low"})
    assert whole.applies({"level": "low"}) and not whole.applies({})
    assert listed.applies({"tags": ["y", "x"]}) and not listed.applies({"tags": ["y"]})
    rule = RollingRule("visit", (by_key, whole), met_by=("visit",))
    assert rule.reads is None
    assert RollingRule("visit", (by_key,), met_by=("visit",)).reads == {"gone", "level"}
