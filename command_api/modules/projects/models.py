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
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, TimestampMixin, UUIDPrimaryKey, Versioned


def _live_unique_name(table: str) -> Index:
    """Names are unique per organization among records that are not deleted."""
    return Index(
        f"uq_{table}_org_id_name_live",
        "org_id",
        func.lower(text("name")),
        unique=True,
        postgresql_where=text("deleted_at IS NULL"),
    )


class Client(UUIDPrimaryKey, Versioned, Base):
    __tablename__ = "clients"
    __table_args__ = (_live_unique_name("clients"),)

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    archived: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Project(UUIDPrimaryKey, Versioned, Base):
    __tablename__ = "projects"
    __table_args__ = (
        _live_unique_name("projects"),
        Index("ix_projects_org_id_client_id", "org_id", "client_id"),
        CheckConstraint("hourly_rate_amount IS NULL OR hourly_rate_amount >= 0", name="rate"),
        CheckConstraint("budget_seconds IS NULL OR budget_seconds > 0", name="budget_seconds"),
        CheckConstraint("budget_amount IS NULL OR budget_amount > 0", name="budget_amount"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("clients.id"))
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    color: Mapped[str | None] = mapped_column(String(7))
    billable: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    hourly_rate_amount: Mapped[int | None] = mapped_column(BigInteger)
    budget_seconds: Mapped[int | None] = mapped_column(BigInteger)
    budget_amount: Mapped[int | None] = mapped_column(BigInteger)
    archived: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ProjectMember(TimestampMixin, Base):
    __tablename__ = "project_members"
    __table_args__ = (
        CheckConstraint("hourly_rate_amount IS NULL OR hourly_rate_amount >= 0", name="rate"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True, nullable=False
    )
    hourly_rate_amount: Mapped[int | None] = mapped_column(BigInteger)


class Task(UUIDPrimaryKey, Versioned, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_org_id_project_id", "org_id", "project_id"),
        CheckConstraint("budget_seconds IS NULL OR budget_seconds > 0", name="budget_seconds"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    budget_seconds: Mapped[int | None] = mapped_column(BigInteger)
    done: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Tag(UUIDPrimaryKey, Versioned, Base):
    __tablename__ = "tags"
    __table_args__ = (_live_unique_name("tags"),)

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
