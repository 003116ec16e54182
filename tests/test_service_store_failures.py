"""The store failing under the HTTP service (real uvicorn on loopback, real httpx client):
a store locked by another writer is a 503 ``store-busy`` and a server that has gone away a
503 ``store-unavailable``, each with ``Retry-After`` and ``retryable``, nothing written, and
the same request succeeds once the store is back. The problem's detail is the store's
problem, never where the database is or what the payload said.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from pg_support import PgServer
from qaflow import ManualClock, OutcomeUnknown, PostgresStore, SQLiteStore, StoreBusy
from qaflow.policies import bexley
from qaflow.service import KeyStore, create_app
from qaflow.service._problems import problem_from_error
from service_support import directory, live_server

FIRO = "escalation.bexley_firo"
T0 = datetime(2025, 12, 19, 10, tzinfo=UTC)
REASON = bexley.FIRO_LADDER.reasons[0]
RAISE = {
    "machine": FIRO,
    "workflow_id": "ESC-1",
    "trigger": "raise",
    "payload": {"subject_id": "CARER-7", "reason": REASON, "to": "stage_1"},
}


@contextmanager
def _serve(store: Any, tmp_path: Path) -> Iterator[httpx.Client]:
    """The service on ``store`` under uvicorn; a client that calls as FIRO-1."""
    keys = KeyStore(path=tmp_path / "keys.json")
    key = keys.add("FIRO-1")[1]
    keys.save()
    app = create_app(
        store, directory(), keys=KeyStore.load(tmp_path / "keys.json"), clock=ManualClock(T0)
    )
    with (
        live_server(app) as base,
        httpx.Client(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}
        ) as client,
    ):
        yield client


def _unavailable(response: httpx.Response, kind: str, where: str) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:qaflow:problem:{kind}" and body["retryable"] is True
    assert where not in response.text and REASON not in response.text
    return body


def test_a_locked_sqlite_store_is_a_503_to_retry_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "service.db"
    store = SQLiteStore(path, timeout=0.2)
    try:
        with _serve(store, tmp_path) as client:
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
            try:
                body = _unavailable(client.post("/workflows", json=RAISE), "store-busy", str(path))
                assert "retry" in body["detail"]
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            assert client.get("/workflows/ESC-1").status_code == 404  # nothing was written
            started = client.post("/workflows", json=RAISE)  # the same request, now through
            assert started.status_code == 201, started.text
    finally:
        store.close()


def test_a_postgres_server_gone_away_is_a_503_to_retry_and_recovers(
    own_server: PgServer, tmp_path: Path
) -> None:
    dsn, _ = own_server.fresh_dsn()
    store = PostgresStore(dsn, min_size=1, max_size=2, timeout=0.5)
    try:
        with _serve(store, tmp_path) as client:
            assert client.post("/workflows", json=RAISE).status_code == 201
            own_server.pg_ctl("stop", "-m", "fast")
            accept = {"trigger": "accept"}
            _unavailable(
                client.post("/workflows/ESC-1/fire", json=accept),
                "store-unavailable",
                str(own_server.base),
            )
            _unavailable(client.get("/workflows/ESC-1"), "store-unavailable", str(own_server.base))
            own_server.restart()
            assert client.get("/workflows/ESC-1").json()["version"] == 1  # nothing written
            fired = client.post("/workflows/ESC-1/fire", json=accept)
            assert fired.status_code == 200, fired.text
            assert fired.json()["workflow"]["version"] == 2
    finally:
        store.close()


def test_an_outcome_unknown_is_a_500_that_says_to_read_before_resending() -> None:
    """Not retryable, no Retry-After: a blind resend could apply the command twice."""
    error = OutcomeUnknown(path="/srv/db", problem="the connection was lost after COMMIT")
    response = problem_from_error(error, "/workflows/ESC-1/fire")
    assert response.status_code == 500 and "Retry-After" not in response.headers
    body = response.body.decode()
    assert "outcome-unknown" in body and '"retryable":false' in body and "/srv/db" not in body
    busy = problem_from_error(StoreBusy(path="/srv/db", problem="busy"), None)
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
