"""projection bookkeeping

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.changes import Xid8

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "projection_checkpoints",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("tx", Xid8(), server_default=sa.text("'0'::xid8"), nullable=False),
        sa.Column("change_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("watermark", Xid8(), server_default=sa.text("'0'::xid8"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_projection_checkpoints")),
    )
    op.create_table(
        "projection_dead_letters",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("projection", sa.String(length=64), nullable=False),
        sa.Column("change_id", sa.BigInteger(), nullable=False),
        sa.Column("tx", Xid8(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projection_dead_letters")),
    )
    op.create_index(
        "uq_projection_dead_letters_open",
        "projection_dead_letters",
        ["projection", "change_id"],
        unique=True,
        postgresql_where=sa.text("resolved_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_projection_dead_letters_open",
        table_name="projection_dead_letters",
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.drop_table("projection_dead_letters")
    op.drop_table("projection_checkpoints")
