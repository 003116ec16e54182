"""The one exception hierarchy of qaflow.

Every error qaflow raises on purpose derives from :class:`QAFlowError` and from the builtin
that suits it, so callers may catch either::

    QAFlowError
    ├── TransitionNotAllowed   (also RuntimeError)  trigger not allowed in the current state
    ├── GuardFailed            (also RuntimeError)  a policy condition is not met
    ├── PermissionDenied       (also PermissionError) the actor's role may not fire it
    ├── ValidationError        (also ValueError)    a field's value is out of range or malformed
    ├── ConcurrencyError       (also RuntimeError)  a write at a stale version, or a key reused
    ├── UnknownWorkflow        (also LookupError)   no workflow with that id
    ├── PolicyError            (also ValueError)    a policy or machine definition is invalid
    ├── IntegrityError         (also RuntimeError)  the stored event log fails verification
    └── SchemaError            (also RuntimeError)  a database's schema is newer than this qaflow

Each error carries its context as keyword-only attributes and builds its message once.
Messages name what was wrong and what would have been accepted; they never quote free-text
payload contents, which may hold personal data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Final

__all__ = [
    "MISSING",
    "ConcurrencyError",
    "GuardFailed",
    "IntegrityError",
    "PermissionDenied",
    "PolicyError",
    "PolicyProblem",
    "QAFlowError",
    "SchemaError",
    "TransitionNotAllowed",
    "UnknownWorkflow",
    "ValidationError",
    "shown_value",
]


class _Missing(Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing.MISSING
"""Stands for a value that is absent (a key not given), distinct from ``None``."""


class QAFlowError(Exception):
    """Base of every error qaflow raises on purpose."""


class TransitionNotAllowed(QAFlowError, RuntimeError):
    """The trigger is not allowed in the workflow's current state."""

    def __init__(
        self, *, workflow_id: str, state: str, trigger: str, allowed: Iterable[str]
    ) -> None:
        self.workflow_id = workflow_id
        self.state = state
        self.trigger = trigger
        self.allowed = tuple(sorted(allowed))
        shown = ", ".join(repr(t) for t in self.allowed) or "none (terminal state)"
        super().__init__(
            f"trigger {trigger!r} is not allowed in state {state!r} of workflow "
            f"{workflow_id!r}; allowed triggers: {shown}"
        )


class GuardFailed(QAFlowError, RuntimeError):
    """A condition the policy puts on a transition is not met."""

    def __init__(
        self, *, workflow_id: str, trigger: str, condition: str, clause: str | None
    ) -> None:
        self.workflow_id = workflow_id
        self.trigger = trigger
        self.condition = condition
        self.clause = clause
        cited = f" ({clause})" if clause else ""
        super().__init__(
            f"cannot fire {trigger!r} on workflow {workflow_id!r}: requires {condition}{cited}"
        )


