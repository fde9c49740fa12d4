"""Sending a webhook's due deliveries: signed, in order, at least once.

One sender at a time per webhook: a PostgreSQL advisory lock, held on a connection that
stays outside any transaction (a receiver may take 10 s to answer; an open transaction
would hold the change log's watermark back meanwhile). Under it, the head of the line,
the webhook's oldest pending delivery, is sent; later ones wait until it is delivered or
given up, so a receiver sees a webhook's events in change order.

An attempt is recorded after it ends. A sender killed in the middle leaves the delivery
pending and due: the next sender sends it again, with the same event id (at least once).

A 2xx answer within 10 s delivers. Anything else (another status, a redirect, which is
never followed, a timeout, a refused connection, a URL that now resolves where it may
not) is retried after BACKOFF, for GIVE_UP_AFTER from the first attempt; then the delivery
fails, and the webhook, whose every delivery since has waited behind it, is disabled and
its organization's admins are told.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, Row, select, text, update
from sqlalchemy.orm import Session

from command_api.modules.webhooks.models import Webhook, WebhookDelivery
from shared.config import Settings
from shared.outbound import Resolver, UnsafeURLError, checked_addresses, pinned, resolve
from shared.webhooks import DeliveryStatus, delivery_changes, signature
from webhooks.service import disable

log = logging.getLogger("evotrack.webhooks")

TIMEOUT_SECONDS = 10.0
# After the n-th failed attempt, the next waits BACKOFF[n-1] (the last one from then on).
BACKOFF = tuple(
    timedelta(seconds=s) for s in (10, 60, 5 * 60, 30 * 60, 2 * 3600, 6 * 3600, 12 * 3600)
)
GIVE_UP_AFTER = timedelta(days=3)
USER_AGENT = "EvoTrack-Webhooks/1"
# Pending deliveries read at a time; the webhook is read again with each chunk, so a
# webhook disabled meanwhile gets at most the rest of one chunk.
LINE_CHUNK = 50

SessionFactory = Callable[[], Session]


def backoff(attempts: int) -> timedelta:
    return BACKOFF[min(attempts, len(BACKOFF)) - 1]


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to."""

    delivered: bool
    status_code: int | None = None
    error: str | None = None


@dataclass
class SendReport:
    sent: int = 0
    delivered: int = 0
    more_due: bool = False  # the time slice ran out with deliveries still due


def _lock_key(webhook_id: uuid.UUID) -> str:
    return f"evotrack.webhook.{webhook_id}"


_TRY_LOCK = text("SELECT pg_try_advisory_lock(hashtext(:key))")
_UNLOCK = text("SELECT pg_advisory_unlock(hashtext(:key))")


def is_sending(engine: Engine, webhook_id: uuid.UUID) -> bool:
    """Whether a sender holds the webhook's lock now (it holds it for its whole slice; a
    killed one's goes with its connection)."""
    key = {"key": _lock_key(webhook_id)}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not conn.execute(_TRY_LOCK, key).scalar():
            return True
        conn.execute(_UNLOCK, key)
        return False


