from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, TimestampMixin, UUIDPrimaryKey


class SharedReport(UUIDPrimaryKey, TimestampMixin, Base):
    """A secret link to one of an organization's reports, which anyone holding it may read
    as its creator may see it then. Only the SHA-256 of the token is kept: the token itself
    is shown once, when the link is made."""

    __tablename__ = "shared_reports"
    __table_args__ = (
        Index("ix_shared_reports_org_id", "org_id", postgresql_where=text("revoked_at IS NULL")),
    )
    # `created_at` comes back in the INSERT's RETURNING: the answer shows it.
    __mapper_args__ = {"eager_defaults": True}

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    # The report's parameters as API.md names them (`from`, `to`, `group_by`, …), checked.
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def read_state(self) -> dict[str, Any]:
        """What its change rows say of it: never the token nor its hash."""
        return {
            "name": self.name,
            "kind": self.kind,
            "params": self.params,
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
            "created_by": str(self.created_by),
        }
