from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from command_api.modules.webhooks.service import WebhookService
from command_api.transaction import SessionDep


async def get_webhook_service(session: SessionDep) -> WebhookService:
    return WebhookService(session)


WebhookServiceDep = Annotated[WebhookService, Depends(get_webhook_service)]
