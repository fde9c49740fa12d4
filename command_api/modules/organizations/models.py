from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, TimestampMixin, UUIDPrimaryKey, Versioned


class Role(StrEnum):
    MEMBER = "member"
    MANAGER = "manager"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANKS = {Role.MEMBER: 0, Role.MANAGER: 1, Role.ADMIN: 2, Role.OWNER: 3}

# A timer running longer than its organization's limit is told to its user (API.md,
# "Notifications"): 8 h unless the organization chose between 15 minutes and 7 days.
DEFAULT_LONG_RUNNING_TIMER_SECONDS = 8 * 3600
MIN_LONG_RUNNING_TIMER_SECONDS = 15 * 60
MAX_LONG_RUNNING_TIMER_SECONDS = 7 * 24 * 3600


class Organization(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint("week_start BETWEEN 1 AND 7", name="week_start_range"),
        CheckConstraint("hourly_rate_amount IS NULL OR hourly_rate_amount >= 0", name="rate"),
        CheckConstraint(
            f"long_running_timer_seconds BETWEEN {MIN_LONG_RUNNING_TIMER_SECONDS}"
            f" AND {MAX_LONG_RUNNING_TIMER_SECONDS}",
            name="long_running_timer_range",
        ),
    )

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    week_start: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=1)
    hourly_rate_amount: Mapped[int | None] = mapped_column(BigInteger)
    prevent_overlaps: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    lock_before: Mapped[date | None] = mapped_column(Date)
    long_running_timer_seconds: Mapped[int] = mapped_column(
        Integer,
        nullable=False,
        default=DEFAULT_LONG_RUNNING_TIMER_SECONDS,
        server_default=str(DEFAULT_LONG_RUNNING_TIMER_SECONDS),
    )
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Membership(UUIDPrimaryKey, Versioned, Base):
    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("org_id", "user_id", name="uq_memberships_org_user"),
        CheckConstraint("role IN ('owner','admin','manager','member')", name="role"),
        CheckConstraint("hourly_rate_amount IS NULL OR hourly_rate_amount >= 0", name="rate"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    hourly_rate_amount: Mapped[int | None] = mapped_column(BigInteger)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Team(UUIDPrimaryKey, Versioned, Base):
    __tablename__ = "teams"
    __table_args__ = (Index("ix_teams_org_id_parent_id", "org_id", "parent_id"),)

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("teams.id"))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TeamMember(TimestampMixin, Base):
    __tablename__ = "team_members"
    __table_args__ = (Index("ix_team_members_org_id_user_id", "org_id", "user_id"),)

    team_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    is_lead: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
