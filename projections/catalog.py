"""The catalog projection: organizations, users, members and roles, the team tree with its
closure table, team members, clients, projects, tasks, tags, webhooks and shared reports.

Catalog tables are small per organization, so a batch re-derives, for every organization
it touched, each table of the kinds it touched: exact whatever the order or repetition.
Users and API tokens belong to no organization: they are re-derived by id.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Executable,
    Select,
    SQLColumnExpression,
    Table,
    and_,
    delete,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from command_api.modules.auth.models import ApiToken
from command_api.modules.organizations.models import Membership, Organization, Team, TeamMember
from command_api.modules.projects.models import Client, Project, Tag, Task
from command_api.modules.shared_reports.models import SharedReport
from command_api.modules.users.models import User
from command_api.modules.webhooks.models import Webhook
from projections.models import (
    proj_api_tokens,
    proj_clients,
    proj_members,
    proj_organizations,
    proj_projects,
    proj_shared_reports,
    proj_tags,
    proj_tasks,
    proj_team_closure,
    proj_team_members,
    proj_teams,
    proj_users,
    proj_webhooks,
)
from projections.projection import IDS, LIVE, ORGS, ChangeRow, Projection, Tables, among, fill

# Team trees deeper than this are cut: a parent cycle must not recurse forever.
MAX_TEAM_DEPTH = 100


def _live_org(org_id: SQLColumnExpression[uuid.UUID]) -> ColumnElement[bool]:
    """The join condition to the organization of `org_id`, if it is not deleted."""
    return and_(Organization.id == org_id, Organization.deleted_at.is_(None))


def _users_of_orgs(user_id: SQLColumnExpression[uuid.UUID]) -> ColumnElement[bool]:
    """`user_id` is (or was) a member of one of the organizations in ORGS."""
    return user_id.in_(select(Membership.user_id).where(among(Membership.org_id, ORGS)))


# --- Sources: each a select whose labels are its table's column names ----------------------

_USERS = select(User.id, User.email, User.full_name, User.timezone)

_API_TOKENS = select(ApiToken.token_hash, ApiToken.id, ApiToken.user_id, ApiToken.expires_at).where(
    ApiToken.revoked_at.is_(None)
)

_ORGANIZATIONS = select(
    Organization.id,
    Organization.name,
    Organization.timezone,
    Organization.currency,
    Organization.week_start,
    Organization.hourly_rate_amount,
    Organization.prevent_overlaps,
    Organization.lock_before,
    Organization.created_at,
    Organization.long_running_timer_seconds,
).where(Organization.deleted_at.is_(None))

_MEMBERS = (
    select(
        Membership.org_id,
        Membership.user_id,
        User.email,
        User.full_name,
        Membership.role,
        Membership.hourly_rate_amount,
        Membership.created_at.label("joined_at"),
        Membership.version,
        Membership.updated_at,
    )
    .join(User, User.id == Membership.user_id)
    .join(Organization, _live_org(Membership.org_id))
    .where(Membership.deleted_at.is_(None))
)

_TEAMS = (
    select(Team.id, Team.org_id, Team.name, Team.parent_id, Team.version, Team.updated_at)
    .join(Organization, _live_org(Team.org_id))
    .where(Team.deleted_at.is_(None))
)


def _team_closure() -> Select[*tuple[Any, ...]]:
    """(ancestor, descendant, depth) of the live teams, each team its own ancestor at 0."""
    live = _TEAMS.with_only_columns(Team.id, Team.org_id, Team.parent_id).cte("live")
    closure = select(
        live.c.org_id,
        live.c.id.label("ancestor_id"),
        live.c.id.label("descendant_id"),
        literal(0).label("depth"),
    ).cte("closure", recursive=True)
    parent, child = closure.alias("c"), live.alias("l")
    closure = closure.union_all(
        select(parent.c.org_id, parent.c.ancestor_id, child.c.id, parent.c.depth + 1)
        .join_from(parent, child, child.c.parent_id == parent.c.descendant_id)
        .where(parent.c.depth < MAX_TEAM_DEPTH)
    )
    return select(
        closure.c.org_id, closure.c.ancestor_id, closure.c.descendant_id, closure.c.depth
    ).ext(distinct_on(closure.c.ancestor_id, closure.c.descendant_id))


_TEAM_CLOSURE = _team_closure()

_TEAM_MEMBERS = (
    select(TeamMember.org_id, TeamMember.team_id, TeamMember.user_id, TeamMember.is_lead)
    .join(Team, and_(Team.id == TeamMember.team_id, Team.deleted_at.is_(None)))
    .join(
        Membership,
        and_(
            Membership.org_id == TeamMember.org_id,
            Membership.user_id == TeamMember.user_id,
            Membership.deleted_at.is_(None),
        ),
    )
    .join(Organization, _live_org(TeamMember.org_id))
)

_CLIENTS = (
    select(
        Client.id, Client.org_id, Client.name, Client.archived, Client.version, Client.updated_at
    )
    .join(Organization, _live_org(Client.org_id))
    .where(Client.deleted_at.is_(None))
)

_PROJECTS = (
    select(
        Project.id,
        Project.org_id,
        Project.name,
        Project.client_id,
        Client.name.label("client_name"),
        Project.color,
        Project.billable,
        Project.hourly_rate_amount,
        Project.budget_seconds,
        Project.budget_amount,
        Project.archived,
        Project.version,
        Project.updated_at,
    )
    .outerjoin(Client, Client.id == Project.client_id)
    .join(Organization, _live_org(Project.org_id))
    .where(Project.deleted_at.is_(None))
)

_TASKS = (
    select(
        Task.id,
        Task.org_id,
        Task.project_id,
        Task.name,
        Task.budget_seconds,
        Task.done,
        Task.version,
        Task.updated_at,
    )
    .join(Project, and_(Project.id == Task.project_id, Project.deleted_at.is_(None)))
    .join(Organization, _live_org(Task.org_id))
    .where(Task.deleted_at.is_(None))
)

_TAGS = (
    select(Tag.id, Tag.org_id, Tag.name, Tag.version, Tag.updated_at)
    .join(Organization, _live_org(Tag.org_id))
    .where(Tag.deleted_at.is_(None))
)


_WEBHOOKS = (
    select(
        Webhook.id,
        Webhook.org_id,
        Webhook.url,
        Webhook.events,
        Webhook.description,
        Webhook.enabled,
        Webhook.disabled_reason,
        Webhook.created_at,
        Webhook.version,
        Webhook.updated_at,
    )
    .join(Organization, _live_org(Webhook.org_id))
    .where(Webhook.deleted_at.is_(None))
)

_SHARED_REPORTS = (
    select(
        SharedReport.id,
        SharedReport.org_id,
        SharedReport.token_hash,
        SharedReport.created_by,
        SharedReport.name,
        SharedReport.kind,
        SharedReport.params,
        SharedReport.expires_at,
        SharedReport.created_at,
    )
    .join(Organization, _live_org(SharedReport.org_id))
    .where(SharedReport.revoked_at.is_(None))
)


@dataclass(frozen=True)
class _Source:
    rows: Select[*tuple[Any, ...]]
    # The rows of a scoped load: those of the organizations in ORGS.
    scope: ColumnElement[bool]
    # The kinds of change that re-derive the table for their organization.
    triggers: frozenset[str] = frozenset()


_ORG_KINDS = frozenset({"organization"})

SOURCES: dict[Table, _Source] = {
    proj_users: _Source(_USERS, _users_of_orgs(User.id)),
    proj_api_tokens: _Source(_API_TOKENS, _users_of_orgs(ApiToken.user_id)),
    proj_organizations: _Source(_ORGANIZATIONS, among(Organization.id, ORGS), _ORG_KINDS),
    proj_members: _Source(
        _MEMBERS, among(Membership.org_id, ORGS), _ORG_KINDS | {"membership", "user"}
    ),
    proj_teams: _Source(_TEAMS, among(Team.org_id, ORGS), _ORG_KINDS | {"team"}),
    proj_team_closure: _Source(
        _TEAM_CLOSURE,
        among(_TEAM_CLOSURE.selected_columns.org_id, ORGS),
        _ORG_KINDS | {"team"},
    ),
    proj_team_members: _Source(
        _TEAM_MEMBERS,
        among(TeamMember.org_id, ORGS),
        _ORG_KINDS | {"team", "team_member", "membership"},
    ),
    proj_clients: _Source(_CLIENTS, among(Client.org_id, ORGS), _ORG_KINDS | {"client"}),
    proj_projects: _Source(
        _PROJECTS, among(Project.org_id, ORGS), _ORG_KINDS | {"client", "project"}
    ),
    proj_tasks: _Source(_TASKS, among(Task.org_id, ORGS), _ORG_KINDS | {"project", "task"}),
    proj_tags: _Source(_TAGS, among(Tag.org_id, ORGS), _ORG_KINDS | {"tag"}),
    proj_webhooks: _Source(_WEBHOOKS, among(Webhook.org_id, ORGS), _ORG_KINDS | {"webhook"}),
    proj_shared_reports: _Source(
        _SHARED_REPORTS, among(SharedReport.org_id, ORGS), _ORG_KINDS | {"shared_report"}
    ),
}

# Organization-wide tables: re-derived per organization a batch touched, in this order.
_BY_ORG = tuple(table for table, source in SOURCES.items() if source.triggers)


# --- What a batch touched --------------------------------------------------------------------


@dataclass
class _Touched:
    user_ids: set[uuid.UUID] = field(default_factory=set)
    token_ids: set[uuid.UUID] = field(default_factory=set)
    kinds_by_org: dict[uuid.UUID, set[str]] = field(default_factory=lambda: defaultdict(set))

    @classmethod
    def of(cls, changes: Sequence[ChangeRow]) -> _Touched:
        touched = cls()
        for change in changes:
            if change.entity == "user":
                touched.user_ids.add(uuid.UUID(str(change.entity_id)))
            elif change.entity == "api_token":
                touched.token_ids.add(uuid.UUID(str(change.entity_id)))
            elif change.org_id is not None:
                touched.kinds_by_org[uuid.UUID(str(change.org_id))].add(change.entity)
        return touched

    def orgs_for(self, triggers: frozenset[str]) -> list[uuid.UUID]:
        return [org for org, kinds in self.kinds_by_org.items() if kinds & triggers]


# --- The projection --------------------------------------------------------------------------


class CatalogProjection(Projection):
    name = "catalog"
    tables = tuple(SOURCES)

    def load(self, t: Tables, table: Table, *, scoped: bool = False) -> Executable:
        source = SOURCES[table]
        return fill(t[table], source.rows.where(source.scope) if scoped else source.rows)

    def in_scope(self, table: Table) -> ColumnElement[bool]:
        if table is proj_users:
            return _users_of_orgs(table.c.id)
        if table is proj_api_tokens:
            return _users_of_orgs(table.c.user_id)
        if table is proj_organizations:
            return among(table.c.id, ORGS)
        return super().in_scope(table)

    def apply(self, session: Session, changes: Sequence[ChangeRow]) -> None:
        touched = _Touched.of(changes)
        if touched.user_ids:
            self._refresh_users(session, touched)
        if touched.token_ids:
            self._refresh_by_id(session, proj_api_tokens, ApiToken.id, touched.token_ids)
        for table in _BY_ORG:
            orgs = touched.orgs_for(SOURCES[table].triggers)
            if orgs:
                self._rederive(session, table, orgs)

    def _refresh_by_id(
        self, session: Session, table: Table, source_id: Any, ids: set[uuid.UUID]
    ) -> None:
        params = {"ids": list(ids)}
        session.execute(delete(table).where(among(table.c.id, IDS)), params)
        session.execute(fill(table, SOURCES[table].rows.where(among(source_id, IDS))), params)

    def _refresh_users(self, session: Session, touched: _Touched) -> None:
        self._refresh_by_id(session, proj_users, User.id, touched.user_ids)
        # Member rows show the user's name and email: refresh the organizations they are in.
        orgs = session.execute(
            select(Membership.org_id).distinct().where(among(Membership.user_id, IDS)),
            {"ids": list(touched.user_ids)},
        ).scalars()
        for org in orgs:
            touched.kinds_by_org[org].add("user")

    def _rederive(self, session: Session, table: Table, orgs: list[uuid.UUID]) -> None:
        params = {"orgs": orgs}
        session.execute(delete(table).where(self.in_scope(table)), params)
        session.execute(self.load(LIVE, table, scoped=True), params)
