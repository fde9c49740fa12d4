from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from command_api.modules.webhooks.models import Webhook


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
