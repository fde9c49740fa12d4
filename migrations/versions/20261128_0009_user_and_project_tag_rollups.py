"""per-user and per-project tag roll-ups

Reports by person and time (user, team, day, week, month, billable) read per-user daily
and monthly totals instead of the per-project-and-task buckets, and a year by tag over the
whole organization reads a monthly roll-up per project and tag. The new rows are derived
from the projection tables as they stand, so an upgraded database is consistent without a
rebuild.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TOTALS = "seconds, billable_seconds, amount, entries"
_SUMS = (
    "SUM(seconds)::bigint, SUM(billable_seconds)::bigint, SUM(amount)::bigint, SUM(entries)::bigint"
)


def _totals() -> list[sa.Column[int]]:
    return [sa.Column(name, sa.BigInteger(), nullable=False) for name in _TOTALS.split(", ")]


def upgrade() -> None:
    op.create_table(
        "proj_daily_user_totals",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("billable", sa.Boolean(), nullable=False),
        *_totals(),
    )
    op.create_index(
        "uq_proj_daily_user_totals_bucket",
        "proj_daily_user_totals",
        ["org_id", "day", "user_id", "billable"],
        unique=True,
    )
    op.create_table(
        "proj_monthly_user_totals",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("billable", sa.Boolean(), nullable=False),
        *_totals(),
    )
    op.create_index(
        "uq_proj_monthly_user_totals_bucket",
        "proj_monthly_user_totals",
        ["org_id", "month", "user_id", "billable"],
        unique=True,
    )
    op.create_table(
        "proj_monthly_project_tag_totals",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=True),
        sa.Column("billable", sa.Boolean(), nullable=False),
        sa.Column("tag_id", sa.Uuid(), nullable=True),
        *_totals(),
    )
    op.create_index(
        "uq_proj_monthly_project_tag_totals_bucket",
        "proj_monthly_project_tag_totals",
        ["org_id", "month", "project_id", "billable", "tag_id"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.execute(
        f"INSERT INTO proj_daily_user_totals (org_id, day, user_id, billable, {_TOTALS})"
        f" SELECT org_id, day, user_id, billable, {_SUMS} FROM proj_daily_totals"
        " GROUP BY org_id, day, user_id, billable"
    )
    op.execute(
        f"INSERT INTO proj_monthly_user_totals (org_id, month, user_id, billable, {_TOTALS})"
        f" SELECT org_id, month, user_id, billable, {_SUMS} FROM proj_monthly_totals"
        " GROUP BY org_id, month, user_id, billable"
    )
    op.execute(
        "INSERT INTO proj_monthly_project_tag_totals"
        f" (org_id, month, project_id, billable, tag_id, {_TOTALS})"
        f" SELECT org_id, month, project_id, billable, tag_id, {_SUMS}"
        " FROM proj_monthly_tag_totals GROUP BY org_id, month, project_id, billable, tag_id"
    )


def downgrade() -> None:
    op.drop_table("proj_monthly_project_tag_totals")
    op.drop_table("proj_monthly_user_totals")
    op.drop_table("proj_daily_user_totals")
