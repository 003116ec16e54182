"""Conformance checks and hypothesis strategies for any qaflow machine or policy.

The project's own tests use exactly these, and a council that writes its own policy runs the
same checks on it. Each ``check_*`` function raises ``AssertionError`` naming the workflow
that breaks the rule it checks and what it found.

For audit and moderation procedures, :func:`check_audit_procedure` runs the audit
conformance suite on any procedure file a council writes (``qaflow._audit_conformance``).

Importing this module needs ``hypothesis`` (the ``test`` extra).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from qaflow._audit_conformance import (
    AuditProcedureMachine,
    audit_state_machine,
    check_audit_procedure,
)
from qaflow.calendar import LONDON
from qaflow.engine import Engine
from qaflow.errors import IntegrityError
from qaflow.records import Event, WorkflowSnapshot, converter
from qaflow.store import MemoryStore, PostgresStore, SQLiteStore, Store

__all__ = [
    "CONFORMANCE_POLICY",
    "AuditProcedureMachine",
    "EscalationLadderMachine",
    "LadderCommand",
    "TimescaleStateMachine",
    "apply_command",
    "audit_state_machine",
    "aware_datetimes",
    "check_audit_procedure",
    "check_deadlines",
    "check_escalation",
    "check_integrity_detects_tampering",
    "check_ladder",
    "check_ladder_spec",
    "check_record_round_trip",
    "check_replay",
    "check_rolling",
    "check_sequence",
    "check_terminal_absorbing",
    "check_tick",
    "check_timescales",
    "check_workflow",
    "clock_starts",
    "clocks",
    "command_sequences",
    "event_bindings",
    "expected_recipients",
    "ladder_commands",
    "ladder_state_machine",
    "ladders",
    "payloads",
    "raise_commands",
    "run_commands",
    "store_content",
    "timescale_state_machine",
    "waits",
]


def aware_datetimes(min_year: int = 2020, max_year: int = 2030) -> st.SearchStrategy[datetime]:
    """Aware UTC datetimes (to the second) in a year range."""
    return st.datetimes(
        min_value=datetime(min_year, 1, 1),
        max_value=datetime(max_year, 12, 31, 23, 59, 59),
    ).map(lambda d: d.replace(microsecond=0, tzinfo=UTC))


def store_content(store: Store) -> Any:
    """Everything a store holds, comparable with ``==`` (so a test sees a refusal wrote
    nothing)."""
    if isinstance(store, (SQLiteStore, PostgresStore)):
        return store.dump()
    if isinstance(store, MemoryStore):
        return (
            {w: store.load(w) for w in store.workflow_ids()},
            {w: tuple(store.events(w)) for w in store.workflow_ids()},
            tuple(store.open_deadlines()),
            tuple(store.notifications()),
            tuple(store.tasks()),
            store.counts(),
        )
    raise TypeError(f"no content view for {type(store).__name__}")


def check_sequence(engine: Engine, workflow_id: str) -> None:
    """Sequence numbers are 1..n with no gap and the snapshot's version is n."""
    events = engine.history(workflow_id)
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(events) + 1)), (
        f"{workflow_id}: sequence numbers {seqs} are not 1..n"
    )
    version = engine.get(workflow_id).version
    assert version == len(events), f"{workflow_id}: version {version} != {len(events)} events"


def check_replay(engine: Engine, workflow_id: str) -> None:
    """Replaying the stored events reproduces the snapshot (state, data, deadlines)."""
    stored = engine.get(workflow_id)
    replayed = engine.replay(workflow_id)
    assert replayed == stored and replayed.data == stored.data, (
        f"{workflow_id}: replay gives {replayed.state!r} v{replayed.version}, "
        f"stored {stored.state!r} v{stored.version}"
    )


def _wd_rule(rule: str) -> bool:
    return all(part.strip().endswith("WD") for part in rule.split("+"))


def check_deadlines(engine: Engine, workflow_id: str) -> None:
    """Open deadlines belong to the current state or the workflow, never end before they
    were opened, and a working-day deadline ends on a working day."""
    snap = engine.get(workflow_id)
    spec = engine.spec_for(snap)
    rows = {d.id: d for d in engine.store.open_deadlines(workflow_id)}
    assert set(rows) == {d.id for d in snap.deadlines}, (
        f"{workflow_id}: stored open deadlines differ from the snapshot's"
    )
    for d in snap.deadlines:
        assert d.state is None or d.state == snap.state, (
            f"{workflow_id}: deadline {d.name!r} of state {d.state!r} open in {snap.state!r}"
        )
        assert d.due_at >= d.opened_at, f"{workflow_id}: {d.name!r} due before opened"
        if _wd_rule(d.rule):
            local = d.due_at.astimezone(LONDON).date()
            assert spec.calendar.is_working_day(local), (
                f"{workflow_id}: WD deadline {d.name!r} ends on {local}, not a working day"
            )
    if spec.state(snap.state).terminal:
        assert not snap.deadlines, f"{workflow_id}: terminal state with open deadlines"


