"""The caller's notifications: mark one, or all, read. The inbox itself is read from the
query API (`GET /notifications`)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from command_api.modules.auth.dependencies import CommandUser
from command_api.modules.notifications.dependencies import NotificationServiceDep
from command_api.transaction import CommandRoute

router = APIRouter(route_class=CommandRoute)


@router.post("/notifications/read-all", status_code=204)
def mark_all_notifications_read(
    user: CommandUser, notifications: NotificationServiceDep
) -> Response:
    """Mark every unread notification of yours read (in every organization)."""
    notifications.mark_all_read(user)
    return Response(status_code=204)


@router.post("/notifications/{notification_id}/read", status_code=204)
def mark_notification_read(
    notification_id: uuid.UUID, user: CommandUser, notifications: NotificationServiceDep
) -> Response:
    """Mark one of your notifications read; reading it again is harmless. Anyone else's
    notification is a 404."""
    notifications.mark_read(user, notification_id)
    return Response(status_code=204)
