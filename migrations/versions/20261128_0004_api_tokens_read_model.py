"""api tokens read model

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "proj_api_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_proj_api_tokens")),
        sa.UniqueConstraint("id", name=op.f("uq_proj_api_tokens_id")),
    )
    # Tokens issued before this revision: project them now rather than at the next rebuild.
    op.execute(
        "INSERT INTO proj_api_tokens (token_hash, id, user_id, expires_at)"
        " SELECT token_hash, id, user_id, expires_at FROM api_tokens WHERE revoked_at IS NULL"
    )


def downgrade() -> None:
    op.drop_table("proj_api_tokens")