def check_terminal_absorbing(engine: Engine, workflow_id: str, before: WorkflowSnapshot) -> None:
    """A workflow that was in a terminal state has not moved."""
    spec = engine.spec_for(before)
    if spec.state(before.state).terminal:
        assert engine.get(workflow_id) == before, f"{workflow_id}: left terminal state"


def check_tick(engine: Engine, now: datetime) -> None:
    """After ``tick(now)`` nothing due by ``now`` is open and a second tick writes nothing."""
    engine.tick(now)
    due = engine.store.due_deadlines(now)
    assert not due, f"still open after tick: {[d.id for d in due]}"
    assert engine.tick(now) == [], "a second tick wrote steps"


def check_record_round_trip(record: object) -> None:
    """A record survives cattrs unstructure, JSON and structure unchanged."""
    import json

    data = json.loads(json.dumps(converter.unstructure(record)))
    back = converter.structure(data, type(record))
    assert back == record, f"{type(record).__name__} changed in a JSON round trip"


def check_integrity_detects_tampering(engine: Engine, workflow_id: str) -> None:
    """Changing or deleting any event of the workflow breaks its chain or its head.

    Checked on copies in memory, with the same rules :meth:`Engine.verify` applies: each
    event's hash, the chain of ``prev_hash``, and the snapshot's ``last_hash`` and version.
    """
    events = engine.history(workflow_id)
    head = engine.get(workflow_id)

    def breaks(copy: list[Event]) -> bool:
        return _chain_breaks(copy, head.last_hash, head.version)

    for i, event in enumerate(events):
        for tampered in (
            _evolve(event, trigger=event.trigger + "_x"),
            _evolve(event, at=event.at + timedelta(seconds=1)),
            _evolve(event, payload={**event.payload, "tampered": True}),
        ):
            copy = [*events[:i], tampered, *events[i + 1 :]]
            assert breaks(copy), f"altering event {event.seq} went unnoticed"
        if events:
            assert breaks(events[:i] + events[i + 1 :]), (
                f"deleting event {event.seq} went unnoticed"
            )


def _evolve(event: Event, **changes: Any) -> Event:
    import attrs

    return attrs.evolve(event, **changes)


def _chain_breaks(events: list[Event], last_hash: str, version: int) -> bool:
    from qaflow.records import GENESIS_HASH, event_hash

    prev = GENESIS_HASH
    for n, e in enumerate(events, start=1):
        if e.seq != n or e.prev_hash != prev or event_hash(e) != e.hash:
            return True
        prev = e.hash
    return prev != last_hash or len(events) != version


def check_workflow(engine: Engine, workflow_id: str) -> None:
    """Sequence, replay, open deadlines and the hash chain of one workflow."""
    check_sequence(engine, workflow_id)
    check_replay(engine, workflow_id)
    check_deadlines(engine, workflow_id)
    try:
        engine.verify(workflow_id)
    except IntegrityError as error:  # pragma: no cover - reported as an assertion
        raise AssertionError(f"{workflow_id}: {error}") from error


# --- escalation ladders ---
#
# Conformance for escalation ladders (BX-ESC-*, NAT-CP-*, NAT-IRO-*), public so a council can
# run it on its own ladder: ``check_ladder(my_ladder)``, or subclass
# ``EscalationLadderMachine`` (set ``ladder``) and collect its ``TestCase``. The strategies
# draw valid ladders, clocks and commands; ``check_escalation`` adds to the checks above the
# ladder's own rules: stages never go down, a stage is skipped only by a bypass the ladder
# allows, extensions stay within the ladder's bounds, every stage entry notifies exactly the
# ladder's recipients, and resolved/withdrawn/referred are absorbing.

from collections import Counter  # noqa: E402 (this section is self-contained)
from collections.abc import Iterable, Mapping  # noqa: E402
from typing import ClassVar, Literal  # noqa: E402

import attrs  # noqa: E402
from hypothesis import settings as _settings  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from qaflow.calendar import Duration  # noqa: E402
from qaflow.clock import ManualClock  # noqa: E402
from qaflow.errors import QAFlowError  # noqa: E402
from qaflow.machines.escalation import (  # noqa: E402
    OVERDUE,
    REFERRED,
    RESOLVED,
    RESPONSE_DEADLINE,
    TERMINAL_STATES,
    WITHDRAWN,
    escalation_machine,
    level_of,
    machine_name,
    raiser_role,
    state_of,
)
from qaflow.policies.base import Policy  # noqa: E402
from qaflow.policies.ladders import (  # noqa: E402
    EscalationLadder,
    ExtensionRule,
    ExternalReferral,
    LadderStage,
    Notice,
)
from qaflow.procedure.expr import compile_expression  # noqa: E402
from qaflow.records import SYSTEM, Actor, Notification, Step  # noqa: E402
from qaflow.spec import DEADLINE_MISSED, GUARD_NAMES, MachineSpec  # noqa: E402

