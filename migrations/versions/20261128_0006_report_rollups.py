"""report rollups

Untagged entries get tag totals rows (tag_id NULL), a monthly roll-up per project serves
long reports over the whole organization, and a (org, user, start_at, entry_id) index serves
a member's entries page. The new rows are derived from the projection tables as they stand,
so an upgraded database is consistent without a rebuild.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TOTALS = "seconds, billable_seconds, amount, entries"
_SUMS = (
    "SUM(seconds)::bigint, SUM(billable_seconds)::bigint, SUM(amount)::bigint, SUM(entries)::bigint"
)


def upgrade() -> None:
    op.create_table(
        "proj_monthly_project_totals",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=True),
        sa.Column("billable", sa.Boolean(), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.Column("billable_seconds", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
    )
    op.execute(
        f"""
        INSERT INTO proj_monthly_project_totals (org_id, month, project_id, billable, {_TOTALS})
        SELECT org_id, month, project_id, billable, {_SUMS}
        FROM proj_monthly_totals GROUP BY org_id, month, project_id, billable
        """
    )
    op.create_index(
        "uq_proj_monthly_project_totals_bucket",
        "proj_monthly_project_totals",
        ["org_id", "month", "project_id", "billable"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.alter_column("proj_daily_tag_totals", "tag_id", existing_type=sa.Uuid(), nullable=True)
    op.alter_column("proj_monthly_tag_totals", "tag_id", existing_type=sa.Uuid(), nullable=True)
    op.execute(
        f"""
        INSERT INTO proj_daily_tag_totals
            (org_id, day, user_id, project_id, task_id, billable, tag_id, {_TOTALS})
        SELECT org_id, local_date, user_id, project_id, task_id, billable, NULL,
               SUM(duration_seconds)::bigint,
               SUM(CASE WHEN billable THEN duration_seconds ELSE 0 END)::bigint,
               SUM(amount)::bigint, COUNT(*)::bigint
        FROM proj_entries WHERE end_at IS NOT NULL AND cardinality(tag_ids) = 0
        GROUP BY org_id, local_date, user_id, project_id, task_id, billable
        """
    )
    op.execute(
        f"""
        INSERT INTO proj_monthly_tag_totals
            (org_id, month, user_id, project_id, task_id, billable, tag_id, {_TOTALS})
        SELECT org_id, date_trunc('month', day)::date AS month, user_id, project_id, task_id,
               billable, NULL, {_SUMS}
        FROM proj_daily_tag_totals WHERE tag_id IS NULL
        GROUP BY org_id, month, user_id, project_id, task_id, billable
        """
    )
    op.create_index(
        "ix_proj_entries_org_id_user_id_start_at_entry_id",
        "proj_entries",
        ["org_id", "user_id", "start_at", "entry_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_proj_entries_org_id_user_id_start_at_entry_id", table_name="proj_entries")
    op.execute("DELETE FROM proj_monthly_tag_totals WHERE tag_id IS NULL")
    op.execute("DELETE FROM proj_daily_tag_totals WHERE tag_id IS NULL")
    op.alter_column("proj_monthly_tag_totals", "tag_id", existing_type=sa.Uuid(), nullable=False)
    op.alter_column("proj_daily_tag_totals", "tag_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_index(
        "uq_proj_monthly_project_totals_bucket",
        table_name="proj_monthly_project_totals",
        postgresql_nulls_not_distinct=True,
    )
    op.drop_table("proj_monthly_project_totals")
