"""Rolling and recurring deadlines: timescales that reopen on an event or on a cadence.

A :class:`RollingRule` is a deadline that lives as long as its workflow and is never open
twice. Which length its next instance has comes from the first of its
:class:`Cadence` entries whose condition holds on the workflow's data (``data.status ==
"cp_plan"``), and, within that entry, from the time since an anchor the data records (the
placement date, the practitioner's start in post). After every command the engine calls
:func:`advance`, which moves each rule exactly as the policy says:

- a *restarting* event (``restart_by``), or a change of the applicable cadence entry (CIN to
  CP plan) when the rule ``follows`` its cadence, closes the open instance unmet and opens a
  fresh one from that event with the entry's ``first`` length (else its ``every``);
- a *qualifying* event (``met_by``, with an optional ``met_when``) closes the open instance as
  met and, when the entry recurs (``every``), opens the next: from the event (``anchor =
  "event"``: "a visit at least every 4 weeks") or from the met instance's due time
  (``anchor = "due"``: "an audit every month");
- a miss recorded by ``tick`` opens the next instance from the missed one's due time, so each
  missed period is a breach of its own;
- when no entry applies any more (the case closed, the child no longer looked after), the
  open instance is closed.

Instances are ordinary :class:`~qaflow.records.Deadline` rows on the whole workflow
(``state=None``), so they are durable, replayed and fired by the same ``tick`` as every
other deadline. Everything here is decided from the command and the data alone, so replaying
the events reproduces the same instances.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from qaflow._convert import duration, optional_duration
from qaflow.calendar import Duration
from qaflow.errors import PolicyError
from qaflow.procedure.expr import Expression, compile_expression
from qaflow.records import Deadline, Event

if TYPE_CHECKING:
    from qaflow.spec import Context

__all__ = [
    "CADENCE_NAMES",
    "Cadence",
    "RollingRule",
    "Window",
    "advance",
    "ahead_of_period",
    "event_bindings",
    "instance_rule",
    "met_reads_before",
    "row_bindings",
]

CADENCE_NAMES: Final = ("data",)
"""The names a cadence entry's ``when`` may read: the workflow's data after the command."""

_MISSED: Final = "deadline_missed"
_MIGRATED: Final = "policy_migrated"
_OVERDUE: Final = ", overdue when opened"


_VERDICTS: dict[tuple[str, tuple[tuple[str, Any], ...]], bool] = {}
_DATA_KEY: Final = re.compile(r"\bdata\s*\.\s*([A-Za-z_]\w*)")


def _data_keys(source: str | None) -> tuple[str, ...] | None:
    """The data keys a condition reads as ``data.key``; ``None`` when it reads ``data``
    any other way (then it sees all of it)."""
    if source is None:
        return ()
    keys = _DATA_KEY.findall(source)
    if len(re.findall(r"\bdata\b", source)) != len(keys):
        return None
    return tuple(sorted(set(keys)))


def _compile(source: str | None, names: Iterable[str], path: str) -> Expression | None:
    return None if source is None else compile_expression(source, tuple(names), path=path)


@attrs.frozen
class Window:
    """While less than ``until`` has passed since the anchor, instances last ``every``."""

    until: Duration = attrs.field(converter=duration)
    every: Duration = attrs.field(converter=duration)


@attrs.frozen
class Cadence:
    """One entry of a rolling rule: when it applies and how long its instances last.

    ``first`` is the length of the instance opened when the entry starts applying or the rule
    restarts (``5 WD`` after the ICPC); ``every`` the length of each later one (``None``: a
    one-off). ``since`` names a data key holding the anchor (an ISO datetime) for
    ``windows``: the first window whose ``until`` has not yet passed since the anchor gives
    the length instead of ``every`` ("every 6 weeks in the first 12 months, 12 weeks after").
    ``from_key`` makes the first instance run from the datetime under that data key rather
    than from the event (a visit "within 5 WD of the referral").
    """

    when: str | None = None
    first: Duration | None = attrs.field(default=None, converter=optional_duration)
    every: Duration | None = attrs.field(default=None, converter=optional_duration)
    since: str | None = None
    windows: tuple[Window, ...] = ()
    from_key: str | None = None
    clause: str | None = None
    _test: Expression | None = attrs.field(init=False, eq=False, repr=False, default=None)
    _keys: tuple[str, ...] | None = attrs.field(init=False, eq=False, repr=False, default=None)

    def __attrs_post_init__(self) -> None:
        if self.first is None and self.every is None and not self.windows:
            raise PolicyError(path="cadence", expected="a 'first', 'every' or 'windows' length")
        if self.windows and self.since is None:
            raise PolicyError(path="since", expected="the data key of the windows' anchor")
        object.__setattr__(self, "_test", _compile(self.when, CADENCE_NAMES, "when"))
        object.__setattr__(self, "_keys", _data_keys(self.when))

    @property
    def reads(self) -> tuple[str, ...] | None:
        """The data keys ``when`` reads (``None``: possibly any)."""
        return self._keys

    def applies(self, data: Mapping[str, Any]) -> bool:
        """Whether this entry applies to a workflow holding ``data``."""
        test = self._test
        if test is None:
            return True
        keys = self._keys
        if keys is None:
            return test.test({"data": data})
        # The verdict depends only on the keys the condition reads: evaluate those, once.
        seen = tuple((k, data[k]) for k in keys if k in data)
        memo = (test.source, seen)
        try:
            return _VERDICTS[memo]
        except KeyError:
            pass
        except TypeError:  # an unhashable value: evaluate without the memo
            return test.test({"data": dict(seen)})
        verdict = test.test({"data": dict(seen)})
        if len(_VERDICTS) > 4096:
            _VERDICTS.clear()
        _VERDICTS[memo] = verdict
        return verdict

    def next_length(self, at: datetime, data: Mapping[str, Any]) -> Duration | None:
        """The length of an instance opened at ``at`` after the first (``None``: no more)."""
        anchor = _when(data.get(self.since)) if self.since is not None else None
        if anchor is not None:
            for window in self.windows:
                if at < window.until.after(anchor):
                    return window.every
        return self.every

    def first_length(self, at: datetime, data: Mapping[str, Any]) -> Duration | None:
        return self.first if self.first is not None else self.next_length(at, data)


@attrs.frozen
class RollingRule:
    """A deadline that reopens on qualifying events or on its cadence (see the module)."""

    name: str
    cadence: tuple[Cadence, ...]
    met_by: tuple[str, ...] = ()
    met_when: str | None = None
    restart_by: tuple[str, ...] = ()
    restart_when: str | None = None
    follows: bool = True
    anchor: Literal["event", "due"] = "event"
    notify: tuple[str, ...] = ()
    clause: str | None = None
    description: str = ""
    _met: Expression | None = attrs.field(init=False, eq=False, repr=False, default=None)
    _restart: Expression | None = attrs.field(init=False, eq=False, repr=False, default=None)
    _triggers: frozenset[str] = attrs.field(init=False, eq=False, repr=False, default=frozenset())
    _reads: frozenset[str] | None = attrs.field(init=False, eq=False, repr=False, default=None)
    _recurs: bool = attrs.field(init=False, eq=False, repr=False, default=True)

    def __attrs_post_init__(self) -> None:
        from qaflow.spec import GUARD_NAMES

        if not self.cadence:
            raise PolicyError(path=f"rolling {self.name!r}", expected="at least one cadence")
        if self.anchor not in ("event", "due"):
            raise PolicyError(path="anchor", value=self.anchor, expected="'event' or 'due'")
        object.__setattr__(self, "_met", _compile(self.met_when, GUARD_NAMES, "met_when"))
        object.__setattr__(
            self, "_restart", _compile(self.restart_when, GUARD_NAMES, "restart_when")
        )
        object.__setattr__(self, "_triggers", frozenset((*self.met_by, *self.restart_by)))
        reads: set[str] | None = set()
        for entry in self.cadence:
            keys = entry.reads
            reads = None if keys is None or reads is None else reads | set(keys)
        object.__setattr__(self, "_reads", None if reads is None else frozenset(reads))
        recurs = any(c.every is not None or c.windows for c in self.cadence)
        object.__setattr__(self, "_recurs", recurs)

    @property
    def reads(self) -> frozenset[str] | None:
        """The data keys its cadence conditions read (``None``: possibly any)."""
        return self._reads

    @property
    def recurs(self) -> bool:
        """Whether any cadence entry opens a next instance after one is met or missed."""
        return self._recurs

    @property
    def triggers(self) -> frozenset[str]:
        """Every trigger this rule names (each must be a transition of its machine)."""
        return self._triggers

    def case(self, data: Mapping[str, Any]) -> int | None:
        """The index of the cadence entry that applies to ``data`` (``None``: none does)."""
        for index, entry in enumerate(self.cadence):
            if entry.applies(data):
                return index
        return None

    def is_met_by(self, trigger: str, bindings: Mapping[str, Any]) -> bool:
        """Whether an event (its trigger and expression bindings) meets an open instance."""
        return trigger in self.met_by and (self._met is None or self._met.test(bindings))

    def restarts(self, trigger: str, bindings: Mapping[str, Any]) -> bool:
        """Whether an event opens a fresh instance (closing the open one unmet)."""
        return trigger in self.restart_by and (
            self._restart is None or self._restart.test(bindings)
        )


def event_bindings(event: Event, before: Mapping[str, Any]) -> dict[str, Any]:
    """What a condition saw of a stored event (the names :data:`qaflow.spec.GUARD_NAMES`)."""
    actor = event.actor
    return row_bindings(
        event.trigger, event.source, event.dest, actor.id, actor.role, event.payload, before
    )


def row_bindings(
    trigger: str,
    source: str,
    dest: str,
    actor_id: str,
    actor_role: str,
    payload: Mapping[str, Any],
    before: Mapping[str, Any],
) -> dict[str, Any]:
    """:func:`event_bindings` from an event's stored columns (``before``: the data before it)."""
    return {
        "actor": {"id": actor_id, "role": actor_role},
        "data": dict(before),
        "payload": payload,
        "state": source,
        "dest": dest,
        "trigger": trigger,
        "reason": payload.get("reason", before.get("reason")),
    }


