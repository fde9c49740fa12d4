"""An organization's webhooks (admins)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends

from query_api.dependencies import OrgReaderDep, ReadSessionDep, consistent_with
from query_api.modules.webhooks.queries import deliveries_page, webhook_exists, webhooks_page
from query_api.modules.webhooks.schemas import DeliveryRead, DeliveryStatusFilter, WebhookRead
from shared.errors import NotFoundError
from shared.openapi import errors
from shared.pagination import PageDep, PaginationMeta
from shared.responses import PageEnvelope

router = APIRouter(prefix="/organizations/{org_id}", tags=["webhooks"])

# The projection the delivery log is read from.
WEBHOOK_DELIVERIES = ("webhooks",)


@router.get("/webhooks", response_model=PageEnvelope[WebhookRead])
def list_webhooks(
    org: OrgReaderDep, session: ReadSessionDep, params: PageDep
) -> PageEnvelope[WebhookRead]:
    """The organization's webhooks, oldest first, without their secrets (admin and up)."""
    org.require("admin")
    rows, total = webhooks_page(session, org.org_id, params)
    return PageEnvelope(
        data=[WebhookRead.model_validate(dict(row)) for row in rows],
        pagination=PaginationMeta.for_page(
            total=total, page=params.page, page_size=params.page_size
        ),
    )


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=PageEnvelope[DeliveryRead],
    responses=errors(403, 404),
    dependencies=[Depends(consistent_with(WEBHOOK_DELIVERIES))],
)
def list_webhook_deliveries(
    webhook_id: uuid.UUID,
    org: OrgReaderDep,
    session: ReadSessionDep,
    params: PageDep,
    status: DeliveryStatusFilter | None = None,
) -> PageEnvelope[DeliveryRead]:
    """A webhook's delivery log, newest first (admin and up): each event's attempts, the
    receiver's last answer or why it failed, and when it is tried next."""
    org.require("admin")
    if not webhook_exists(session, org.org_id, webhook_id):
        raise NotFoundError.for_entity("Webhook", webhook_id)
    rows, total = deliveries_page(session, webhook_id, status, params)
    return PageEnvelope(
        data=[DeliveryRead.model_validate(dict(row)) for row in rows],
        pagination=PaginationMeta.for_page(
            total=total, page=params.page, page_size=params.page_size
        ),
    )
