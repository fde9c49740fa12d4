"""SQL of the catalog, on projection tables only.

Lists are one query for the page and one count (plus one batch query for nested lists such
as a page's teams or leads: never one query per row). Totals of what the caller may see
come from proj_project_stats / proj_task_stats when they see the whole organization, and
otherwise from the monthly roll-ups of the users they may see; budget use always counts
the whole project or task.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    FromClause,
    Select,
    Subquery,
    Table,
    and_,
    cast,
    extract,
    func,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import RowMapping

from projections.models import (
    proj_clients,
    proj_entries,
    proj_members,
    proj_monthly_totals,
    proj_organizations,
    proj_project_stats,
    proj_projects,
    proj_running_timers,
    proj_tags,
    proj_task_stats,
    proj_tasks,
    proj_team_closure,
    proj_team_members,
    proj_teams,
)
from query_api.dependencies import OrgReader
from shared.db import ReadSession
from shared.pagination import PageParams


@dataclass(frozen=True)
class Page:
    rows: Sequence[RowMapping]
    total: int


def _count(session: ReadSession, stmt: Select[Any]) -> int:
    """How many rows `stmt` has, all pages together."""
    count = select(func.count()).select_from(stmt.order_by(None).subquery())
    return int(session.execute(count).scalar_one())


def _paginate(session: ReadSession, stmt: Select[Any], page: PageParams) -> Page:
    """The page of `stmt` (already ordered) and the count of the whole result."""
    rows = session.execute(stmt.limit(page.page_size).offset(page.offset)).mappings().all()
    return Page(rows, _count(session, stmt))


# --- Me and organizations ----------------------------------------------------------------


def _my_organizations(user_id: uuid.UUID) -> Select[Any]:
    return (
        select(proj_organizations, proj_members.c.role)
        .join(proj_members, proj_members.c.org_id == proj_organizations.c.id)
        .where(proj_members.c.user_id == user_id)
        .order_by(proj_organizations.c.name, proj_organizations.c.id)
    )


def memberships_of(session: ReadSession, user_id: uuid.UUID) -> Sequence[RowMapping]:
    """Every organization of the user with their role, by name."""
    return session.execute(_my_organizations(user_id)).mappings().all()


def organizations_page(session: ReadSession, user_id: uuid.UUID, page: PageParams) -> Page:
    return _paginate(session, _my_organizations(user_id), page)


# --- Members -----------------------------------------------------------------------------


def members_page(
    session: ReadSession,
    org_id: uuid.UUID,
    page: PageParams,
    *,
    user_ids: frozenset[uuid.UUID] | None,
    role: str | None,
) -> Page:
    """Members by name; `user_ids` (None: everyone) and `role` narrow the list."""
    stmt = (
        select(proj_members)
        .where(proj_members.c.org_id == org_id)
        .order_by(proj_members.c.full_name, proj_members.c.user_id)
    )
    if user_ids is not None:
        stmt = stmt.where(proj_members.c.user_id.in_(list(user_ids)))
    if role is not None:
        stmt = stmt.where(proj_members.c.role == role)
    return _paginate(session, stmt, page)


def teams_of_members(
    session: ReadSession, org_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[RowMapping]]:
    """The teams of each of `user_ids` (id, name, is_lead), by team name: one query."""
    if not user_ids:
        return {}
    rows = session.execute(
        select(
            proj_team_members.c.user_id,
            proj_teams.c.id,
            proj_teams.c.name,
            proj_team_members.c.is_lead,
        )
        .join(proj_teams, proj_teams.c.id == proj_team_members.c.team_id)
        .where(proj_team_members.c.org_id == org_id, proj_team_members.c.user_id.in_(user_ids))
        .order_by(proj_teams.c.name, proj_teams.c.id)
    ).mappings()
    by_user: dict[uuid.UUID, list[RowMapping]] = defaultdict(list)
    for row in rows:
        by_user[row["user_id"]].append(row)
    return by_user


# --- Teams -------------------------------------------------------------------------------


def _team_path() -> Any:
    """Names from the root down to the team: ordering by it lists parents before children
    and keeps every subtree together (a prefix sorts before its extensions)."""
    ancestor = proj_teams.alias("ancestor")
    return (
        select(
            func.array_agg(aggregate_order_by(ancestor.c.name, proj_team_closure.c.depth.desc()))
        )
        .select_from(proj_team_closure)
        .join(ancestor, ancestor.c.id == proj_team_closure.c.ancestor_id)
        .where(
            proj_team_closure.c.org_id == proj_teams.c.org_id,  # (org_id, descendant_id) index
            proj_team_closure.c.descendant_id == proj_teams.c.id,
        )
        .scalar_subquery()
    )


_TEAM_COLUMNS = (
    proj_teams.c.id,
    proj_teams.c.name,
    proj_teams.c.parent_id,
    proj_teams.c.version,
    proj_teams.c.updated_at,
)


def _with_member_count(teams: Subquery) -> Select[Any]:
    """The `_TEAM_COLUMNS` of `teams` with each one's direct member count."""
    member_count = (
        select(func.count().label("member_count"))
        .where(proj_team_members.c.team_id == teams.c.id)
        .lateral()
    )
    return (
        select(*(teams.c[column.name] for column in _TEAM_COLUMNS), member_count.c.member_count)
        .select_from(teams)
        .join(member_count, true())
    )


