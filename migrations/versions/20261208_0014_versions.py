"""versions: every entity counts its writes (API.md, "Versions and conditional writes")

The write tables of the entities a client may edit or sees in the query API get
`version` (1 for every existing row: the count starts now). Their projection tables get
`version` and `updated_at`, copied from the write rows, so that the query API shows them
and a client can send the version back in `If-Match`.

Adding a column with a constant default rewrites no write table. The projection tables
are filled from their sources here (proj_entries is one pass over the table, as a
rebuild's load would be).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WRITE_TABLES = ("time_entries", "clients", "projects", "tasks", "tags", "memberships", "teams")

# Projection table -> (its write table, the join condition between them).
PROJECTIONS = {
    "proj_entries": ("time_entries", "w.id = p.entry_id"),
    "proj_clients": ("clients", "w.id = p.id"),
    "proj_projects": ("projects", "w.id = p.id"),
    "proj_tasks": ("tasks", "w.id = p.id"),
    "proj_tags": ("tags", "w.id = p.id"),
    "proj_members": ("memberships", "w.org_id = p.org_id AND w.user_id = p.user_id"),
    "proj_teams": ("teams", "w.id = p.id"),
}


def upgrade() -> None:
    for table in WRITE_TABLES:
        op.add_column(table, sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    for table, (source, joined) in PROJECTIONS.items():
        op.add_column(table, sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        op.add_column(table, sa.Column("updated_at", sa.DateTime(timezone=True)))
        op.execute(f"UPDATE {table} p SET updated_at = w.updated_at FROM {source} w WHERE {joined}")
        # A row whose source is gone is removed by the projection's next batch; until then
        # it shows when it was last projected, not nothing.
        op.execute(f"UPDATE {table} SET updated_at = now() WHERE updated_at IS NULL")
        op.alter_column(table, "updated_at", nullable=False)
        op.alter_column(table, "version", server_default=None)


def downgrade() -> None:
    for table in PROJECTIONS:
        op.drop_column(table, "updated_at")
        op.drop_column(table, "version")
    for table in WRITE_TABLES:
        op.drop_column(table, "version")
