from __future__ import annotations

import uuid

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.orm import Session

from command_api.modules.webhooks.models import Webhook, WebhookDelivery
from shared.webhooks import DeliveryStatus, EventDraft


class WebhookRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, org_id: uuid.UUID, webhook_id: uuid.UUID, *, lock: bool) -> Webhook | None:
        statement = select(Webhook).where(
            Webhook.id == webhook_id, Webhook.org_id == org_id, Webhook.deleted_at.is_(None)
        )
        if lock:
            statement = statement.with_for_update()
        return self.session.execute(statement).scalar_one_or_none()

    def add(self, webhook: Webhook) -> None:
        self.session.add(webhook)
        self.session.flush()

    def flush(self) -> None:
        self.session.flush()

    def add_delivery(self, webhook: Webhook, draft: EventDraft) -> Row[uuid.UUID, uuid.UUID]:
        """A delivery of `draft` to `webhook`, due now (its id and org_id)."""
        return self.session.execute(
            insert(WebhookDelivery)
            .values(
                org_id=webhook.org_id,
                webhook_id=webhook.id,
                event_id=draft.id,
                event_type=draft.type,
                body=draft.body(),
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=func.now(),
            )
            .returning(WebhookDelivery.id, WebhookDelivery.org_id)
        ).one()

    def make_due_again(
        self, webhook_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> Row[uuid.UUID, uuid.UUID] | None:
        """Make a delivery pending and due now, as if never tried; None if there is none."""
        return self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id == webhook_id)
            .values(
                status=DeliveryStatus.PENDING,
                attempts=0,
                first_attempt_at=None,
                next_attempt_at=func.now(),
                delivered_at=None,
            )
            .returning(WebhookDelivery.id, WebhookDelivery.org_id)
        ).one_or_none()
