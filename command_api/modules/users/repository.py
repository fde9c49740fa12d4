"""SQL of the users module."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from command_api.modules.users.models import NotificationSetting, User
from shared.db import WriteSession

Channels = dict[str, bool]  # {"in_app": ..., "email": ...}


class UserRepository:
    def __init__(self, session: WriteSession) -> None:
        self.session = session

    def get(self, user_id: uuid.UUID) -> User | None:
        return self.session.get(User, user_id)

    def lock(self, user_id: uuid.UUID) -> User:
        """The user row, locked and re-read: what a change row says it was is what it was.

        FOR NO KEY UPDATE is the lock the UPDATE takes anyway; unlike FOR UPDATE it lets
        rows that merely reference the user (entries, tokens, memberships) be inserted."""
        return self.session.execute(
            select(User)
            .where(User.id == user_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        ).scalar_one()

    def get_by_email(self, email: str) -> User | None:
        """Case-insensitive, through the unique index on lower(email)."""
        return self.session.execute(
            select(User).where(func.lower(User.email) == email.lower())
        ).scalar_one_or_none()

    def add(self, user: User) -> User:
        """Insert inside a SAVEPOINT so a unique violation leaves the transaction usable."""
        with self.session.begin_nested():
            self.session.add(user)
        return user

    def flush(self) -> None:
        self.session.flush()

    # --- Notification settings -----------------------------------------------------------

    def notification_settings(self, user_id: uuid.UUID) -> dict[str, Channels]:
        """The kinds the user has set (the others use the defaults)."""
        rows = self.session.execute(
            select(
                NotificationSetting.kind, NotificationSetting.in_app, NotificationSetting.email
            ).where(NotificationSetting.user_id == user_id)
        )
        return {kind: {"in_app": in_app, "email": email} for kind, in_app, email in rows}

    def upsert_notification_settings(
        self, user_id: uuid.UUID, settings: Mapping[str, Channels]
    ) -> None:
        """Every given kind in one INSERT … ON CONFLICT DO UPDATE."""
        if not settings:
            return
        statement = insert(NotificationSetting).values(
            [{"user_id": user_id, "kind": kind, **channels} for kind, channels in settings.items()]
        )
        self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[NotificationSetting.user_id, NotificationSetting.kind],
                set_={
                    "in_app": statement.excluded.in_app,
                    "email": statement.excluded.email,
                    "updated_at": func.now(),
                },
            )
        )
