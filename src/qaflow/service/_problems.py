"""RFC 9457 problem details from the qaflow error tree.

Each :class:`~qaflow.errors.QAFlowError` subclass maps to one status and one problem type;
the typed error's own attributes travel as extension members, so a caller can act on
``allowed`` triggers, the unmet ``condition`` and its ``clause``, or the ``actual_version``
without parsing text. Values that might be free text (personal data) are left out.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from qaflow.directory import DirectoryError, UnknownPerson
from qaflow.errors import (
    ConcurrencyError,
    GuardFailed,
    IntegrityError,
    OutcomeUnknown,
    PermissionDenied,
    PolicyError,
    QAFlowError,
    StoreBusy,
    StoreError,
    StoreUnavailable,
    TransitionNotAllowed,
    UnknownWorkflow,
    ValidationError,
    shown_value,
)
from qaflow.service._auth import AuthenticationFailed
from qaflow.service._http import OperatorRequired
from qaflow.service._report_scope import ReportScopeRefused

__all__ = [
    "PROBLEM_TYPES",
    "NotFound",
    "PreconditionFailed",
    "WorkflowIdUnavailable",
    "problem",
    "problem_from_error",
]

PROBLEM_JSON = "application/problem+json"


class PreconditionFailed(QAFlowError):
    """``If-Match`` named a version the workflow is no longer (or not yet) at (HTTP 412)."""

    def __init__(self, *, workflow_id: str, expected_version: int | None, actual_version: int):
        self.workflow_id = workflow_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            f"workflow {workflow_id!r} is at version {actual_version}, not {expected_version}"
        )


class NotFound(QAFlowError, LookupError):
    """No resource at that path (an unknown machine, policy or page)."""

    def __init__(self, *, what: str, value: str, known: tuple[str, ...] = ()) -> None:
        self.what = what
        self.value = value
        self.known = known
        shown = repr(value) if len(value) <= 40 else "(long value)"
        tail = f"; known: {', '.join(map(repr, known))}" if known else ""
        super().__init__(f"no {what} {shown}{tail}")

    def __str__(self) -> str:
        return str(self.args[0])


class WorkflowIdUnavailable(QAFlowError):
    """A start under an id that a workflow the caller may not see already holds (HTTP 409).

    Ids are one namespace, so such a start can never succeed; the answer says only that the
    id cannot be used. It is the same whatever the hidden workflow is (no version, machine,
    state or history), and it comes only after the whole command has been checked (the
    caller's role, the payload, the policy's conditions), so only a start that would have
    been written learns that much.
    """

    def __init__(self, *, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(
            f"workflow id {shown_value(workflow_id)} cannot be used to start a workflow; "
            "choose another id"
        )


#: Problem type suffix, title and status per error class (first match wins: order matters).
PROBLEM_TYPES: tuple[tuple[type[QAFlowError], str, str, int], ...] = (
    (AuthenticationFailed, "unauthenticated", "Not authenticated", 401),
    (PermissionDenied, "permission-denied", "Permission denied", 403),
    (OperatorRequired, "operator-required", "Operator role required", 403),
    (ReportScopeRefused, "report-scope", "Report outside the caller's scope", 403),
    (UnknownPerson, "unknown-person", "Caller not in the directory", 403),
    (UnknownWorkflow, "unknown-workflow", "Unknown workflow", 404),
    (NotFound, "not-found", "Not found", 404),
    (PreconditionFailed, "precondition-failed", "Version precondition failed", 412),
    (WorkflowIdUnavailable, "id-unavailable", "Workflow id not available", 409),
    (ConcurrencyError, "concurrency", "Concurrent change", 409),
    (TransitionNotAllowed, "transition-not-allowed", "Trigger not allowed in this state", 409),
    (GuardFailed, "guard-failed", "Policy condition not met", 422),
    (ValidationError, "validation", "Invalid value", 422),
    (PolicyError, "policy", "Policy or machine problem", 422),
    (DirectoryError, "directory", "Directory problem", 422),
    (IntegrityError, "integrity", "Stored log fails verification", 409),
    (StoreBusy, "store-busy", "Store busy: retry the request", 503),
    (StoreUnavailable, "store-unavailable", "Store unavailable: retry the request", 503),
    (OutcomeUnknown, "outcome-unknown", "Outcome unknown: read before resending", 500),
)
"""A store failure says what to do next: 503 (``retryable``, with ``Retry-After``) when
nothing was written and the request can be sent again as it was; 500 ``outcome-unknown``
when the commit was sent and its result could not be learnt, so the caller reads the
workflow's version (or resends with the same ``Idempotency-Key``) instead of resending
blindly. Their detail is the store's ``problem``, not where the database is."""

RETRY_AFTER_SECONDS = 1
"""What a 503 asks a client to wait before sending the request again."""

_FIELDS: dict[type[QAFlowError], tuple[str, ...]] = {
    PermissionDenied: ("workflow_id", "trigger", "actor_id", "role", "allowed_roles", "reason"),
    UnknownPerson: ("person_id",),
    OperatorRequired: ("person_id", "role"),
    ReportScopeRefused: ("person_id", "teams", "services"),
    UnknownWorkflow: ("workflow_id",),
    WorkflowIdUnavailable: ("workflow_id",),
    NotFound: ("what", "known"),
    PreconditionFailed: ("workflow_id", "expected_version", "actual_version"),
    ConcurrencyError: ("workflow_id", "expected_version", "actual_version"),
    TransitionNotAllowed: ("workflow_id", "state", "trigger", "allowed"),
    GuardFailed: ("workflow_id", "trigger", "condition", "clause"),
    ValidationError: ("field", "value", "expected"),
    PolicyError: ("clause",),
    IntegrityError: ("workflow_id", "seq", "problem"),
    AuthenticationFailed: ("problem",),
    StoreBusy: ("retryable",),
    StoreUnavailable: ("retryable",),
    OutcomeUnknown: ("retryable",),
}


def _safe(name: str, value: Any) -> Any:
    """A field fit to echo. Messages qaflow builds are kept; a rejected ``value`` is shown
    only as a number or short text (as the error's own message does), else left out."""
    if isinstance(value, (tuple, list)):
        return [_safe(name, v) for v in value]
    if isinstance(value, (int, float, bool, type(None))):
        return value
    if isinstance(value, str) and (name != "value" or len(value) <= 40):
        return value
    return None


def problem(
    status: int, kind: str, title: str, detail: str, instance: str | None = None, **extra: Any
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": f"urn:qaflow:problem:{kind}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(extra)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="qaflow", Basic realm="qaflow"'
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_from_error(error: QAFlowError, instance: str | None = None) -> JSONResponse:
    """The problem response for a qaflow error (500 only for an error not in the tree)."""
    for cls, kind, title, status in PROBLEM_TYPES:
        if isinstance(error, cls):
            extra = {
                name: _safe(name, getattr(error, name, None))
                for name in _FIELDS.get(cls, ())
                if hasattr(error, name)
            }
            detail = error.problem if isinstance(error, StoreError) else str(error)
            return problem(status, kind, title, detail, instance, **extra)
    return problem(500, "internal", "Internal error", type(error).__name__, instance)
