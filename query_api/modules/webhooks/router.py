"""An organization's webhooks (admins)."""

from __future__ import annotations

from fastapi import APIRouter

from query_api.dependencies import OrgReaderDep, ReadSessionDep
from query_api.modules.webhooks.queries import webhooks_page
from query_api.modules.webhooks.schemas import WebhookRead
from shared.pagination import PageDep, PaginationMeta
from shared.responses import PageEnvelope

router = APIRouter(prefix="/organizations/{org_id}", tags=["webhooks"])


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
