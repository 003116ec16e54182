"""Running commands against an escalation and checking the ladder's own rules.

Public through :mod:`qaflow.testing`: :func:`apply_command` and :func:`run_commands` run
drawn commands (a refused one must write nothing); :func:`check_escalation` checks that the
stage never goes down, a stage is skipped only by a bypass the ladder allows, extensions stay
within the ladder's bounds, every event notifies exactly :func:`expected_recipients`, and
resolved/withdrawn/referred are absorbing; :func:`check_ladder_spec` checks the machine's shape.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from qaflow.calendar import Duration
from qaflow.clock import ManualClock
from qaflow.engine import Engine
from qaflow.errors import QAFlowError
from qaflow.machines.escalation import (
    OVERDUE,
    RESOLVED,
    RESPONSE_DEADLINE,
    TERMINAL_STATES,
    WITHDRAWN,
    level_of,
    machine_name,
    raiser_role,
    state_of,
)
from qaflow.policies.ladders import EscalationLadder
from qaflow.procedure.expr import compile_expression
from qaflow.records import SYSTEM, Actor, Event, Notification, Step, WorkflowSnapshot
from qaflow.spec import DEADLINE_MISSED, GUARD_NAMES, MachineSpec
from qaflow.testing._ladder_draw import LadderCommand
from qaflow.testing._workflow import (
    check_terminal_absorbing,
    check_tick,
    check_workflow,
    store_content,
)

__all__ = [
    "apply_command",
    "check_escalation",
    "check_ladder_spec",
    "expected_recipients",
    "run_commands",
]


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