class PermissionDenied(QAFlowError, PermissionError):
    """The actor may not fire this trigger."""

    def __init__(
        self,
        *,
        workflow_id: str,
        trigger: str,
        actor_id: str,
        role: str,
        allowed_roles: Iterable[str],
        reason: str | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        self.trigger = trigger
        self.actor_id = actor_id
        self.role = role
        self.allowed_roles = tuple(sorted(allowed_roles))
        self.reason = reason
        why = reason or ("allowed roles: " + ", ".join(repr(r) for r in self.allowed_roles))
        super().__init__(
            f"actor {actor_id!r} with role {role!r} may not fire {trigger!r} on workflow "
            f"{workflow_id!r}; {why}"
        )


class ValidationError(QAFlowError, ValueError):
    """A value is malformed or outside what is accepted."""

    def __init__(self, *, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        shown = value if isinstance(value, (int, float, bool, type(None))) else type(value).__name__
        if isinstance(value, str) and len(value) <= 40:
            shown = repr(value)
        super().__init__(f"{field!r} must be {expected} (got {shown})")


class ConcurrencyError(QAFlowError, RuntimeError):
    """A write was made against a stale version, or an idempotency key was reused."""

    def __init__(
        self,
        *,
        workflow_id: str,
        expected_version: int | None,
        actual_version: int,
        detail: str = "",
    ) -> None:
        self.workflow_id = workflow_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        extra = f"; {detail}" if detail else ""
        super().__init__(
            f"workflow {workflow_id!r} is at version {actual_version}, "
            f"not {expected_version}{extra}"
        )


class UnknownWorkflow(QAFlowError, LookupError):
    """No workflow with that id exists in the store."""

    def __init__(self, *, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(f"no workflow with id {workflow_id!r}")

    def __str__(self) -> str:  # LookupError would quote the args tuple
        return str(self.args[0])


_MAX_SHOWN = 40


def shown_value(value: object) -> str:
    """How an error quotes a value: short scalars as ``repr``, anything else by its type.

    Text longer than a short name may be free text, which can hold personal data, so only its
    type and length are shown.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, bool | int | float | type(None)):
        return repr(value)
    if isinstance(value, str):
        if len(value) <= _MAX_SHOWN and value.isprintable():
            return repr(value)
        return f"text of {len(value)} characters"
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One thing wrong with a policy definition, and where it is.

    ``path`` is the key path inside the definition (``stages[2].escalated_by``; empty for the
    definition as a whole); ``found`` the offending value (``MISSING`` when a key is absent);
    ``expected`` what would have been accepted; ``hint`` a "did you mean" suggestion.
    """

    path: str
    expected: str
    found: object = MISSING
    clause: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        got = "" if self.found is MISSING else f" (got {shown_value(self.found)})"
        hint = f"; did you mean {self.hint!r}?" if self.hint else ""
        cited = f" ({self.clause})" if self.clause else ""
        return f"{where}{self.expected}{got}{hint}{cited}"


class PolicyError(QAFlowError, ValueError):
    """A policy, procedure file or machine definition is invalid.

    It names where (``source``: a file or a policy name; ``path``: the key path inside it),
    what was found and what is accepted, and the clause the rule comes from. Loading a file
    reports every problem at once: :attr:`problems` holds each, the message lists them all.
    The older form ``PolicyError("message", clause=...)`` is a single problem whose
    ``expected`` is the message.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        source: str | None = None,
        path: str = "",
        value: object = MISSING,
        expected: str | None = None,
        clause: str | None = None,
        hint: str | None = None,
        problems: Iterable[PolicyProblem] = (),
    ) -> None:
        found = tuple(problems)
        if not found:
            found = (
                PolicyProblem(
                    path=path,
                    expected=expected or message or "a valid definition",
                    found=value,
                    clause=clause,
                    hint=hint,
                ),
            )
        self.source = source
        self.problems = found
        first = found[0]
        self.path = first.path
        self.value = first.found
        self.expected = first.expected
        self.clause = first.clause
        self.hint = first.hint
        where = f"{source}: " if source else ""
        if len(found) == 1:
            text = f"{where}{first}"
        else:
            lines = "\n".join(f"  - {problem}" for problem in found)
            text = f"{where}{len(found)} problems:\n{lines}"
        super().__init__(text)


class IntegrityError(QAFlowError, RuntimeError):
    """The stored event log does not verify: a broken hash chain or a replay mismatch."""

    def __init__(self, *, workflow_id: str, seq: int | None, problem: str) -> None:
        self.workflow_id = workflow_id
        self.seq = seq
        self.problem = problem
        at = f" at event {seq}" if seq is not None else ""
        super().__init__(f"workflow {workflow_id!r} fails verification{at}: {problem}")


class SchemaError(QAFlowError, RuntimeError):
    """A database was written by a newer qaflow: its schema version is unknown here."""

    def __init__(self, *, found: int, supported: int, store: str) -> None:
        self.found = found
        self.supported = supported
        self.store = store
        super().__init__(
            f"the {store} database has schema version {found}; this qaflow knows versions "
            f"up to {supported} (upgrade qaflow to open it)"
        )
