"""Reading notifications: one, or all of the caller's at once."""

from __future__ import annotations

import uuid
from datetime import datetime

from command_api.modules.notifications.repository import NotificationRepository
from command_api.modules.users.models import User
from shared.changes import ChangeOp, ChangeRecord, record_changes
from shared.db import WriteSession
from shared.errors import NotFoundError
from shared.notifications import NotificationState

NOTIFICATION_ENTITY = "notification"


def _read_change(
    notification_id: uuid.UUID, org_id: uuid.UUID, user_id: uuid.UUID, kind: str, read_at: datetime
) -> ChangeRecord:
    old = NotificationState(user_id=user_id, kind=kind, read_at=None)
    new = NotificationState(user_id=user_id, kind=kind, read_at=read_at)
    return ChangeRecord(
        entity=NOTIFICATION_ENTITY,
        entity_id=notification_id,
        op=ChangeOp.UPDATED,
        org_id=org_id,
        payload={"old": old.payload(), "new": new.payload()},
    )


class NotificationService:
    def __init__(self, session: WriteSession) -> None:
        self.session = session
        self.notifications = NotificationRepository(session)

    def mark_read(self, user: User, notification_id: uuid.UUID) -> None:
        """Mark one of the caller's notifications read; reading it again changes nothing.
        Someone else's notification is a 404, like one that does not exist."""
        notification = self.notifications.lock_for_user(notification_id, user.id)
        if notification is None:
            raise NotFoundError.for_entity("Notification", notification_id)
        if notification.read_at is not None:
            return
        read_at = self.notifications.mark_read(notification)
        record_changes(
            self.session,
            [
                _read_change(
                    notification.id, notification.org_id, user.id, notification.kind, read_at
                )
            ],
        )

    def mark_all_read(self, user: User) -> int:
        """Mark every unread notification of the caller read: one UPDATE, one INSERT of
        their change rows. Returns how many were unread."""
        rows = self.notifications.mark_all_read(user.id)
        record_changes(
            self.session,
            [_read_change(row.id, row.org_id, user.id, row.kind, row.read_at) for row in rows],
        )
        return len(rows)
