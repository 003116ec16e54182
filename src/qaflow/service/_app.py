"""The ASGI app: each operation of ``_schemas.OPERATIONS`` is one thin call into the library.

The app holds one engine over one store. Handlers run on the event loop one at a time, so
one store connection is never used by two requests at once; run several processes to serve
more (the store's version check lets exactly one of two concurrent writers win).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qaflow.clock import Clock, SystemClock
from qaflow.directory import InMemoryDirectory
from qaflow.engine import Engine
from qaflow.errors import (
    ConcurrencyError,
    IntegrityError,
    PermissionDenied,
    QAFlowError,
    UnknownWorkflow,
    ValidationError,
)
from qaflow.records import Actor, WorkflowSnapshot
from qaflow.registry import shipped_specs
from qaflow.service._access import SEE_ALL_ROLES, AccessRule, CaseAccess
from qaflow.service._auth import AuthenticationFailed, Caller, KeyStore
from qaflow.service._catalogue import (
    get_diagram,
    get_machine,
    list_machines,
    list_policies,
    report,
)
from qaflow.service._http import (
    OPERATOR_ROLE,
    Authenticator,
    OperatorRequired,
    parse_etag,
    read_body,
    read_params,
)
from qaflow.service._openapi import openapi_document
from qaflow.service._problems import (
    NotFound,
    PreconditionFailed,
    WorkflowIdUnavailable,
    problem,
    problem_from_error,
)
from qaflow.service._schemas import (
    OPERATIONS,
    Operation,
    callable_triggers,
)
from qaflow.service._views import event_view, notification_view, step_view, workflow_view
from qaflow.spec import MachineSpec
from qaflow.store import Store

__all__ = ["Service", "create_app"]

log = logging.getLogger(__name__)

_MAX_SCANNED = 2000  # rows one list request reads to fill a page of visible workflows

Handler = Callable[[Request, Caller, dict[str, Any], dict[str, Any]], Response]


def _etag(version: int) -> str:
    return f'"{version}"'


class Service:
    """The library behind the HTTP operations: one engine, one directory, the specs."""

    def __init__(
        self,
        store: Store,
        directory: InMemoryDirectory,
        *,
        keys: KeyStore | None,
        insecure_local: bool = False,
        clock: Clock | None = None,
        specs: Iterable[MachineSpec] | None = None,
        operator_role: str = OPERATOR_ROLE,
        access: AccessRule | None = None,
    ) -> None:
        self.specs = tuple(shipped_specs() if specs is None else specs)
        self.clock: Clock = clock or SystemClock()
        self.engine = Engine(store, self.specs, clock=self.clock, directory=directory)
        self.directory = directory
        self.auth = Authenticator(
            directory, keys, insecure_local=insecure_local, operator_role=operator_role
        )
        self.openapi = openapi_document(self.specs)
        self.access: AccessRule = access or CaseAccess(
            directory, see_all_roles=SEE_ALL_ROLES | {operator_role}
        )

    @property
    def store(self) -> Store:
        return self.engine.store

    # --- lookups --------------------------------------------------------------------------

    def visible(self, caller: Caller, snap: WorkflowSnapshot) -> bool:
        """Whether the caller may see ``snap`` (an anonymous reader exists only on loopback,
        with ``insecure_local``, and sees everything)."""
        if caller.person_id is None:
            return True
        spec = self._spec_or_none(snap)
        return self.access.may_see(caller.person_id, snap, spec, self.engine.history)

    def load(self, caller: Caller, workflow_id: str) -> WorkflowSnapshot:
        """The workflow, if the caller may see it; otherwise exactly as if it did not exist."""
        snap = self.engine.get(workflow_id)
        if not self.visible(caller, snap):
            raise UnknownWorkflow(workflow_id=workflow_id)
        return snap

    def machine(self, name: str, policy: str | None) -> MachineSpec:
        named = [s for s in self.specs if s.name == name]
        if not named:
            raise NotFound(
                what="machine", value=name, known=tuple(sorted({s.name for s in self.specs}))
            )
        found = [s for s in named if policy in (None, s.policy)]
        if not found:
            raise NotFound(what="policy", value=policy or "", known=tuple(s.policy for s in named))
        if len({(s.policy) for s in found}) > 1:
            raise ValidationError(
                field="policy",
                value=None,
                expected="one of " + ", ".join(repr(s.policy) for s in found),
            )
        return found[-1]

    def actor(
        self,
        caller: Caller,
        spec: MachineSpec,
        snap: WorkflowSnapshot,
        trigger: str,
        as_role: str | None,
    ) -> Actor:
        """The caller as actor, in a role the directory says they hold (never ``system``)."""
        pid = caller.person_id
        if pid is None:
            raise AuthenticationFailed(problem="writes need an authenticated caller")
        allowed = frozenset().union(*(t.roles for t in spec.candidates(snap.state, trigger)))
        allowed -= {"system"}
        if as_role is not None:
            if as_role == "system" or not self.directory.has_role(pid, as_role):
                raise PermissionDenied(
                    workflow_id=snap.workflow_id,
                    trigger=trigger,
                    actor_id=pid,
                    role=as_role,
                    allowed_roles=allowed,
                    reason=f"the directory does not list them as {as_role!r}",
                )
            return Actor(pid, as_role)
        for role in sorted(allowed):
            if self.directory.has_role(pid, role):
                return Actor(pid, role)
        held = sorted(self.directory.roles_of(pid) - {"system"})
        return Actor(pid, held[0] if held else "none")  # the engine refuses, naming the roles

    # --- operations -----------------------------------------------------------------------

    def health(self, *_: Any) -> Response:
        return JSONResponse({"status": "ok"})

    def _result(self, step: Any, status: int) -> Response:
        spec = self.engine.spec_for(step.snapshot)
        body = step_view(step, self.clock.now(), spec)
        headers = {"ETag": _etag(step.snapshot.version)}
        if status == 201:
            headers["Location"] = f"/workflows/{step.snapshot.workflow_id}"
        return JSONResponse(body, status_code=status, headers=headers)

    def start(
        self, request: Request, caller: Caller, params: dict[str, Any], body: dict[str, Any]
    ) -> Response:
        spec = self.machine(body["machine"], body.get("policy"))
        blank = WorkflowSnapshot(
            workflow_id=body["workflow_id"],
            machine=spec.name,
            policy=spec.policy,
            policy_version=spec.policy_version,
            state=spec.initial,
        )
        actor = self.actor(caller, spec, blank, body["trigger"], body.get("as_role"))
        wid = body["workflow_id"]
        key = params.get("Idempotency-Key")
        if key is not None and self._hidden(caller, wid):
            key = None  # a resend's first result is never handed to one who may not see it
        try:
            step = self.engine.start(
                spec, wid, body["trigger"], actor, body.get("payload") or {}, idempotency_key=key
            )
        except ConcurrencyError:
            if self._hidden(caller, wid):
                raise WorkflowIdUnavailable(workflow_id=wid) from None
            raise
        return self._result(step, 201)

    def _hidden(self, caller: Caller, workflow_id: str) -> bool:
        """Whether a workflow the caller may not see holds ``workflow_id``: a start under it
        gets :class:`WorkflowIdUnavailable`, after the engine checked the whole command (its
        key is not looked up: under :class:`CaseAccess` the first sender sees the workflow)."""
        try:
            snap = self.engine.get(workflow_id)
        except UnknownWorkflow:
            return False
        return not self.visible(caller, snap)

    def fire(
        self, request: Request, caller: Caller, params: dict[str, Any], body: dict[str, Any]
    ) -> Response:
        wid = params["workflow_id"]
        expected = parse_etag(params.get("If-Match"))
        snap = self.load(caller, wid)
        spec = self.engine.spec_for(snap)
        actor = self.actor(caller, spec, snap, body["trigger"], body.get("as_role"))
        try:
            step = self.engine.fire(
                wid,
                body["trigger"],
                actor,
                body.get("payload") or {},
                expected_version=expected,
                idempotency_key=params.get("Idempotency-Key"),
            )
        except ConcurrencyError as error:
            if expected is not None and error.expected_version == expected:
                raise PreconditionFailed(
                    workflow_id=wid,
                    expected_version=expected,
                    actual_version=error.actual_version,
                ) from None
            raise
        return self._result(step, 200)

    def list_workflows(
        self, _: Request, caller: Caller, params: dict[str, Any], ___: Any
    ) -> Response:
        """A page of the workflows the caller may see. Rows they may not see are skipped; a
        page reads at most ``_MAX_SCANNED`` rows, so it may come back short with a cursor."""
        limit = params.get("limit", 50)
        now = self.clock.now()
        every = caller.person_id is None or self.access.sees_all(caller.person_id)
        after = params.get("after")
        shown: list[WorkflowSnapshot] = []
        scanned, more = 0, True
        while more and len(shown) <= limit and scanned < _MAX_SCANNED:
            batch = min(limit + 1, _MAX_SCANNED - scanned) if not every else limit + 1
            found = self.store.find_workflows(
                machine=params.get("machine"),
                policy=params.get("policy"),
                state=params.get("state"),
                team=params.get("team"),
                overdue_at=now if params.get("overdue") else None,
                after=after,
                limit=batch,
            )
            more = len(found) == batch
            for snap in found:
                scanned += 1
                after = snap.workflow_id
                if every or self.visible(caller, snap):
                    shown.append(snap)
                    if len(shown) > limit:
                        break
        items = [workflow_view(s, now, self._spec_or_none(s)) for s in shown[:limit]]
        if len(shown) > limit:
            cursor: str | None = items[-1]["workflow_id"]
        else:
            cursor = after if more else None  # a short page: carry on after the last row read
        return JSONResponse({"items": items, "next_after": cursor})

    def _spec_or_none(self, snap: WorkflowSnapshot) -> MachineSpec | None:
        try:
            return self.engine.spec_for(snap)
        except QAFlowError:
            return None

    def get_workflow(
        self, _: Request, caller: Caller, params: dict[str, Any], ___: Any
    ) -> Response:
        snap = self.load(caller, params["workflow_id"])
        view = workflow_view(snap, self.clock.now(), self._spec_or_none(snap))
        return JSONResponse(view, headers={"ETag": _etag(snap.version)})

    def history(self, _: Request, caller: Caller, params: dict[str, Any], ___: Any) -> Response:
        wid = params["workflow_id"]
        self.load(caller, wid)
        events = [event_view(e) for e in self.engine.history(wid)]
        return JSONResponse({"workflow_id": wid, "events": events})

    def triggers(self, _: Request, caller: Caller, params: dict[str, Any], ___: Any) -> Response:
        snap = self.load(caller, params["workflow_id"])
        spec = self.engine.spec_for(snap)
        allowed = [t for t in spec.allowed_triggers(snap.state) if t in callable_triggers(spec)]
        enabled = []
        pid = caller.person_id or ""
        for trigger in allowed if caller.person_id is not None else ():
            roles: set[str] = set()
            for t in spec.candidates(snap.state, trigger):
                if t.actor_key is not None and snap.data.get(t.actor_key) != pid:
                    continue
                roles.update(r for r in t.roles - {"system"} if self.directory.has_role(pid, r))
            if roles:
                enabled.append({"trigger": trigger, "roles": sorted(roles)})
        return JSONResponse(
            {
                "workflow_id": snap.workflow_id,
                "state": snap.state,
                "version": snap.version,
                "allowed": allowed,
                "enabled": enabled,
            }
        )

    def tick(self, *_: Any) -> Response:
        now = self.clock.now()
        steps = self.engine.tick(now)
        return JSONResponse({"now": now.isoformat(), "fired": [event_view(s.event) for s in steps]})

    def read_outbox(self, _: Request, __: Caller, params: dict[str, Any], ___: Any) -> Response:
        pending = self.store.pending_notifications(limit=params.get("limit", 100))
        return JSONResponse({"items": [notification_view(n) for n in pending]})

    def ack_outbox(self, _: Request, __: Caller, ___: Any, body: dict[str, Any]) -> Response:
        count = self.store.mark_sent(body["ids"], self.clock.now())
        return JSONResponse({"newly_acknowledged": count})

    def verify(self, _: Request, caller: Caller, params: dict[str, Any], ___: Any) -> Response:
        wid = params.get("workflow_id")
        if wid is not None:
            self.load(caller, wid)
        elif caller.person_id is not None and not self.access.sees_all(caller.person_id):
            raise OperatorRequired(person_id=caller.person_id, role=self.auth.operator_role)
        try:
            count = self.engine.verify(wid)
        except IntegrityError as error:
            found = {"workflow_id": error.workflow_id, "seq": error.seq, "problem": error.problem}
            return JSONResponse({"ok": False, "verified": 0, "problem": found})
        return JSONResponse({"ok": True, "verified": count, "problem": None})

    def handlers(self) -> dict[str, Handler]:
        return {
            "health": self.health,
            "listPolicies": partial(list_policies, self),
            "listMachines": partial(list_machines, self),
            "getMachine": partial(get_machine, self),
            "getDiagram": partial(get_diagram, self),
            "startWorkflow": self.start,
            "listWorkflows": self.list_workflows,
            "getWorkflow": self.get_workflow,
            "fireTrigger": self.fire,
            "getHistory": self.history,
            "getTriggers": self.triggers,
            "tick": self.tick,
            "readOutbox": self.read_outbox,
            "ackOutbox": self.ack_outbox,
            "verify": self.verify,
            "getReport": partial(report, self),
        }


def _endpoint(
    service: Service, op: Operation, handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            caller = service.auth.caller(request, op)
            params = read_params(request, op)
            body = await read_body(request, op)
            return handler(request, caller, params, body)
        except QAFlowError as error:
            return problem_from_error(error, request.url.path)
        except Exception:  # a bug, not the caller's fault: log it, never send the traceback
            log.exception("operation %s failed", op.id)
            return problem(500, "internal", "Internal error", "the server could not do this")

    endpoint.__name__ = op.id
    return endpoint


def create_app(
    store: Store,
    directory: InMemoryDirectory,
    *,
    keys: KeyStore | None = None,
    insecure_local: bool = False,
    clock: Clock | None = None,
    specs: Iterable[MachineSpec] | None = None,
    operator_role: str = OPERATOR_ROLE,
    web: bool = True,
    access: AccessRule | None = None,
) -> Starlette:
    """The ASGI app over ``store``: the JSON API, ``/openapi.json`` and (``web``) the pages.

    Without ``keys`` the app refuses to be built unless ``insecure_local`` (then the caller
    must bind it to loopback: ``qaflow serve`` does). Ticking and the outbox need a caller
    holding ``operator_role`` (the host system's integration account). ``access`` decides
    which workflows each caller may see (default :class:`CaseAccess` over ``directory``).
    """
    service = Service(
        store,
        directory,
        keys=keys,
        insecure_local=insecure_local,
        clock=clock,
        specs=specs,
        operator_role=operator_role,
        access=access,
    )
    handlers = service.handlers()
    routes = [
        Route(op.path, _endpoint(service, op, handlers[op.id]), methods=[op.method])
        for op in OPERATIONS
    ]

    async def openapi(_: Request) -> Response:
        return JSONResponse(service.openapi)

    routes.append(Route("/openapi.json", openapi, methods=["GET"]))
    if web:
        from qaflow.service._web import web_routes

        routes.extend(web_routes(service))

    async def not_routed(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        kind, title = (
            ("not-found", "Not found") if status == 404 else ("method", "Method not allowed")
        )
        return problem(status, kind, title, f"no {request.method} operation at this path")

    app = Starlette(routes=routes, exception_handlers={404: not_routed, 405: not_routed})
    app.state.service = service
    return app
