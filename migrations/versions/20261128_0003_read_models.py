"""read models

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "proj_clients",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proj_clients")),
    )
    op.create_index("ix_proj_clients_org_id", "proj_clients", ["org_id"], unique=False)
    op.create_table(
        "proj_daily_tag_totals",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=True),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("billable", sa.Boolean(), nullable=False),
        sa.Column("tag_id", sa.Uuid(), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.Column("billable_seconds", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_proj_daily_tag_totals_org_id_day",
        "proj_daily_tag_totals",
        ["org_id", "day"],
        unique=False,
    )
    op.create_index(
        "uq_proj_daily_tag_totals_bucket",
        "proj_daily_tag_totals",
        ["org_id", "day", "user_id", "project_id", "task_id", "billable", "tag_id"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.create_table(
        "proj_daily_totals",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=True),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("billable", sa.Boolean(), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.Column("billable_seconds", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_proj_daily_totals_org_id_day", "proj_daily_totals", ["org_id", "day"], unique=False
    )
    op.create_index(
        "uq_proj_daily_totals_bucket",
        "proj_daily_totals",
        ["org_id", "day", "user_id", "project_id", "task_id", "billable"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.create_table(
        "proj_entries",
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("user_name", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=True),
        sa.Column("project_name", sa.String(length=200), nullable=True),
        sa.Column("project_color", sa.String(length=7), nullable=True),
        sa.Column("client_id", sa.Uuid(), nullable=True),
        sa.Column("client_name", sa.String(length=200), nullable=True),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("task_name", sa.String(length=200), nullable=True),
        sa.Column("tag_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("tag_names", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.BigInteger(), nullable=True),
        sa.Column("billable", sa.Boolean(), nullable=False),
        sa.Column("hourly_rate_amount", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_proj_entries")),
    )
    op.create_index(
        "ix_proj_entries_org_id_local_date", "proj_entries", ["org_id", "local_date"], unique=False
    )
    op.create_index(
        "ix_proj_entries_org_id_project_id_start_at",
        "proj_entries",
        ["org_id", "project_id", "start_at"],
        unique=False,
    )
    op.create_index(
        "ix_proj_entries_org_id_start_at_entry_id",
        "proj_entries",
        ["org_id", "start_at", "entry_id"],
        unique=False,
    )
    op.create_index(
        "ix_proj_entries_org_id_user_id_local_date",
        "proj_entries",
        ["org_id", "user_id", "local_date"],
        unique=False,
    )
    op.create_index(
        "ix_proj_entries_running",
        "proj_entries",
        ["user_id"],
        unique=False,
        postgresql_where=sa.text("end_at IS NULL"),
    )
    op.create_index(
        "ix_proj_entries_tag_ids", "proj_entries", ["tag_ids"], unique=False, postgresql_using="gin"
    )
    op.create_table(
        "proj_members",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("hourly_rate_amount", sa.BigInteger(), nullable=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "user_id", name=op.f("pk_proj_members")),
    )
    op.create_index("ix_proj_members_user_id", "proj_members", ["user_id"], unique=False)
    op.create_table(
        "proj_monthly_tag_totals",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=True),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("billable", sa.Boolean(), nullable=False),
        sa.Column("tag_id", sa.Uuid(), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.Column("billable_seconds", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "uq_proj_monthly_tag_totals_bucket",
        "proj_monthly_tag_totals",
        ["org_id", "month", "user_id", "project_id", "task_id", "billable", "tag_id"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.create_table(
        "proj_monthly_totals",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=True),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("billable", sa.Boolean(), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.Column("billable_seconds", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_proj_monthly_totals_org_id_project_id",
        "proj_monthly_totals",
        ["org_id", "project_id"],
        unique=False,
    )
    op.create_index(
        "uq_proj_monthly_totals_bucket",
        "proj_monthly_totals",
        ["org_id", "month", "user_id", "project_id", "task_id", "billable"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.create_table(
        "proj_organizations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("week_start", sa.SmallInteger(), nullable=False),
        sa.Column("hourly_rate_amount", sa.BigInteger(), nullable=True),
        sa.Column("prevent_overlaps", sa.Boolean(), nullable=False),
        sa.Column("lock_before", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proj_organizations")),
    )
    op.create_table(
        "proj_project_stats",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.Column("billable_seconds", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_proj_project_stats")),
    )
    op.create_table(
        "proj_projects",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=True),
        sa.Column("client_name", sa.String(length=200), nullable=True),
        sa.Column("color", sa.String(length=7), nullable=True),
        sa.Column("billable", sa.Boolean(), nullable=False),
        sa.Column("hourly_rate_amount", sa.BigInteger(), nullable=True),
        sa.Column("budget_seconds", sa.BigInteger(), nullable=True),
        sa.Column("budget_amount", sa.BigInteger(), nullable=True),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proj_projects")),
    )
    op.create_index("ix_proj_projects_org_id", "proj_projects", ["org_id"], unique=False)
    op.create_table(
        "proj_running_timers",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "entry_id", name=op.f("pk_proj_running_timers")),
    )
    op.create_index(
        "ix_proj_running_timers_org_id", "proj_running_timers", ["org_id"], unique=False
    )
    op.create_table(
        "proj_tags",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proj_tags")),
    )
    op.create_index("ix_proj_tags_org_id", "proj_tags", ["org_id"], unique=False)
    op.create_table(
        "proj_task_stats",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.Column("billable_seconds", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_proj_task_stats")),
    )
    op.create_table(
        "proj_tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("budget_seconds", sa.BigInteger(), nullable=True),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proj_tasks")),
    )
    op.create_index(
        "ix_proj_tasks_org_id_project_id", "proj_tasks", ["org_id", "project_id"], unique=False
    )
    op.create_table(
        "proj_team_closure",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("ancestor_id", sa.Uuid(), nullable=False),
        sa.Column("descendant_id", sa.Uuid(), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("ancestor_id", "descendant_id", name=op.f("pk_proj_team_closure")),
    )
    op.create_index(
        "ix_proj_team_closure_org_id_descendant_id",
        "proj_team_closure",
        ["org_id", "descendant_id"],
        unique=False,
    )
    op.create_table(
        "proj_team_members",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("is_lead", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_proj_team_members")),
    )
    op.create_index(
        "ix_proj_team_members_org_id_user_id",
        "proj_team_members",
        ["org_id", "user_id"],
        unique=False,
    )
    op.create_table(
        "proj_teams",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proj_teams")),
    )
    op.create_index("ix_proj_teams_org_id", "proj_teams", ["org_id"], unique=False)
    op.create_table(
        "proj_users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proj_users")),
    )


def downgrade() -> None:
    op.drop_table("proj_users")
    op.drop_index("ix_proj_teams_org_id", table_name="proj_teams")
    op.drop_table("proj_teams")
    op.drop_index("ix_proj_team_members_org_id_user_id", table_name="proj_team_members")
    op.drop_table("proj_team_members")
    op.drop_index("ix_proj_team_closure_org_id_descendant_id", table_name="proj_team_closure")
    op.drop_table("proj_team_closure")
    op.drop_index("ix_proj_tasks_org_id_project_id", table_name="proj_tasks")
    op.drop_table("proj_tasks")
    op.drop_table("proj_task_stats")
    op.drop_index("ix_proj_tags_org_id", table_name="proj_tags")
    op.drop_table("proj_tags")
    op.drop_index("ix_proj_running_timers_org_id", table_name="proj_running_timers")
    op.drop_table("proj_running_timers")
    op.drop_index("ix_proj_projects_org_id", table_name="proj_projects")
    op.drop_table("proj_projects")
    op.drop_table("proj_project_stats")
    op.drop_table("proj_organizations")
    op.drop_index(
        "uq_proj_monthly_totals_bucket",
        table_name="proj_monthly_totals",
        postgresql_nulls_not_distinct=True,
    )
    op.drop_index("ix_proj_monthly_totals_org_id_project_id", table_name="proj_monthly_totals")
    op.drop_table("proj_monthly_totals")
    op.drop_index(
        "uq_proj_monthly_tag_totals_bucket",
        table_name="proj_monthly_tag_totals",
        postgresql_nulls_not_distinct=True,
    )
    op.drop_table("proj_monthly_tag_totals")
    op.drop_index("ix_proj_members_user_id", table_name="proj_members")
    op.drop_table("proj_members")
    op.drop_index("ix_proj_entries_tag_ids", table_name="proj_entries", postgresql_using="gin")
    op.drop_index(
        "ix_proj_entries_running",
        table_name="proj_entries",
        postgresql_where=sa.text("end_at IS NULL"),
    )
    op.drop_index("ix_proj_entries_org_id_user_id_local_date", table_name="proj_entries")
    op.drop_index("ix_proj_entries_org_id_start_at_entry_id", table_name="proj_entries")
    op.drop_index("ix_proj_entries_org_id_project_id_start_at", table_name="proj_entries")
    op.drop_index("ix_proj_entries_org_id_local_date", table_name="proj_entries")
    op.drop_table("proj_entries")
    op.drop_index(
        "uq_proj_daily_totals_bucket",
        table_name="proj_daily_totals",
        postgresql_nulls_not_distinct=True,
    )
    op.drop_index("ix_proj_daily_totals_org_id_day", table_name="proj_daily_totals")
    op.drop_table("proj_daily_totals")
    op.drop_index(
        "uq_proj_daily_tag_totals_bucket",
        table_name="proj_daily_tag_totals",
        postgresql_nulls_not_distinct=True,
    )
    op.drop_index("ix_proj_daily_tag_totals_org_id_day", table_name="proj_daily_tag_totals")
    op.drop_table("proj_daily_tag_totals")
    op.drop_index("ix_proj_clients_org_id", table_name="proj_clients")
    op.drop_table("proj_clients")
