"""qaflow as an HTTP/JSON service: a thin ASGI app (Starlette, served by uvicorn) over the
library, with OpenAPI 3.1, API keys mapped to people in the Directory, problem+json errors,
a webhook deliverer for the outbox and a few server-rendered pages for a QA lead.

::

    from qaflow.service import KeyStore, create_app
    app = create_app(store, directory, keys=KeyStore.load("keys.json"))

``qaflow serve`` runs it; ``qaflow keys add PERSON`` makes a key.
"""

from __future__ import annotations

from qaflow.service._access import SEE_ALL_ROLES, AccessRule, CaseAccess
from qaflow.service._app import Service, create_app
from qaflow.service._auth import ApiKey, AuthenticationFailed, Caller, KeyStore
from qaflow.service._delivery_log import DeliveryLog, RetryState
from qaflow.service._http import OPERATOR_ROLE, OperatorRequired
from qaflow.service._openapi import openapi_document
from qaflow.service._problems import NotFound, PreconditionFailed, WorkflowIdUnavailable
from qaflow.service._report_scope import ReportScopeRefused
from qaflow.service._schemas import OPERATIONS, Operation, payload_schema
from qaflow.service._views import step_view, workflow_view
from qaflow.service._webhook import DeliveryReport, WebhookDeliverer, sign, verify_signature

__all__ = [
    "OPERATIONS",
    "OPERATOR_ROLE",
    "SEE_ALL_ROLES",
    "AccessRule",
    "ApiKey",
    "AuthenticationFailed",
    "Caller",
    "CaseAccess",
    "DeliveryLog",
    "DeliveryReport",
    "KeyStore",
    "NotFound",
    "Operation",
    "OperatorRequired",
    "PreconditionFailed",
    "ReportScopeRefused",
    "RetryState",
    "Service",
    "WebhookDeliverer",
    "WorkflowIdUnavailable",
    "create_app",
    "openapi_document",
    "payload_schema",
    "sign",
    "step_view",
    "verify_signature",
    "workflow_view",
]
