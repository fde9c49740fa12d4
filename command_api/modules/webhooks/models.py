from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
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

    def read_state(self) -> dict[str, Any]:
        """What its change rows say of it, and so what the read side shows: never a secret."""
        return {
            "url": self.url,
            "events": list(self.events),
            "description": self.description,
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
        }

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets a delivery signed at `now` carries: the current one, and the one a
        rotation replaced while its overlap lasts."""
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires is not None and now < expires:
            return [self.secret, self.previous_secret]
        return [self.secret]


class WebhookDelivery(UUIDPrimaryKey, Base):
    """One event on its way to one webhook: at least once, in `seq` order per webhook.

    `body` is fixed when the delivery is made, so every attempt signs and sends the same
    bytes and the event keeps its id. It is both the sender's queue (pending, due at
    `next_attempt_at`) and the log the admins read (through its projection)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        # The sender's head of line: a webhook's pending deliveries in order.
        Index(
            "ix_webhook_deliveries_webhook_id_seq_pending",
            "webhook_id",
            "seq",
            postgresql_where=text("status = 'pending'"),
        ),
        # The scheduler's question: which webhooks have a delivery due?
        Index(
            "ix_webhook_deliveries_next_attempt_at_pending",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False, unique=True)
    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    webhook_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False
    )
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    first_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
