"""SQL of the notifications module."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, func, select, update

from command_api.modules.notifications.models import Notification
from shared.db import WriteSession


class NotificationRepository:
    def __init__(self, session: WriteSession) -> None:
        self.session = session

    def lock_for_user(self, notification_id: uuid.UUID, user_id: uuid.UUID) -> Notification | None:
        """The user's notification, locked and re-read: two concurrent reads of it queue
        up, and the second sees it read already."""
        return self.session.execute(
            select(Notification)
            .where(Notification.id == notification_id, Notification.user_id == user_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()

    def mark_read(self, notification: Notification) -> datetime:
        read_at = self.session.execute(
            update(Notification)
            .where(Notification.id == notification.id)
            .values(read_at=func.now())
            .returning(Notification.read_at)
        ).scalar_one()
        assert read_at is not None
        return read_at

    def mark_all_read(
        self, user_id: uuid.UUID
    ) -> Sequence[Row[uuid.UUID, uuid.UUID, str, datetime | None]]:
        """Every unread notification of the user, read now, in one statement (through the
        partial index on unread notifications)."""
        return self.session.execute(
            update(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
            .values(read_at=func.now())
            .returning(
                Notification.id, Notification.org_id, Notification.kind, Notification.read_at
            )
            .execution_options(synchronize_session=False)
        ).all()
