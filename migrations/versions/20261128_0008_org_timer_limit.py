"""org timer limit

Each organization chooses how long a timer may run before its user is told (default
8 h, 15 minutes to 7 days), on the write side and in the catalog's read model.

Notifications of a kind a user keeps out of the inbox (`in_app` false) now stay in the
inbox, read from the start: those made before are marked read and put in the inbox.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "organizations",
        sa.Column(
            "long_running_timer_seconds", sa.Integer(), server_default="28800", nullable=False
        ),
    )
    op.create_check_constraint(
        op.f("ck_organizations_long_running_timer_range"),
        "organizations",
        "long_running_timer_seconds BETWEEN 900 AND 604800",
    )
    # Every organization has the default: the read model takes it too, then keeps no default.
    op.add_column(
        "proj_organizations",
        sa.Column(
            "long_running_timer_seconds", sa.Integer(), server_default="28800", nullable=False
        ),
    )
    op.alter_column("proj_organizations", "long_running_timer_seconds", server_default=None)
    op.execute("UPDATE notifications SET read_at = created_at WHERE NOT in_app AND read_at IS NULL")
    op.execute(
        "INSERT INTO proj_notifications"
        " (id, org_id, user_id, kind, title, body, data, created_at, read_at)"
        " SELECT n.id, n.org_id, n.user_id, n.kind, n.title, n.body, n.data, n.created_at,"
        " n.read_at FROM notifications n"
        " JOIN organizations o ON o.id = n.org_id AND o.deleted_at IS NULL"
        " WHERE NOT n.in_app ON CONFLICT (id) DO NOTHING"
    )


def downgrade() -> None:
    op.execute(
        "DELETE FROM proj_notifications WHERE id IN (SELECT id FROM notifications WHERE NOT in_app)"
    )
    op.drop_column("proj_organizations", "long_running_timer_seconds")
    op.drop_constraint(
        op.f("ck_organizations_long_running_timer_range"), "organizations", type_="check"
    )
    op.drop_column("organizations", "long_running_timer_seconds")