CONFORMANCE_POLICY = Policy("qaflow-conformance", "1")
"""The policy ladders are pinned to when a check is given none."""

Who = Literal["raiser", "other_raiser", "holder", "someone", "system"]
_WHO: tuple[Who, ...] = ("raiser", "other_raiser", "holder", "someone", "system")
_HOLDER_POOL = (
    "social_worker",
    "team_manager",
    "service_manager",
    "head_of_service",
    "assistant_director",
    "director",
    "fostering_manager",
    "principal_social_worker",
)
_INFORMED_POOL = ("parent", "advocate", "guardian", "iro_manager", "chair_manager")
_CUSTOM_RAISERS = ("quality_lead", "lado", "iro")
_RAISERS = {"cp_chair": "cp_chair", "iro": "iro", "firo": "firo"}


# strategies ---------------------------------------------------------------------------------


@st.composite
def _durations(draw: st.DrawFn, unit: str, low: int, high: int) -> Duration:
    return Duration(draw(st.integers(low, high)), unit)  # type: ignore[arg-type]


@st.composite
def ladders(
    draw: st.DrawFn,
    *,
    kinds: tuple[str, ...] = ("cp_chair", "iro", "firo", "custom"),
    max_stages: int = 5,
) -> EscalationLadder:
    """Valid escalation ladders of every shape the ladder types allow.

    IRO ladders keep NAT-IRO-03 (formal stages in WD adding up to at most 20); others may
    count in elapsed days or hours too. Bypass, the breach action, extension bounds, the
    external referral and who is kept informed all vary.
    """
    kind = draw(st.sampled_from(kinds))
    raiser = _RAISERS.get(kind) or draw(st.sampled_from(_CUSTOM_RAISERS))
    subject = "foster_carer" if kind == "firo" else draw(st.sampled_from(("child", "young_person")))
    n = draw(st.integers(1, max_stages))
    iro = kind == "iro" or raiser == "iro"
    unit = "WD" if iro else draw(st.sampled_from(("WD", "WD", "d", "h")))
    high = 20 // n if iro else 8

    def stage(clause: str, response: Duration | None) -> LadderStage:
        holders = draw(st.lists(st.sampled_from(_HOLDER_POOL), min_size=1, max_size=2, unique=True))
        informed = draw(st.lists(st.sampled_from(_INFORMED_POOL), max_size=1, unique=True))
        return LadderStage(tuple(holders), response, tuple(informed), clause=clause)

    stages = tuple(stage(f"T-{k}", draw(_durations(unit, 1, high))) for k in range(1, n + 1))
    informal = None
    if draw(st.booleans()):
        response = draw(st.none() | _durations(unit, 1, 5))
        informal = stage("T-0", response)
    informed = draw(st.lists(st.sampled_from((subject, *_INFORMED_POOL)), max_size=2, unique=True))
    count = draw(st.integers(0, 3))
    extensions = ExtensionRule(
        count,
        draw(_durations(unit, 1, 5)) if count else None,
        per=draw(st.sampled_from(("stage", "escalation"))),
        clause="T-EXT",
    )
    referral = None
    if draw(st.booleans()):
        referral = ExternalReferral(
            draw(st.sampled_from(("cafcass", "external_panel"))),
            when=draw(st.sampled_from(("after_last_stage", "any_time"))),
            clause="T-REF",
            any_time_clause="T-REF-ANY",
        )
    on_raise: tuple[Notice, ...] = ()
    if draw(st.booleans()):
        on_raise = (Notice((subject,), "your rights", clause="T-RIGHTS"),)
    return EscalationLadder(
        name=draw(st.sampled_from(("generated", "random_ladder", "council_own"))),
        kind=kind if kind != "custom" else "custom",
        raiser=raiser,
        subject=subject,
        stages=stages,
        informal=informal,
        informed=tuple(informed),
        informed_clause="T-INF",
        bypass=draw(st.booleans()),
        bypass_clause="T-BYPASS",
        breach=draw(st.sampled_from(("notify", "escalate"))),
        extensions=extensions,
        referral=referral,
        on_raise=on_raise,
        clause="T-LADDER",
        close_clause="T-CLOSE",
        statutory=("iro_dispute_resolution",) if iro else (),
    )