def teams_page(session: ReadSession, org_id: uuid.UUID, page: PageParams) -> Page:
    """The team tree, flat, in depth-first order, with each team's direct member count."""
    path = _team_path().label("path")
    stmt = (
        select(*_TEAM_COLUMNS, path)
        .where(proj_teams.c.org_id == org_id)
        .order_by(path, proj_teams.c.id)
    )
    total = _count(session, stmt)
    paged = stmt.limit(page.page_size).offset(page.offset).subquery()
    rows = session.execute(_with_member_count(paged).order_by(paged.c.path, paged.c.id))
    return Page(rows.mappings().all(), total)


def leads_of_teams(
    session: ReadSession, org_id: uuid.UUID, team_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[RowMapping]]:
    """The leads of each of `team_ids` (id, full_name), by name: one query."""
    if not team_ids:
        return {}
    rows = session.execute(
        select(
            proj_team_members.c.team_id,
            proj_members.c.user_id.label("id"),
            proj_members.c.full_name,
        )
        .join(
            proj_members,
            and_(
                proj_members.c.org_id == proj_team_members.c.org_id,
                proj_members.c.user_id == proj_team_members.c.user_id,
            ),
        )
        .where(
            proj_team_members.c.org_id == org_id,
            proj_team_members.c.team_id.in_(team_ids),
            proj_team_members.c.is_lead,
        )
        .order_by(proj_members.c.full_name, proj_members.c.user_id)
    ).mappings()
    by_team: dict[uuid.UUID, list[RowMapping]] = defaultdict(list)
    for row in rows:
        by_team[row["team_id"]].append(row)
    return by_team


# --- Clients and tags --------------------------------------------------------------------


_CLIENT_COLUMNS = (
    proj_clients.c.id,
    proj_clients.c.name,
    proj_clients.c.archived,
    proj_clients.c.version,
    proj_clients.c.updated_at,
)
_TAG_COLUMNS = (proj_tags.c.id, proj_tags.c.name, proj_tags.c.version, proj_tags.c.updated_at)


def clients_page(
    session: ReadSession, org_id: uuid.UUID, page: PageParams, *, archived: bool | None
) -> Page:
    stmt = (
        select(*_CLIENT_COLUMNS)
        .where(proj_clients.c.org_id == org_id)
        .order_by(proj_clients.c.name, proj_clients.c.id)
    )
    if archived is not None:
        stmt = stmt.where(proj_clients.c.archived.is_(archived))
    return _paginate(session, stmt, page)


def client_exists(session: ReadSession, org_id: uuid.UUID, client_id: uuid.UUID) -> bool:
    return bool(
        session.execute(
            select(
                select(proj_clients.c.id)
                .where(proj_clients.c.id == client_id, proj_clients.c.org_id == org_id)
                .exists()
            )
        ).scalar_one()
    )


