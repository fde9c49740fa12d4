"""Annotated aliases of the notifications module."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from command_api.modules.notifications.service import NotificationService
from command_api.transaction import SessionDep


async def get_notification_service(session: SessionDep) -> NotificationService:
    return NotificationService(session)


NotificationServiceDep = Annotated[NotificationService, Depends(get_notification_service)]