def clock_starts(min_year: int = 2020, max_year: int = 2030) -> st.SearchStrategy[datetime]:
    """Aware starting moments, often in the days around Christmas, Easter and a weekend."""
    near_holidays = st.builds(
        lambda year, day, hour: datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=day, hours=hour),
        st.integers(min_year, max_year),
        st.sampled_from((-8, -7, -6, -2, 0, 88, 94, 95, 97, 125, 145, 236, 358, 359, 363)),
        st.integers(0, 23),
    )
    return st.one_of(aware_datetimes(min_year, max_year), near_holidays)


def clocks(min_year: int = 2020, max_year: int = 2030) -> st.SearchStrategy[ManualClock]:
    """Manual clocks starting at :func:`clock_starts` moments."""
    return st.builds(ManualClock, clock_starts(min_year, max_year))


def waits() -> st.SearchStrategy[timedelta]:
    """How long to let pass before a command: from an hour to a few weeks."""
    return st.one_of(
        st.sampled_from([timedelta(hours=h) for h in (1, 8, 24, 72, 24 * 7, 24 * 12)]),
        st.integers(1, 24 * 30).map(lambda h: timedelta(hours=h)),
    )


@attrs.frozen
class LadderCommand:
    """One command against an escalation, with the actor given by what they are to it.

    ``who``: ``raiser`` (the person who raised it), ``other_raiser`` (same role, another
    person), ``holder`` (a holder of the current stage, ``pick`` chooses which), ``someone``
    (any role of the ladder) or ``system``. ``wait`` passes (and ticks) before it runs.
    """

    trigger: str
    who: Who = "raiser"
    payload: dict[str, Any] = attrs.field(factory=dict)
    pick: int = 0
    wait: timedelta = timedelta(0)


def _people(ladder: EscalationLadder) -> st.SearchStrategy[dict[str, str]]:
    roles = ladder.assignable_roles
    good = (
        st.dictionaries(st.sampled_from(roles), st.sampled_from(("P-1", "P-2")), max_size=2)
        if roles
        else st.just({})
    )
    return st.one_of(good, st.just({"raiser": "P-9"}), st.just({roles[0] if roles else "x": ""}))


def _state_names(ladder: EscalationLadder) -> tuple[str, ...]:
    return tuple(state_of(ladder, lv) for lv in ladder.levels) + (
        (REFERRED,) if ladder.referral is not None else ()
    )


@st.composite
def raise_commands(draw: st.DrawFn, ladder: EscalationLadder) -> LadderCommand:
    """``raise`` commands, mostly valid: any target (some not allowed), reasons, people."""
    payload: dict[str, Any] = {
        "subject_id": draw(st.sampled_from(("C-1", "C-2", "FC-1"))),
        "reason": _usually(draw, draw(st.sampled_from(ladder.reasons)), "not_a_reason"),
    }
    if draw(st.booleans()):
        payload["details"] = "free text about the concern"
    if draw(st.booleans()):
        payload["to"] = draw(st.sampled_from((*_state_names(ladder), "stage_99")))
    if not _usually(draw, True, False):
        payload["people"] = draw(_people(ladder))
    agreed = ladder.agreed_response
    if agreed is not None:
        low, high = agreed.min.amount, agreed.max.amount
        good = [f"{k} {agreed.min.unit}" for k in range(low, high + 1)]
        payload["response_time"] = _usually(draw, draw(st.sampled_from(good)), f"{high + 1} h")
    if ladder.bypass_consultation and draw(st.booleans()):
        payload["consulted"] = "consulted the head of service"
    who: Who = _usually(draw, "raiser", "someone")
    return LadderCommand("raise", who, payload, draw(st.integers(0, 7)))


_LATER = (  # the order matters: hypothesis favours the first
    "escalate",
    "request_extension",
    "grant_extension",
    "respond",
    "bypass",
    "refuse_extension",
    "refer_externally",
    OVERDUE,
    "accept",
    "withdraw",
    "endorse",
    "agree",
    "refer",
    "raise",
)
_BY_OTHERS = frozenset({"endorse", "agree"})
_HOLDER_TRIGGERS = frozenset({"respond", "request_extension"})
_CLOSING = frozenset({"accept", "withdraw", "refer_externally"})


def _usually(draw: st.DrawFn, good: Any, *others: Any) -> Any:
    """``good`` four times in five, else one of ``others``. Hypothesis favours (and shrinks
    towards) the first choice, so the simplest draw is the valid one."""
    return draw(st.sampled_from((good,) * 4 + others)) if others else good


