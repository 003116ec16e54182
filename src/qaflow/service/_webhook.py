"""Deliver the outbox to a webhook: at-least-once, stable ids, HMAC-signed, with backoff.

Each pending notification is POSTed as JSON (the API's ``Notification`` shape) with::

    X-QAFlow-Id:         the notification's id (stable: a resend carries the same id)
    X-QAFlow-Timestamp:  seconds since the epoch when it was signed
    X-QAFlow-Signature:  sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

A 2xx answer marks the notification sent in the store; anything else (an error status, a
refused connection, a timeout) schedules a retry after ``base_delay * 2**(attempt-1)``,
capped at ``max_delay``, until ``max_attempts``; then the notification is left pending
(visible to ``GET /outbox``) and reported as given up. A notification may arrive twice
(a crash between the receiver's 2xx and the mark), never zero times: receivers dedupe on
the id. The attempts, next attempt times and given-up marks are kept in the store's own
database (:mod:`._delivery_log`), so a deliverer killed and started again retries exactly
the pending notifications, each when it is due. No threads and no sleeps: the host calls
:meth:`WebhookDeliverer.deliver_due` (the CLI's ``outbox deliver --watch`` does, every few
seconds), and time comes from the clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta

import attrs
import httpx

from qaflow.clock import Clock, SystemClock
from qaflow.errors import ValidationError
from qaflow.service._delivery_log import DeliveryLog, RetryState
from qaflow.service._views import notification_view
from qaflow.store import Store

__all__ = ["DeliveryReport", "WebhookDeliverer", "sign", "verify_signature"]

log = logging.getLogger(__name__)


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-QAFlow-Signature`` value for ``body`` signed at ``timestamp``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: bytes,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    now: datetime,
    tolerance: timedelta = timedelta(minutes=5),
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent."""
    try:
        moment = int(timestamp)
    except ValueError:
        return False
    if abs(now.timestamp() - moment) > tolerance.total_seconds():
        return False
    return hmac.compare_digest(sign(secret, moment, body), signature)


@attrs.frozen
class DeliveryReport:
    """What one round delivered, what will be retried and what was given up on."""

    delivered: tuple[str, ...] = ()
    retrying: tuple[str, ...] = ()
    gave_up: tuple[str, ...] = ()


class WebhookDeliverer:
    """Posts the store's pending notifications to ``url``; marks each sent on a 2xx."""

    def __init__(
        self,
        store: Store,
        url: str,
        secret: bytes,
        *,
        clock: Clock | None = None,
        max_attempts: int = 8,
        base_delay: timedelta = timedelta(seconds=30),
        max_delay: timedelta = timedelta(hours=1),
        timeout: float = 10.0,
        batch: int = 100,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValidationError(field="url", value=url, expected="an http:// or https:// URL")
        if len(secret) < 16:
            raise ValidationError(
                field="secret", value=len(secret), expected="at least 16 bytes long"
            )
        if max_attempts < 1:
            raise ValidationError(field="max_attempts", value=max_attempts, expected="at least 1")
        self.store = store
        self.url = url
        self._secret = secret
        self.clock: Clock = clock or SystemClock()
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.batch = batch
        self._client = httpx.Client(timeout=timeout)
        self.log = DeliveryLog(store)

    def close(self) -> None:
        self._client.close()
        self.log.close()

    def delay(self, attempts: int) -> timedelta:
        """How long to wait after the ``attempts``-th failure."""
        return min(self.max_delay, self.base_delay * (1 << min(attempts - 1, 40)))

    def _post(self, body: bytes, note_id: str, now: datetime) -> bool:
        stamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "X-QAFlow-Id": note_id,
            "X-QAFlow-Timestamp": str(stamp),
            "X-QAFlow-Signature": sign(self._secret, stamp, body),
        }
        try:
            answer = self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            log.info("webhook: notification %s not delivered (%s)", note_id, type(error).__name__)
            return False
        if 200 <= answer.status_code < 300:
            return True
        log.info("webhook: notification %s answered %d", note_id, answer.status_code)
        return False

    def deliver_due(self, now: datetime | None = None) -> DeliveryReport:
        """One round: post every pending notification whose retry is due; returns the tally."""
        now = now or self.clock.now()
        delivered: list[str] = []
        retrying: list[str] = []
        gave_up: list[str] = []
        pending = self.store.pending_notifications(limit=None)
        states = self.log.states()
        self.log.forget(sorted(set(states) - {n.id for n in pending}))
        for note in pending:
            if len(delivered) + len(retrying) + len(gave_up) >= self.batch:
                break
            retry = states.get(note.id)
            if retry is not None and (retry.given_up or retry.next_at > now):
                continue
            body = json.dumps(notification_view(note), sort_keys=True).encode()
            if self._post(body, note.id, now):
                self.store.mark_sent([note.id], now)
                if retry is not None:
                    self.log.forget([note.id])
                delivered.append(note.id)
                continue
            attempts = (retry.attempts if retry else 0) + 1
            given_up = attempts >= self.max_attempts
            self.log.failed(
                note.id, RetryState(attempts, now + self.delay(attempts), given_up), now
            )
            (gave_up if given_up else retrying).append(note.id)
        return DeliveryReport(tuple(delivered), tuple(retrying), tuple(gave_up))