def tags_page(session: ReadSession, org_id: uuid.UUID, page: PageParams) -> Page:
    stmt = (
        select(*_TAG_COLUMNS)
        .where(proj_tags.c.org_id == org_id)
        .order_by(proj_tags.c.name, proj_tags.c.id)
    )
    return _paginate(session, stmt, page)


# --- Projects and tasks ------------------------------------------------------------------


def _visible_sums(org: OrgReader, *where: Any) -> FromClause:
    """One LATERAL row: the monthly roll-ups of the users the caller may see, for the
    project (or task) of the outer row. Filtered on (org_id, project_id), their index."""
    m = proj_monthly_totals
    return (
        select(
            func.sum(m.c.seconds).label("seconds"),
            func.sum(m.c.billable_seconds).label("billable_seconds"),
            func.sum(m.c.amount).label("amount"),
        )
        .where(m.c.org_id == org.org_id, *where, org.users_filter(m.c.user_id))
        .lateral()
    )


_SEEN = ("tracked_seconds", "billable_seconds", "amount")


def _with_totals(
    org: OrgReader, paged: Subquery, stats: Table, stats_key: Any, visible: FromClause
) -> Select[Any]:
    """`paged` with the whole record's stats (for budget use) and the totals the caller may
    see: the stats themselves when they see everyone, else the LATERAL `visible` sums."""
    everyone = org.visible_user_ids is None
    seen = (
        (stats.c.seconds, stats.c.billable_seconds, stats.c.amount)
        if everyone
        else (visible.c.seconds, visible.c.billable_seconds, visible.c.amount)
    )
    stmt = (
        select(
            paged,
            _zero_if_null(stats.c.seconds, "total_seconds"),
            _zero_if_null(stats.c.amount, "total_amount"),
            *(_zero_if_null(column, name) for name, column in zip(_SEEN, seen, strict=True)),
        )
        .select_from(paged)
        .outerjoin(stats, stats_key == paged.c.id)
    )
    return stmt if everyone else stmt.join(visible, true())


def _zero_if_null(column: Any, name: str) -> Any:
    return cast(func.coalesce(column, 0), BigInteger).label(name)


def _projects(org: OrgReader) -> Select[Any]:
    return (
        select(proj_projects)
        .where(proj_projects.c.org_id == org.org_id)
        .order_by(proj_projects.c.name, proj_projects.c.id)
    )


def _project_rows(org: OrgReader, paged: Subquery) -> Select[Any]:
    visible = _visible_sums(org, proj_monthly_totals.c.project_id == paged.c.id)
    stmt = _with_totals(org, paged, proj_project_stats, proj_project_stats.c.project_id, visible)
    return stmt.order_by(paged.c.name, paged.c.id)


def projects_page(
    session: ReadSession,
    org: OrgReader,
    page: PageParams,
    *,
    client_id: uuid.UUID | None,
    archived: bool | None,
    search: str | None,
) -> Page:
    """Projects by name with their totals; `search` is a case-insensitive substring."""
    stmt = _projects(org)
    if client_id is not None:
        stmt = stmt.where(proj_projects.c.client_id == client_id)
    if archived is not None:
        stmt = stmt.where(proj_projects.c.archived.is_(archived))
    if search:
        stmt = stmt.where(proj_projects.c.name.icontains(search, autoescape=True))
    total = _count(session, stmt)
    paged = stmt.limit(page.page_size).offset(page.offset).subquery()
    rows = session.execute(_project_rows(org, paged)).mappings().all()
    return Page(rows, total)


def project_with_totals(
    session: ReadSession, org: OrgReader, project_id: uuid.UUID
) -> RowMapping | None:
    one = _projects(org).where(proj_projects.c.id == project_id).subquery()
    return session.execute(_project_rows(org, one)).mappings().one_or_none()


def project_exists(session: ReadSession, org_id: uuid.UUID, project_id: uuid.UUID) -> bool:
    return bool(
        session.execute(
            select(
                select(proj_projects.c.id)
                .where(proj_projects.c.id == project_id, proj_projects.c.org_id == org_id)
                .exists()
            )
        ).scalar_one()
    )


