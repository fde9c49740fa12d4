"""per-organization monthly tag roll-up

A year by tag (and billable, month) over the whole organization read a row per month,
project and tag (47,000 rows for the biggest organization at 10 million entries, ~80 ms);
this roll-up holds a row per month, tag and billable. Filled from the per-project tag
roll-up as it stands, so no rebuild is needed.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TOTALS = "seconds, billable_seconds, amount, entries"
_SUMS = (
    "SUM(seconds)::bigint, SUM(billable_seconds)::bigint, SUM(amount)::bigint, SUM(entries)::bigint"
)


def upgrade() -> None:
    op.create_table(
        "proj_monthly_org_tag_totals",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("billable", sa.Boolean(), nullable=False),
        sa.Column("tag_id", sa.Uuid(), nullable=True),
        *[sa.Column(name, sa.BigInteger(), nullable=False) for name in _TOTALS.split(", ")],
    )
    op.create_index(
        "uq_proj_monthly_org_tag_totals_bucket",
        "proj_monthly_org_tag_totals",
        ["org_id", "month", "billable", "tag_id"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.execute(
        f"INSERT INTO proj_monthly_org_tag_totals (org_id, month, billable, tag_id, {_TOTALS})"
        f" SELECT org_id, month, billable, tag_id, {_SUMS} FROM proj_monthly_project_tag_totals"
        " GROUP BY org_id, month, billable, tag_id"
    )


def downgrade() -> None:
    op.drop_table("proj_monthly_org_tag_totals")