@st.composite
def ladder_commands(
    draw: st.DrawFn,
    ladder: EscalationLadder,
    spec: MachineSpec | None = None,
    state: str | None = None,
) -> LadderCommand:
    """Commands after the raise. Given ``spec`` and ``state``, mostly triggers the state
    allows; mostly by the right actor with a valid payload, sometimes not (to test refusals)."""
    allowed = spec.allowed_triggers(state) if spec is not None and state is not None else ()
    if allowed and _usually(draw, True, False):
        # Closing triggers weigh less, so escalations live long enough to climb the ladder.
        weighted = [t for t in _LATER if t in allowed for _ in range(1 if t in _CLOSING else 3)]
        trigger = draw(st.sampled_from(weighted))
    else:
        trigger = draw(st.sampled_from(_LATER))
    if trigger == "raise":
        return draw(raise_commands(ladder))
    right: Who = "holder" if trigger in _HOLDER_TRIGGERS else "raiser"
    if trigger == OVERDUE:
        right = "system"
    elif trigger in _BY_OTHERS:
        right = "someone"
    who: Who = _usually(draw, right, *(w for w in _WHO if w != right))
    payload: dict[str, Any] = {}
    if trigger == "respond":
        payload = _usually(draw, {"response": "the plan will be reviewed this week"}, {})
    elif trigger == "bypass":
        payload["to"] = draw(st.sampled_from((*_state_names(ladder), "stage_0")))
    elif trigger == "request_extension":
        limit = ladder.extensions.max_length or Duration(5, "WD")
        good = [f"{k} {limit.unit}" for k in range(1, limit.amount + 1)]
        bad = (f"{limit.amount + 1} {limit.unit}", f"0 {limit.unit}", "1 h", "soon")
        payload["length"] = _usually(draw, draw(st.sampled_from(good)), *bad)
    elif trigger == OVERDUE:
        payload = {"deadline": "response", "deadline_id": "not-open"}
    elif trigger == "refer" and ladder.tracks:
        payload["track"] = draw(st.sampled_from([t.name for t in ladder.tracks]))
    if trigger == "bypass" and ladder.bypass_consultation and draw(st.booleans()):
        payload["consulted"] = "consulted the head of service"
    if trigger in ("escalate", "bypass") and not _usually(draw, True, False):
        payload["people"] = draw(_people(ladder))
    if trigger not in ("respond", OVERDUE) and not _usually(draw, True, False):
        payload["note"] = "free text"
    wait = _usually(draw, timedelta(0), draw(waits()))
    return LadderCommand(trigger, who, payload, draw(st.integers(0, 7)), wait)


def command_sequences(
    ladder: EscalationLadder, *, max_size: int = 25
) -> st.SearchStrategy[list[LadderCommand]]:
    """A raise then up to ``max_size`` commands, for :func:`run_commands`."""
    return st.tuples(
        raise_commands(ladder), st.lists(ladder_commands(ladder), max_size=max_size)
    ).map(lambda pair: [pair[0], *pair[1]])


# running commands -----------------------------------------------------------------------------


def _actor(
    ladder: EscalationLadder, snapshot: WorkflowSnapshot | None, cmd: LadderCommand
) -> Actor:
    data = snapshot.data if snapshot is not None else {}
    if cmd.who == "system":
        return SYSTEM
    raisers = ladder.raisers
    if cmd.who == "raiser":
        role = data.get("raiser_role", raisers[cmd.pick % len(raisers)])
        return Actor(str(data.get("raiser_id", f"R-{cmd.pick % 3}")), str(role))
    if cmd.who == "other_raiser":
        return Actor("R-OTHER", raisers[cmd.pick % len(raisers)])
    level = level_of(ladder, snapshot.state) if snapshot is not None else None
    holder = cmd.who == "holder" and level is not None
    roles = ladder.holders(level) if holder and level is not None else ladder.all_roles
    role = roles[cmd.pick % len(roles)]
    person = data.get(f"{role}_id")
    return Actor(person if isinstance(person, str) else f"P-{role}", role)


def apply_command(
    engine: Engine,
    ladder: EscalationLadder,
    workflow_id: str,
    cmd: LadderCommand,
    *,
    clock: ManualClock | None = None,
) -> Step | QAFlowError:
    """Run ``cmd`` on ``workflow_id`` (a raise starts it); return the step or the refusal.

    Waits and ticks first (checking :func:`check_tick`); a refused command must have written
    nothing; a workflow in a terminal state must not move.
    """
    if cmd.wait and clock is not None:
        check_tick(engine, clock.advance(cmd.wait))
    try:
        before: WorkflowSnapshot | None = engine.get(workflow_id)
    except QAFlowError:
        before = None
    content = store_content(engine.store)
    at = clock.now() if clock is not None else None
    actor = _actor(ladder, before, cmd)
    try:
        if before is None:
            result: Step | QAFlowError = engine.start(
                machine_name(ladder), workflow_id, cmd.trigger, actor, cmd.payload, at=at
            )
        else:
            result = engine.fire(workflow_id, cmd.trigger, actor, cmd.payload, at=at)
    except QAFlowError as error:
        assert store_content(engine.store) == content, (
            f"{workflow_id}: refused {cmd.trigger!r} ({type(error).__name__}) wrote something"
        )
        result = error
    if before is not None:
        check_terminal_absorbing(engine, workflow_id, before)
    return result


