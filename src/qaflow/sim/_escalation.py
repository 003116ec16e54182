"""The escalation actors: raisers and stage holders, shared by every simulation.

:class:`EscalationActors` plays escalations of one ladder on the real engine, scheduling
each person's next action on a :class:`~qaflow.sim._scheduler.Scheduler` with the knobs of a
:class:`~qaflow.sim._behaviour.Behaviour`; how one stage is played is told in
:mod:`qaflow.simulate`, the public entry point. A ladder whose breach moves the escalation
up by itself is followed: the path simply enters the next stage. The host decides who the
people are (``people`` per escalation, else one made-up person per role), what a tick is,
and what happens when an escalation ends.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from random import Random
from typing import Any, Final

from qaflow import _command
from qaflow.calendar import WorkingCalendar
from qaflow.engine import Engine
from qaflow.machines.escalation import RESPONSE_DEADLINE, state_of
from qaflow.policies.ladders import EscalationLadder
from qaflow.records import Actor, Step
from qaflow.sim._behaviour import Behaviour, StageBehaviour, clock_time
from qaflow.sim._moments import moments_for
from qaflow.sim._scheduler import Scheduler
from qaflow.spec import MachineSpec

__all__ = ["TEXT", "Escalation", "EscalationActors"]

TEXT: Final = "simulated"
"""The only free text a simulation writes: no real notes, names or details."""

# Indices into EscalationActors.times: when people act.
_RAISE: Final = 0
_ASK: Final = 1
_REPLY: Final = 2
_DECIDE: Final = 3

# Final: compiled code reads these without a lookup in the module's namespace
_UTC: Final = UTC
_RESPONSE: Final = RESPONSE_DEADLINE
_bisect_right: Final = bisect_right


class _Level:
    """Per-level constants of the play, computed once: what each person at the stage can do
    and with which probability, so a command re-derives nothing from the ladder."""

    __slots__ = (
        "accept",
        "accepted_by",
        "behaviour",
        "bypass",
        "bypass_to",
        "cum",
        "days",
        "decision_days",
        "endorsers",
        "escalated_by",
        "extend",
        "grant",
        "holders",
        "joint",
        "last",
        "level",
        "made_up",
        "respond",
        "stage",
        "state",
        "timed",
        "total",
        "wait_days",
        "withdraw",
    )

    def __init__(self, ladder: EscalationLadder, level: int, behaviour: StageBehaviour) -> None:
        self.level = level
        self.state = state_of(ladder, level)
        self.stage = stage = ladder.stage_at(level)
        self.behaviour = behaviour
        self.holders = ladder.holders(level)
        self.made_up = tuple(_made_up(role) for role in self.holders)  # without ``people``
        self.timed = stage.has_response_deadline
        self.last = ladder.next_level(level) is None
        self.bypass_to = tuple(state_of(ladder, lv) for lv in ladder.bypass_targets(level))
        self.days = tuple(d for d, _ in behaviour.response_days)
        cum: list[float] = []
        total = 0.0
        for _, weight in behaviour.response_days:
            total += weight
            cum.append(total)
        self.cum = tuple(cum)
        self.total = self.cum[-1]
        self.respond = behaviour.respond_probability
        self.accept = behaviour.accept_probability
        self.extend = behaviour.extension_probability
        self.grant = behaviour.grant_probability
        self.withdraw = behaviour.withdraw_probability
        self.bypass = behaviour.withdraw_probability + behaviour.bypass_probability
        self.decision_days = behaviour.decision_days
        self.wait_days = behaviour.wait_days
        # Who acts before an escalation (an endorsement, each where all must) and who
        # escalates; who agrees before an acceptance and who accepts (None: the raiser).
        self.endorsers = stage.endorsed_by if stage.endorse_all else stage.endorsed_by[:1]
        self.escalated_by = stage.escalated_by[0] if stage.escalated_by else None
        self.joint = stage.joint
        self.accepted_by = stage.accepted_by[0] if stage.accepted_by else None


class Escalation:
    """The running state of one escalation (the host reads the counts when it ends)."""

    __slots__ = (
        "asked",
        "breaches",
        "bypasses",
        "commands",
        "due",
        "entered",
        "entry_day",
        "granted",
        "granted_here",
        "holder",
        "index",
        "level",
        "people",
        "raised_at",
        "raiser",
        "reply_day",
        "subject",
        "wid",
    )

    def __init__(
        self,
        index: int,
        wid: str,
        raiser: Actor,
        subject: str,
        people: Mapping[str, str] | None = None,
    ) -> None:
        self.index = index
        self.wid = wid
        self.raiser = raiser
        self.subject = subject
        self.people = people
        self.level: _Level | None = None
        self.holder: Actor | None = None
        self.entered: datetime | None = None
        self.entry_day = 0  # the proleptic ordinal of the local date the stage was entered
        self.due: datetime | None = None
        self.reply_day = 0  # 0: no response will come
        self.raised_at: datetime | None = None
        self.commands = 0
        self.breaches = 0
        self.asked = 0
        self.granted = 0
        self.granted_here = 0
        self.bypasses = 0


@lru_cache(maxsize=64)
def _made_up(role: str) -> Actor:
    """The one made-up person acting in ``role`` for every escalation without ``people``."""
    return Actor(f"{role.upper()}-1", role)


def _closed(_: object) -> None:
    """The action of actors whose play is over (:meth:`EscalationActors.close`)."""
    raise RuntimeError("an escalation was planned after its play was closed")


def _times(behaviour: Behaviour) -> tuple[time, ...]:
    """When people act, indexed by _RAISE, _ASK, _REPLY and _DECIDE."""
    knobs = (behaviour.raise_from, behaviour.ask_at, behaviour.reply_at, behaviour.decide_at)
    return tuple(clock_time(t) for t in knobs)


def _person(esc: Escalation, role: str) -> Actor:
    """Who acts in ``role`` for ``esc``: its ``people``, else one made-up person."""
    people = esc.people
    if people is not None and role in people:
        return Actor(people[role], role)
    return _made_up(role)


def _raise_tail(ladder: EscalationLadder, to: str | None) -> dict[str, Any]:
    """What every raise says after its subject and reason (and details, for "other")."""
    tail: dict[str, Any] = {}
    if to is not None:
        tail["to"] = to
        if ladder.bypass_consultation:
            tail["consulted"] = TEXT
    if ladder.agreed_response is not None:
        tail["response_time"] = str(ladder.agreed_response.max)
    return tail


class EscalationActors:
    """The people of every escalation of one ladder (see the module docstring)."""

    def __init__(
        self,
        ladder: EscalationLadder,
        spec: MachineSpec,
        behaviour: Behaviour,
        *,
        engine: Engine,
        scheduler: Scheduler,
        rng: Random,
        on_end: Callable[[Escalation, Step], object],
        observe: Callable[[Step], object] | None = None,
        tick: Callable[[datetime], object] | None = None,
    ) -> None:
        self.ladder = ladder
        self.reasons = ladder.reasons
        self.spec = spec
        self.engine = engine
        # an exact Engine through qaflow._command, what its start and fire delegate to
        self.direct = type(engine) is Engine
        self.scheduler = scheduler
        self.rng = rng
        self.random: Callable[[], float] = rng.random  # bound once (it refers to rng only)
        self.on_end = on_end
        self.observe = observe
        self.host_tick = tick  # None: tick_own (no bound method of self kept: no cycle)
        self.calendar: WorkingCalendar = spec.calendar
        self.levels = {lv: _Level(ladder, lv, behaviour.at(lv)) for lv in ladder.levels}
        self.by_state = {lv.state: lv for lv in self.levels.values()}
        self.raise_to = None if behaviour.raise_at is None else state_of(ladder, behaviour.raise_at)
        self.referral = ladder.referral is not None
        self.moments = moments_for(self.calendar, _times(behaviour))
        self.local_date = self.moments.local_date
        self.day_after = self.moments.day_after
        self.answer_after = timedelta(minutes=behaviour.answer_after_minutes)
        self.by_wid: dict[str, Escalation] = {}
        self.ticks: set[datetime] = set()
        # Stage entries per holder role, per month (year * 12 + month - 1).
        self.load: dict[str, dict[int, int]] = {
            h: {} for lv in self.levels.values() for h in lv.holders
        }
        self.breaches_by_stage: dict[str, int] = {}
        self.ext = ext = ladder.extensions
        self.ext_length = str(ext.max_length) if ext.max_length is not None else ""
        self.ext_per_escalation = ext.per == "escalation"
        self.ext_allowed = ext.allowed
        self.ext_max_count = ext.max_count
        self.raise_tail = _raise_tail(ladder, self.raise_to)
        self.consulted = ladder.bypass_consulted[:1]  # consulted at the stage before a bypass
        # the actions the scheduler calls, bound once (close() breaks the cycle to self)
        self.raise_act: Callable[[Escalation], None] = self.do_raise
        self.respond_act: Callable[[Escalation], None] = self.do_respond
        self.decide_act: Callable[[Escalation], None] = self.do_decide
        self.move_on_act: Callable[[Escalation], None] = self.move_on
        self.ask_act: Callable[[Escalation], None] = self.do_ask
        self.answer_act: Callable[[Escalation], None] = self.do_answer
        self.tick_act: Callable[[datetime], None] = self._tick

    def close(self) -> None:
        """Drop the bound actions (the play is over; an action planned since raises)."""
        self.raise_act = self.respond_act = self.decide_act = self.move_on_act = _closed
        self.ask_act = self.answer_act = self.tick_act = _closed

    def tick_at(self, when: datetime) -> None:
        """Have the host tick at ``when`` (once, however many paths wait for it)."""
        if when not in self.ticks:
            self.ticks.add(when)
            self.scheduler.at(when, self.tick_act, when)

    def _tick(self, when: datetime) -> None:
        self.ticks.discard(when)
        (self.tick_own if self.host_tick is None else self.host_tick)(when)

    def tick_own(self, when: datetime) -> None:
        """The default tick: ``engine.tick`` and follow whatever it fired."""
        for step in self.engine.tick(when):
            self.on_tick(step)

    def begin(self, esc: Escalation, when: datetime) -> None:
        """Plan the raise of ``esc`` at ``when``."""
        self.by_wid[esc.wid] = esc
        self.scheduler.at(when, self.raise_act, esc)

    def begin_each(self, plans: Iterable[tuple[Escalation, datetime]]) -> None:
        """Plan the raise of each ``(esc, when)``: the same as :meth:`begin` for each in turn
        (:meth:`Scheduler.at_each`: only the next raise waits in the scheduler's heap)."""
        by_wid = self.by_wid
        do_raise = self.raise_act
        batch: list[tuple[datetime, Callable[[Escalation], object], Escalation]] = []
        for esc, when in plans:
            by_wid[esc.wid] = esc
            batch.append((when, do_raise, esc))
        self.scheduler.at_each(batch)

    def fire(self, esc: Escalation, trigger: str, actor: Actor, payload: dict[str, Any]) -> Step:
        if self.direct:
            step = _command.fire(self.engine, esc.wid, trigger, actor, payload, None, None, None)
        else:
            step = self.engine.fire(esc.wid, trigger, actor, payload)
        esc.commands += 1
        if self.observe is not None:
            self.observe(step)
        return step

    def follow(self, esc: Escalation, step: Step) -> None:
        """Follow the workflow after a command that may have moved or ended it."""
        state = step.snapshot.state
        level = esc.level
        if level is not None and state == level.state:
            return
        new = self.by_state.get(state)
        if new is None:  # resolved, withdrawn or referred: the escalation has ended
            del self.by_wid[esc.wid]
            on_end = self.on_end  # a plain attribute: called from a local (no method lookup)
            on_end(esc, step)
        else:
            self.enter(esc, new, step)

    def do_raise(self, esc: Escalation) -> None:
        reasons = self.reasons
        reason = reasons[int(self.random() * len(reasons))]
        payload: dict[str, Any] = {"subject_id": esc.subject, "reason": reason}
        if reason == "other":
            payload["details"] = TEXT
        if self.raise_tail:
            payload.update(self.raise_tail)
        if esc.people is not None:
            payload["people"] = dict(esc.people)
        if self.direct:
            step = _command.start(
                self.engine, self.spec, esc.wid, "raise", esc.raiser, payload, None, None
            )
        else:
            step = self.engine.start(self.spec, esc.wid, "raise", esc.raiser, payload)
        if self.observe is not None:
            self.observe(step)
        esc.commands = 1
        esc.raised_at = step.event.at
        self.follow(esc, step)

    def enter(self, esc: Escalation, level: _Level, step: Step) -> None:
        """The path entered ``level`` (by raise, escalate, bypass or an escalating breach)."""
        random = self.random
        moments = self.moments
        when = step.event.at
        esc.level = level
        esc.entered = when
        esc.granted_here = 0
        # moments.local_day(when) and moments.month(day), their fast paths inline
        day = (
            when.toordinal() if when.hour < 23 and when.tzinfo is _UTC else moments.local_day(when)
        )
        esc.entry_day = day
        holders = level.holders
        k = int(random() * len(holders)) if len(holders) > 1 else 0
        role = holders[k]
        esc.holder = level.made_up[k] if esc.people is None else _person(esc, role)
        month = moments.months.get(day)
        if month is None:
            month = moments.month(day)
        per = self.load[role]
        per[month] = per.get(month, 0) + 1
        if random() < level.respond:
            esc.reply_day = level.days[_bisect_right(level.cum, random() * level.total)]
        else:
            esc.reply_day = 0
        if level.timed:
            due = None
            for d in step.snapshot.deadlines:
                if d.name == _RESPONSE:
                    due = d.due_at
            assert due is not None, "a timed stage opens its response deadline"
            esc.due = due
        else:
            esc.due = None
        self.plan(esc, asking=True)

    def plan(self, esc: Escalation, *, asking: bool) -> None:
        """Schedule what happens next at the current stage."""
        level = esc.level
        assert level is not None
        scheduler = self.scheduler  # its methods called directly, not through a bound one
        moments = self.moments
        reply = moments.after(esc.entry_day, esc.reply_day, _REPLY) if esc.reply_day else None
        due = esc.due
        if due is None:  # no response deadline: the raiser waits, then moves on
            wait = moments.after(esc.entry_day, level.wait_days, _DECIDE)
            if reply is not None and reply < wait:
                scheduler.at(reply, self.respond_act, esc)
            else:
                scheduler.at(wait, self.move_on_act, esc)
            return
        if reply is not None and reply < due:
            scheduler.at(reply, self.respond_act, esc)
            return
        used = esc.granted if self.ext_per_escalation else esc.granted_here
        if asking and self.ext_allowed and used < self.ext_max_count:
            ask = max(moments.after(moments.local_day(due), 0, _ASK), esc.entered or due)
            if ask + self.answer_after < due and self.random() < level.extend:
                scheduler.at(ask, self.ask_act, esc)
                return
        self.tick_at(due)

    def do_respond(self, esc: Escalation) -> None:
        holder = esc.holder
        level = esc.level
        assert holder is not None and level is not None
        step = self.fire(esc, "respond", holder, {"response": TEXT})
        when = step.event.at
        moments = self.moments
        decide = moments.after(moments.local_day(when), level.decision_days, _DECIDE)
        self.scheduler.at(when if when > decide else decide, self.decide_act, esc)

    def do_decide(self, esc: Escalation) -> None:
        level = esc.level
        assert level is not None
        if self.random() < level.accept:
            self.follow(esc, self.accept(esc))
        else:
            self.move_on(esc)

    def move_on(self, esc: Escalation) -> None:
        """Not accepted, or no response in time: withdraw, bypass or go up."""
        level = esc.level
        assert level is not None
        r = self.random()
        raiser = esc.raiser
        if r < level.withdraw:
            step = self.fire(esc, "withdraw", raiser, {})
        elif r < level.bypass and level.bypass_to:
            targets = level.bypass_to
            payload = {"to": targets[int(self.random() * len(targets))]}
            if self.ladder.bypass_consultation:
                payload["consulted"] = TEXT
            for role in self.consulted:
                self.fire(esc, "consult", _person(esc, role), {})
            step = self.fire(esc, "bypass", raiser, payload)
            esc.bypasses += 1
        elif not level.last:
            for role in level.endorsers:  # an endorsement (each, where all must) first
                self.fire(esc, "endorse", _person(esc, role), {})
            by = raiser if level.escalated_by is None else _person(esc, level.escalated_by)
            step = self.fire(esc, "escalate", by, {})
        elif self.referral:
            step = self.fire(esc, "refer_externally", raiser, {})
        else:
            step = self.accept(esc)
        self.follow(esc, step)

    def accept(self, esc: Escalation) -> Step:
        """Accept at the current stage: the joint parties agree first, the accepter accepts."""
        level = esc.level
        assert level is not None
        for role in level.joint:
            self.fire(esc, "agree", _person(esc, role), {})
        by = esc.raiser if level.accepted_by is None else _person(esc, level.accepted_by)
        return self.fire(esc, "accept", by, {})

    def do_ask(self, esc: Escalation) -> None:
        holder = esc.holder
        assert holder is not None
        step = self.fire(esc, "request_extension", holder, {"length": self.ext_length})
        esc.asked += 1
        self.scheduler.at(step.event.at + self.answer_after, self.answer_act, esc)

    def do_answer(self, esc: Escalation) -> None:
        level = esc.level
        assert level is not None
        if self.random() < level.grant:
            step = self.fire(esc, "grant_extension", esc.raiser, {})
            esc.granted += 1
            esc.granted_here += 1
            for d in step.snapshot.deadlines:
                if d.name == _RESPONSE:
                    esc.due = d.due_at
        else:
            self.fire(esc, "refuse_extension", esc.raiser, {})
        self.plan(esc, asking=False)

    def on_tick(self, step: Step) -> bool:
        """Follow a step ``tick`` fired; False when it is not one of these escalations."""
        esc = self.by_wid.get(step.event.workflow_id)
        if esc is None:
            return False
        esc.commands += 1
        if step.event.payload.get("deadline") != _RESPONSE:
            return True  # another party's deadline: recorded, the stage goes on
        esc.breaches += 1
        level = esc.level
        assert level is not None
        self.breaches_by_stage[level.state] = self.breaches_by_stage.get(level.state, 0) + 1
        if step.snapshot.state == level.state:
            self.move_on(esc)  # the raiser acts on the breach at once
        else:
            self.follow(esc, step)  # the ladder moved it up by itself
        return True
