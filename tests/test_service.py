"""The HTTP service under a real uvicorn on loopback, driven by a real HTTP client (httpx).

A whole FIRO escalation (BX-ESC-FIRO-01..05) from raise to resolution goes through HTTP:
the caller is always the key's person, a stale If-Match is a 412, a reused workflow id a
409, a resent Idempotency-Key returns the first result, a caller without the role a 403.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from qaflow import ManualClock, PostgresStore, SQLiteStore, ValidationError
from qaflow.policies import bexley
from qaflow.service import CaseAccess, KeyStore, create_app
from service_support import directory, live_server

FIRO = "escalation.bexley_firo"
T0 = datetime(2025, 12, 19, 10, tzinfo=UTC)
PEOPLE = ("FIRO-1", "FIRO-2", "FM-1", "TM-1", "HS-1", "AD-1", "DIR-1", "SW-1", "CMS-1")


class Api:
    """One base URL, one key per person."""

    def __init__(self, base: str, keys: dict[str, str]) -> None:
        self.client = httpx.Client(base_url=base, timeout=30)
        self.keys = keys

    def as_(self, person: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if person is not None:
            headers["Authorization"] = f"Bearer {self.keys[person]}"
        return self.client.request(method, path, headers=headers, **kw)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture(params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> Iterator[Api]:
    """The service on either store: a SQLite file, or a schema on the PostgreSQL server."""
    keys = KeyStore(path=tmp_path / "keys.json")
    issued = {p: keys.add(p)[1] for p in PEOPLE}
    keys.save()
    if request.param == "postgres":
        store: Any = PostgresStore(request.getfixturevalue("pg_dsn"))
    else:
        store = SQLiteStore(tmp_path / "service.db")
    people = directory()
    access = CaseAccess(people, grants={"FIRO-2": ["ESC-1"]})  # sees a colleague's case
    keys = KeyStore.load(tmp_path / "keys.json")
    app = create_app(store, people, keys=keys, clock=clock, access=access)
    with live_server(app) as base:
        client = Api(base, issued)
        yield client
        client.client.close()
    store.close()


def _problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == f"urn:qaflow:problem:{kind}"
    return body


RAISE = {
    "machine": FIRO,
    "workflow_id": "ESC-1",
    "trigger": "raise",
    "payload": {"subject_id": "CARER-7", "reason": bexley.FIRO_LADDER.reasons[0], "to": "stage_1"},
}


def test_a_firo_escalation_from_raise_to_resolution(api: Api, clock: ManualClock) -> None:
    # No anonymous writes.
    _problem(api.as_(None, "POST", "/workflows", json=RAISE), 401, "unauthenticated")

    started = api.as_("FIRO-1", "POST", "/workflows", json=RAISE)
    assert started.status_code == 201, started.text
    assert started.headers["ETag"] == '"1"'
    assert started.headers["Location"] == "/workflows/ESC-1"
    body = started.json()
    assert body["workflow"]["state"] == "stage_1"
    assert body["event"]["actor"] == {"id": "FIRO-1", "role": "firo"}  # the caller, always
    (response,) = body["opened"]
    assert response["due_at"].startswith("2025-12-30")  # 5 WD, Christmas skipped (BX-ESC-FIRO-02)

    # The same id again: the workflow exists (409).
    again = dict(RAISE, payload=dict(RAISE["payload"]))
    _problem(api.as_("FIRO-2", "POST", "/workflows", json=again), 409, "concurrency")

    # A worker who is neither named in the case nor holds a role it now needs does not
    # see it: the same 404 as for a workflow that does not exist (nothing leaks, nothing
    # written).
    hidden = _problem(
        api.as_("SW-1", "POST", "/workflows/ESC-1/fire", json={"trigger": "accept"}),
        404,
        "unknown-workflow",
    )
    missing = _problem(
        api.as_("SW-1", "POST", "/workflows/ESC-9/fire", json={"trigger": "accept"}),
        404,
        "unknown-workflow",
    )
    assert {k: v for k, v in hidden.items() if k not in ("detail", "instance", "workflow_id")} == {
        k: v for k, v in missing.items() if k not in ("detail", "instance", "workflow_id")
    }
    # The stage holder sees it but holds no role the accept needs (403, nothing written).
    denied = _problem(
        api.as_("TM-1", "POST", "/workflows/ESC-1/fire", json={"trigger": "accept"}),
        403,
        "permission-denied",
    )
    assert denied["allowed_roles"] == ["firo"] and denied["actor_id"] == "TM-1"
    # Another FIRO, though granted sight of the case, may not drive someone else's
    # escalation on.
    other = _problem(
        api.as_("FIRO-2", "POST", "/workflows/ESC-1/fire", json={"trigger": "accept"}),
        403,
        "permission-denied",
    )
    assert "raiser_id" in other["reason"]
    # Nor may a caller claim a role the directory does not give them.
    _problem(
        api.as_(
            "TM-1", "POST", "/workflows/ESC-1/fire", json={"trigger": "accept", "as_role": "firo"}
        ),
        403,
        "permission-denied",
    )
    assert api.as_("FIRO-1", "GET", "/workflows/ESC-1").headers["ETag"] == '"1"'

    # What may each caller do now?
    mine = api.as_("FIRO-1", "GET", "/workflows/ESC-1/triggers").json()
    assert "respond" in mine["allowed"] and "response_overdue" not in mine["allowed"]
    assert {e["trigger"] for e in mine["enabled"]} >= {"accept", "escalate", "withdraw"}
    holder = api.as_("TM-1", "GET", "/workflows/ESC-1/triggers").json()
    assert [e["trigger"] for e in holder["enabled"]] == ["request_extension", "respond"]

    # The stage 1 holder responds (the team manager, by the team's structure).
    responded = api.as_(
        "TM-1",
        "POST",
        "/workflows/ESC-1/fire",
        json={"trigger": "respond", "payload": {"response": "We will review the plan."}},
        headers={"If-Match": '"1"'},
    )
    assert responded.status_code == 200, responded.text
    assert responded.json()["event"]["actor"] == {"id": "TM-1", "role": "team_manager"}
    assert responded.headers["ETag"] == '"2"'

    # The raiser escalates with a stale version: 412, nothing written.
    stale = _problem(
        api.as_(
            "FIRO-1",
            "POST",
            "/workflows/ESC-1/fire",
            json={"trigger": "escalate"},
            headers={"If-Match": '"1"'},
        ),
        412,
        "precondition-failed",
    )
    assert stale["actual_version"] == 2 and stale["expected_version"] == 1

    # With the current version and an idempotency key; then the same request again.
    headers = {"If-Match": '"2"', "Idempotency-Key": "esc-1-up"}
    first = api.as_(
        "FIRO-1", "POST", "/workflows/ESC-1/fire", json={"trigger": "escalate"}, headers=headers
    )
    assert first.status_code == 200, first.text
    assert first.json()["workflow"]["state"] == "stage_2"
    resent = api.as_(
        "FIRO-1", "POST", "/workflows/ESC-1/fire", json={"trigger": "escalate"}, headers=headers
    )
    assert resent.status_code == 200, resent.text
    assert resent.json()["event"] == first.json()["event"]
    assert api.as_("FIRO-1", "GET", "/workflows/ESC-1").json()["version"] == 3
    # The same key for another trigger is a conflict, not a second write.
    _problem(
        api.as_(
            "FIRO-1",
            "POST",
            "/workflows/ESC-1/fire",
            json={"trigger": "withdraw"},
            headers={"Idempotency-Key": "esc-1-up"},
        ),
        409,
        "concurrency",
    )

    # A payload the machine does not accept (422 names the field); a trigger the state
    # does not allow (409 names what is allowed).
    bad = _problem(
        api.as_(
            "HS-1",
            "POST",
            "/workflows/ESC-1/fire",
            json={"trigger": "respond", "payload": {"response": 7}},
        ),
        422,
        "validation",
    )
    assert bad["field"] == "response"
    wrong = _problem(
        api.as_("FIRO-1", "POST", "/workflows/ESC-1/fire", json={"trigger": "raise"}),
        409,
        "transition-not-allowed",
    )
    assert "escalate" in wrong["allowed"]

    # Nobody answers at stage 2: the deadline passes and the service's tick records it.
    clock.advance(timedelta(days=14))
    overdue = api.as_("FIRO-1", "GET", "/workflows", params={"overdue": "true"}).json()
    assert [w["workflow_id"] for w in overdue["items"]] == ["ESC-1"]
    # Ticking is the integration account's job (403 for anyone else).
    refused = _problem(api.as_("FIRO-1", "POST", "/tick"), 403, "operator-required")
    assert refused["role"] == "qaflow_operator"
    ticked = api.as_("CMS-1", "POST", "/tick").json()
    assert [e["trigger"] for e in ticked["fired"]] == ["response_overdue"]
    assert api.as_("CMS-1", "POST", "/tick").json()["fired"] == []  # idempotent

    # Head of service responds late; the raiser accepts: resolved.
    hs = api.as_(
        "HS-1",
        "POST",
        "/workflows/ESC-1/fire",
        json={"trigger": "respond", "payload": {"response": "Agreed."}},
    )
    assert hs.status_code == 200, hs.text
    done = api.as_(
        "FIRO-1",
        "POST",
        "/workflows/ESC-1/fire",
        json={"trigger": "accept"},
        headers={"If-Match": hs.headers["ETag"]},
    )
    assert done.status_code == 200, done.text
    final = api.as_("FIRO-1", "GET", "/workflows/ESC-1").json()
    assert final["state"] == "resolved" and final["terminal"] and final["deadlines"] == []
    assert api.as_("FIRO-1", "GET", "/workflows/ESC-1/triggers").json()["allowed"] == []

    history = api.as_("FIRO-1", "GET", "/workflows/ESC-1/history").json()["events"]
    assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
    assert [e["trigger"] for e in history] == [
        "raise",
        "respond",
        "escalate",
        "response_overdue",
        "respond",
        "accept",
    ]
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(history))
    # A caller verifies the cases they see; the whole store is for those who see every case.
    mine = api.as_("FIRO-1", "GET", "/verify", params={"workflow_id": "ESC-1"}).json()
    assert mine == {"ok": True, "verified": 1, "problem": None}
    _problem(api.as_("FIRO-1", "GET", "/verify"), 403, "operator-required")
    _problem(
        api.as_("SW-1", "GET", "/verify", params={"workflow_id": "ESC-1"}), 404, "unknown-workflow"
    )
    assert api.as_("CMS-1", "GET", "/verify").json() == {"ok": True, "verified": 1, "problem": None}

    # The outbox: read, acknowledge, acknowledge again (idempotent); operators only.
    _problem(api.as_("FIRO-1", "GET", "/outbox"), 403, "operator-required")
    pending = api.as_("CMS-1", "GET", "/outbox").json()["items"]
    assert pending and all(n["workflow_id"] == "ESC-1" for n in pending)
    ids = [n["id"] for n in pending]
    _problem(api.as_("FIRO-1", "POST", "/outbox/ack", json={"ids": ids}), 403, "operator-required")
    first_ack = api.as_("CMS-1", "POST", "/outbox/ack", json={"ids": ids}).json()
    assert first_ack == {"newly_acknowledged": len(ids)}
    assert api.as_("CMS-1", "POST", "/outbox/ack", json={"ids": ids}).json() == {
        "newly_acknowledged": 0
    }
    assert api.as_("CMS-1", "GET", "/outbox").json()["items"] == []

    # The QA report for the period sees the resolved escalation (store-wide: the operator
    # sees every case; the raiser, who manages no team, is refused it).
    period = {"from": "2025-12-01", "to": "2026-01-31"}
    _problem(api.as_("FIRO-1", "GET", "/report", params=period), 403, "report-scope")
    report = api.as_("CMS-1", "GET", "/report", params=period)
    assert report.status_code == 200, report.text
    assert report.json()["activity"]["escalations_raised"] == 1


def test_times_need_an_offset_and_periods_are_checked(api: Api) -> None:
    naive = api.as_(
        "FIRO-1", "GET", "/report", params={"from": "2025-12-01T00:00:00", "to": "2026-01-01"}
    )
    assert _problem(naive, 422, "validation")["field"] == "from"
    aware = api.as_(
        "CMS-1",
        "GET",
        "/report",
        params={"from": "2025-12-01T00:00:00+00:00", "to": "2026-01-01T00:00:00+01:00"},
    )
    assert aware.status_code == 200
    backwards = api.as_(
        "CMS-1", "GET", "/report", params={"from": "2026-01-01", "to": "2025-01-01"}
    )
    assert _problem(backwards, 422, "validation")["field"] == "end"


def test_credentials_are_checked(api: Api, tmp_path: Path) -> None:
    _problem(api.as_(None, "GET", "/workflows"), 401, "unauthenticated")
    bad = {"Authorization": "Bearer qfk_k00000000_" + "x" * 43}
    response = api.client.get("/workflows", headers=bad)
    assert _problem(response, 401, "unauthenticated")["problem"] == "the key is not recognised"
    assert "Bearer" in response.headers["WWW-Authenticate"]
    # The X-API-Key header and HTTP Basic (the key as password) work too.
    key = api.keys["FIRO-1"]
    assert api.client.get("/workflows", headers={"X-API-Key": key}).status_code == 200
    assert api.client.get("/workflows", auth=("any", key)).status_code == 200
    # Public: health and the OpenAPI document.
    assert api.client.get("/health").json() == {"status": "ok"}
    assert api.client.get("/openapi.json").json()["openapi"] == "3.1.0"


def test_unknown_things_are_404_problems(api: Api) -> None:
    assert (
        _problem(api.as_("FIRO-1", "GET", "/workflows/NOPE"), 404, "unknown-workflow")[
            "workflow_id"
        ]
        == "NOPE"
    )
    _problem(api.as_("FIRO-1", "GET", "/machines/nope"), 404, "not-found")
    _problem(api.as_("FIRO-1", "GET", "/no/such/path"), 404, "not-found")
    ambiguous = api.as_("FIRO-1", "GET", "/machines/audit")
    assert _problem(ambiguous, 422, "validation")["field"] == "policy"
    audit = api.as_("FIRO-1", "GET", "/machines/audit", params={"policy": "bexley"}).json()
    assert audit["payload_schemas"]["allocate"]["type"] == "object"
    diagram = api.as_("FIRO-1", "GET", f"/machines/{FIRO}/diagram")
    assert diagram.text.startswith("---") or "stateDiagram" in diagram.text


def test_lists_page_by_id(api: Api) -> None:
    for n in range(3):
        body = dict(RAISE, workflow_id=f"ESC-{n}")
        assert api.as_("FIRO-1", "POST", "/workflows", json=body).status_code == 201
    first = api.as_("FIRO-1", "GET", "/workflows", params={"limit": 2}).json()
    assert [w["workflow_id"] for w in first["items"]] == ["ESC-0", "ESC-1"]
    assert first["next_after"] == "ESC-1"
    rest = api.as_("FIRO-1", "GET", "/workflows", params={"after": "ESC-1", "limit": 2}).json()
    assert [w["workflow_id"] for w in rest["items"]] == ["ESC-2"] and rest["next_after"] is None
    bad = api.as_("FIRO-1", "GET", "/workflows", params={"limit": "0"})
    assert _problem(bad, 422, "validation")["field"] == "limit"
    none = api.as_("FIRO-1", "GET", "/workflows", params={"state": "resolved"}).json()
    assert none == {"items": [], "next_after": None}


def test_insecure_local_reads_anonymously_and_writes_only_as_a_named_person(
    tmp_path: Path, clock: ManualClock
) -> None:
    with pytest.raises(ValidationError, match="a key store"):
        create_app(SQLiteStore(tmp_path / "x.db"), directory())
    store = SQLiteStore(tmp_path / "local.db")
    app = create_app(store, directory(), insecure_local=True, clock=clock)
    try:
        with live_server(app) as base, httpx.Client(base_url=base) as client:
            assert client.get("/workflows").status_code == 200
            _problem(client.post("/workflows", json=RAISE), 401, "unauthenticated")
            nobody = client.post("/workflows", json=RAISE, headers={"X-QAFlow-Person": "NOPE"})
            assert _problem(nobody, 403, "unknown-person")["person_id"] == "NOPE"
            named = client.post("/workflows", json=RAISE, headers={"X-QAFlow-Person": "FIRO-1"})
            assert named.status_code == 201
            assert named.json()["event"]["actor"] == {"id": "FIRO-1", "role": "firo"}
    finally:
        store.close()


def test_bodies_that_are_not_plain_json_are_refused(api: Api) -> None:
    assert api.as_("FIRO-1", "POST", "/workflows", json=RAISE).status_code == 201
    for raw in (
        b'{"trigger": "respond", "payload": {"response": NaN}}',
        b"[1, 2]",
        b"not json",
        b'{"trigger": "respond", "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ):
        response = api.as_(
            "TM-1",
            "POST",
            "/workflows/ESC-1/fire",
            content=raw,
            headers={"Content-Type": "application/json"},
        )
        assert _problem(response, 422, "validation")["field"] in ("body", "payload"), raw[:40]
    unknown = api.as_("TM-1", "POST", "/workflows/ESC-1/fire", json={"trigger": "respond", "x": 1})
    assert "only the fields" in _problem(unknown, 422, "validation")["expected"]
    assert api.as_("FIRO-1", "GET", "/workflows/ESC-1").json()["version"] == 1