def run_commands(
    engine: Engine,
    ladder: EscalationLadder,
    workflow_id: str,
    commands: Iterable[LadderCommand],
    *,
    clock: ManualClock | None = None,
) -> list[Step | QAFlowError]:
    """Apply each command, checking the workflow and the ladder's rules after every one."""
    results = []
    for cmd in commands:
        results.append(apply_command(engine, ladder, workflow_id, cmd, clock=clock))
        try:
            engine.get(workflow_id)
        except QAFlowError:
            continue
        check_workflow(engine, workflow_id)
        check_escalation(engine, workflow_id, ladder)
    return results


# checks -----------------------------------------------------------------------------------------


def expected_recipients(
    ladder: EscalationLadder, event: Event, data: Mapping[str, Any] | None = None
) -> Counter[str]:
    """The roles ``event`` must notify, each as often as it must, derived from the ladder.

    Stage entry: the holders, everyone kept informed there and the stage's notices whose
    condition holds. Raise: also the ladder's raise notices (IRO: rights and advocacy,
    BX-ESC-IRO-02). Respond, extension requests and endorsements: the raiser. Extension
    decisions: the holders. A missed response: the raiser and the holders; a missed party
    deadline: the party and the raiser. A parallel referral: its role and those informed.
    Resolve and withdraw: the current stage's recipients. ``data`` (the workflow's) gives the
    reason the conditions read.
    """
    source, dest = level_of(ladder, event.source), level_of(ladder, event.dest)
    roles: Counter[str] = Counter()
    trigger = event.trigger
    (raiser,) = raiser_role(ladder)
    when = _When(ladder, event, data or {})
    if trigger == "raise":
        for notice in ladder.on_raise:
            if when.holds(notice.when):
                roles.update(notice.roles)
    elif trigger in ("respond", "request_extension", "endorse"):
        roles[raiser] += 1
    elif source is not None and trigger in ("grant_extension", "refuse_extension"):
        roles.update(ladder.holders(source))
    elif source is not None and trigger == OVERDUE:
        roles[raiser] += 1
        roles.update(ladder.holders(source))
    elif source is not None and trigger == DEADLINE_MISSED:
        name = event.payload.get("deadline")
        party = [d for d in ladder.stage_at(source).deadlines if d.name == name]
        if party:
            roles.update(dict.fromkeys((party[0].party, raiser), 1))
        else:
            roles[raiser] += 1
            roles.update(ladder.holders(source))
    elif trigger == "refer":
        for track in ladder.tracks:
            if track.name == event.payload.get("track"):
                roles.update((track.role, *track.informed))
    elif source is not None and trigger in ("accept", "withdraw"):
        roles.update(ladder.recipients(source))
    if event.dest != event.source and dest is not None:
        roles.update(ladder.recipients(dest))
        if dest != ladder.referral_level:
            for notice in ladder.stage_at(dest).notices:
                if when.holds(notice.when):
                    roles.update(notice.roles)
    return roles


class _When:
    """Evaluates a notice's condition for the conformance checks, as the machine does."""

    def __init__(self, ladder: EscalationLadder, event: Event, data: Mapping[str, Any]) -> None:
        self.bindings = {
            "actor": {"id": event.actor.id, "role": event.actor.role},
            "data": dict(data),
            "payload": dict(event.payload),
            "state": event.source,
            "dest": event.dest,
            "trigger": event.trigger,
            "reason": event.payload.get("reason", data.get("reason")),
        }

    def holds(self, source: str | None) -> bool:
        if source is None:
            return True
        return compile_expression(source, GUARD_NAMES).test(self.bindings)


def _notifications(engine: Engine, workflow_id: str) -> list[Notification]:
    store: Any = engine.store
    if hasattr(store, "notifications"):
        found: list[Notification] = store.notifications(workflow_id)
        return found
    return [n for n in store.pending_notifications() if n.workflow_id == workflow_id]


def _next(ladder: EscalationLadder, level: int | None) -> int | None:
    if level is not None and level == ladder.last_level:
        return ladder.referral_level
    return ladder.next_level(level)


