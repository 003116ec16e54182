"""The webhook deliverer's retry state survives a killed deliverer (SQLite and PostgreSQL).

A real ``qaflow outbox deliver --watch`` process posts the outbox to a real receiver on
loopback that refuses some notifications; it is killed (SIGKILL) once every notification has
been tried. A deliverer started afterwards, on a fresh store connection and an injected
clock, does not retry before the recorded next attempt, then delivers exactly the pending
ones (the same ids, signed), and never resends what was delivered before the kill.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from qaflow import Actor, Engine, ManualClock, PostgresStore, SQLiteStore
from qaflow.policies import bexley
from qaflow.registry import shipped_specs
from qaflow.service import DeliveryLog, WebhookDeliverer, verify_signature

SECRET = b"a-test-secret-of-some-length"
pytestmark = pytest.mark.slow


class Receiver:
    """Records every (id, status) it answers; refuses (500) the ids in ``refuse``."""

    def __init__(self) -> None:
        self.answered: list[tuple[str, int]] = []
        self.bodies: list[tuple[dict[str, str], bytes]] = []
        self.refuse: set[str] = set()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                note_id = self.headers["X-QAFlow-Id"]
                status = 500 if note_id in outer.refuse else 204
                with outer.lock:
                    outer.answered.append((note_id, status))
                    outer.bodies.append((dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A database with three raised escalations' notifications pending: (--db, opener)."""
    if request.param == "postgres":
        dsn: str = request.getfixturevalue("pg_dsn")
        target, opener = dsn, lambda: PostgresStore(dsn)
    else:
        path = tmp_path / "hook.db"
        target, opener = str(path), lambda: SQLiteStore(path)
    store = opener()
    engine = Engine(store, shipped_specs(), clock=ManualClock(datetime.now(UTC)))
    raise_ = {"subject_id": "CARER-1", "reason": bexley.FIRO_LADDER.reasons[0], "to": "stage_1"}
    for i in range(3):
        engine.start("escalation.bexley_firo", f"ESC-{i}", "raise", Actor("FIRO-1", "firo"), raise_)
    store.close()
    yield target, opener


def _until(what: Any, timeout: float = 60) -> None:
    """Wait for a real process to get somewhere (bounded; the test's own time is injected)."""
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "the deliverer process did not get there"
        time.sleep(0.05)


def test_a_killed_deliverer_resumes_with_exactly_the_pending_ones(
    db: tuple[str, Any], receiver: Receiver, tmp_path: Path
) -> None:
    target, opener = db
    store = opener()
    pending = sorted(n.id for n in store.pending_notifications())
    assert len(pending) >= 3
    receiver.refuse = set(pending[::2])  # every other one fails
    refused = sorted(receiver.refuse)
    accepted = sorted(set(pending) - receiver.refuse)
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    command = [sys.executable, "-m", "qaflow.cli", "outbox", "deliver", "--db", target]
    command += ["--url", receiver.url, "--secret-file", str(secret), "--watch", "1"]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ)
    )
    log = DeliveryLog(store)
    try:
        # Every notification tried once: the accepted marked sent, the refused recorded.
        _until(lambda: {n.id for n in store.pending_notifications()} == set(refused))
        _until(lambda: sorted(log.states()) == refused)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    states = log.states()
    log.close()
    # One failed attempt each (two, should a slow machine let 30 s pass before the kill).
    assert all(s.attempts >= 1 and not s.given_up for s in states.values())
    first_tries = len(receiver.answered)
    assert sorted(i for i, status in receiver.answered if status == 204) == accepted

    # Restarted: a new deliverer on a new connection. Nothing before the next attempt.
    receiver.refuse = set()
    started = min(s.next_at for s in states.values()) - timedelta(seconds=1)
    clock = ManualClock(started)
    store.close()
    store = opener()
    hook = WebhookDeliverer(store, receiver.url, SECRET, clock=clock)
    try:
        assert hook.deliver_due().delivered == ()
        assert len(receiver.answered) == first_tries
        clock.set(max(s.next_at for s in states.values()))
        report = hook.deliver_due()
        assert sorted(report.delivered) == refused
        assert report.retrying == report.gave_up == ()
        assert store.pending_notifications() == []
        assert hook.log.states() == {}  # delivered: their retry state is gone
        clock.advance(timedelta(days=1))
        assert hook.deliver_due() == type(report)()
    finally:
        hook.close()
        store.close()

    # Exactly the pending ones were resent, under their stable ids, signed.
    resent = receiver.answered[first_tries:]
    assert sorted(i for i, _ in resent) == refused and {s for _, s in resent} == {204}
    for headers, body in receiver.bodies[first_tries:]:
        assert json.loads(body)["id"] == headers["X-QAFlow-Id"]
        assert verify_signature(
            SECRET,
            body,
            headers["X-QAFlow-Timestamp"],
            headers["X-QAFlow-Signature"],
            now=clock.now() - timedelta(days=1),
        )
