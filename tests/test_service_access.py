"""Per-case access under a real uvicorn on loopback, driven by httpx: a caller reads, lists
and acts only on the workflows they may see, and a workflow they may not see answers
exactly as one that does not exist (404, the same problem), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from qaflow import ManualClock, PostgresStore, SQLiteStore
from qaflow.directory import InMemoryDirectory
from qaflow.errors import ValidationError
from qaflow.policies import bexley
from qaflow.records import WorkflowSnapshot
from qaflow.service import CaseAccess, KeyStore, create_app
from qaflow.service._report_scope import ReportScopeRefused, managed_units, report_filters
from service_support import live_server

FIRO = "escalation.bexley_firo"
T0 = datetime(2025, 12, 1, 10, tzinfo=UTC)
PEOPLE: dict[str, Any] = {
    "people": [
        {"id": "FIRO-1", "roles": ["firo"], "team_id": "T-G"},
        {"id": "FIRO-2", "roles": ["firo"]},
        {"id": "TM-1", "roles": [], "team_id": "T-F"},
        {"id": "TM-2", "roles": [], "team_id": "T-G"},
        {"id": "SW-1", "roles": ["worker"], "team_id": "T-F"},
        {"id": "SW-2", "roles": ["worker"], "team_id": "T-G"},
        {"id": "HS-1", "roles": []},
        {"id": "QA-1", "roles": ["qa_lead"]},
        {"id": "CMS-1", "roles": ["qaflow_operator"]},
    ],
    "teams": [
        {"id": "T-F", "service_id": "SV-F", "manager_id": "TM-1"},
        {"id": "T-G", "service_id": "SV-F", "manager_id": "TM-2"},
    ],
    "services": [{"id": "SV-F", "head_of_service_id": "HS-1"}],
}
GRANTS = {"SW-1": ["ESC-B"]}


class Api:
    def __init__(self, base: str, keys: dict[str, str]) -> None:
        self.client = httpx.Client(base_url=base, timeout=30)
        self.keys = keys

    def as_(self, person: str, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[person]}", **kw.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kw)

    def listed(self, person: str, **params: Any) -> list[str]:
        """Every workflow id the person lists, following next_after page by page."""
        ids: list[str] = []
        after: str | None = None
        while True:
            query = dict(params, **({"after": after} if after else {}))
            page = self.as_(person, "GET", "/workflows", params=query)
            assert page.status_code == 200, page.text
            body = page.json()
            ids += [w["workflow_id"] for w in body["items"]]
            after = body["next_after"]
            if after is None:
                return ids


@pytest.fixture(params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    keys = KeyStore(path=tmp_path / "keys.json")
    issued = {p["id"]: keys.add(p["id"])[1] for p in PEOPLE["people"]}
    if request.param == "postgres":
        store: Any = PostgresStore(request.getfixturevalue("pg_dsn"))
    else:
        store = SQLiteStore(tmp_path / "access.db")
    directory = InMemoryDirectory.from_mapping(PEOPLE)
    access = CaseAccess(directory, see_all_roles={"qa_lead", "qaflow_operator"}, grants=GRANTS)
    app = create_app(store, directory, keys=keys, clock=ManualClock(T0), access=access)
    with live_server(app) as base:
        client = Api(base, issued)
        yield client
        client.client.close()
    store.close()


def _raise(api: Api, person: str, wid: str) -> None:
    payload = {"subject_id": "CARER-1", "reason": bexley.FIRO_LADDER.reasons[0], "to": "stage_1"}
    body = {"machine": FIRO, "workflow_id": wid, "trigger": "raise", "payload": payload}
    answer = api.as_(person, "POST", "/workflows", json=body)
    assert answer.status_code == 201, answer.text


def _hidden(response: httpx.Response, wid: str) -> None:
    """The answer for a workflow the caller may not see: that of one that does not exist."""
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:qaflow:problem:unknown-workflow"
    assert body["workflow_id"] == wid
    assert set(body) == {"type", "title", "status", "detail", "instance", "workflow_id"}


def test_callers_see_and_act_only_on_their_cases(api: Api) -> None:
    _raise(api, "FIRO-1", "ESC-A")
    _raise(api, "FIRO-2", "ESC-B")

    # Another raiser's escalation does not exist for FIRO-1: read, history, triggers, fire.
    for wid in ("ESC-B", "ESC-Z"):  # ESC-Z does not exist: the answers are the same
        for method, path, kw in (
            ("GET", f"/workflows/{wid}", {}),
            ("GET", f"/workflows/{wid}/history", {}),
            ("GET", f"/workflows/{wid}/triggers", {}),
            ("GET", "/verify", {"params": {"workflow_id": wid}}),
            ("POST", f"/workflows/{wid}/fire", {"json": {"trigger": "withdraw"}}),
            ("GET", f"/ui/workflows/{wid}", {"headers": {"Accept": "application/json"}}),
        ):
            _hidden(api.as_("FIRO-1", method, path, **kw), wid)
    # A browser is shown the same page for a hidden workflow as for one that does not exist.
    pages = [api.as_("FIRO-1", "GET", f"/ui/workflows/{wid}") for wid in ("ESC-B", "ESC-Z")]
    assert [p.status_code for p in pages] == [404, 404]
    assert pages[0].headers["content-type"].startswith("text/html")
    assert pages[0].text.replace("ESC-B", "ESC-Z") == pages[1].text
    assert "<code>unknown-workflow</code>" in pages[0].text
    # ... and nothing was written to it.
    assert api.as_("FIRO-2", "GET", "/workflows/ESC-B").headers["ETag"] == '"1"'

    # Lists hold only what the caller sees; those who see every case see both.
    assert api.listed("FIRO-1") == ["ESC-A"]
    assert api.listed("FIRO-2") == ["ESC-B"]
    assert api.listed("QA-1") == api.listed("CMS-1") == ["ESC-A", "ESC-B"]
    # The stage 1 holder (a team manager) sees both while they wait on a team manager.
    assert api.listed("TM-1") == ["ESC-A", "ESC-B"]
    # A worker with no role in the ladder sees none, but for an explicit grant.
    assert api.listed("SW-2") == []
    assert api.listed("SW-1") == ["ESC-B"]
    assert api.as_("SW-1", "GET", "/workflows/ESC-B").status_code == 200

    # FIRO-1 withdraws ESC-A: no one holds a role in it any more. The team manager who
    # never acted on it loses sight of it; the raiser's own manager (TM-2 manages T-G, the
    # raiser's team) and the raiser keep it.
    withdrawn = api.as_("FIRO-1", "POST", "/workflows/ESC-A/fire", json={"trigger": "withdraw"})
    assert withdrawn.status_code == 200, withdrawn.text
    _hidden(api.as_("TM-1", "GET", "/workflows/ESC-A"), "ESC-A")
    assert api.listed("TM-1") == ["ESC-B"]
    assert api.listed("TM-2") == ["ESC-A", "ESC-B"]
    assert api.as_("TM-2", "GET", "/workflows/ESC-A/history").status_code == 200

    # Having acted on a case keeps it in sight: TM-1 responds on ESC-B, FIRO-2 escalates it
    # to stage 2 (a head of service's), and TM-1 still sees it.
    responded = api.as_(
        "TM-1",
        "POST",
        "/workflows/ESC-B/fire",
        json={"trigger": "respond", "payload": {"response": "Seen."}},
    )
    assert responded.status_code == 200, responded.text
    escalated = api.as_("FIRO-2", "POST", "/workflows/ESC-B/fire", json={"trigger": "escalate"})
    assert escalated.json()["workflow"]["state"] == "stage_2"
    assert api.listed("TM-1") == ["ESC-B"]
    assert api.listed("HS-1") == ["ESC-A", "ESC-B"]  # heads the raiser's service; holds stage 2

    # Verifying the whole store names other cases: only for those who see every case.
    assert api.as_("FIRO-1", "GET", "/verify").status_code == 403
    assert api.as_("QA-1", "GET", "/verify").json()["verified"] == 2


def test_a_short_page_still_leads_to_every_visible_workflow(api: Api) -> None:
    for i in range(12):
        _raise(api, "FIRO-1" if i % 4 == 0 else "FIRO-2", f"ESC-{i:02d}")
    mine = ["ESC-00", "ESC-04", "ESC-08"]
    for limit in (1, 2, 5):
        assert api.listed("FIRO-1", limit=limit) == mine
    assert api.listed("CMS-1", limit=5) == [f"ESC-{i:02d}" for i in range(12)]


def test_the_pages_show_only_the_callers_cases(api: Api) -> None:
    _raise(api, "FIRO-1", "ESC-A")
    _raise(api, "FIRO-2", "ESC-B")
    token = base64.b64encode(f"x:{api.keys['FIRO-1']}".encode()).decode()
    page = api.client.get("/ui", headers={"Authorization": f"Basic {token}"})
    assert page.status_code == 200
    assert "ESC-A" in page.text and "ESC-B" not in page.text


def _snap(data: dict[str, Any]) -> WorkflowSnapshot:
    return WorkflowSnapshot(
        workflow_id="AUD-1", machine="audit.x", policy="x", policy_version="1", state="s", data=data
    )


def test_the_team_rule_follows_the_directory() -> None:
    directory = InMemoryDirectory.from_mapping(PEOPLE)
    access = CaseAccess(directory)
    audit = _snap({"team_id": "T-F", "auditor_id": "FIRO-2"})
    seen = {p.id for p in directory.people() if access.may_see(p.id, audit, None, lambda _: [])}
    # The team's members and manager, the service's head, the auditor named in it, and
    # those who see every case; not the other team.
    assert seen == {"TM-1", "SW-1", "HS-1", "FIRO-2", "QA-1", "CMS-1"}
    assert not access.may_see("SOMEONE", audit, None, lambda _: [])


def test_an_access_file_adds_grants_and_names_who_sees_all() -> None:
    directory = InMemoryDirectory.from_mapping(PEOPLE)
    audit = _snap({"team_id": "T-F"})
    access = CaseAccess.from_mapping(
        directory, {"see_all_roles": ["qaflow_operator"], "grants": {"SW-2": ["AUD-1"]}}
    )
    assert access.may_see("SW-2", audit, None, lambda _: [])  # granted
    assert not access.may_see("QA-1", audit, None, lambda _: [])  # qa_lead no longer sees all
    assert access.may_see("CMS-1", audit, None, lambda _: [])
    assert CaseAccess.from_mapping(directory, {}).see_all_roles == {"qa_lead", "qaflow_operator"}


def _start(api: Api, person: str, wid: str, key: str | None = None, **payload: Any) -> Any:
    body = {
        "machine": FIRO,
        "workflow_id": wid,
        "trigger": "raise",
        "payload": {
            "subject_id": "CARER-1",
            "reason": bexley.FIRO_LADDER.reasons[0],
            "to": "stage_1",
            **payload,
        },
    }
    headers = {"Idempotency-Key": key} if key else {}
    return api.as_(person, "POST", "/workflows", json=body, headers=headers)


def _without(response: httpx.Response, wid: str) -> dict[str, Any]:
    """The problem body with the id the caller sent taken out (it is echoed, as any input)."""
    text = response.text.replace(wid, "<id>")
    return dict(httpx.Response(200, text=text).json(), status_code=response.status_code)


def test_a_start_under_a_hidden_id_says_only_that_the_id_is_unavailable(api: Api) -> None:
    """A caller who may not see the workflow holding an id is told the id cannot be used, the
    same answer whatever holds it (no version, machine or state), and only for a command that
    would otherwise have been written; a caller who sees it gets the 409 naming its version."""
    first = _start(api, "FIRO-2", "ESC-B", key="k-b")
    assert first.status_code == 201, first.text
    _raise(api, "FIRO-2", "ESC-C")
    moved = api.as_(
        "TM-1",
        "POST",
        "/workflows/ESC-C/fire",
        json={"trigger": "respond", "payload": {"response": "Seen."}},
    )
    assert moved.status_code == 200 and moved.headers["ETag"] == '"2"', moved.text

    # FIRO-1 sees neither: the answer for ESC-B (version 1) and ESC-C (version 2) is one.
    answers = {}
    for wid in ("ESC-B", "ESC-C"):
        refused = _start(api, "FIRO-1", wid)
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        body = refused.json()
        assert body["type"] == "urn:qaflow:problem:id-unavailable"
        assert set(body) == {"type", "title", "status", "detail", "instance", "workflow_id"}
        assert body["workflow_id"] == wid and "version" not in body["detail"]
        answers[wid] = _without(refused, wid)
    assert answers["ESC-B"] == answers["ESC-C"]
    # The idempotency key FIRO-2 used is not looked up for FIRO-1 (no conflict that names
    # the version, no first result): the same answer.
    with_key = _start(api, "FIRO-1", "ESC-B", key="k-b")
    assert _without(with_key, "ESC-B") == answers["ESC-B"]

    # A command that would be refused anyway gets the answer a free id gets: a bad payload
    # (422), a caller whose roles may not raise (403), with or without a key.
    for person, payload, status in (
        ("FIRO-1", {"reason": "no_such_reason"}, 422),
        ("SW-2", {}, 403),
    ):
        for key in (None, "k-b"):
            hidden = _start(api, person, "ESC-B", key=key, **payload)
            free = _start(api, person, "ESC-FREE", key=key, **payload)
            assert hidden.status_code == status, hidden.text
            assert _without(hidden, "ESC-B") == _without(free, "ESC-FREE")

    # FIRO-2 sees ESC-B: the plain 409 with its version, and its own resend the first result.
    seen = _start(api, "FIRO-2", "ESC-B")
    assert seen.status_code == 409 and seen.json()["type"] == "urn:qaflow:problem:concurrency"
    assert seen.json()["actual_version"] == 1
    again = _start(api, "FIRO-2", "ESC-B", key="k-b")
    assert again.status_code == 201 and again.json() == first.json()
    # Nothing was written by any refused start.
    assert api.as_("FIRO-2", "GET", "/workflows/ESC-B").headers["ETag"] == '"1"'
    assert api.as_("QA-1", "GET", "/workflows/ESC-C").headers["ETag"] == '"2"'
    _hidden(api.as_("FIRO-1", "GET", "/workflows/ESC-FREE"), "ESC-FREE")


def _report(api: Api, person: str, **params: str) -> httpx.Response:
    period = {"from": "2025-11-01", "to": "2026-01-01"}
    return api.as_(person, "GET", "/report", params={**period, **params})


def test_the_report_counts_only_the_work_the_caller_may_see(api: Api) -> None:
    """Store-wide for those who see every case; a manager's own team or service (the same
    figures a see-all caller gets with that filter); refused (403) to anyone else."""
    _raise(api, "FIRO-1", "ESC-A")  # FIRO-1 is in T-G, of service SV-F
    _raise(api, "FIRO-2", "ESC-B")  # FIRO-2 is in no team

    def raised(response: httpx.Response) -> int:
        assert response.status_code == 200, response.text
        return int(response.json()["activity"]["escalations_raised"])

    assert raised(_report(api, "QA-1")) == raised(_report(api, "CMS-1")) == 2
    assert _report(api, "QA-1").json()["filters"] == {"policy": None, "team": None, "service": None}
    for person, filters, count in (
        ("TM-2", {"team": "T-G"}, 1),  # manages T-G: their team's report by default
        ("TM-1", {"team": "T-F"}, 0),
        ("HS-1", {"service": "SV-F"}, 1),  # heads SV-F: their service's by default
    ):
        mine = _report(api, person)
        assert raised(mine) == count
        assert {k: v for k, v in mine.json()["filters"].items() if v} == filters
        same = _report(api, "QA-1", **filters)
        assert mine.json() == same.json()
    # A head of service may ask for one of the service's teams.
    assert raised(_report(api, "HS-1", team="T-G")) == 1
    assert raised(_report(api, "HS-1", team="T-F")) == 0

    # Outside the caller's teams, or with no team to report on: 403, naming what they may have.
    for person, params, teams, services in (
        ("TM-2", {"team": "T-F"}, ["T-G"], []),
        ("TM-2", {"service": "SV-F"}, ["T-G"], []),
        ("FIRO-1", {}, [], []),
        ("SW-1", {"team": "T-F"}, [], []),  # a member of T-F sees only some of its cases
    ):
        refused = _report(api, person, **params)
        assert refused.status_code == 403, refused.text
        body = refused.json()
        assert body["type"] == "urn:qaflow:problem:report-scope"
        assert (body["teams"], body["services"]) == (teams, services)
        assert "ESC-" not in refused.text
    for form in ("markdown", "html"):
        assert _report(api, "FIRO-1", format=form).status_code == 403
        assert _report(api, "TM-2", format=form).status_code == 200

    # The page: a team manager's report says whose work it is; a raiser's is refused.
    token = base64.b64encode(f"x:{api.keys['TM-2']}".encode()).decode()
    page = api.client.get(
        "/ui/report",
        params={"from": "2025-11-01", "to": "2026-01-01"},
        headers={"Authorization": f"Basic {token}"},
    )
    assert page.status_code == 200 and "The work of team T-G only" in page.text
    assert 'href="/report?from=2025-11-01&amp;to=2026-01-01&amp;format=html"' in page.text
    token = base64.b64encode(f"x:{api.keys['FIRO-1']}".encode()).decode()
    refused_page = api.client.get(
        "/ui/report",
        params={"from": "2025-11-01", "to": "2026-01-01"},
        headers={"Authorization": f"Basic {token}"},
    )
    # A browser is shown a page, with the same status, saying what the caller may have.
    assert refused_page.status_code == 403, refused_page.text
    assert refused_page.headers["content-type"].startswith("text/html")
    assert "<h1>Report outside the caller&#39;s scope</h1>" in refused_page.text
    assert "<code>report-scope</code>" in refused_page.text and "ESC-" not in refused_page.text
    # A program asking for JSON gets the problem document itself.
    as_json = api.client.get(
        "/ui/report",
        params={"from": "2025-11-01", "to": "2026-01-01"},
        headers={"Authorization": f"Basic {token}", "Accept": "application/problem+json"},
    )
    assert as_json.status_code == 403
    assert as_json.json()["type"] == "urn:qaflow:problem:report-scope"
    # Without credentials the page keeps its Basic challenge, so the browser can ask.
    challenged = api.client.get("/ui/report")
    assert challenged.status_code == 401 and "Basic" in challenged.headers["WWW-Authenticate"]
    assert challenged.headers["content-type"].startswith("text/html")


def test_a_manager_of_several_units_names_the_one_to_report_on() -> None:
    directory = InMemoryDirectory.from_mapping(
        {
            "people": [{"id": "TM-9", "roles": []}, {"id": "HS-9", "roles": []}],
            "teams": [
                {"id": "T-1", "manager_id": "TM-9"},
                {"id": "T-2", "manager_id": "TM-9"},
                {"id": "T-3", "service_id": "SV-9", "manager_id": "TM-9"},
            ],
            "services": [{"id": "SV-9", "head_of_service_id": "HS-9"}],
        }
    )
    access = CaseAccess(directory)
    assert managed_units(directory, "TM-9") == (("T-1", "T-2", "T-3"), ())
    assert managed_units(directory, "HS-9") == (("T-3",), ("SV-9",))
    with pytest.raises(ValidationError, match="team=T-1, team=T-2, team=T-3"):
        report_filters(access, directory, "TM-9", None, None)
    assert report_filters(access, directory, "TM-9", "T-2", None) == ("T-2", None)
    assert report_filters(access, directory, "HS-9", None, None) == (None, "SV-9")
    with pytest.raises(ReportScopeRefused):
        report_filters(access, directory, "HS-9", "T-1", None)