class Sender:
    """Sends webhooks' deliveries (see the module). `clock`, `client` and `resolver` are
    injectable: tests run the 3-day window on a fake clock against real receivers."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        sessions: SessionFactory,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        client: httpx.Client | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions = sessions
        self.clock = clock
        self.client = client or httpx.Client(
            timeout=TIMEOUT_SECONDS, follow_redirects=False, headers={"User-Agent": USER_AGENT}
        )
        self.resolver = resolver

    def deliver_due(
        self,
        webhook_id: uuid.UUID,
        *,
        max_deliveries: int = 100,
        max_seconds: float = 10.0,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> SendReport:
        """Send the webhook's due deliveries in order, for a slice of at most
        `max_deliveries` or `max_seconds` (then `more_due` says whether to come back)."""
        report = SendReport()
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock:
            key = {"key": _lock_key(webhook_id)}
            if not lock.execute(_TRY_LOCK, key).scalar():
                return report  # another sender has this webhook's line
            try:
                return self._send_line(webhook_id, report, max_deliveries, max_seconds, should_stop)
            finally:
                lock.execute(_UNLOCK, key)

    def _send_line(
        self,
        webhook_id: uuid.UUID,
        report: SendReport,
        max_deliveries: int,
        max_seconds: float,
        should_stop: Callable[[], bool],
    ) -> SendReport:
        """Under the webhook's lock: its pending deliveries in order, read LINE_CHUNK at a
        time, until one is not due, one fails (the rest wait for it), or the slice ends."""
        started = time.monotonic()
        while True:
            line = self._line(webhook_id)
            if line is None:
                return report
            webhook, deliveries = line
            for delivery in deliveries:
                if delivery.next_attempt_at > self.clock():
                    return report
                spent = time.monotonic() - started
                if report.sent >= max_deliveries or spent > max_seconds or should_stop():
                    report.more_due = True
                    return report
                outcome = self._attempt(webhook, delivery)
                self._record(webhook, delivery, outcome)
                report.sent += 1
                report.delivered += outcome.delivered
                if not outcome.delivered:
                    return report  # the head waits out its backoff, and the rest behind it

    def _line(self, webhook_id: uuid.UUID) -> tuple[Webhook, Sequence[Any]] | None:
        """The webhook, if it is enabled, and the first LINE_CHUNK of its pending deliveries
        in order; None when there is nothing to send."""
        with self.sessions() as session:
            webhook = session.execute(
                select(Webhook).where(
                    Webhook.id == webhook_id, Webhook.enabled, Webhook.deleted_at.is_(None)
                )
            ).scalar_one_or_none()
            if webhook is None:
                return None
            deliveries = session.execute(
                select(
                    WebhookDelivery.id,
                    WebhookDelivery.org_id,
                    WebhookDelivery.event_id,
                    WebhookDelivery.event_type,
                    WebhookDelivery.body,
                    WebhookDelivery.attempts,
                    WebhookDelivery.first_attempt_at,
                    WebhookDelivery.next_attempt_at,
                )
                .where(
                    WebhookDelivery.webhook_id == webhook_id,
                    WebhookDelivery.status == DeliveryStatus.PENDING,
                )
                .order_by(WebhookDelivery.seq)
                .limit(LINE_CHUNK)
            ).all()
            session.expunge(webhook)
        return (webhook, deliveries) if deliveries else None

    def _attempt(self, webhook: Webhook, delivery: Row[Any]) -> Outcome:
        now = self.clock()
        body = delivery.body.encode()
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "EvoTrack-Event-Id": str(delivery.event_id),
            "EvoTrack-Event-Type": delivery.event_type,
            "EvoTrack-Delivery-Id": str(delivery.id),
            "EvoTrack-Timestamp": str(timestamp),
            "EvoTrack-Signature": signature(webhook.signing_secrets(now), timestamp, body),
        }
        try:
            target = pinned(
                webhook.url, checked_addresses(webhook.url, self.settings, self.resolver)
            )
            response = self.client.post(
                target.url,
                content=body,
                headers={**headers, **target.headers},
                extensions=target.extensions,
            )
        except UnsafeURLError as exc:
            return Outcome(False, error=f"not sent: the URL {exc}")
        except httpx.TimeoutException:
            return Outcome(False, error=f"no answer within {TIMEOUT_SECONDS:g} s")
        except httpx.HTTPError as exc:
            return Outcome(False, error=f"could not connect: {type(exc).__name__}: {exc}")
        if response.is_success:
            return Outcome(True, response.status_code)
        if response.is_redirect:
            where = response.headers.get("location", "?")
            return Outcome(False, response.status_code, f"redirect to {where} not followed")
        return Outcome(False, response.status_code, f"the receiver answered {response.status_code}")

    def _record(self, webhook: Webhook, delivery: Row[Any], outcome: Outcome) -> None:
        now = self.clock()
        first = delivery.first_attempt_at or now
        attempts = delivery.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "first_attempt_at": first,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error[:500] if outcome.error else None,
        }
        given_up = not outcome.delivered and now + backoff(attempts) - first > GIVE_UP_AFTER
        if outcome.delivered:
            values |= {"status": DeliveryStatus.DELIVERED, "delivered_at": now}
            values["next_attempt_at"] = None
        elif given_up:
            values |= {"status": DeliveryStatus.FAILED, "next_attempt_at": None}
        else:
            values["next_attempt_at"] = now + backoff(attempts)
        with self.sessions() as session, session.begin():
            moved = session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery.id,
                    WebhookDelivery.status == DeliveryStatus.PENDING,
                )
                .values(values)
                .returning(WebhookDelivery.id, WebhookDelivery.org_id)
            ).all()
            delivery_changes(session, moved)
            if given_up and moved:
                log.warning(
                    "webhook %s disabled: delivery %s failed for 3 days", webhook.id, delivery.id
                )
                disable(
                    session,
                    webhook.id,
                    f"Deliveries failed for 3 days (last: {outcome.error}).",
                )
