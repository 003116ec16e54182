"""The outbox webhook deliverer against a real HTTP receiver on loopback, time injected:
signed with HMAC, stable ids, retries with backoff, at-least-once, gives up when told."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from qaflow import Actor, Engine, ManualClock, SQLiteStore
from qaflow.cli import main
from qaflow.errors import ValidationError
from qaflow.policies import bexley
from qaflow.registry import shipped_specs
from qaflow.service import WebhookDeliverer, verify_signature

T0 = datetime(2025, 12, 19, 10, tzinfo=UTC)
SECRET = b"a-test-secret-of-some-length"


class Receiver:
    """A webhook receiver: records every request; answers 500 to the first ``fail`` ones."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append({"headers": dict(self.headers), "body": body})
                status = 500 if outer.fail > 0 else 204
                outer.fail -= 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "hook.db")
    engine = Engine(s, shipped_specs(), clock=ManualClock(T0))
    engine.start(
        "escalation.bexley_firo",
        "ESC-1",
        "raise",
        Actor("FIRO-1", "firo"),
        {"subject_id": "CARER-1", "reason": bexley.FIRO_LADDER.reasons[0], "to": "stage_1"},
    )
    yield s
    s.close()


def test_signed_delivery_with_retries_and_backoff(store: SQLiteStore, receiver: Receiver) -> None:
    clock = ManualClock(T0)
    pending = [n.id for n in store.pending_notifications()]
    assert len(pending) >= 2
    receiver.fail = len(pending)  # the receiver is failing at first
    hook = WebhookDeliverer(
        store, receiver.url, SECRET, clock=clock, base_delay=timedelta(seconds=30)
    )
    try:
        first = hook.deliver_due()
        assert first.delivered == () and set(first.retrying) == set(pending)
        assert len(store.pending_notifications()) == len(pending)  # nothing marked on a 500
        # Backoff: nothing is retried before 30 s have passed.
        clock.advance(timedelta(seconds=29))
        assert hook.deliver_due().retrying == () and len(receiver.received) == len(pending)
        clock.advance(timedelta(seconds=1))
        second = hook.deliver_due()
        assert set(second.delivered) == set(pending)
        assert store.pending_notifications() == []
        assert hook.deliver_due() == type(second)()  # nothing left to send
    finally:
        hook.close()

    # Every request carries a stable id and a signature the receiver can check.
    ids = [r["headers"]["X-QAFlow-Id"] for r in receiver.received]
    assert sorted(ids) == sorted(pending * 2)  # each sent twice: once failed, once delivered
    for request in receiver.received:
        headers, body = request["headers"], request["body"]
        assert json.loads(body)["id"] == headers["X-QAFlow-Id"]
        assert verify_signature(
            SECRET,
            body,
            headers["X-QAFlow-Timestamp"],
            headers["X-QAFlow-Signature"],
            now=clock.now(),
        )
        assert not verify_signature(
            b"another-secret-of-length",
            body,
            headers["X-QAFlow-Timestamp"],
            headers["X-QAFlow-Signature"],
            now=clock.now(),
        )
        assert not verify_signature(  # replayed long after: refused
            SECRET,
            body,
            headers["X-QAFlow-Timestamp"],
            headers["X-QAFlow-Signature"],
            now=clock.now() + timedelta(hours=1),
        )
        assert set(json.loads(body)) == {  # ids, reason and clause: never payload free text
            "id",
            "workflow_id",
            "seq",
            "recipient_role",
            "recipient_id",
            "reason",
            "clause",
            "created_at",
        }


def test_the_backoff_doubles_up_to_its_cap_and_then_gives_up(
    store: SQLiteStore, receiver: Receiver
) -> None:
    clock = ManualClock(T0)
    receiver.fail = 10_000
    hook = WebhookDeliverer(
        store,
        receiver.url,
        SECRET,
        clock=clock,
        max_attempts=4,
        base_delay=timedelta(seconds=10),
        max_delay=timedelta(seconds=25),
    )
    try:
        assert [hook.delay(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 25, 25]
        pending = {n.id for n in store.pending_notifications()}
        rounds = []
        for wait in (0, 10, 20, 25):
            clock.advance(timedelta(seconds=wait))
            rounds.append(hook.deliver_due())
        assert set(rounds[-1].gave_up) == pending and rounds[-1].retrying == ()
        clock.advance(timedelta(days=1))
        assert hook.deliver_due() == type(rounds[0])()  # given up: not tried again
        assert {n.id for n in store.pending_notifications()} == pending  # still visible
        assert len(receiver.received) == 4 * len(pending)
    finally:
        hook.close()


def test_an_unreachable_receiver_is_retried_not_lost(store: SQLiteStore) -> None:
    dead = Receiver()
    url = dead.url
    dead.close()  # nothing listens there now
    hook = WebhookDeliverer(store, url, SECRET, clock=ManualClock(T0))
    try:
        report = hook.deliver_due()
        assert report.delivered == () and len(report.retrying) == len(store.pending_notifications())
    finally:
        hook.close()


def test_bad_settings_are_refused(store: SQLiteStore) -> None:
    with pytest.raises(ValidationError, match="'url' must be an http"):
        WebhookDeliverer(store, "ftp://127.0.0.1/x", SECRET)
    with pytest.raises(ValidationError, match="'secret' must be at least 16 bytes"):
        WebhookDeliverer(store, "http://127.0.0.1/x", b"short")


def test_outbox_deliver_command(store: SQLiteStore, receiver: Receiver, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET + b"\n")
    count = len(store.pending_notifications())
    result = CliRunner().invoke(
        main,
        [
            "outbox",
            "deliver",
            "--db",
            store.path,
            "--url",
            receiver.url,
            "--secret-file",
            str(secret),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"delivered {count}, retrying 0, gave up 0"
    assert store.pending_notifications() == []
