"""Notifications on the write side: one row per notification, made exactly once.

`dedup_key` names what a notification is about (kind, subject, period, recipient); the
unique (org_id, dedup_key) makes every producer (a projector replaying changes, a job run
twice, two schedulers) insert with ON CONFLICT DO NOTHING, so none is ever made twice.
The inbox the query API reads is the projection `proj_notifications`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, TimestampMixin, UUIDPrimaryKey


class EmailStatus(StrEnum):
    SKIPPED = "skipped"  # the recipient does not want this kind by email
    PENDING = "pending"  # to send at next_attempt_at (also: claimed until then)
    SENT = "sent"
    FAILED = "failed"  # gave up after the last retry


class Notification(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("org_id", "dedup_key", name="uq_notifications_org_id_dedup_key"),
        CheckConstraint(
            "email_status IN ('skipped', 'pending', 'sent', 'failed')", name="email_status"
        ),
        # read-all: the caller's unread notifications.
        Index(
            "ix_notifications_user_id_unread",
            "user_id",
            postgresql_where=text("read_at IS NULL"),
        ),
        # Delivery: the emails due next.
        Index(
            "ix_notifications_email_due",
            "next_attempt_at",
            postgresql_where=text("email_status = 'pending'"),
        ),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    dedup_key: Mapped[str] = mapped_column(String(300), nullable=False)
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, default=dict, server_default=text("'{}'::jsonb")
    )
    # Channels chosen by the recipient's settings when the notification was made. Every
    # notification is in the inbox; one made with in_app false is made read (muted).
    in_app: Mapped[bool] = mapped_column(Boolean, nullable=False)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    email_status: Mapped[str] = mapped_column(String(16), nullable=False)
    email_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    email_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    email_error: Mapped[str | None] = mapped_column(Text)


class NotificationRun(Base):
    """A scheduled job done for one organization and period (a weekly summary sent), so
    the scheduler does not redo it on every tick. The notifications themselves are
    exactly-once by their dedup keys; this only saves work."""

    __tablename__ = "notification_runs"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
