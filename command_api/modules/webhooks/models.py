from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UUIDPrimaryKey, Versioned
from shared.outbound import MAX_URL_LENGTH


class Webhook(UUIDPrimaryKey, Versioned, Base):
    """A subscription of an organization's: which events go to which URL, signed with
    `secret` (and, until `previous_secret_expires_at`, with the one it replaced)."""

    __tablename__ = "webhooks"
    __table_args__ = (
        Index("ix_webhooks_org_id", "org_id", postgresql_where=text("deleted_at IS NULL")),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    url: Mapped[str] = mapped_column(String(MAX_URL_LENGTH), nullable=False)
    events: Mapped[list[str]] = mapped_column(ARRAY(String(64)), nullable=False)
    description: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    secret: Mapped[str] = mapped_column(String(200), nullable=False)
    previous_secret: Mapped[str | None] = mapped_column(String(200))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), nullable=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
