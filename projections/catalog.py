"""The catalog projection: organizations, users, members and roles, the team tree with its
closure table, team members, clients, projects, tasks and tags.

Catalog tables are small per organization, so a batch re-derives, for every organization
it touched, each table of the kinds it touched: exact whatever the order or repetition.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from projections.entries import LIVE, Tables
from projections.runner import ChangeRow

NAME = "catalog"


@dataclass(frozen=True)
class CatalogTable:
    name: str
    columns: str
    # SELECT from the normalized tables; `{org}` is the organization column to filter on.
    source: str
    org_column: str
    triggers: frozenset[str]

    def insert(self, t: Tables, where: str = "") -> str:
        return f"INSERT INTO {getattr(t, self.name)} ({self.columns}) {self.source} {where}"


_LIVE_ORG = "JOIN organizations o ON o.id = {alias}.org_id AND o.deleted_at IS NULL"

CATALOG_TABLES: tuple[CatalogTable, ...] = (
    CatalogTable(
        "organizations",
        "id, name, timezone, currency, week_start, hourly_rate_amount, prevent_overlaps,"
        " lock_before, created_at, long_running_timer_seconds",
        "SELECT o.id, o.name, o.timezone, o.currency, o.week_start, o.hourly_rate_amount,"
        " o.prevent_overlaps, o.lock_before, o.created_at, o.long_running_timer_seconds"
        " FROM organizations o"
        " WHERE o.deleted_at IS NULL",
        "o.id",
        frozenset({"organization"}),
    ),
    CatalogTable(
        "members",
        "org_id, user_id, email, full_name, role, hourly_rate_amount, joined_at",
        "SELECT m.org_id, m.user_id, u.email, u.full_name, m.role, m.hourly_rate_amount,"
        " m.created_at FROM memberships m JOIN users u ON u.id = m.user_id "
        + _LIVE_ORG.format(alias="m")
        + " WHERE m.deleted_at IS NULL",
        "m.org_id",
        frozenset({"organization", "membership", "user"}),
    ),
    CatalogTable(
        "teams",
        "id, org_id, name, parent_id",
        "SELECT t.id, t.org_id, t.name, t.parent_id FROM teams t "
        + _LIVE_ORG.format(alias="t")
        + " WHERE t.deleted_at IS NULL",
        "t.org_id",
        frozenset({"organization", "team"}),
    ),
    CatalogTable(
        "team_closure",
        "org_id, ancestor_id, descendant_id, depth",
        "WITH RECURSIVE live AS ("
        "  SELECT t.id, t.org_id, t.parent_id FROM teams t "
        + _LIVE_ORG.format(alias="t")
        + "  WHERE t.deleted_at IS NULL),"
        " closure AS ("
        "  SELECT org_id, id AS ancestor_id, id AS descendant_id, 0 AS depth FROM live"
        "  UNION ALL"
        "  SELECT c.org_id, c.ancestor_id, l.id, c.depth + 1"
        "  FROM closure c JOIN live l ON l.parent_id = c.descendant_id"
        "  WHERE c.depth < 100)"
        " SELECT DISTINCT ON (ancestor_id, descendant_id) org_id, ancestor_id, descendant_id,"
        " depth FROM closure c WHERE true",
        "c.org_id",
        frozenset({"organization", "team"}),
    ),
    CatalogTable(
        "team_members",
        "org_id, team_id, user_id, is_lead",
        "SELECT tm.org_id, tm.team_id, tm.user_id, tm.is_lead FROM team_members tm"
        " JOIN teams t ON t.id = tm.team_id AND t.deleted_at IS NULL"
        " JOIN memberships m ON m.org_id = tm.org_id AND m.user_id = tm.user_id"
        " AND m.deleted_at IS NULL " + _LIVE_ORG.format(alias="tm") + " WHERE true",
        "tm.org_id",
        frozenset({"organization", "team", "team_member", "membership"}),
    ),
    CatalogTable(
        "clients",
        "id, org_id, name, archived",
        "SELECT c.id, c.org_id, c.name, c.archived FROM clients c "
        + _LIVE_ORG.format(alias="c")
        + " WHERE c.deleted_at IS NULL",
        "c.org_id",
        frozenset({"organization", "client"}),
    ),
    CatalogTable(
        "projects",
        "id, org_id, name, client_id, client_name, color, billable, hourly_rate_amount,"
        " budget_seconds, budget_amount, archived",
        "SELECT p.id, p.org_id, p.name, p.client_id, c.name, p.color, p.billable,"
        " p.hourly_rate_amount, p.budget_seconds, p.budget_amount, p.archived FROM projects p"
        " LEFT JOIN clients c ON c.id = p.client_id "
        + _LIVE_ORG.format(alias="p")
        + " WHERE p.deleted_at IS NULL",
        "p.org_id",
        frozenset({"organization", "client", "project"}),
    ),
    CatalogTable(
        "tasks",
        "id, org_id, project_id, name, budget_seconds, done",
        "SELECT t.id, t.org_id, t.project_id, t.name, t.budget_seconds, t.done FROM tasks t"
        " JOIN projects p ON p.id = t.project_id AND p.deleted_at IS NULL "
        + _LIVE_ORG.format(alias="t")
        + " WHERE t.deleted_at IS NULL",
        "t.org_id",
        frozenset({"organization", "project", "task"}),
    ),
    CatalogTable(
        "tags",
        "id, org_id, name",
        "SELECT g.id, g.org_id, g.name FROM tags g "
        + _LIVE_ORG.format(alias="g")
        + " WHERE g.deleted_at IS NULL",
        "g.org_id",
        frozenset({"organization", "tag"}),
    ),
)

API_TOKENS_INSERT = (
    "INSERT INTO {table} (token_hash, id, user_id, expires_at)"
    " SELECT a.token_hash, a.id, a.user_id, a.expires_at FROM api_tokens a"
    " WHERE a.revoked_at IS NULL {where}"
)

USERS_INSERT = (
    "INSERT INTO {table} (id, email, full_name, timezone)"
    " SELECT u.id, u.email, u.full_name, u.timezone FROM users u WHERE true {where}"
)


_USERS_OF_ORGS = "id IN (SELECT user_id FROM memberships WHERE org_id = ANY(:orgs))"


def rebuild_statements(t: Tables, *, scoped: bool = False) -> list[str]:
    """The full rebuild; `scoped` limits it to the organizations in `:orgs`."""
    users_where = f"AND u.{_USERS_OF_ORGS}" if scoped else ""
    tokens_where = f"AND a.user_{_USERS_OF_ORGS}" if scoped else ""
    statements = [
        USERS_INSERT.format(table=t.users, where=users_where),
        API_TOKENS_INSERT.format(table=t.api_tokens, where=tokens_where),
    ]
    statements += [
        table.insert(t, f"AND {table.org_column} = ANY(:orgs)" if scoped else "")
        for table in CATALOG_TABLES
    ]
    return statements


SCOPE_PREDICATES = {
    "users": _USERS_OF_ORGS,
    "api_tokens": f"user_{_USERS_OF_ORGS}",
    "organizations": "id = ANY(:orgs)",
}


TABLES = ("users", "api_tokens", *(table.name for table in CATALOG_TABLES))


class CatalogProjector:
    name = NAME

    def apply(self, session: Session, changes: Sequence[ChangeRow]) -> None:
        kinds_by_org: dict[uuid.UUID, set[str]] = defaultdict(set)
        user_ids: set[uuid.UUID] = set()
        token_ids: set[uuid.UUID] = set()
        for change in changes:
            if change.entity == "user":
                user_ids.add(uuid.UUID(str(change.entity_id)))
            elif change.entity == "api_token":
                token_ids.add(uuid.UUID(str(change.entity_id)))
            elif change.org_id is not None:
                kinds_by_org[uuid.UUID(str(change.org_id))].add(change.entity)
        if user_ids:
            self._refresh_users(session, user_ids, kinds_by_org)
        if token_ids:
            params = {"ids": list(token_ids)}
            session.execute(text("DELETE FROM proj_api_tokens WHERE id = ANY(:ids)"), params)
            session.execute(
                text(
                    API_TOKENS_INSERT.format(table="proj_api_tokens", where="AND a.id = ANY(:ids)")
                ),
                params,
            )
        for table in CATALOG_TABLES:
            orgs = [org for org, kinds in kinds_by_org.items() if kinds & table.triggers]
            if orgs:
                self._rederive(session, table, orgs)

    def _refresh_users(
        self,
        session: Session,
        user_ids: set[uuid.UUID],
        kinds_by_org: dict[uuid.UUID, set[str]],
    ) -> None:
        params = {"ids": list(user_ids)}
        session.execute(text("DELETE FROM proj_users WHERE id = ANY(:ids)"), params)
        session.execute(
            text(USERS_INSERT.format(table="proj_users", where="AND u.id = ANY(:ids)")), params
        )
        # Member rows show the user's name and email: refresh the organizations they are in.
        orgs = session.execute(
            text("SELECT DISTINCT org_id FROM memberships WHERE user_id = ANY(:ids)"), params
        ).scalars()
        for org in orgs:
            kinds_by_org[org].add("user")

    def _rederive(self, session: Session, table: CatalogTable, orgs: list[uuid.UUID]) -> None:
        params = {"orgs": orgs}
        org_key = "id" if table.name == "organizations" else "org_id"
        session.execute(
            text(f"DELETE FROM {getattr(LIVE, table.name)} WHERE {org_key} = ANY(:orgs)"), params
        )
        session.execute(text(table.insert(LIVE, f"AND {table.org_column} = ANY(:orgs)")), params)
