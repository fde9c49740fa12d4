"""the sync feed: what delta sync pages through (API.md, "Delta sync")

One row per entity of an organization at the position of the last change that altered it
(projections/sync.py), and each organization's horizon: a cursor before it starts over.

The feed is loaded here as a rebuild would load it: every live entity at the start of the
log, the horizon and the checkpoint at this transaction's first snapshot's xmin, taken
before the load (a change committed between the two is then applied again, never missed).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


EVERYONE = "'00000000-0000-0000-0000-000000000000'::uuid"
# kind -> (write table, the row's owner, its entity id column)
SOURCES = {
    "time_entry": ("time_entries", "w.user_id", "id"),
    "project": ("projects", EVERYONE, "id"),
    "client": ("clients", EVERYONE, "id"),
    "task": ("tasks", EVERYONE, "id"),
    "tag": ("tags", EVERYONE, "id"),
    "team": ("teams", EVERYONE, "id"),
    "member": ("memberships", EVERYONE, "user_id"),
}


def upgrade() -> None:
    op.execute(
        "CREATE TABLE proj_sync_feed ("
        " org_id uuid NOT NULL, kind varchar(16) NOT NULL, owner_id uuid NOT NULL,"
        " entity_id uuid NOT NULL, tx xid8 NOT NULL, change_id bigint NOT NULL,"
        " gone boolean NOT NULL, changed_at timestamptz NOT NULL,"
        " CONSTRAINT pk_proj_sync_feed PRIMARY KEY (org_id, kind, owner_id, entity_id))"
    )
    op.execute(
        "CREATE TABLE proj_sync_horizons ("
        " org_id uuid NOT NULL, tx xid8 NOT NULL, change_id bigint NOT NULL,"
        " CONSTRAINT pk_proj_sync_horizons PRIMARY KEY (org_id))"
    )
    op.execute(
        "INSERT INTO projection_checkpoints (name, tx, change_id)"
        " VALUES ('sync', pg_snapshot_xmin(pg_current_snapshot()), 0)"
        " ON CONFLICT (name) DO NOTHING"
    )
    op.execute(
        "INSERT INTO proj_sync_horizons (org_id, tx, change_id)"
        " SELECT o.id, c.tx, 0 FROM organizations o, projection_checkpoints c"
        " WHERE o.deleted_at IS NULL AND c.name = 'sync'"
    )
    for kind, (table, owner, entity_id) in SOURCES.items():
        op.execute(
            "INSERT INTO proj_sync_feed"
            " (org_id, kind, owner_id, entity_id, tx, change_id, gone, changed_at)"
            f" SELECT w.org_id, '{kind}', {owner}, w.{entity_id}, '0'::xid8, 0, false, now()"
            f" FROM {table} w JOIN organizations o ON o.id = w.org_id AND o.deleted_at IS NULL"
            " WHERE w.deleted_at IS NULL"
        )
    # Indexes after the load: one sort each instead of an insert per row.
    op.create_index(
        "ix_proj_sync_feed_position",
        "proj_sync_feed",
        ["org_id", "kind", "tx", "change_id", "owner_id", "entity_id"],
    )
    op.create_index(
        "ix_proj_sync_feed_owner_position",
        "proj_sync_feed",
        ["org_id", "kind", "owner_id", "tx", "change_id", "entity_id"],
    )
    op.create_index(
        "ix_proj_sync_feed_tombstones",
        "proj_sync_feed",
        ["changed_at"],
        postgresql_where="gone",
    )


def downgrade() -> None:
    op.execute("DELETE FROM projection_checkpoints WHERE name = 'sync'")
    op.drop_table("proj_sync_horizons")
    op.drop_index("ix_proj_sync_feed_tombstones", table_name="proj_sync_feed")
    op.drop_index("ix_proj_sync_feed_owner_position", table_name="proj_sync_feed")
    op.drop_index("ix_proj_sync_feed_position", table_name="proj_sync_feed")
    op.drop_table("proj_sync_feed")
