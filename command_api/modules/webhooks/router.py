"""Webhooks of an organization (admins): subscribe to events, change, delete, rotate."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from command_api.modules.organizations.dependencies import OrgAdmin
from command_api.modules.webhooks.dependencies import WebhookServiceDep
from command_api.modules.webhooks.schemas import (
    DeliveryAccepted,
    SecretRotated,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookUpdate,
)
from command_api.transaction import CommandRoute
from shared.openapi import errors
from shared.responses import Envelope, ok

router = APIRouter(route_class=CommandRoute)

WEBHOOKS = "/organizations/{org_id}/webhooks"
WEBHOOK = WEBHOOKS + "/{webhook_id}"


@router.post(
    WEBHOOKS, status_code=201, response_model=Envelope[WebhookCreated], responses=errors(403)
)
def create_webhook(
    body: WebhookCreate, context: OrgAdmin, service: WebhookServiceDep
) -> Envelope[WebhookCreated]:
    """Subscribe a URL to events (`entity.action`, `*` for either side; admin and up).

    The URL must be `https://` (`http://` to this machine outside production); in
    production one that resolves to a private address needs WEBHOOK_ALLOWED_HOSTS. The
    secret signs every delivery; it is shown in this answer only."""
    webhook = service.create(context, body)
    return ok(WebhookCreated.model_validate(webhook))


@router.patch(WEBHOOK, response_model=Envelope[WebhookRead], responses=errors(403))
def update_webhook(
    webhook_id: uuid.UUID, body: WebhookUpdate, context: OrgAdmin, service: WebhookServiceDep
) -> Envelope[WebhookRead]:
    """Change the URL, the events, the description, or enable (again) and disable it."""
    return ok(WebhookRead.model_validate(service.update(context, webhook_id, body)))


@router.delete(WEBHOOK, status_code=204, responses=errors(403))
def delete_webhook(
    webhook_id: uuid.UUID, context: OrgAdmin, service: WebhookServiceDep
) -> Response:
    """Delete a webhook: nothing more is delivered to it."""
    service.delete(context, webhook_id)
    return Response(status_code=204)


@router.post(
    WEBHOOK + "/rotate-secret", response_model=Envelope[SecretRotated], responses=errors(403)
)
def rotate_webhook_secret(
    webhook_id: uuid.UUID, context: OrgAdmin, service: WebhookServiceDep
) -> Envelope[SecretRotated]:
    """A new secret, shown once. For 24 h deliveries carry a signature with each secret,
    so receivers can switch without missing one."""
    secret, expires_at = service.rotate_secret(context, webhook_id)
    return ok(SecretRotated(secret=secret, previous_secret_expires_at=expires_at))


@router.post(
    WEBHOOK + "/ping",
    status_code=202,
    response_model=Envelope[DeliveryAccepted],
    responses=errors(403),
)
def ping_webhook(
    webhook_id: uuid.UUID, context: OrgAdmin, service: WebhookServiceDep
) -> Envelope[DeliveryAccepted]:
    """Deliver a `ping` event to this webhook (whatever its events), after those before it;
    its delivery log shows how it went."""
    return ok(DeliveryAccepted(delivery_id=service.ping(context, webhook_id)))


@router.post(
    WEBHOOK + "/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=Envelope[DeliveryAccepted],
    responses=errors(403),
)
def redeliver_webhook_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, context: OrgAdmin, service: WebhookServiceDep
) -> Envelope[DeliveryAccepted]:
    """Send a delivery again, with its event id and body unchanged, and a fresh signature.
    It goes out in its turn: deliveries of a webhook keep their order."""
    service.redeliver(context, webhook_id, delivery_id)
    return ok(DeliveryAccepted(delivery_id=delivery_id))
