"""What a council's timescale file puts on an event besides deadlines: ``[[requires]]``
(a condition, else the event is refused) and ``[[tasks]]`` (tasks the event opens).

Most of a timescale file is deadlines (what must happen by when). A few clauses are not
deadlines but conditions on an event: clause BK-TS-05 says the *last* Child in
Need review "will be chaired by a manager to ensure clear management oversight on case
closures", so a CIN case is closed only after a review a manager chaired. Such a rule is
written in the file, not in code, and becomes a guard on the event's transition (refused
with the rule's clause, nothing written)::

    [[requires]]
    event = "case_closed"          # an event of the machine
    clause = "BK-TS-05"
    condition = "the last CIN review chaired by a manager"   # said in the refusal
    when = 'data.status == "cin"'  # optional: where the rule applies (CEL)
    needs = 'has(data.last_review_chaired) && data.last_review_chaired'   # CEL

Clause BX-MOD-07 says performance issues found in a moderation "are recorded in personal
supervision notes": the review in supervision is the supervision workflow's
``audit_reviewed`` event, and a ``[[tasks]]`` entry opens the note task when it holds::

    [[tasks]]
    event = "audit_reviewed"
    clause = "BX-MOD-07"
    when = 'payload.kind == "moderation" && has(payload.performance_issue) && ...'
    kind = "personal_supervision_note"
    owner_role = "team_manager"
    within = "5 WD"                # optional: undated without it
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import attrs

from qaflow import vocabulary
from qaflow.errors import PolicyError
from qaflow.procedure import Node
from qaflow.procedure.expr import compile_expression
from qaflow.spec import GUARD_NAMES, AddTask, Context, Derived, Effect, Guard, bindings

__all__ = [
    "EventTask",
    "Requirement",
    "read_event_tasks",
    "read_requirements",
    "requirement_guards",
    "task_effects",
]


@attrs.frozen
class Requirement:
    """An event allowed only when ``needs`` holds (where ``when`` holds, or always)."""

    event: str
    clause: str
    condition: str
    needs: str
    when: str | None = None

    @property
    def expr(self) -> str:
        """The guard's CEL expression: ``needs``, or ``!(when) || (needs)``."""
        return self.needs if self.when is None else f"!({self.when}) || ({self.needs})"


def read_requirements(root: Node, triggers: Collection[str]) -> tuple[Requirement, ...]:
    """The file's ``[[requires]]`` tables (problems recorded on ``root``'s list)."""
    out: list[Requirement] = []
    for node in root.tables("requires", required=False):
        event = node.choice("event", sorted(triggers), what="an event of the machine")
        clause = node.text("clause")
        condition = node.text("condition")
        needs = node.text("needs")
        when = node.text("when", default=None)
        node.finish()
        valid = _checked(node, "needs", needs) & _checked(node, "when", when)
        if not valid or None in (event, clause, condition, needs):
            continue
        out.append(Requirement(event, clause, condition, needs, when))
    return tuple(out)


def requirement_guards(requirements: Collection[Requirement], event: str) -> tuple[Guard, ...]:
    """The guards the file's requirements put on ``event``'s transition."""
    return tuple(
        Guard(r.condition, r.clause, expr=r.expr) for r in requirements if r.event == event
    )


@attrs.frozen
class EventTask:
    """A task an event opens (where ``when`` holds, or always): kind, owner, due, clause."""

    event: str
    clause: str
    kind: str
    owner_role: str
    within: str | None = None
    when: str | None = None


def _checked(node: Node, key: str, source: str | None) -> bool:
    if source is None:
        return True
    try:
        compile_expression(source, GUARD_NAMES, path=node.key_path(key))
    except PolicyError:
        node.problem(key, "a CEL condition over data and payload", source)
        return False
    return True


def read_event_tasks(
    root: Node, triggers: Collection[str], roles: Collection[str], what: str = "a known role"
) -> tuple[EventTask, ...]:
    """The file's ``[[tasks]]`` tables (problems recorded on ``root``'s list); a task's owner
    is one of ``roles`` (the council's declared roles, as a rule's ``notify``)."""
    out: list[EventTask] = []
    for node in root.tables("tasks", required=False):
        event = node.choice("event", sorted(triggers), what="an event of the machine")
        clause = node.text("clause")
        kind = node.ident("kind")
        owner = node.choice("owner_role", sorted(roles), what=what)
        within = node.duration("within", default=None, clause=clause)
        when = node.text("when", default=None)
        node.finish()
        if not _checked(node, "when", when) or None in (event, clause, kind, owner):
            continue
        due = None if within is None else str(within)
        out.append(EventTask(event, clause, kind, owner, due, when))
    return tuple(out)


def task_effects(tasks: Collection[EventTask], event: str) -> tuple[Effect, ...]:
    """The effect opening the tasks the file puts on ``event`` (none without any)."""
    mine = [[t.clause, t.kind, t.owner_role, t.within, t.when] for t in tasks if t.event == event]
    return (Derived(use="timescales.tasks", args={"tasks": mine}),) if mine else ()


@vocabulary.effects("timescales.tasks")
def _tasks(ctx: Context, args: Mapping[str, Any]) -> list[Effect]:
    """The file's tasks on this event whose ``when`` holds for it."""
    out: list[Effect] = []
    for clause, kind, owner, within, when in args["tasks"]:
        if when is None or compile_expression(when, GUARD_NAMES).test(bindings(ctx)):
            out.append(AddTask(kind, owner, within, clause))
    return out
