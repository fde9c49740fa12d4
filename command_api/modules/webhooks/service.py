"""Commands on webhooks: subscribe, change, delete, rotate the secret.

A URL is checked against the outbound rules (shared.outbound) when it is saved; every
change appends a change row without the secret, so the read side can list webhooks and
never learns a secret.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Session

from command_api.modules.organizations.context import OrgContext
from command_api.modules.webhooks.models import Webhook
from command_api.modules.webhooks.repository import WebhookRepository
from command_api.modules.webhooks.schemas import WebhookCreate, WebhookUpdate
from shared.changes import ChangeOp, ChangeRecord, record_changes
from shared.config import get_settings
from shared.errors import NotFoundError, ValidationFailedError
from shared.outbound import UnsafeURLError, check_url
from shared.webhooks import PING, EventDraft, delivery_changes, ring_after_commit

ENTITY = "webhook"
# How long deliveries are signed with the secret a rotation replaced too (API.md).
ROTATION_OVERLAP = timedelta(hours=24)


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _safe_url(url: str) -> str:
    try:
        return check_url(url, get_settings())
    except UnsafeURLError as exc:
        raise ValidationFailedError(
            f"Invalid field 'url': {exc}",
            details=[
                {"field": "url", "location": "body", "message": str(exc), "type": "value_error"}
            ],
        ) from exc


class WebhookService:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.repo = WebhookRepository(session)

    def _record(
        self, webhook: Webhook, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        op = (
            ChangeOp.CREATED
            if old is None
            else ChangeOp.DELETED
            if new is None
            else ChangeOp.UPDATED
        )
        record_changes(
            self.session,
            [ChangeRecord(ENTITY, webhook.id, op, webhook.org_id, {"old": old, "new": new})],
        )

    def _get(self, ctx: OrgContext, webhook_id: uuid.UUID) -> Webhook:
        webhook = self.repo.get(ctx.org_id, webhook_id, lock=True)
        if webhook is None:
            raise NotFoundError.for_entity("Webhook", webhook_id)
        return webhook

    def create(self, ctx: OrgContext, data: WebhookCreate) -> Webhook:
        webhook = Webhook(
            id=uuid.uuid4(),
            org_id=ctx.org_id,
            url=_safe_url(data.url),
            events=data.events,
            description=data.description,
            secret=data.secret or new_secret(),
            enabled=True,
            created_by=ctx.user.id,
        )
        self.repo.add(webhook)
        self._record(webhook, None, webhook.read_state())
        return webhook

    def update(self, ctx: OrgContext, webhook_id: uuid.UUID, data: WebhookUpdate) -> Webhook:
        webhook = self._get(ctx, webhook_id)
        old = webhook.read_state()
        values = data.model_dump(exclude_unset=True)
        if "url" in values and values["url"] != webhook.url:
            webhook.url = _safe_url(values["url"])
        for name in ("events", "description", "enabled"):
            if name in values and values[name] != getattr(webhook, name):
                setattr(webhook, name, values[name])
        if values.get("enabled"):
            webhook.disabled_reason = None
        if webhook.read_state() != old:
            self.repo.flush()
            self._record(webhook, old, webhook.read_state())
        return webhook

    def delete(self, ctx: OrgContext, webhook_id: uuid.UUID) -> None:
        webhook = self._get(ctx, webhook_id)
        old = webhook.read_state()
        webhook.deleted_at = func.now()
        self.repo.flush()
        self._record(webhook, old, None)

    def rotate_secret(self, ctx: OrgContext, webhook_id: uuid.UUID) -> tuple[str, datetime]:
        """A new secret; the old one signs too for ROTATION_OVERLAP (a second rotation
        within it ends the first's overlap: two secrets at most)."""
        webhook = self._get(ctx, webhook_id)
        expires_at = datetime.now(UTC) + ROTATION_OVERLAP
        webhook.previous_secret, webhook.previous_secret_expires_at = webhook.secret, expires_at
        webhook.secret = new_secret()
        self.repo.flush()
        state = webhook.read_state()
        self._record(webhook, state, state)  # no secret in it: the read side's version moves
        return webhook.secret, expires_at

    def ping(self, ctx: OrgContext, webhook_id: uuid.UUID) -> uuid.UUID:
        """A `ping` event for this webhook alone, delivered in its turn like any other;
        returns the delivery's id."""
        webhook = self._get(ctx, webhook_id)
        draft = EventDraft(
            id=uuid.uuid4(),
            org_id=webhook.org_id,
            type=PING,
            created_at=datetime.now(UTC),
            data={"webhook_id": str(webhook.id)},
        )
        made = self.repo.add_delivery(webhook, draft)
        delivery_changes(self.session, [made])
        ring_after_commit(self.session, [webhook.id])
        return uuid.UUID(str(made.id))

    def redeliver(self, ctx: OrgContext, webhook_id: uuid.UUID, delivery_id: uuid.UUID) -> None:
        """Send a delivery again as it was (same event id, same body), due at once. In
        its turn: a webhook's deliveries still go out in order."""
        webhook = self._get(ctx, webhook_id)
        moved = self.repo.make_due_again(webhook.id, delivery_id)
        if moved is None:
            raise NotFoundError.for_entity("Delivery", delivery_id)
        delivery_changes(self.session, [moved])
        ring_after_commit(self.session, [webhook.id])
