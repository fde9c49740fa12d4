"""The catalog: who I am, my organizations, their members, teams, clients, projects, tasks
and tags, and my running timer.

Visibility: every member of an organization sees its catalog (members with their roles
and teams, the team tree, clients, projects, tasks, tags). Hourly rates of members are for
admins and owners only. Totals on projects and tasks count only the entries the caller
may see (API.md "Who sees what"), while budget use always counts the whole project or task.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from query_api.dependencies import CurrentReader, OrgReaderDep, ReadSessionDep
from query_api.modules.catalog import queries
from query_api.modules.catalog.dependencies import (
    EntriesConsistent,
    ExistingProjectId,
    MemberFiltersDep,
    ProjectFiltersDep,
)
from query_api.modules.catalog.schemas import (
    ClientRead,
    MemberRead,
    MembershipRead,
    MeRead,
    OrganizationRead,
    ProjectRead,
    RunningTimeEntryRead,
    TagRead,
    TaskRead,
    TeamRead,
)
from query_api.schemas import Ref
from shared.errors import NotFoundError
from shared.pagination import PageDep, PaginationMeta
from shared.responses import Envelope, PageEnvelope, ok

router = APIRouter(tags=["catalog"])

ORG = "/organizations/{org_id}"


def _meta(page: queries.Page, params: PageDep) -> PaginationMeta:
    return PaginationMeta.for_page(total=page.total, page=params.page, page_size=params.page_size)


@router.get("/me", response_model=Envelope[MeRead])
def get_me(reader: CurrentReader, session: ReadSessionDep) -> Envelope[MeRead]:
    """The caller, with every organization they belong to and their role in it."""
    memberships = [
        MembershipRead(organization=Ref(id=row["id"], name=row["name"]), role=row["role"])
        for row in queries.memberships_of(session, reader.id)
    ]
    return ok(
        MeRead(
            id=reader.id,
            email=reader.email,
            full_name=reader.full_name,
            timezone=reader.timezone,
            memberships=memberships,
        )
    )


@router.get("/organizations", response_model=PageEnvelope[OrganizationRead])
def list_organizations(
    reader: CurrentReader, session: ReadSessionDep, params: PageDep
) -> PageEnvelope[OrganizationRead]:
    """The organizations the caller belongs to, by name, with their settings and role."""
    page = queries.organizations_page(session, reader.id, params)
    data = [OrganizationRead.of(row, row["role"]) for row in page.rows]
    return PageEnvelope(data=data, pagination=_meta(page, params))


@router.get(ORG, response_model=Envelope[OrganizationRead])
def get_organization(org: OrgReaderDep) -> Envelope[OrganizationRead]:
    """One organization with its settings and the caller's role (404 unless a member)."""
    return ok(OrganizationRead.of(org.organization, org.role))


@router.get(f"{ORG}/members", response_model=PageEnvelope[MemberRead])
def list_members(
    org: OrgReaderDep, session: ReadSessionDep, filters: MemberFiltersDep, params: PageDep
) -> PageEnvelope[MemberRead]:
    """Members by name, with role and teams; every member sees the list.

    `team_id` keeps the members of that team and of every team below it. `hourly_rate` is
    shown to admins and owners only (null for everyone else)."""
    page = queries.members_page(
        session, org.org_id, params, user_ids=filters.user_ids, role=filters.role
    )
    teams = queries.teams_of_members(session, org.org_id, [row["user_id"] for row in page.rows])
    show_rate = org.at_least("admin")
    data = [
        MemberRead.of(row, teams.get(row["user_id"], []), show_rate=show_rate) for row in page.rows
    ]
    return PageEnvelope(data=data, pagination=_meta(page, params))


@router.get(f"{ORG}/teams", response_model=PageEnvelope[TeamRead])
def list_teams(
    org: OrgReaderDep, session: ReadSessionDep, params: PageDep
) -> PageEnvelope[TeamRead]:
    """The team tree, flat: depth first, so a parent always comes before its children,
    siblings by name. Each team has its `parent_id`, its leads and its direct member count."""
    page = queries.teams_page(session, org.org_id, params)
    leads = queries.leads_of_teams(session, org.org_id, [row["id"] for row in page.rows])
    data = [TeamRead.of(row, leads.get(row["id"], [])) for row in page.rows]
    return PageEnvelope(data=data, pagination=_meta(page, params))


