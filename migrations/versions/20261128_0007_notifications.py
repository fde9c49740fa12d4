"""notifications

The write side's notifications (exactly once by a unique (org_id, dedup_key)), the runs of
scheduled notification jobs, the inbox read model and the budget-threshold memory of the
notifications projector. The projector starts at the end of the change log as it stands:
an upgrade does not replay the retained log into notifications about the past.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget_alert_states",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.String(length=8), nullable=False),
        sa.Column("threshold", sa.SmallInteger(), nullable=False),
        sa.Column("generation", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reached", sa.Boolean(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint(
            "org_id", "subject_id", "metric", "threshold", name=op.f("pk_budget_alert_states")
        ),
    )
    op.create_table(
        "proj_notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proj_notifications")),
    )
    op.create_index("ix_proj_notifications_org_id", "proj_notifications", ["org_id"], unique=False)
    op.create_index(
        "ix_proj_notifications_user_id_created_at_id",
        "proj_notifications",
        ["user_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_proj_notifications_user_id_unread",
        "proj_notifications",
        ["user_id", "created_at", "id"],
        unique=False,
        postgresql_where=sa.text("read_at IS NULL"),
    )
    op.create_table(
        "notification_runs",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_notification_runs_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "org_id", "kind", "period_start", name=op.f("pk_notification_runs")
        ),
    )
    op.create_table(
        "notifications",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("dedup_key", sa.String(length=300), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("in_app", sa.Boolean(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_status", sa.String(length=16), nullable=False),
        sa.Column("email_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_error", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
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
        sa.CheckConstraint(
            "email_status IN ('skipped', 'pending', 'sent', 'failed')",
            name=op.f("ck_notifications_email_status"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_notifications_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("org_id", "dedup_key", name="uq_notifications_org_id_dedup_key"),
    )
    op.create_index(
        "ix_notifications_email_due",
        "notifications",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("email_status = 'pending'"),
    )
    op.create_index(
        "ix_notifications_user_id_unread",
        "notifications",
        ["user_id"],
        unique=False,
        postgresql_where=sa.text("read_at IS NULL"),
    )
    op.execute(
        "INSERT INTO projection_checkpoints (name, tx, change_id, watermark)"
        " SELECT 'notifications', x, 0, x FROM pg_snapshot_xmin(pg_current_snapshot()) AS x"
        " ON CONFLICT (name) DO NOTHING"
    )


def downgrade() -> None:
    op.execute("DELETE FROM projection_dead_letters WHERE projection = 'notifications'")
    op.execute("DELETE FROM projection_checkpoints WHERE name = 'notifications'")
    op.drop_index(
        "ix_notifications_user_id_unread",
        table_name="notifications",
        postgresql_where=sa.text("read_at IS NULL"),
    )
    op.drop_index(
        "ix_notifications_email_due",
        table_name="notifications",
        postgresql_where=sa.text("email_status = 'pending'"),
    )
    op.drop_table("notifications")
    op.drop_table("notification_runs")
    op.drop_index(
        "ix_proj_notifications_user_id_unread",
        table_name="proj_notifications",
        postgresql_where=sa.text("read_at IS NULL"),
    )
    op.drop_index("ix_proj_notifications_user_id_created_at_id", table_name="proj_notifications")
    op.drop_index("ix_proj_notifications_org_id", table_name="proj_notifications")
    op.drop_table("proj_notifications")
    op.drop_table("budget_alert_states")
