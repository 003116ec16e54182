"""Compiled effects: what one transition writes from one state, worked out once as a flat
tuple of steps.

:func:`qaflow._effects.collect` is the general interpreter: per command it looks up the
destination state, works out whether the command leaves its source, walks the transition's
effects and the destination's deadlines and ``on_enter`` effects, dispatching each through
:data:`~qaflow._effects.HANDLERS`, and calls every vocabulary update through its wrapper.
None of that depends on the command, only on the spec, the transition and its source, so
:func:`compile_program` does it once, for the live command's plan (:mod:`qaflow._plans`):
the result is a tuple of ``(op, a, b)`` steps in exactly the order ``collect`` runs them,
with each vocabulary update as its function and arguments (called directly), a state's
deadline rules with their fixed duration and its text worked out, and, for a command that
builds no notification or task rows (``rows=False``: an engine in simulation mode), no
:class:`~qaflow.spec.Notify` or :class:`~qaflow.spec.AddTask` step at all (with ``rows``
off they do nothing). :func:`run_program` runs the steps; what depends on the command
(a breach's deadline, the effects' own computation) still happens per command.

The general interpreter stays the reference (replay and verify use it); tests check that a
compiled program writes what ``collect`` writes, for every shipped spec and for generated
escalation ladders.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from qaflow._build import new_deadline
from qaflow._effects import HANDLERS, Outputs, _unknown, open_deadline
from qaflow._rolling import advance as advance_rolling
from qaflow._specparts import call_with, entry_parts
from qaflow.calendar import Duration, WorkingCalendar
from qaflow.spec import (
    AddTask,
    CloseDeadline,
    Context,
    DeadlineRule,
    Effect,
    MachineSpec,
    Notify,
    OpenDeadline,
    TransitionSpec,
    Update,
)

__all__ = [
    "CALL",
    "CLOSE_ALL",
    "CLOSE_NAMED",
    "CLOSE_STATE",
    "OPEN",
    "ROLLING",
    "UPDATE",
    "Op",
    "Opening",
    "compile_program",
    "run_program",
    "updates_only",
]

UPDATE: Final = 0
"""``(UPDATE, fn, arg)``: ``ctx.data.update(fn(ctx, arg))`` (an :class:`Update`)."""
CLOSE_NAMED: Final = 1
"""``(CLOSE_NAMED, name, None)``: close every open deadline called ``name``."""
CLOSE_STATE: Final = 2
"""``(CLOSE_STATE, state, None)``: close every open deadline of ``state`` (leaving it)."""
OPEN: Final = 3
"""``(OPEN, opening, state)``: open a deadline (``state`` ``None``: the workflow's)."""
CLOSE_ALL: Final = 4
"""``(CLOSE_ALL, None, None)``: close every open deadline (a terminal state)."""
ROLLING: Final = 5
"""``(ROLLING, rules, None)``: move the spec's rolling deadlines."""
CALL: Final = 6
"""``(CALL, handler, effect)``: ``handler(effect, ctx, out)``, the general handler."""

Op = tuple[int, Any, Any]

_UTC: Final = UTC
_DATETIME: Final = datetime
_new_deadline: Final = new_deadline  # a static, not a module-dict look-up per deadline


class Opening:
    """A deadline rule ready to open: its duration and the duration's text worked out once
    when the rule's duration is fixed (``duration`` ``None``: computed per command), and the
    rule's fields and the spec's calendar read once, so opening one reads no attrs object.

    ``working_days``: the fixed duration's count when it is in working days (else ``-1``): a
    command in UTC then asks the calendar directly, as :meth:`Duration.after` would.
    """

    __slots__ = (
        "breach_trigger",
        "calendar",
        "clause",
        "duration",
        "from_key",
        "name",
        "notify",
        "rule",
        "text",
        "working_days",
    )

    def __init__(self, rule: DeadlineRule, calendar: WorkingCalendar) -> None:
        self.rule = rule
        fixed = rule.duration if isinstance(rule.duration, Duration) else None
        self.duration: tuple[Duration, str] | None = None if fixed is None else (fixed, str(fixed))
        self.text = "" if fixed is None else str(fixed)
        self.working_days = fixed.amount if fixed is not None and fixed.unit == "WD" else -1
        self.calendar = calendar
        self.name = rule.name
        self.breach_trigger = rule.breach_trigger
        self.clause = rule.clause
        self.notify = rule.notify
        self.from_key = rule.from_key


def _open(opening: Opening, ctx: Context, out: Outputs, state: str | None) -> None:
    """:func:`~qaflow._effects.open_deadline` of a compiled rule: the same deadline, with
    the rule's fields read from ``opening`` (a rule computed per command, or running from
    a data key, goes to ``open_deadline`` itself)."""
    fixed = opening.duration
    if fixed is None or opening.from_key is not None:
        open_deadline(opening.rule, ctx, out, state, fixed)
        return
    at = out.at  # the command's time (Outputs carries the context's own)
    days = opening.working_days
    if days >= 0 and type(at) is _DATETIME and at.tzinfo is _UTC:
        due = opening.calendar.add_working_days(at, days)
    else:
        due = fixed[0].after(at, opening.calendar)
    name = opening.name
    out.close_in(state, name)
    seq = out.seq
    wid: str = ctx.snapshot.workflow_id
    did = f"{wid}:{seq}:{name}"
    deadline = _new_deadline(
        did, wid, name, state, at, due if due >= at else at, opening.text,
        opening.breach_trigger, opening.clause, opening.notify, seq,
    )  # fmt: skip
    out.opened.append(deadline)
    out.open_now[did] = deadline


def _refuse_unknown(effect: object, ctx: Context, out: Outputs) -> None:
    raise _unknown(effect, f"{ctx.trigger}.effects")


def _compile_effects(
    effects: tuple[Effect, ...], dest: str, rows: bool, calendar: WorkingCalendar, ops: list[Op]
) -> None:
    for effect in effects:
        kind = type(effect)
        if kind is Update:
            fn, arg = entry_parts(effect.fn) or (call_with, effect.fn)  # type: ignore[union-attr]
            ops.append((UPDATE, fn, arg))
        elif kind is Notify or kind is AddTask:
            if rows:  # without rows a notice or a task writes nothing (see Outputs)
                ops.append((CALL, HANDLERS[kind], effect))
        elif kind is CloseDeadline:
            ops.append((CLOSE_NAMED, effect.name, None))  # type: ignore[union-attr]
        elif kind is OpenDeadline:
            scope = dest if effect.scope == "state" else None  # type: ignore[union-attr]
            ops.append((OPEN, Opening(effect.rule, calendar), scope))  # type: ignore[union-attr]
        else:  # ExtendDeadline, Derived: their general handler; an unknown type: refused
            ops.append((CALL, HANDLERS.get(kind, _refuse_unknown), effect))


def compile_program(
    spec: MachineSpec, transition: TransitionSpec, source: str, rows: bool, breach: bool = False
) -> tuple[Op, ...]:
    """The steps :func:`~qaflow._effects.collect` takes for ``transition`` from ``source``
    (after a breach's deadline, which depends on the command), in its order.

    ``()`` for an internal transition without effects on a spec without rolling deadlines,
    unless the command is a ``breach`` (it carries a ``deadline_id``): the interpreter then
    writes only its event and data, running no effect step at all.
    """
    if transition.dest is None and not transition.effects and not spec.rolling and not breach:
        return ()
    ops: list[Op] = []
    dest_name = transition.dest_from(source)
    dest = spec.state(dest_name)
    leaving = transition.leaves(source)
    if leaving:
        ops.append((CLOSE_STATE, source, None))
    calendar = spec.calendar
    _compile_effects(transition.effects, dest_name, rows, calendar, ops)
    if leaving:
        ops.extend((OPEN, Opening(rule, calendar), dest_name) for rule in dest.deadlines)
        _compile_effects(dest.on_enter, dest_name, rows, calendar, ops)
    if dest.terminal:
        ops.append((CLOSE_ALL, None, None))
    elif spec.rolling:
        ops.append((ROLLING, spec.rolling, None))
    return tuple(ops)


def updates_only(ops: tuple[Op, ...]) -> bool:
    """Whether every step is an update (no deadline, notice or task: no :class:`Outputs`)."""
    return all(op[0] == UPDATE for op in ops)


def run_program(ops: tuple[Op, ...], ctx: Context, out: Outputs) -> None:
    """Run compiled steps against the command's context, gathering rows in ``out``."""
    for op, a, b in ops:
        if op == UPDATE:
            ctx.data.update(a(ctx, b))
        elif op == CLOSE_NAMED:
            open_now = out.open_now
            if open_now:
                for did, d in list(open_now.items()):
                    if d.name == a:
                        out.close(did)
        elif op == OPEN:
            _open(a, ctx, out, b)
        elif op == CLOSE_STATE:
            out.close_in(a)
        elif op == CLOSE_ALL:
            for did in list(out.open_now):
                out.close(did)
        elif op == ROLLING:
            advance_rolling(a, ctx, out.opened, out.closed, out.open_now)
        else:
            handler: Callable[[Any, Context, Outputs], None] = a
            handler(b, ctx, out)
