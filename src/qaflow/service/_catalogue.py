"""The catalogue operations: policies, machines, their diagrams, and the QA report.

Reads that name no single workflow, kept apart from the workflow operations of
:class:`~qaflow.service._app.Service`. The report counts and lists no case; whose work it
counts follows the caller's access (``_report_scope``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from qaflow.diagram import mermaid
from qaflow.errors import ValidationError
from qaflow.registry import shipped_report_policies
from qaflow.service._auth import Caller
from qaflow.service._http import parse_moment
from qaflow.service._report_scope import report_filters
from qaflow.service._schemas import callable_triggers, payload_schema
from qaflow.spec import MachineSpec

if TYPE_CHECKING:
    from qaflow.service._app import Service

__all__ = ["get_diagram", "get_machine", "list_machines", "list_policies", "report"]

_MAX_REPORT_DAYS = 3700  # ten years: a report, not a scan of all time


def list_policies(service: Service, *_: Any) -> Response:
    policies: dict[str, list[dict[str, str]]] = {}
    for s in service.specs:
        policies.setdefault(s.policy, []).append(
            {"name": s.name, "policy_version": s.policy_version}
        )
    items = [{"name": k, "machines": v} for k, v in sorted(policies.items())]
    return JSONResponse({"items": items})


def _machine_view(spec: MachineSpec, *, schemas: bool) -> dict[str, Any]:
    triggers = callable_triggers(spec)
    view: dict[str, Any] = {
        "name": spec.name,
        "policy": spec.policy,
        "policy_version": spec.policy_version,
        "initial": spec.initial,
        "description": spec.description,
        "states": list(spec.state_names),
        "terminal_states": [s.name for s in spec.states if s.terminal],
        "triggers": list(triggers),
    }
    if schemas:
        view["payload_schemas"] = {t: payload_schema(spec, t) for t in triggers}
    return view


def list_machines(service: Service, *_: Any) -> Response:
    return JSONResponse({"items": [_machine_view(s, schemas=False) for s in service.specs]})


def get_machine(
    service: Service, _: Request, __: Caller, params: dict[str, Any], ___: Any
) -> Response:
    spec = service.machine(params["machine"], params.get("policy"))
    return JSONResponse(_machine_view(spec, schemas=True))


def get_diagram(
    service: Service, _: Request, __: Caller, params: dict[str, Any], ___: Any
) -> Response:
    spec = service.machine(params["machine"], params.get("policy"))
    return PlainTextResponse(mermaid(spec))


def report(
    service: Service, _: Request, caller: Caller, params: dict[str, Any], ___: Any
) -> Response:
    """The QA report of ``[from, to)``, of the teams the caller may see (``_report_scope``)."""
    from qaflow import report as qa

    start = parse_moment("from", params["from"])
    end = parse_moment("to", params["to"])
    for name, moment in (("from", start), ("to", end)):
        if not 1970 <= moment.year <= 2200:
            raise ValidationError(field=name, value=None, expected="a year in 1970..2200")
    if (end.toordinal() - start.toordinal()) > _MAX_REPORT_DAYS:
        raise ValidationError(
            field="to", value=None, expected=f"at most {_MAX_REPORT_DAYS} days after 'from'"
        )
    asked = params.get("team"), params.get("service")
    team, unit = report_filters(service.access, service.directory, caller.person_id, *asked)
    known = shipped_report_policies(params.get("policy"))
    built = qa.build_report(
        service.store,
        start=start,
        end=end,
        policies=known,
        policy=params.get("policy"),
        team=team,
        service=unit,
        directory=service.directory,
    )
    form = params.get("format", "json")
    if form == "markdown":
        return PlainTextResponse(qa.to_markdown(built, policies=known), media_type="text/markdown")
    if form == "html":
        return HTMLResponse(qa.to_html(built, policies=known))
    return Response(qa.to_json(built), media_type="application/json")
