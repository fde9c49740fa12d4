"""shared reports: secret links to a report (only their token's hash), and their read model

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shared_reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_shared_reports_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_shared_reports_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shared_reports")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_shared_reports_token_hash")),
    )
    op.create_index(
        "ix_shared_reports_org_id",
        "shared_reports",
        ["org_id"],
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.create_table(
        "proj_shared_reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proj_shared_reports")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_proj_shared_reports_token_hash")),
    )
    op.create_index(
        "ix_proj_shared_reports_org_id_created_by",
        "proj_shared_reports",
        ["org_id", "created_by"],
    )


def downgrade() -> None:
    op.drop_index("ix_proj_shared_reports_org_id_created_by", table_name="proj_shared_reports")
    op.drop_table("proj_shared_reports")
    op.drop_index("ix_shared_reports_org_id", table_name="shared_reports")
    op.drop_table("shared_reports")
