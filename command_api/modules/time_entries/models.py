from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UUIDPrimaryKey, Versioned

MAX_ENTRY_SECONDS = 24 * 3600
MAX_DESCRIPTION_LENGTH = 3000


class TimeEntry(UUIDPrimaryKey, Versioned, Base):
    """A half-open interval [start_at, end_at) in UTC; no end_at is a running timer.

    The database enforces the two rules concurrent requests could otherwise break:
    one running timer per user (partial unique index) and, where the organization
    forbids overlaps (`no_overlap`, copied from the organization), no two live
    entries of a user intersect (exclusion constraint).
    """

    __tablename__ = "time_entries"
    __table_args__ = (
        CheckConstraint("end_at IS NULL OR end_at > start_at", name="end_after_start"),
        CheckConstraint(
            f"end_at IS NULL OR end_at - start_at <= interval '{MAX_ENTRY_SECONDS} seconds'",
            name="max_duration",
        ),
        CheckConstraint("hourly_rate_amount >= 0", name="rate"),
        Index(
            "uq_time_entries_one_running_timer",
            "user_id",
            unique=True,
            postgresql_where=text("end_at IS NULL AND deleted_at IS NULL"),
        ),
        ExcludeConstraint(
            ("org_id", "="),
            ("user_id", "="),
            (text("tstzrange(start_at, end_at, '[)')"), "&&"),
            name="ex_time_entries_no_overlap",
            using="gist",
            where=text("no_overlap AND deleted_at IS NULL"),
        ),
        Index("ix_time_entries_org_id_user_id_start_at", "org_id", "user_id", "start_at"),
        Index("ix_time_entries_org_id_project_id", "org_id", "project_id"),
        Index("ix_time_entries_org_id_task_id", "org_id", "task_id"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), nullable=False)
    project_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("projects.id"))
    task_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tasks.id"))
    description: Mapped[str] = mapped_column(String(MAX_DESCRIPTION_LENGTH), default="")
    billable: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    start_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    end_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    hourly_rate_amount: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    no_overlap: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TimeEntryTag(Base):
    __tablename__ = "time_entry_tags"
    __table_args__ = (Index("ix_time_entry_tags_org_id_tag_id", "org_id", "tag_id"),)

    entry_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("time_entries.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tags.id"), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