def tasks_page(
    session: ReadSession,
    org: OrgReader,
    project_id: uuid.UUID,
    page: PageParams,
    *,
    done: bool | None,
) -> Page:
    """The project's tasks by name with their totals."""
    stmt = (
        select(proj_tasks)
        .where(proj_tasks.c.org_id == org.org_id, proj_tasks.c.project_id == project_id)
        .order_by(proj_tasks.c.name, proj_tasks.c.id)
    )
    if done is not None:
        stmt = stmt.where(proj_tasks.c.done.is_(done))
    total = _count(session, stmt)
    paged = stmt.limit(page.page_size).offset(page.offset).subquery()
    rows = session.execute(_task_rows(org, paged).order_by(paged.c.name, paged.c.id))
    return Page(rows.mappings().all(), total)


def _task_rows(org: OrgReader, tasks: Subquery) -> Select[Any]:
    """`tasks` with their totals (see `_with_totals`)."""
    visible = _visible_sums(
        org,
        proj_monthly_totals.c.project_id == tasks.c.project_id,
        proj_monthly_totals.c.task_id == tasks.c.id,
    )
    return _with_totals(org, tasks, proj_task_stats, proj_task_stats.c.task_id, visible)


# --- By id (delta sync's pages: each entity in the shape of its list) ----------------------


def clients_by_id(
    session: ReadSession, org_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[RowMapping]:
    return _by_id(session, _CLIENT_COLUMNS, proj_clients, org_id, ids)


def tags_by_id(
    session: ReadSession, org_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[RowMapping]:
    return _by_id(session, _TAG_COLUMNS, proj_tags, org_id, ids)


def members_by_id(
    session: ReadSession, org_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> list[RowMapping]:
    stmt = select(proj_members).where(
        proj_members.c.org_id == org_id, proj_members.c.user_id.in_(list(user_ids))
    )
    return list(session.execute(stmt).mappings())


def teams_by_id(
    session: ReadSession, org_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[RowMapping]:
    """Teams with their direct member count."""
    chosen = (
        select(*_TEAM_COLUMNS)
        .where(proj_teams.c.org_id == org_id, proj_teams.c.id.in_(list(ids)))
        .subquery()
    )
    return list(session.execute(_with_member_count(chosen)).mappings())


def projects_by_id(
    session: ReadSession, org: OrgReader, ids: Sequence[uuid.UUID]
) -> list[RowMapping]:
    chosen = _projects(org).where(proj_projects.c.id.in_(list(ids))).subquery()
    return list(session.execute(_project_rows(org, chosen)).mappings())


def tasks_by_id(session: ReadSession, org: OrgReader, ids: Sequence[uuid.UUID]) -> list[RowMapping]:
    chosen = (
        select(proj_tasks)
        .where(proj_tasks.c.org_id == org.org_id, proj_tasks.c.id.in_(list(ids)))
        .subquery()
    )
    return list(session.execute(_task_rows(org, chosen)).mappings())


def _by_id(
    session: ReadSession,
    columns: Sequence[Any],
    table: Table,
    org_id: uuid.UUID,
    ids: Sequence[uuid.UUID],
) -> list[RowMapping]:
    stmt = select(*columns).where(table.c.org_id == org_id, table.c.id.in_(list(ids)))
    return list(session.execute(stmt).mappings())


# --- Timer -------------------------------------------------------------------------------


def running_entry(session: ReadSession, org_id: uuid.UUID, user_id: uuid.UUID) -> RowMapping | None:
    """The user's running entry in this organization, with its duration up to now."""
    e = proj_entries
    elapsed = func.greatest(0, func.floor(extract("epoch", func.now() - e.c.start_at)))
    return (
        session.execute(
            select(e, cast(elapsed, BigInteger).label("elapsed_seconds"))
            .join(proj_running_timers, proj_running_timers.c.entry_id == e.c.entry_id)
            .where(
                proj_running_timers.c.org_id == org_id,
                proj_running_timers.c.user_id == user_id,
                e.c.org_id == org_id,
            )
            .order_by(e.c.start_at.desc())
            .limit(1)
        )
        .mappings()
        .one_or_none()
    )
