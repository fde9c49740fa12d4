"""Projection (read-model) tables and the runner's bookkeeping.

They share the write side's metadata: one linear Alembic history.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.changes import Xid8
from shared.db import Base


class ProjectionCheckpoint(Base):
    """How far one projection has applied the change log.

    `(tx, change_id)` is the last change applied. `watermark` is a snapshot xmin such that
    every change of a transaction with an id below it has been applied: a consistency
    token T is satisfied once `watermark > T`.
    """

    __tablename__ = "projection_checkpoints"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    tx: Mapped[int] = mapped_column(Xid8(), nullable=False, server_default=text("'0'::xid8"))
    change_id: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    watermark: Mapped[int] = mapped_column(Xid8(), nullable=False, server_default=text("'0'::xid8"))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ProjectionDeadLetter(Base):
    """A change a projection could not apply; skipped until `evotrack projections retry`."""

    __tablename__ = "projection_dead_letters"
    __table_args__ = (
        Index(
            "uq_projection_dead_letters_open",
            "projection",
            "change_id",
            unique=True,
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    projection: Mapped[str] = mapped_column(String(64), nullable=False)
    change_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    tx: Mapped[int] = mapped_column(Xid8(), nullable=False)
    error: Mapped[str] = mapped_column(Text, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
