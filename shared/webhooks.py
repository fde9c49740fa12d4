"""The webhook contract: the events, an event to deliver (drafted by the webhooks
projection from the change log, or by a ping), what makes its deliveries (a `DeliverySink`:
the webhooks service) and how a delivery is signed. Shared, like shared/notifications.py,
so that the projection, the worker and the command API agree without importing each other.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict
from sqlalchemy import event
from sqlalchemy.orm import Session

from shared.changes import ChangeOp, ChangeRecord, record_changes
from shared.redis_client import ring_webhooks

# The entity of a delivery's change rows: the delivery log's projection follows them.
DELIVERY_ENTITY = "webhook_delivery"

# Event ids are uuid5 of the change (and the event's type) in this namespace: a change
# applied again (a retried batch, a rebuild's catch-up) makes the same event, never a new one.
EVENT_NAMESPACE = uuid.UUID("6f0b7c64-4a51-4c1e-9a43-3f1c9e0b5d21")

PING = "ping"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


def event_id(change_id: int, event_type: str) -> uuid.UUID:
    return uuid.uuid5(EVENT_NAMESPACE, f"{change_id}.{event_type}")


def matches(pattern: str, event: str) -> bool:
    """Whether an event pattern (`time_entry.*`, `*.deleted`, `*`) covers `event`."""
    if pattern == "*":
        return True
    entity, _, action = pattern.partition(".")
    event_entity, _, event_action = event.partition(".")
    return entity in ("*", event_entity) and action in ("*", event_action)


def wanted(patterns: Iterable[str], event: str) -> bool:
    """Whether a webhook subscribed to `patterns` gets `event`. A ping goes to every
    webhook it is sent to, whatever it subscribed to."""
    return event == PING or any(matches(p, event) for p in patterns)


class EventDraft(BaseModel):
    """An event to deliver to the organization's webhooks that want it. `id` is stable:
    the same change always makes the same event."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    org_id: uuid.UUID
    type: str
    created_at: datetime
    data: dict[str, Any]

    def body(self) -> str:
        """The delivery's body, once and for all: every attempt sends (and signs) these
        very bytes."""
        return EventBody(
            id=self.id,
            type=self.type,
            created_at=self.created_at,
            org_id=self.org_id,
            data=self.data,
        ).model_dump_json()


class EventBody(BaseModel):
    """What a receiver gets (API.md, "Webhooks")."""

    id: uuid.UUID
    type: str
    created_at: datetime
    org_id: uuid.UUID
    data: dict[str, Any]


class DeliverySink(Protocol):
    """Makes one delivery per event and webhook that wants it, unless made before, in the
    caller's transaction; returns the ids of those made now:
    `webhooks.service.create_deliveries`, injected into the webhooks projection."""

    def __call__(self, session: Session, events: Sequence[EventDraft], /) -> list[uuid.UUID]: ...


def signature(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """`EvoTrack-Signature`: `v1=` and the hex HMAC-SHA256 of `{timestamp}.{body}`, one per
    secret (two while a rotated secret still signs), separated by commas."""
    signed = str(timestamp).encode() + b"." + body
    return ",".join(
        "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest() for secret in secrets
    )


def verify_signature(
    header: str, secret: str, timestamp: int, body: bytes, *, now: int, tolerance: int = 300
) -> bool:
    """What a receiver does: one of the `v1=` values is the HMAC with its secret, and the
    timestamp is no more than `tolerance` seconds old."""
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature([secret], timestamp, body)
    return any(hmac.compare_digest(expected, part.strip()) for part in header.split(","))


def delivery_changes(session: Session, rows: Iterable[Any]) -> None:
    """The change rows of deliveries made or moved on (rows of id, org_id): the delivery
    log re-reads them by id, so the payload says no more."""
    record_changes(
        session,
        [ChangeRecord(DELIVERY_ENTITY, row.id, ChangeOp.UPDATED, row.org_id, {}) for row in rows],
    )


def ring_after_commit(session: Session, webhook_ids: Iterable[uuid.UUID]) -> None:
    """Wake the webhooks' senders once this transaction has committed (before, they would
    not see the deliveries). Best effort: the scheduler finds whatever a lost ring hid."""
    ids = set(webhook_ids)
    if ids:
        event.listen(session, "after_commit", lambda _: ring_webhooks(ids), once=True)