def check_escalation(engine: Engine, workflow_id: str, ladder: EscalationLadder) -> None:
    """The ladder's own rules over one escalation's log, notifications and record.

    The stage never goes down, and a stage (or the informal stage, or everything up to
    the referral) is skipped only by ``bypass`` or a raise with ``to``, only where the ladder
    allows it. Extensions never exceed the ladder's count and length. Every event notified
    exactly :func:`expected_recipients` (the raiser and the subject by their recorded ids).
    Nothing follows a terminal state.
    """
    events = engine.history(workflow_id)
    snap = engine.get(workflow_id)
    data = snap.data
    by_seq: dict[int, list[Notification]] = {}
    for n in _notifications(engine, workflow_id):
        by_seq.setdefault(n.seq, []).append(n)
    entries = 0
    for event in events:
        where = f"{workflow_id} event {event.seq} ({event.trigger} {event.source}->{event.dest})"
        assert event.source not in TERMINAL_STATES, f"{where}: moved out of a terminal state"
        got = Counter(n.recipient_role for n in by_seq.get(event.seq, ()))
        want = expected_recipients(ladder, event, data)
        assert got == want, f"notifications {where}: sent {dict(got)}, ladder says {dict(want)}"
        for n in by_seq.get(event.seq, ()):
            if n.recipient_role == raiser_role(ladder)[0]:
                assert n.recipient_id == data.get("raiser_id"), f"{where}: raiser id"
            if n.recipient_role == ladder.subject:
                assert n.recipient_id == data.get("subject_id"), f"{where}: subject id"
        if event.dest == event.source or event.dest in (RESOLVED, WITHDRAWN):
            continue
        source, dest = level_of(ladder, event.source), level_of(ladder, event.dest)
        assert dest is not None, f"{where}: entered a state that is not a stage"
        entries += 1
        assert source is None or dest > source, f"{where}: the stage went down"
        if dest != _next(ladder, source):
            assert event.trigger in ("bypass", "raise"), f"{where}: skipped without a bypass"
            assert event.trigger != "raise" or "to" in event.payload, (
                f"{where}: a raise skipped stages without 'to'"
            )
            assert ladder.may_skip(source, dest), f"{where}: the ladder allows no such bypass"
        if event.trigger == "bypass":
            assert ladder.may_skip(source, dest), f"{where}: bypass the ladder does not allow"
    history = data.get("history", [])
    levels = [entry["level"] for entry in history]
    assert levels == sorted(levels), f"{workflow_id}: stage history goes down: {levels}"
    assert len(history) == entries, f"{workflow_id}: {len(history)} stage visits, {entries} entries"
    if snap.state not in TERMINAL_STATES and snap.state != "new":
        assert data.get("level") == level_of(ladder, snap.state), f"{workflow_id}: level"
    _check_extensions(ladder, workflow_id, history, data)


def _check_extensions(
    ladder: EscalationLadder, workflow_id: str, history: list[Any], data: Mapping[str, Any]
) -> None:
    rule = ladder.extensions
    total = 0
    for entry in history:
        granted = [e for e in entry.get("extensions", ()) if e.get("decision") == "granted"]
        total += len(granted)
        if rule.per == "stage":
            assert len(granted) <= rule.max_count, (
                f"{workflow_id}: {len(granted)} extensions at {entry['state']}, "
                f"ladder allows {rule.max_count}"
            )
        for e in granted:
            assert rule.allows(Duration.parse(e["length"])), (
                f"{workflow_id}: extension of {e['length']} beyond {rule.max_length}"
            )
        pending = [e for e in entry.get("extensions", ()) if e.get("decision") is None]
        assert len(pending) <= 1, f"{workflow_id}: several extension requests pending"
    if rule.per == "escalation":
        assert total <= rule.max_count, f"{workflow_id}: {total} extensions > {rule.max_count}"
    if history:
        assert data.get("extensions_granted") == total, f"{workflow_id}: extension count"


def check_ladder_spec(ladder: EscalationLadder, spec: MachineSpec) -> None:
    """The machine has the ladder's shape: a state per level, a response deadline where the
    ladder sets one, bypasses exactly where allowed, no way out of a terminal state."""
    for level in ladder.levels:
        state = state_of(ladder, level)
        stage = ladder.stage_at(level)
        rules = [r for r in spec.state(state).deadlines if r.name == RESPONSE_DEADLINE]
        assert bool(rules) == stage.has_response_deadline, f"{state}: response deadline"
        dests = {
            level_of(ladder, t.dest) for t in spec.candidates(state, "bypass") if t.dest is not None
        }
        assert dests == set(ladder.bypass_targets(level)), f"{state}: bypass targets {dests}"
    raised = {level_of(ladder, t.dest) for t in spec.candidates("new", "raise") if t.dest}
    assert raised == {ladder.first_level, *ladder.bypass_targets(None)}, f"raise {raised}"
    for name in TERMINAL_STATES:
        if name in spec.state_names:
            assert spec.state(name).terminal and not spec.allowed_triggers(name), name


# the stateful test ------------------------------------------------------------------------------


