"""The effects interpreter: what one command's transition writes, gathered into rows.

:func:`collect` runs everything a command does besides choosing its transition: a breached
deadline is marked, leaving a state closes its deadlines, the transition's effects run, entering
a state opens its deadlines and runs its ``on_enter`` effects, rolling deadlines move, and a
terminal state closes the rest. The rows are gathered in :class:`Outputs`; the engine turns
them into the step the store commits.

Each effect type has one handler in :data:`HANDLERS` (a dispatch table, not an ``isinstance``
ladder). A spec naming an effect type without a handler is refused when it is registered
(:func:`check_effects`); one produced at run time by a :class:`~qaflow.spec.Derived` chooser
is refused when the command is computed. Both raise :class:`~qaflow.errors.PolicyError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Final

from qaflow._build import new_deadline, new_notification, new_task
from qaflow._rolling import advance as advance_rolling
from qaflow.calendar import Duration
from qaflow.errors import PolicyError
from qaflow.records import SYSTEM, Deadline, Notification, Task
from qaflow.spec import (
    AddTask,
    CloseDeadline,
    Context,
    DeadlineRule,
    Derived,
    Effect,
    ExtendDeadline,
    MachineSpec,
    Notify,
    OpenDeadline,
    TransitionSpec,
    Update,
    resolve_duration,
)

__all__ = [
    "HANDLERS",
    "Outputs",
    "add_deadline",
    "check_effects",
    "collect",
    "open_deadline",
    "run_effects",
]


_NO_ROWS: Final[Any] = ()
"""The rows a command does not gather: empty, and not appendable."""


class Outputs:
    """The rows one command produces, gathered while its effects run.

    ``open_now`` is the workflow's open deadlines as the effects leave them (by id): it
    starts as the snapshot's and becomes the new snapshot's. ``rows=False`` (replay of the
    snapshot alone, or a lean command of an engine in simulation mode) gathers no
    notifications or tasks: nothing in a snapshot depends on them.
    ``tuples=True`` (verify's fold, :mod:`qaflow._fold`) gathers them as plain tuples of the
    record's fields in ``note_rows`` and ``task_rows`` instead of building records: the
    same values, compared with the stored rows without a record in between.
    """

    __slots__ = (
        "at",
        "breached",
        "closed",
        "note_rows",
        "notifications",
        "open_now",
        "opened",
        "rows",
        "seq",
        "task_rows",
        "tasks",
        "tuples",
    )

    def __init__(
        self,
        seq: int,
        at: datetime,
        open_now: dict[str, Deadline],
        rows: bool = True,
        tuples: bool = False,
    ) -> None:
        self.seq = seq
        self.at = at
        self.open_now = open_now
        self.rows = rows
        self.opened: list[Deadline] = []
        self.closed: list[str] = []
        self.breached: list[str] = []
        self.tuples = tuples
        # Only the rows a command gathers get a list; the others stay an empty tuple, which
        # reads as empty and refuses an append (every append is behind the same flags).
        records, plain = rows and not tuples, rows and tuples
        # Typed as either, not as a list: a compiled build (mypyc) checks attribute types.
        self.notifications: list[Notification] | tuple[()] = [] if records else _NO_ROWS
        self.tasks: list[Task] | tuple[()] = [] if records else _NO_ROWS
        self.note_rows: list[tuple[Any, ...]] | tuple[()] = [] if plain else _NO_ROWS
        self.task_rows: list[tuple[Any, ...]] | tuple[()] = [] if plain else _NO_ROWS

    def close(self, deadline_id: str) -> None:
        """Close an open deadline (it leaves the snapshot; its row is marked closed)."""
        self.closed.append(deadline_id)
        del self.open_now[deadline_id]

    def close_where(self, test: Callable[[Deadline], bool]) -> None:
        """Close every open deadline for which ``test`` holds."""
        if not self.open_now:
            return
        for did, d in list(self.open_now.items()):
            if test(d):
                self.close(did)

    def close_in(self, state: str | None, name: str | None = None) -> None:
        """Close every open deadline of ``state`` (and called ``name``, if given).

        :meth:`close_where` for the two tests every command makes, without a closure.
        """
        if not self.open_now:
            return
        for did, d in list(self.open_now.items()):
            if d.state == state and (name is None or d.name == name):
                self.close(did)

    def notify_roles(
        self, ctx: Context, roles: tuple[str, ...], reason: str, clause: str | None
    ) -> None:
        """One outbox row per role, to the person the workflow records as ``<role>_id``."""
        if not self.rows:
            return
        wid = ctx.workflow_id
        rows: Any = self.note_rows if self.tuples else self.notifications
        for role in roles:
            rid = ctx.data.get(f"{role}_id")
            fields = (
                f"{wid}:{self.seq}:n{len(rows) + 1}",
                wid,
                self.seq,
                role,
                rid if isinstance(rid, str) else None,
                reason,
                clause,
                self.at,
            )
            rows.append(fields if self.tuples else new_notification(*fields))


# --- one handler per effect type -------------------------------------------------------------

Handler = Callable[[Any, Context, Outputs], None]


def _update(effect: Update, ctx: Context, out: Outputs) -> None:
    ctx.data.update(effect.fn(ctx))


def _notify(effect: Notify, ctx: Context, out: Outputs) -> None:
    if out.rows and effect.applies(ctx):  # a conditional notice ('when') goes only when it holds
        out.notify_roles(ctx, effect.roles, effect.reason, effect.clause)


def _add_task(effect: AddTask, ctx: Context, out: Outputs) -> None:
    if not out.rows:
        return
    owner = ctx.data.get(f"{effect.owner_role}_id")
    wid = ctx.snapshot.workflow_id
    rows: Any = out.task_rows if out.tuples else out.tasks
    fields = (
        f"{wid}:{ctx.seq}:t{len(rows) + 1}",
        wid,
        ctx.seq,
        effect.kind,
        effect.owner_role,
        owner if isinstance(owner, str) else None,
        effect.within.after(ctx.at, ctx.calendar) if effect.within else None,
        effect.clause,
        ctx.at,
    )
    rows.append(fields if out.tuples else new_task(*fields))


def _open_deadline(effect: OpenDeadline, ctx: Context, out: Outputs) -> None:
    open_deadline(effect.rule, ctx, out, ctx.dest if effect.scope == "state" else None)


def _close_deadline(effect: CloseDeadline, ctx: Context, out: Outputs) -> None:
    out.close_where(lambda d: d.name == effect.name)


def _extend_deadline(effect: ExtendDeadline, ctx: Context, out: Outputs) -> None:
    for did, d in list(out.open_now.items()):
        if d.name != effect.name:
            continue
        out.close(did)
        by = resolve_duration(effect.by, ctx)
        add_deadline(
            ctx,
            out,
            name=d.name,
            state=d.state,
            due=by.after(d.due_at, ctx.calendar),
            rule=f"{d.rule} + {by}",
            breach_trigger=d.breach_trigger,
            clause=d.clause,
            notify=d.notify,
        )


def _derived(effect: Derived, ctx: Context, out: Outputs) -> None:
    run_effects(effect.fn(ctx), ctx, out)


HANDLERS: dict[type[Any], Handler] = {
    Update: _update,
    Notify: _notify,
    AddTask: _add_task,
    OpenDeadline: _open_deadline,
    CloseDeadline: _close_deadline,
    ExtendDeadline: _extend_deadline,
    Derived: _derived,
}
"""The handler of each effect type; a type missing here is refused (:class:`PolicyError`)."""


def _unknown(effect: object, path: str) -> PolicyError:
    return PolicyError(
        path=path,
        value=type(effect).__name__,
        expected="an effect type the engine handles: "
        + ", ".join(sorted(t.__name__ for t in HANDLERS)),
    )


def _handler(effect: object, path: str) -> Handler:
    handler = HANDLERS.get(type(effect))
    if handler is None:
        raise _unknown(effect, path)
    return handler


def run_effects(effects: Iterable[Effect], ctx: Context, out: Outputs) -> None:
    """Run ``effects`` in order against the command's context, gathering rows in ``out``."""
    for effect in effects:
        handler = HANDLERS.get(type(effect))
        if handler is None:
            raise _unknown(effect, f"{ctx.trigger}.effects")
        handler(effect, ctx, out)


def check_effects(spec: MachineSpec) -> None:
    """Refuse a spec naming an effect type the engine has no handler for (at registration)."""
    for t in spec.transitions:
        for effect in t.effects:
            _handler(effect, f"transitions[{t.trigger}].effects")
    for s in spec.states:
        for effect in s.on_enter:
            _handler(effect, f"states[{s.name}].on_enter")


# --- deadlines -------------------------------------------------------------------------------


def open_deadline(
    rule: DeadlineRule,
    ctx: Context,
    out: Outputs,
    state: str | None,
    fixed: tuple[Duration, str] | None = None,
) -> None:
    """Open ``rule``'s deadline (replacing an open one of the same name and scope).

    ``fixed`` is the rule's duration and its text when a compiled plan worked them out
    once (a fixed duration); otherwise the duration is resolved against ``ctx``.
    """
    if fixed is None:
        duration = resolve_duration(rule.duration, ctx)
        text = str(duration)
    else:
        duration, text = fixed
    start = ctx.at
    if rule.from_key is not None:
        raw = ctx.data.get(rule.from_key)
        if isinstance(raw, str):
            start = datetime.fromisoformat(raw)
    out.close_in(state, rule.name)
    add_deadline(
        ctx,
        out,
        name=rule.name,
        state=state,
        due=duration.after(start, ctx.spec.calendar),
        rule=text,
        breach_trigger=rule.breach_trigger,
        clause=rule.clause,
        notify=rule.notify,
    )


def add_deadline(
    ctx: Context,
    out: Outputs,
    *,
    name: str,
    state: str | None,
    due: datetime,
    rule: str,
    breach_trigger: str | None,
    clause: str | None,
    notify: tuple[str, ...],
) -> None:
    """Add an open deadline (never due before the command) to the outputs and the snapshot."""
    wid, seq, at = ctx.snapshot.workflow_id, ctx.seq, ctx.at
    deadline = new_deadline(
        f"{wid}:{seq}:{name}", wid, name, state, at, due if due >= at else at, rule,
        breach_trigger, clause, notify, seq,
    )  # fmt: skip
    out.opened.append(deadline)
    out.open_now[deadline.id] = deadline


# --- one command -----------------------------------------------------------------------------


def collect(
    spec: MachineSpec,
    ctx: Context,
    transition: TransitionSpec | None,
    rows: bool = True,
    tuples: bool = False,
) -> Outputs:
    """Everything the command in ``ctx`` writes besides its event (``transition=None``: a
    recorded miss or a migration, which change no state); ``rows``, ``tuples``: see
    :class:`Outputs`."""
    deadlines = ctx.snapshot.deadlines
    out = Outputs(ctx.seq, ctx.at, {d.id: d for d in deadlines} if deadlines else {}, rows, tuples)
    breach_id = ctx.payload.get("deadline_id")
    if breach_id is not None and ctx.actor == SYSTEM and breach_id in out.open_now:
        missed = out.open_now.pop(breach_id)
        out.breached.append(breach_id)
        if transition is None:
            for role in missed.notify:
                out.notify_roles(ctx, (role,), f"deadline {missed.name!r} missed", missed.clause)
    dest = spec.state(ctx.dest)
    leaving = transition is not None and transition.leaves(ctx.source)
    if leaving:
        out.close_in(ctx.source)
    if transition is not None:
        run_effects(transition.effects, ctx, out)
    if leaving:
        for rule in dest.deadlines:
            open_deadline(rule, ctx, out, ctx.dest)
        run_effects(dest.on_enter, ctx, out)
    if dest.terminal:
        out.close_where(lambda d: True)
    elif spec.rolling:
        advance_rolling(spec.rolling, ctx, out.opened, out.closed, out.open_now)
    return out
