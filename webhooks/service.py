"""Making webhook deliveries of the events the change log announces (for the webhooks
projection), and disabling a webhook whose deliveries kept failing (for the sender,
webhooks/sender.py). A ping and a redelivery are commands (command_api/modules/webhooks).

A delivery is made once per (webhook, event): one INSERT … ON CONFLICT DO NOTHING on that
unique key, so a change applied twice makes no second delivery. The projection puts the
deliveries made here in the delivery log itself; every later change of a delivery's state
(an attempt, a redelivery) appends a change row, from which the log follows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from command_api.modules.organizations.models import Membership, Role
from command_api.modules.webhooks.models import Webhook, WebhookDelivery
from notifications.service import create_notifications
from shared.changes import ChangeOp, ChangeRecord, record_changes
from shared.notifications import NotificationDraft, NotificationKind
from shared.webhooks import (
    DeliveryStatus,
    EventDraft,
    delivery_changes,
    ring_after_commit,
    wanted,
)

WEBHOOK_ENTITY = "webhook"
# Rows per INSERT: a statement carries at most 65,535 parameters (PostgreSQL's protocol),
# and a batch of changes times the webhooks wanting them may make far more rows.
INSERT_CHUNK = 2000


def _subscribers(session: Session, org_ids: set[uuid.UUID]) -> list[Row[Any]]:
    return list(
        session.execute(
            select(Webhook.id, Webhook.org_id, Webhook.events, Webhook.created_at).where(
                Webhook.org_id.in_(org_ids), Webhook.enabled, Webhook.deleted_at.is_(None)
            )
        )
    )


def create_deliveries(session: Session, events: Sequence[EventDraft]) -> list[uuid.UUID]:
    """One delivery for each event and enabled webhook of its organization that wants it
    and existed when the event happened, unless made before; return the ids of those made
    now. Runs in the caller's transaction (a projection batch), in the events' order: that
    is the order of delivery."""
    if not events:
        return []
    subscribers = _subscribers(session, {e.org_id for e in events})
    bodies = {e.id: e.body() for e in events}
    rows = [
        {
            "id": uuid.uuid4(),
            "org_id": e.org_id,
            "webhook_id": hook.id,
            "event_id": e.id,
            "event_type": e.type,
            "body": bodies[e.id],
            "status": DeliveryStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": func.now(),
        }
        for e in events
        for hook in subscribers
        if hook.org_id == e.org_id
        and e.created_at >= hook.created_at
        and wanted(hook.events, e.type)
    ]
    if not rows:
        return []
    made = [
        row
        for start in range(0, len(rows), INSERT_CHUNK)
        for row in session.execute(
            insert(WebhookDelivery)
            .values(rows[start : start + INSERT_CHUNK])
            .on_conflict_do_nothing(index_elements=["webhook_id", "event_id"])
            .returning(WebhookDelivery.id, WebhookDelivery.org_id, WebhookDelivery.webhook_id)
        )
    ]
    ring_after_commit(session, (row.webhook_id for row in made))
    return [row.id for row in made]


def disable(session: Session, webhook_id: uuid.UUID, reason: str) -> None:
    """Disable a webhook whose deliveries kept failing and tell the organization's admins
    (once per disabling: the notification names the version it disabled)."""
    webhook = session.execute(
        select(Webhook).where(Webhook.id == webhook_id).with_for_update()
    ).scalar_one_or_none()
    if webhook is None or not webhook.enabled or webhook.deleted_at is not None:
        return
    old = webhook.read_state()
    webhook.enabled, webhook.disabled_reason = False, reason[:500]
    session.flush()
    record_changes(
        session,
        [
            ChangeRecord(
                WEBHOOK_ENTITY,
                webhook.id,
                ChangeOp.UPDATED,
                webhook.org_id,
                {"old": old, "new": webhook.read_state()},
            )
        ],
    )
    admins = session.execute(
        select(Membership.user_id).where(
            Membership.org_id == webhook.org_id,
            Membership.role.in_([Role.ADMIN, Role.OWNER]),
            Membership.deleted_at.is_(None),
        )
    ).scalars()
    create_notifications(
        session,
        [
            NotificationDraft(
                org_id=webhook.org_id,
                user_id=user_id,
                kind=NotificationKind.WEBHOOK_DISABLED,
                dedup_key=f"webhook_disabled:{webhook.id}:{webhook.version}:{user_id}",
                title="A webhook was disabled",
                body=f"Deliveries to {webhook.url} failed for 3 days, so it was disabled: "
                f"{reason} Enable it again once the receiver answers.",
                data={"webhook_id": str(webhook.id), "url": webhook.url},
            )
            for user_id in admins
        ],
    )


PRUNE_BATCH = 5000


def prune_deliveries(session: Session, before: datetime, batch_size: int = PRUNE_BATCH) -> int:
    """Delete one batch of deliveries done before `before` (delivered or given up by then,
    or made by then for a webhook since deleted), with the change rows that take them out
    of the log; return how many went."""
    deleted_hook = select(Webhook.id).where(Webhook.deleted_at.is_not(None))
    done = or_(
        and_(
            WebhookDelivery.status != DeliveryStatus.PENDING,
            func.coalesce(WebhookDelivery.delivered_at, WebhookDelivery.created_at) < before,
        ),
        and_(WebhookDelivery.webhook_id.in_(deleted_hook), WebhookDelivery.created_at < before),
    )
    batch = select(WebhookDelivery.id).where(done).limit(batch_size)
    gone = session.execute(
        delete(WebhookDelivery)
        .where(WebhookDelivery.id.in_(batch.scalar_subquery()))
        .returning(WebhookDelivery.id, WebhookDelivery.org_id)
    ).all()
    delivery_changes(session, gone)
    return len(gone)