@router.get(f"{ORG}/clients", response_model=PageEnvelope[ClientRead])
def list_clients(
    org: OrgReaderDep, session: ReadSessionDep, params: PageDep, archived: bool | None = None
) -> PageEnvelope[ClientRead]:
    """Clients by name; `archived` keeps only archived (true) or active (false) ones."""
    page = queries.clients_page(session, org.org_id, params, archived=archived)
    data = [ClientRead.model_validate(dict(row)) for row in page.rows]
    return PageEnvelope(data=data, pagination=_meta(page, params))


@router.get(f"{ORG}/projects", response_model=PageEnvelope[ProjectRead])
def list_projects(
    _: EntriesConsistent,
    org: OrgReaderDep,
    session: ReadSessionDep,
    filters: ProjectFiltersDep,
    params: PageDep,
) -> PageEnvelope[ProjectRead]:
    """Projects by name with their totals.

    `tracked_seconds`, `billable_seconds` and `amount` count the finished entries the caller
    may see; `budget_used` is the share of the budget the whole project has used: the larger
    of seconds / budget_seconds and amount / budget_amount (null without a budget)."""
    page = queries.projects_page(
        session,
        org,
        params,
        client_id=filters.client_id,
        archived=filters.archived,
        search=filters.search,
    )
    data = [ProjectRead.of(row) for row in page.rows]
    return PageEnvelope(data=data, pagination=_meta(page, params))


@router.get(f"{ORG}/projects/{{project_id}}", response_model=Envelope[ProjectRead])
def get_project(
    _: EntriesConsistent, project_id: uuid.UUID, org: OrgReaderDep, session: ReadSessionDep
) -> Envelope[ProjectRead]:
    """One project with the same totals as the list (404 for another organization's)."""
    row = queries.project_with_totals(session, org, project_id)
    if row is None:
        raise NotFoundError.for_entity("Project", project_id)
    return ok(ProjectRead.of(row))


@router.get(f"{ORG}/projects/{{project_id}}/tasks", response_model=PageEnvelope[TaskRead])
def list_tasks(
    _: EntriesConsistent,
    org: OrgReaderDep,
    project_id: ExistingProjectId,
    session: ReadSessionDep,
    params: PageDep,
    done: bool | None = None,
) -> PageEnvelope[TaskRead]:
    """The project's tasks by name. Totals count the finished entries the caller may see;
    `budget_used` is the whole task's seconds / budget_seconds (null without a budget)."""
    page = queries.tasks_page(session, org, project_id, params, done=done)
    data = [TaskRead.of(row) for row in page.rows]
    return PageEnvelope(data=data, pagination=_meta(page, params))


@router.get(f"{ORG}/tags", response_model=PageEnvelope[TagRead])
def list_tags(org: OrgReaderDep, session: ReadSessionDep, params: PageDep) -> PageEnvelope[TagRead]:
    """Tags by name."""
    page = queries.tags_page(session, org.org_id, params)
    data = [TagRead.model_validate(dict(row)) for row in page.rows]
    return PageEnvelope(data=data, pagination=_meta(page, params))


@router.get(f"{ORG}/timer", response_model=Envelope[RunningTimeEntryRead | None])
def get_running_timer(
    _: EntriesConsistent, org: OrgReaderDep, session: ReadSessionDep
) -> Envelope[RunningTimeEntryRead | None]:
    """The caller's running entry in this organization, or `data: null`.

    Shaped like an entry of /time-entries, with `end_at: null`, `duration_seconds` up to
    the moment of the request and `amount: 0` (amounts count finished entries only)."""
    row = queries.running_entry(session, org.org_id, org.reader.id)
    return ok(None if row is None else RunningTimeEntryRead.of(row))
