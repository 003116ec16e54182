"""The effects interpreter: what a transition's effects write, gathered into one step.

:func:`run_effects` runs a transition's (or a state's) effects against a command's context:
data updates, outbox rows, tasks, deadlines opened, closed and extended. The rows are
gathered in :class:`Outputs`; the engine turns them into the step the store commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from qaflow.errors import PolicyError
from qaflow.records import Deadline, Notification, Task, WorkflowSnapshot
from qaflow.spec import (
    AddTask,
    CloseDeadline,
    Context,
    DeadlineRule,
    Derived,
    Effect,
    ExtendDeadline,
    Notify,
    OpenDeadline,
    Update,
    resolve_duration,
)

__all__ = ["Outputs", "add_deadline", "open_deadline", "run_effects", "snapshot_deadline"]


def run_effects(
    effects: Iterable[Effect], ctx: Context, out: Outputs, open_now: dict[str, Deadline]
) -> None:
    for effect in effects:
        if isinstance(effect, Update):
            ctx.data.update(effect.fn(ctx))
        elif isinstance(effect, Notify):
            if effect.applies(ctx):  # a conditional notice ('when') goes only when it holds
                out.notify_roles(ctx, effect.roles, effect.reason, effect.clause)
        elif isinstance(effect, AddTask):
            due = effect.within.after(ctx.at, ctx.calendar) if effect.within else None
            owner = ctx.data.get(f"{effect.owner_role}_id")
            out.tasks.append(
                Task(
                    id=f"{ctx.workflow_id}:{ctx.seq}:t{len(out.tasks) + 1}",
                    workflow_id=ctx.workflow_id,
                    seq=ctx.seq,
                    kind=effect.kind,
                    owner_role=effect.owner_role,
                    owner_id=owner if isinstance(owner, str) else None,
                    due_at=due,
                    clause=effect.clause,
                    created_at=ctx.at,
                )
            )
        elif isinstance(effect, OpenDeadline):
            scope = ctx.dest if effect.scope == "state" else None
            open_deadline(effect.rule, ctx, out, open_now, scope)
        elif isinstance(effect, CloseDeadline):
            for did, d in list(open_now.items()):
                if d.name == effect.name:
                    out.closed.append(did)
                    del open_now[did]
        elif isinstance(effect, ExtendDeadline):
            for did, d in list(open_now.items()):
                if d.name == effect.name:
                    out.closed.append(did)
                    del open_now[did]
                    by = resolve_duration(effect.by, ctx)
                    due = by.after(d.due_at, ctx.calendar)
                    add_deadline(
                        ctx,
                        out,
                        open_now,
                        d.name,
                        d.state,
                        due,
                        f"{d.rule} + {by}",
                        d.breach_trigger,
                        d.clause,
                        d.notify,
                    )
        elif isinstance(effect, Derived):
            run_effects(effect.fn(ctx), ctx, out, open_now)
        else:  # pragma: no cover - the Effect union is closed
            raise PolicyError(f"unknown effect {effect!r}")


def open_deadline(
    rule: DeadlineRule,
    ctx: Context,
    out: Outputs,
    open_now: dict[str, Deadline],
    state: str | None,
) -> None:
    duration = resolve_duration(rule.duration, ctx)
    start = ctx.at
    if rule.from_key is not None:
        raw = ctx.data.get(rule.from_key)
        if isinstance(raw, str):
            start = datetime.fromisoformat(raw)
    due = duration.after(start, ctx.calendar)
    for did, d in list(open_now.items()):
        if d.name == rule.name and d.state == state:
            out.closed.append(did)
            del open_now[did]
    add_deadline(
        ctx,
        out,
        open_now,
        rule.name,
        state,
        due,
        str(duration),
        rule.breach_trigger,
        rule.clause,
        rule.notify,
    )


def add_deadline(
    ctx: Context,
    out: Outputs,
    open_now: dict[str, Deadline],
    name: str,
    state: str | None,
    due: datetime,
    rule: str,
    breach_trigger: str | None,
    clause: str | None,
    notify: tuple[str, ...],
) -> None:
    deadline = Deadline(
        id=f"{ctx.workflow_id}:{ctx.seq}:{name}",
        workflow_id=ctx.workflow_id,
        name=name,
        state=state,
        opened_at=ctx.at,
        due_at=max(due, ctx.at),
        rule=rule,
        breach_trigger=breach_trigger,
        clause=clause,
        notify=notify,
        opened_seq=ctx.seq,
    )
    out.opened.append(deadline)
    open_now[deadline.id] = deadline


def snapshot_deadline(snapshot: WorkflowSnapshot, deadline_id: str) -> Deadline:
    for d in snapshot.deadlines:
        if d.id == deadline_id:
            return d
    raise KeyError(deadline_id)


class Outputs:
    """The rows one command produces, gathered while its effects run."""

    __slots__ = ("at", "breached", "closed", "notifications", "opened", "seq", "tasks", "wid")

    def __init__(self, wid: str, seq: int, at: datetime) -> None:
        self.wid = wid
        self.seq = seq
        self.at = at
        self.opened: list[Deadline] = []
        self.closed: list[str] = []
        self.breached: list[str] = []
        self.notifications: list[Notification] = []
        self.tasks: list[Task] = []

    def notify(self, ctx: Context, role: str, reason: str, clause: str | None) -> None:
        self.notify_roles(ctx, (role,), reason, clause)

    def notify_roles(
        self, ctx: Context, roles: tuple[str, ...], reason: str, clause: str | None
    ) -> None:
        """One outbox row per role, to the person the workflow records as ``<role>_id``."""
        data = ctx.data
        wid, seq, at = self.wid, self.seq, self.at
        notifications = self.notifications
        for role in roles:
            rid = data.get(f"{role}_id")
            notifications.append(
                Notification(  # id, workflow_id, seq, recipient_role, recipient_id, reason, ...
                    f"{wid}:{seq}:n{len(notifications) + 1}",
                    wid,
                    seq,
                    role,
                    rid if isinstance(rid, str) else None,
                    reason,
                    clause,
                    at,
                )
            )
