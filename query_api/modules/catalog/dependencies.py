"""Parameters and guards of the catalog endpoints."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

from query_api.dependencies import ENTRIES, OrgReaderDep, ReadSessionDep, consistent_with
from query_api.filters import team_user_ids
from query_api.modules.catalog.queries import client_exists, project_exists
from query_api.modules.catalog.schemas import Role
from shared.errors import NotFoundError

# Endpoints showing totals or entries wait for the entries projection too (the caller's
# authentication already waits for the catalog).
wait_for_entries = consistent_with(ENTRIES)
EntriesConsistent = Annotated[None, Depends(wait_for_entries)]


@dataclass(frozen=True)
class MemberFilters:
    user_ids: frozenset[uuid.UUID] | None  # None: no team filter
    role: Role | None


def member_filters(
    org: OrgReaderDep,
    session: ReadSessionDep,
    team_id: Annotated[
        uuid.UUID | None, Query(description="Members of this team and of all teams below it")
    ] = None,
    role: Role | None = None,
) -> MemberFilters:
    users = None if team_id is None else team_user_ids(session, org.org_id, team_id)
    return MemberFilters(users, role)


MemberFiltersDep = Annotated[MemberFilters, Depends(member_filters)]


@dataclass(frozen=True)
class ProjectFilters:
    client_id: uuid.UUID | None
    archived: bool | None
    search: str | None


def project_filters(
    org: OrgReaderDep,
    session: ReadSessionDep,
    client_id: uuid.UUID | None = None,
    archived: Annotated[
        bool | None, Query(description="Only archived (true) or active (false); both if absent")
    ] = None,
    search: Annotated[
        str | None, Query(max_length=200, description="Case-insensitive substring of the name")
    ] = None,
) -> ProjectFilters:
    if client_id is not None and not client_exists(session, org.org_id, client_id):
        raise NotFoundError.for_entity("Client", client_id)
    return ProjectFilters(client_id, archived, (search or "").strip() or None)


ProjectFiltersDep = Annotated[ProjectFilters, Depends(project_filters)]


def existing_project(
    project_id: uuid.UUID, org: OrgReaderDep, session: ReadSessionDep
) -> uuid.UUID:
    """The project of the path, which must belong to the organization of the path."""
    if not project_exists(session, org.org_id, project_id):
        raise NotFoundError.for_entity("Project", project_id)
    return project_id


ExistingProjectId = Annotated[uuid.UUID, Depends(existing_project)]