class EscalationLadderMachine(RuleBasedStateMachine):
    """Drives escalations of one ladder (or, with ``ladder = None``, of a generated one)
    through random commands, waits and ticks, checking the workflow checks above and the
    ladder's rules after every step. Subclass it and set ``ladder`` (and ``policy``), or use
    :func:`ladder_state_machine`; collect ``YourMachine.TestCase`` with pytest.
    """

    ladder: ClassVar[EscalationLadder | None] = None
    policy: ClassVar[Policy] = CONFORMANCE_POLICY
    max_workflows: ClassVar[int] = 3

    def __init__(self) -> None:
        super().__init__()
        self.the_ladder: EscalationLadder | None = None
        self.spec: MachineSpec | None = None
        self.engine: Engine | None = None
        self.clock: ManualClock | None = None
        self.workflows: list[str] = []
        self.checked: dict[str, int] = {}

    @initialize(data=st.data())
    def setup(self, data: st.DataObject) -> None:
        ladder = type(self).ladder or data.draw(ladders(), label="ladder")
        self.the_ladder = ladder
        self.spec = escalation_machine(ladder, type(self).policy)
        check_ladder_spec(ladder, self.spec)
        self.clock = ManualClock(data.draw(clock_starts(), label="start"))
        self.engine = Engine(MemoryStore(), [self.spec], clock=self.clock)

    def _parts(self) -> tuple[EscalationLadder, MachineSpec, Engine, ManualClock]:
        assert self.the_ladder and self.spec and self.engine and self.clock
        return self.the_ladder, self.spec, self.engine, self.clock

    @precondition(lambda self: len(self.workflows) < self.max_workflows)
    @rule(data=st.data())
    def raise_escalation(self, data: st.DataObject) -> None:
        ladder, _, engine, clock = self._parts()
        wid = f"ESC-{len(self.workflows) + 1}"
        result = apply_command(engine, ladder, wid, data.draw(raise_commands(ladder)), clock=clock)
        if not isinstance(result, QAFlowError):
            self.workflows.append(wid)

    @precondition(lambda self: bool(self.workflows))
    @rule(data=st.data())
    def command(self, data: st.DataObject) -> None:
        ladder, spec, engine, clock = self._parts()
        open_ = [w for w in self.workflows if engine.get(w).state not in TERMINAL_STATES]
        wid = data.draw(st.sampled_from(open_ or self.workflows), label="workflow")
        state = engine.get(wid).state
        cmd = data.draw(ladder_commands(ladder, spec, state), label="command")
        apply_command(engine, ladder, wid, attrs.evolve(cmd, wait=timedelta(0)), clock=clock)

    @rule(wait=waits())
    def time_passes(self, wait: timedelta) -> None:
        _, _, engine, clock = self._parts()
        check_tick(engine, clock.advance(wait))

    @invariant()
    def conforms(self) -> None:
        """The workflow checks and the ladder's rules on every workflow that changed."""
        if self.engine is None:
            return
        ladder, _, engine, _ = self._parts()
        for wid in self.workflows:
            version = engine.get(wid).version
            if self.checked.get(wid) == version:
                continue  # nothing of it changed since it was last checked
            check_workflow(engine, wid)
            check_escalation(engine, wid, ladder)
            self.checked[wid] = version


def ladder_state_machine(
    ladder: EscalationLadder | None, policy: Policy | None = None
) -> type[EscalationLadderMachine]:
    """An :class:`EscalationLadderMachine` subclass for ``ladder`` (``None``: generated)."""
    name = f"LadderMachine_{ladder.name}" if ladder is not None else "GeneratedLadderMachine"
    return type(
        name,
        (EscalationLadderMachine,),
        {"ladder": ladder, "policy": policy or CONFORMANCE_POLICY},
    )


def check_ladder(
    ladder: EscalationLadder,
    policy: Policy | None = None,
    *,
    max_examples: int | None = None,
    stateful_step_count: int | None = None,
) -> None:
    """Run the escalation conformance suite on ``ladder``; raise ``AssertionError`` on a
    failure (hypothesis prints the shortest command sequence that breaks it).

    Checks the machine's shape (:func:`check_ladder_spec`), then runs
    :class:`EscalationLadderMachine` under the current hypothesis profile (overridable).
    """
    spec = escalation_machine(ladder, policy or CONFORMANCE_POLICY)
    check_ladder_spec(ladder, spec)
    changes: dict[str, Any] = {}
    if max_examples is not None:
        changes["max_examples"] = max_examples
    if stateful_step_count is not None:
        changes["stateful_step_count"] = stateful_step_count
    run_state_machine_as_test(  # type: ignore[no-untyped-call,unused-ignore]  # hypothesis leaves it untyped
        ladder_state_machine(ladder, policy), settings=_settings(_settings(), **changes)
    )


# --- rolling deadlines and the timescale machines: see qaflow._testing_rolling ---

from qaflow._testing_rolling import (  # noqa: E402
    TimescaleStateMachine,
    check_rolling,
    check_timescales,
    event_bindings,
    payloads,
    timescale_state_machine,
)