_BEFORE: Final = re.compile(r"\b(data|reason)\b")


def met_reads_before(rule: RollingRule) -> bool:
    """Whether ``met_when`` may read the workflow's data before the event (``data``, or
    ``reason`` where the payload has none): then only a replay can say if an event met it.
    Read from the source text, so a string literal naming them also counts (never wrongly
    ``False``)."""
    return rule.met_when is not None and _BEFORE.search(rule.met_when) is not None


def ahead_of_period(rule: RollingRule, current: Deadline | None, at: datetime) -> bool:
    """Whether ``at`` falls before the period of ``current``, a calendar-cadence instance
    (``anchor = "due"``): its period is the instance's length ending at its due time."""
    if rule.anchor != "due" or current is None:
        return False
    length = Duration.parse(current.rule.split(",")[0])
    return not length.is_working_days and at < length.before(current.due_at)


def instance_rule(rules: Iterable[RollingRule], name: str) -> RollingRule | None:
    """The rolling rule whose instances are called ``name``, if any."""
    return next((r for r in rules if r.name == name), None)


def advance(
    rules: tuple[RollingRule, ...],
    ctx: Context,
    opened: list[Deadline],
    closed: list[str],
    open_now: dict[str, Deadline],
) -> None:
    """Move every rolling rule for one command (see the module); writes into the outputs."""
    from qaflow.spec import bindings

    before = ctx.snapshot.data
    data = ctx.data
    at = ctx.at
    names: dict[str, Any] | None = None
    missed_id = ctx.payload.get("deadline_id") if ctx.trigger == _MISSED else None
    quiet = missed_id is None and ctx.seq != 1 and ctx.trigger != _MIGRATED
    changed: set[str] | None = None
    by_name = {d.name: d for d in open_now.values()}
    for rule in rules:
        if quiet and ctx.trigger not in rule.triggers and rule.reads is not None:
            # Neither met, restarted nor missed: only a change of what its cadence reads
            # could move it.
            if changed is None:
                changed = {k for k in before.keys() | data.keys() if before.get(k) != data.get(k)}
            if changed.isdisjoint(rule.reads):
                continue
        current = by_name.get(rule.name)
        if (
            current is None
            and quiet
            and not rule.follows
            and not rule.recurs
            and ctx.trigger not in rule.restart_by
        ):
            continue  # a one-off with nothing open: only a restarting event opens it
        after_case = rule.case(data)
        if after_case is None:
            if current is not None:
                _close(current, closed, open_now)
            continue
        entry = rule.cadence[after_case]
        before_case = None if ctx.seq == 1 else rule.case(before)
        triggered = ctx.trigger in rule.triggers
        if triggered and names is None:
            names = bindings(ctx)
        length: Duration | None = None
        base = at
        if (triggered and rule.restarts(ctx.trigger, names or {})) or (
            rule.follows and before_case != after_case
        ):
            if current is not None:
                _close(current, closed, open_now)
            length = entry.first_length(at, data)
            start = _when(data.get(entry.from_key)) if entry.from_key else None
            base = start or at
        elif triggered and rule.is_met_by(ctx.trigger, names or {}):
            if ahead_of_period(rule, current, at):
                continue  # a calendar duty is met in its own period, not ahead of it
            if current is not None:
                _close(current, closed, open_now)
                if rule.anchor == "due":
                    base = current.due_at
            length = entry.next_length(at, data)
        elif missed_id is not None and current is None:
            missed = next((d for d in ctx.snapshot.deadlines if d.id == missed_id), None)
            if missed is not None and missed.name == rule.name:
                base = missed.due_at
                length = entry.next_length(base, data)
        if length is not None:
            _open(rule, entry, ctx, base, length, opened, open_now)


def _close(deadline: Deadline, closed: list[str], open_now: dict[str, Deadline]) -> None:
    closed.append(deadline.id)
    del open_now[deadline.id]


def _open(
    rule: RollingRule,
    entry: Cadence,
    ctx: Context,
    base: datetime,
    length: Duration,
    opened: list[Deadline],
    open_now: dict[str, Deadline],
) -> None:
    due = length.after(base, ctx.calendar)
    text = str(length)
    if due < ctx.at:  # already overdue when it opens: due now, and the rule says so
        due, text = ctx.at, text + _OVERDUE
    deadline = Deadline(
        id=f"{ctx.workflow_id}:{ctx.seq}:{rule.name}",
        workflow_id=ctx.workflow_id,
        name=rule.name,
        state=None,
        opened_at=ctx.at,
        due_at=due,
        rule=text,
        breach_trigger=None,
        clause=entry.clause or rule.clause,
        notify=rule.notify,
        opened_seq=ctx.seq,
    )
    opened.append(deadline)
    open_now[deadline.id] = deadline


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
