"""The one exception hierarchy of qaflow.

Every error qaflow raises on purpose derives from :class:`QAFlowError` and from the builtin
that suits it, so callers may catch either::

    QAFlowError
    ├── TransitionNotAllowed   (also RuntimeError)  trigger not allowed in the current state
    ├── GuardFailed            (also RuntimeError)  a policy condition is not met
    ├── PermissionDenied       (also PermissionError) the actor's role may not fire it
    ├── ValidationError        (also ValueError)    a field's value is out of range or malformed
    ├── ConcurrencyError       (also RuntimeError)  a write at a stale version, or a key reused
    │   └── IdempotencyConflict                     a key resent by another actor or payload
    ├── UnknownWorkflow        (also LookupError)   no workflow with that id
    ├── PolicyError            (also ValueError)    a policy or machine definition is invalid
    ├── IntegrityError         (also RuntimeError)  the stored event log fails verification
    └── StoreError             (also OSError)       the database cannot be used as it is
        ├── StoreBusy          (also TimeoutError)  locked by another writer: retry later
        ├── StoreUnavailable   (also ConnectionError) server unreachable or connection lost:
        │                                           nothing was written, retry later
        └── OutcomeUnknown     (also ConnectionError) connection lost during the commit:
                                                    written or not, read before resending

Each error carries its context as keyword-only attributes and builds its message once.
Messages name what was wrong and what would have been accepted; they never quote free-text
payload contents, which may hold personal data, and cap the length of any value they quote
(:func:`shown`), so a hostile megabyte-long id cannot flood a log or a terminal.
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
    "IdempotencyConflict",
    "IntegrityError",
    "OutcomeUnknown",
    "PermissionDenied",
    "PolicyError",
    "PolicyProblem",
    "QAFlowError",
    "StoreBusy",
    "StoreError",
    "StoreUnavailable",
    "TransitionNotAllowed",
    "UnknownWorkflow",
    "ValidationError",
    "shown",
    "shown_value",
]

_QUOTE_MAX = 60
_INT_MAX_DIGITS = 30


def shown(value: object, *, quote: bool = True) -> str:
    """How a message shows ``value``: capped, escaped, never free text unless ``quote``.

    Text is quoted (``repr``: control characters and lone surrogates escaped) when ``quote``
    is set and cut to about 60 characters; otherwise only its length is shown. Huge integers
    are described by their size (formatting one of over 4,300 digits would itself raise).
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > _INT_MAX_DIGITS * 3:
            return f"an integer of {value.bit_length()} bits"
        return repr(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        if not quote:
            return f"text of {len(value)} character(s)"
        text = repr(value[:_QUOTE_MAX])
        return text + "…" if len(value) > _QUOTE_MAX else text
    return type(value).__name__


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
        listed = ", ".join(repr(t) for t in self.allowed) or "none (terminal state)"
        super().__init__(
            f"trigger {shown(trigger)} is not allowed in state {shown(state)} of workflow "
            f"{shown(workflow_id)}; allowed triggers: {listed}"
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
            f"cannot fire {shown(trigger)} on workflow {shown(workflow_id)}: "
            f"requires {condition}{cited}"
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
        why = reason or (
            "allowed roles: " + (", ".join(repr(r) for r in self.allowed_roles) or "none")
        )
        super().__init__(
            f"actor {shown(actor_id)} with role {shown(role)} may not fire {shown(trigger)} "
            f"on workflow {shown(workflow_id)}; {why}"
        )


class ValidationError(QAFlowError, ValueError):
    """A value is malformed or outside what is accepted."""

    def __init__(self, *, field: str, value: object, expected: str, quote: bool = False) -> None:
        """``quote=True`` for values that are not free text (ids, options, times)."""
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{shown(field)} must be {expected} (got {shown(value, quote=quote)})")


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
            f"workflow {shown(workflow_id)} is at version {shown(actual_version)}, "
            f"not {shown(expected_version)}{extra}"
        )


class IdempotencyConflict(ConcurrencyError):
    """An idempotency key was resent with another actor, trigger or payload.

    A resend must be the same command (same actor, trigger and payload digest); the first
    result is never handed to anyone else. Nothing is written.
    """

    def __init__(self, *, workflow_id: str, actual_version: int, differs: str) -> None:
        self.differs = differs
        super().__init__(
            workflow_id=workflow_id,
            expected_version=None,
            actual_version=actual_version,
            detail=f"the idempotency key was first used with a different {differs}",
        )


class UnknownWorkflow(QAFlowError, LookupError):
    """No workflow with that id exists in the store."""

    def __init__(self, *, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(f"no workflow with id {shown(workflow_id)}")

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
    """The stored record does not verify: a broken chain, a replay or anchor mismatch.

    ``workflow_id`` is ``None`` for a problem of the whole store (its anchor).
    """

    def __init__(self, *, workflow_id: str | None, seq: int | None, problem: str) -> None:
        self.workflow_id = workflow_id
        self.seq = seq
        self.problem = problem
        at = f" at event {seq}" if seq is not None else ""
        what = "the store" if workflow_id is None else f"workflow {shown(workflow_id)}"
        super().__init__(f"{what} fails verification{at}: {problem}")


class StoreError(QAFlowError, OSError):
    """The database cannot be used: missing, not qaflow's, damaged, newer, or read-only.

    ``version`` is the schema version found, where one was.
    """

    def __init__(self, *, path: str, problem: str, version: int | None = None) -> None:
        self.path = path
        self.problem = problem
        self.version = version
        super().__init__(f"database {shown(path)}: {problem}")

    def __str__(self) -> str:  # OSError would show the args tuple
        return str(self.args[0])


class StoreBusy(StoreError, TimeoutError):
    """Another writer held the database lock past the busy timeout: retry the command.

    On PostgreSQL also a statement the server cancelled: a lock wait past ``lock_timeout``,
    a statement past ``statement_timeout``, or a cancel request. Nothing was written; the
    command can be resent as it was (with its idempotency key).
    """

    retryable = True


class StoreUnavailable(StoreError, ConnectionError):
    """The database server could not be reached, refused the connection (too many
    connections, starting up or shutting down), or dropped it before the command's commit
    was sent (a restart, an administrator ending the session): retry the command.

    Nothing was written, and the store's connections recover by themselves once the server
    is back; the command can be resent as it was.
    """

    retryable = True


class OutcomeUnknown(StoreError, ConnectionError):
    """The connection was lost after the command's commit was sent, and the store could
    not find out whether the server committed it (the server was not reachable again).

    The command was written in full or not at all, never in part. It is not marked
    retryable: resending blindly could apply it twice. Read the workflow (its version) first,
    or resend with the same idempotency key, which the store answers with the first result
    if it was written.
    """

    retryable = False
