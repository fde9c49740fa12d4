from __future__ import annotations

import uuid

from sqlalchemy import Boolean, ForeignKey, Index, String, false, func, text, true
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, TimestampMixin, UUIDPrimaryKey


class User(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "users"
    # Emails are unique case-insensitively.
    __table_args__ = (Index("uq_users_email_lower", func.lower(text("email")), unique=True),)

    email: Mapped[str] = mapped_column(String(320), nullable=False)
    full_name: Mapped[str] = mapped_column(String(200), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, default="UTC")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class NotificationSetting(TimestampMixin, Base):
    """How a user wants one kind of notification delivered. Every notification is in the
    inbox; `in_app` false makes it arrive read (muted). A kind without a row uses the
    defaults (unread in the inbox, no email)."""

    __tablename__ = "notification_settings"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    in_app: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, server_default=true()
    )
    email: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
