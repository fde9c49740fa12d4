"""Projection (read-model) tables. The runner's bookkeeping (checkpoints, dead letters) is
in shared/checkpoints.py, where the query API may read it too.

They share the write side's metadata: one linear Alembic history.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from shared.changes import Xid8
from shared.db import Base

# --- Read models -------------------------------------------------------------------------
#
# Core tables (no ORM classes): the query API selects from them, projections write them
# with set-based SQL. Every table carries org_id (DESIGN.md §9).


def _uuid(name: str, *, nullable: bool = True) -> Column[Any]:
    return Column(name, Uuid, nullable=nullable)


def _totals() -> list[Column[Any]]:
    return [
        Column("seconds", BigInteger, nullable=False),
        Column("billable_seconds", BigInteger, nullable=False),
        Column("amount", BigInteger, nullable=False),
        Column("entries", BigInteger, nullable=False),
    ]


def _versioned() -> list[Column[Any]]:
    """The entity's `version` and `updated_at`, copied from its write-side row."""
    return [
        Column("version", Integer, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    ]


# Catalog ---------------------------------------------------------------------------------

proj_users = Table(
    "proj_users",
    Base.metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("full_name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
)

# Live personal API tokens (SHA-256 only), so the query API can authenticate them too.
proj_api_tokens = Table(
    "proj_api_tokens",
    Base.metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("id", Uuid, nullable=False, unique=True),
    Column("user_id", Uuid, nullable=False),
    Column("expires_at", DateTime(timezone=True)),
)

proj_organizations = Table(
    "proj_organizations",
    Base.metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("week_start", SmallInteger, nullable=False),
    Column("hourly_rate_amount", BigInteger),
    Column("prevent_overlaps", Boolean, nullable=False),
    Column("lock_before", Date),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("long_running_timer_seconds", Integer, nullable=False),
)

proj_members = Table(
    "proj_members",
    Base.metadata,
    Column("org_id", Uuid, primary_key=True),
    Column("user_id", Uuid, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("full_name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("hourly_rate_amount", BigInteger),
    Column("joined_at", DateTime(timezone=True), nullable=False),
    *_versioned(),
    Index("ix_proj_members_user_id", "user_id"),
)

proj_teams = Table(
    "proj_teams",
    Base.metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("name", String(200), nullable=False),
    Column("parent_id", Uuid),
    *_versioned(),
    Index("ix_proj_teams_org_id", "org_id"),
)

# "This team and everything under it": one row per (ancestor, descendant), itself included.
proj_team_closure = Table(
    "proj_team_closure",
    Base.metadata,
    Column("org_id", Uuid, nullable=False),
    Column("ancestor_id", Uuid, primary_key=True),
    Column("descendant_id", Uuid, primary_key=True),
    Column("depth", Integer, nullable=False),
    Index("ix_proj_team_closure_org_id_descendant_id", "org_id", "descendant_id"),
)

proj_team_members = Table(
    "proj_team_members",
    Base.metadata,
    Column("org_id", Uuid, nullable=False),
    Column("team_id", Uuid, primary_key=True),
    Column("user_id", Uuid, primary_key=True),
    Column("is_lead", Boolean, nullable=False),
    Index("ix_proj_team_members_org_id_user_id", "org_id", "user_id"),
)

proj_clients = Table(
    "proj_clients",
    Base.metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("name", String(200), nullable=False),
    Column("archived", Boolean, nullable=False),
    *_versioned(),
    Index("ix_proj_clients_org_id", "org_id"),
)

proj_projects = Table(
    "proj_projects",
    Base.metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("name", String(200), nullable=False),
    Column("client_id", Uuid),
    Column("client_name", String(200)),
    Column("color", String(7)),
    Column("billable", Boolean, nullable=False),
    Column("hourly_rate_amount", BigInteger),
    Column("budget_seconds", BigInteger),
    Column("budget_amount", BigInteger),
    Column("archived", Boolean, nullable=False),
    *_versioned(),
    Index("ix_proj_projects_org_id", "org_id"),
)

proj_tasks = Table(
    "proj_tasks",
    Base.metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("project_id", Uuid, nullable=False),
    Column("name", String(200), nullable=False),
    Column("budget_seconds", BigInteger),
    Column("done", Boolean, nullable=False),
    *_versioned(),
    Index("ix_proj_tasks_org_id_project_id", "org_id", "project_id"),
)

proj_tags = Table(
    "proj_tags",
    Base.metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("name", String(100), nullable=False),
    *_versioned(),
    Index("ix_proj_tags_org_id", "org_id"),
)

# Entries and totals ------------------------------------------------------------------------

ENTRIES_FILLFACTOR = 85
proj_entries = Table(
    "proj_entries",
    Base.metadata,
    Column("entry_id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("user_name", String(200), nullable=False),
    Column("project_id", Uuid),
    Column("project_name", String(200)),
    Column("project_color", String(7)),
    Column("client_id", Uuid),
    Column("client_name", String(200)),
    Column("task_id", Uuid),
    Column("task_name", String(200)),
    Column("tag_ids", ARRAY(Uuid), nullable=False),
    Column("tag_names", ARRAY(Text), nullable=False),
    Column("description", Text, nullable=False),
    Column("start_at", DateTime(timezone=True), nullable=False),
    Column("end_at", DateTime(timezone=True)),
    Column("duration_seconds", BigInteger),
    Column("billable", Boolean, nullable=False),
    Column("hourly_rate_amount", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("local_date", Date, nullable=False),
    *_versioned(),
    # Keyset pagination: (start_at, entry_id) within an organization, both directions.
    Index("ix_proj_entries_org_id_start_at_entry_id", "org_id", "start_at", "entry_id"),
    # The projection's bucket recompute: (org, local_date, user).
    Index("ix_proj_entries_org_id_user_id_local_date", "org_id", "user_id", "local_date"),
    # A member's (or a user_id-filtered) entries page, keyset on (start_at, entry_id).
    Index(
        "ix_proj_entries_org_id_user_id_start_at_entry_id",
        "org_id",
        "user_id",
        "start_at",
        "entry_id",
    ),
    Index("ix_proj_entries_org_id_project_id_start_at", "org_id", "project_id", "start_at"),
    Index("ix_proj_entries_org_id_local_date", "org_id", "local_date"),
    Index("ix_proj_entries_tag_ids", "tag_ids", postgresql_using="gin"),
    Index(
        "ix_proj_entries_running",
        "user_id",
        postgresql_where=text("end_at IS NULL"),
    ),
    # Room in each page for a re-derived row to be updated in place, touching no index
    # (most edits change no indexed column); migration 0012.
    postgresql_with={"fillfactor": ENTRIES_FILLFACTOR},
)

# Every totals table is a bucket: the organization, a period (day or month), key columns,
# the sums, and a unique index over the bucket. NULL keys (no project, task or tag: the
# "(none)" groups) are one bucket each, so those indexes treat NULLs as equal.
_KEY_COLUMNS: dict[str, Callable[[], Column[Any]]] = {
    "user_id": lambda: _uuid("user_id", nullable=False),
    "project_id": lambda: _uuid("project_id"),
    "task_id": lambda: _uuid("task_id"),
    "billable": lambda: Column("billable", Boolean, nullable=False),
    "tag_id": lambda: _uuid("tag_id"),  # NULL: the entry has no tag
}


def _totals_table(name: str, period: str, keys: tuple[str, ...], *indexes: Index) -> Table:
    """A totals table; `info` keeps its period and keys for the statements that fill it."""
    columns = [_KEY_COLUMNS[key]() for key in keys]
    nulls_equal: dict[str, Any] = {}
    if any(column.nullable for column in columns):
        nulls_equal["postgresql_nulls_not_distinct"] = True
    return Table(
        name,
        Base.metadata,
        _uuid("org_id", nullable=False),
        Column(period, Date, nullable=False),
        *columns,
        *_totals(),
        Index(f"uq_{name}_bucket", "org_id", period, *keys, unique=True, **nulls_equal),
        *indexes,
        info={"period": period, "keys": keys},
    )


_ENTRY_KEYS = ("user_id", "project_id", "task_id", "billable")

proj_daily_totals = _totals_table(
    "proj_daily_totals",
    "day",
    _ENTRY_KEYS,
    Index("ix_proj_daily_totals_org_id_day", "org_id", "day"),
)
# Tag reports never read entries: an untagged entry counts under tag_id NULL.
proj_daily_tag_totals = _totals_table(
    "proj_daily_tag_totals",
    "day",
    (*_ENTRY_KEYS, "tag_id"),
    Index("ix_proj_daily_tag_totals_org_id_day", "org_id", "day"),
)

# Monthly roll-ups: a year is twelve rows per combination instead of 365.
proj_monthly_totals = _totals_table(
    "proj_monthly_totals",
    "month",
    _ENTRY_KEYS,
    Index("ix_proj_monthly_totals_org_id_project_id", "org_id", "project_id"),
)
proj_monthly_tag_totals = _totals_table(
    "proj_monthly_tag_totals", "month", (*_ENTRY_KEYS, "tag_id")
)

# Coarser roll-up for long ranges seen whole: one row per (month, project, billable), so a
# year's summary by project, client, billable or month reads a few hundred rows, not the
# monthly rows of every user and task.
proj_monthly_project_totals = _totals_table(
    "proj_monthly_project_totals", "month", ("project_id", "billable")
)

# Per-project daily roll-ups: the days of a whole-organization report by project, client,
# billable or tag (partial months at the edges of a range, or every day when grouped by
# day or week) are a row per project instead of one per person, project and task.
proj_daily_project_totals = _totals_table(
    "proj_daily_project_totals", "day", ("project_id", "billable")
)
proj_daily_project_tag_totals = _totals_table(
    "proj_daily_project_tag_totals", "day", ("project_id", "billable", "tag_id")
)

# The coarsest tag roll-up: a year by tag (and billable, month) over the whole organization
# reads a row per month, tag and billable, whatever the number of projects.
proj_monthly_org_tag_totals = _totals_table(
    "proj_monthly_org_tag_totals", "month", ("billable", "tag_id")
)

# Per-user roll-ups for reports that split by person and time only (by user, team, day,
# week, month, billable, with no project, task or tag in play): one row per user, day (or
# month) and billable, instead of one per project and task they touched.
proj_daily_user_totals = _totals_table("proj_daily_user_totals", "day", ("user_id", "billable"))
proj_monthly_user_totals = _totals_table(
    "proj_monthly_user_totals", "month", ("user_id", "billable")
)

# The per-project roll-up of the tag totals: a year's summary by tag (and project, client,
# billable, month) over the whole organization reads a few rows per project and tag.
proj_monthly_project_tag_totals = _totals_table(
    "proj_monthly_project_tag_totals", "month", ("project_id", "billable", "tag_id")
)

proj_project_stats = Table(
    "proj_project_stats",
    Base.metadata,
    Column("project_id", Uuid, primary_key=True),
    _uuid("org_id", nullable=False),
    *_totals(),
)

proj_task_stats = Table(
    "proj_task_stats",
    Base.metadata,
    Column("task_id", Uuid, primary_key=True),
    _uuid("org_id", nullable=False),
    _uuid("project_id", nullable=False),
    *_totals(),
)

proj_running_timers = Table(
    "proj_running_timers",
    Base.metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("entry_id", Uuid, primary_key=True),
    _uuid("org_id", nullable=False),
    Column("start_at", DateTime(timezone=True), nullable=False),
    Index("ix_proj_running_timers_org_id", "org_id"),
)

# Notifications -----------------------------------------------------------------------------

# The inbox: a user's in-app notifications, newest first.
proj_notifications = Table(
    "proj_notifications",
    Base.metadata,
    Column("id", Uuid, primary_key=True),
    _uuid("org_id", nullable=False),
    _uuid("user_id", nullable=False),
    Column("kind", String(32), nullable=False),
    Column("title", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("read_at", DateTime(timezone=True)),
    Index("ix_proj_notifications_user_id_created_at_id", "user_id", "created_at", "id"),
    Index(
        "ix_proj_notifications_user_id_unread",
        "user_id",
        "created_at",
        "id",
        postgresql_where=text("read_at IS NULL"),
    ),
    Index("ix_proj_notifications_org_id", "org_id"),
)

# The notifications projection's memory of budget thresholds: whether a subject (project or
# task) is at or past `threshold` % of its `metric` budget, and the generation of that
# crossing (it grows each time the subject falls back below), which is part of the
# notification's dedup key. History, not a read model: rebuilds keep it.
budget_alert_states = Table(
    "budget_alert_states",
    Base.metadata,
    Column("org_id", Uuid, primary_key=True),
    Column("subject_id", Uuid, primary_key=True),
    Column("metric", String(8), primary_key=True),
    Column("threshold", SmallInteger, primary_key=True),
    Column("generation", Integer, nullable=False, server_default="0"),
    Column("reached", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

# Delta sync (API.md): one row per entity an organization's clients may sync, at the
# position in the change log, `(tx, change_id)`, of the last change that altered what a
# client should hold for it (projections/sync.py). An entry's row is its user's
# (`owner_id`); the catalog's rows are everyone's. `gone` marks a tombstone: the entity was
# deleted, or the entry moved to another user. Tombstones older than SYNC_RETENTION_DAYS are
# pruned; live rows stay.
SYNC_TIME_ENTRY, SYNC_PROJECT, SYNC_CLIENT, SYNC_TASK, SYNC_TAG, SYNC_MEMBER, SYNC_TEAM = (
    "time_entry",
    "project",
    "client",
    "task",
    "tag",
    "member",
    "team",
)
SYNC_KINDS = (
    SYNC_TIME_ENTRY,
    SYNC_PROJECT,
    SYNC_CLIENT,
    SYNC_TASK,
    SYNC_TAG,
    SYNC_MEMBER,
    SYNC_TEAM,
)
EVERYONE = uuid.UUID(int=0)  # the owner of rows every member may see
proj_sync_feed = Table(
    "proj_sync_feed",
    Base.metadata,
    Column("org_id", Uuid, primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("owner_id", Uuid, primary_key=True),
    Column("entity_id", Uuid, primary_key=True),
    Column("tx", Xid8(), nullable=False),
    Column("change_id", BigInteger, nullable=False),
    Column("gone", Boolean, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    # A page of one kind for a caller who sees everything: a range of this index.
    Index(
        "ix_proj_sync_feed_position",
        "org_id",
        "kind",
        "tx",
        "change_id",
        "owner_id",
        "entity_id",
    ),
    # A page of one user's entries (a caller who sees some users reads one range per user).
    Index(
        "ix_proj_sync_feed_owner_position",
        "org_id",
        "kind",
        "owner_id",
        "tx",
        "change_id",
        "entity_id",
    ),
    # The tombstones, oldest first: what pruning takes.
    Index("ix_proj_sync_feed_tombstones", "changed_at", postgresql_where=text("gone")),
)

# Per organization, the position up to which the feed no longer holds every tombstone (they
# were pruned, or a rebuild started the feed again): a cursor before it starts over.
proj_sync_horizons = Table(
    "proj_sync_horizons",
    Base.metadata,
    Column("org_id", Uuid, primary_key=True),
    Column("tx", Xid8(), nullable=False),
    Column("change_id", BigInteger, nullable=False),
)

# Webhooks of an organization as its admins list them: never their secrets.
proj_webhooks = Table(
    "proj_webhooks",
    Base.metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("url", String(2048), nullable=False),
    Column("events", ARRAY(String(64)), nullable=False),
    Column("description", String(500), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", String(500)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    *_versioned(),
    Index("ix_proj_webhooks_org_id", "org_id"),
)

# The delivery log of each webhook, as its admins read it (newest first): never the body.
proj_webhook_deliveries = Table(
    "proj_webhook_deliveries",
    Base.metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("webhook_id", Uuid, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("event", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_status_code", Integer),
    Column("last_error", String(500)),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_proj_webhook_deliveries_webhook_id_seq", "webhook_id", "seq"),
    Index("ix_proj_webhook_deliveries_webhook_id_status_seq", "webhook_id", "status", "seq"),
    # A webhook's last delivery (GET …/webhooks).
    Index("ix_proj_webhook_deliveries_webhook_id_delivered_at", "webhook_id", "delivered_at"),
    # What /metrics and /system/projections count: the deliveries not (yet) delivered.
    Index(
        "ix_proj_webhook_deliveries_undelivered",
        "status",
        "attempts",
        postgresql_where=text("status <> 'delivered'"),
    ),
)

# Live links to reports (not revoked; expired ones too: the read checks expiry), found by
# the SHA-256 of their token: never the token itself.
proj_shared_reports = Table(
    "proj_shared_reports",
    Base.metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_by", Uuid, nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("params", JSONB, nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_proj_shared_reports_org_id_created_by", "org_id", "created_by"),
)
