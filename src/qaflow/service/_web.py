"""The QA lead's pages: open escalations by stage and holder, overdue deadlines, a
workflow's timeline and the QA report. Server-rendered with Jinja2 (autoescaped), no
JavaScript; the same credentials as the API (a browser sends a key as Basic password).

Pages show ids, states, roles and times, never payload free text (it may be personal data).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import attrs
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from qaflow.errors import QAFlowError
from qaflow.registry import shipped_report_policies
from qaflow.service._auth import Caller
from qaflow.service._http import parse_moment
from qaflow.service._problems import problem_from_error
from qaflow.service._report_scope import report_filters
from qaflow.service._schemas import Operation

if TYPE_CHECKING:
    from qaflow.service._app import Service

__all__ = ["web_routes"]

_ENV = Environment(
    loader=PackageLoader("qaflow.service", "templates"),
    autoescape=select_autoescape(["html"]),
)
_PAGE = Operation("GET", "/ui", "ui", "pages")


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _holders(data: dict[str, Any]) -> str:
    """The current stage's holder roles, each with the person recorded for it, if any."""
    history = data.get("history") or []
    last = history[-1] if history and isinstance(history[-1], dict) else {}
    shown = []
    for role in last.get("holders") or ():
        person = data.get(f"{role}_id")
        shown.append(f"{role} ({person})" if isinstance(person, str) else role)
    return ", ".join(shown) or "—"


def _quarter(today: date) -> dict[str, str]:
    """From the start of today's quarter to tomorrow (the report's end is excluded)."""
    first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    return {"from": first.isoformat(), "to": (today + timedelta(days=1)).isoformat()}


def _dashboard(service: Service, caller: Caller) -> dict[str, Any]:
    now = service.clock.now()
    rows = []
    seen: set[str] = set()
    for snap in service.store.snapshots():
        if not service.visible(caller, snap):
            continue
        seen.add(snap.workflow_id)
        if not snap.machine.startswith("escalation") or "raiser_id" not in snap.data:
            continue
        spec = service._spec_or_none(snap)
        if spec is None or spec.state(snap.state).terminal:
            continue
        due = min((d.due_at for d in snap.deadlines), default=None)
        rows.append(
            {
                "workflow_id": snap.workflow_id,
                "machine": snap.machine,
                "state": snap.state,
                "holders": _holders(snap.data),
                "raiser": snap.data.get("raiser_id"),
                "due": _when(due),
                "overdue": due is not None and due <= now,
            }
        )
    counts = Counter((r["machine"], r["state"], r["holders"]) for r in rows)
    stages = [
        {"machine": m, "state": s, "holders": h, "count": n}
        for (m, s, h), n in sorted(counts.items())
    ]
    overdue = [
        {"workflow_id": d.workflow_id, "name": d.name, "due": _when(d.due_at), "clause": d.clause}
        for d in service.store.due_deadlines(now)
        if d.workflow_id in seen
    ]
    return {
        "quarter_report": "/ui/report?" + urlencode(_quarter(now.date())),
        "title": "Open escalations",
        "now": _when(now),
        "escalations": rows,
        "stages": stages,
        "overdue": overdue,
    }


def _workflow(service: Service, caller: Caller, workflow_id: str) -> dict[str, Any]:
    now = service.clock.now()
    snap = service.load(caller, workflow_id)
    events = [
        {
            "iso": e.at.isoformat(),
            "at": _when(e.at),
            "trigger": e.trigger,
            "source": e.source,
            "dest": e.dest,
            "actor": e.actor.id,
            "role": e.actor.role,
        }
        for e in service.engine.history(workflow_id)
    ]
    deadlines = [
        {"name": d.name, "due": _when(d.due_at), "overdue": d.due_at <= now, "clause": d.clause}
        for d in snap.deadlines
    ]
    return {
        "title": f"Workflow {workflow_id}",
        "wf": snap,
        "events": events,
        "deadlines": deadlines,
    }


def _report(service: Service, request: Request, caller: Caller) -> dict[str, Any]:
    from qaflow import report as qa

    start_text = request.query_params.get("from")
    end_text = request.query_params.get("to")
    context: dict[str, Any] = {"title": "QA report", "report": None}
    if not start_text or not end_text:
        period = _quarter(service.clock.now().date())
        context.update(start=period["from"], end=period["to"])
        return context
    start = parse_moment("from", start_text)
    end = parse_moment("to", end_text)
    asked = {k: request.query_params.get(k) for k in ("team", "service")}
    team, unit = report_filters(
        service.access, service.directory, caller.person_id, asked["team"], asked["service"]
    )
    built = qa.build_report(
        service.store,
        start=start,
        end=end,
        policies=shipped_report_policies(),
        team=team,
        service=unit,
        directory=service.directory,
    )
    query = {"from": start_text, "to": end_text, **{k: v for k, v in asked.items() if v}}
    context.update(
        start=start_text,
        end=end_text,
        report=built,
        activity=[(k.replace("_", " "), v) for k, v in attrs.asdict(built.activity).items()],
        full="/report?" + urlencode({**query, "format": "html"}),
        markdown="/report?" + urlencode({**query, "format": "markdown"}),
    )
    return context


def _wants_json(request: Request) -> bool:
    """Whether the caller asked for JSON rather than a page (a program, not a browser)."""
    accept = request.headers.get("accept", "")
    return "text/html" not in accept and ("problem+json" in accept or "/json" in accept)


def _refusal(request: Request, answer: Response) -> Response:
    """A refused page as a page: the problem's title, detail and members, with the same
    status and headers (a 401 keeps its Basic challenge). A caller who asks for JSON gets
    the problem document itself."""
    if _wants_json(request):
        return answer
    body = json.loads(bytes(answer.body))
    members = ("type", "title", "status", "detail", "instance")
    fields = [
        (name.replace("_", " "), ", ".join(map(str, v)) if isinstance(v, list) else v)
        for name, v in body.items()
        if name not in members and v is not None and v != []
    ]
    page = _ENV.get_template("error.html").render(
        title=body["title"],
        detail=body["detail"],
        status=body["status"],
        kind=body["type"].rsplit(":", 1)[-1],
        fields=fields,
    )
    headers = {k: v for k, v in answer.headers.items() if k.lower() == "www-authenticate"}
    return HTMLResponse(page, status_code=answer.status_code, headers=headers)


def web_routes(service: Service) -> list[Route]:
    """The page routes, each behind the same authentication as the API's reads."""

    def page(
        template: str, build: Callable[[Request, Caller], dict[str, Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                caller = service.auth.caller(request, _PAGE)
                context = build(request, caller)
            except QAFlowError as error:
                return _refusal(request, problem_from_error(error, request.url.path))
            return HTMLResponse(_ENV.get_template(template).render(**context))

        return endpoint

    return [
        Route("/ui", page("dashboard.html", lambda _, c: _dashboard(service, c))),
        Route(
            "/ui/workflows/{workflow_id}",
            page(
                "workflow.html",
                lambda r, c: _workflow(service, c, r.path_params["workflow_id"]),
            ),
        ),
        Route("/ui/report", page("report.html", lambda r, c: _report(service, r, c))),
    ]
