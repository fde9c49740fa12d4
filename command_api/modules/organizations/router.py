"""Organizations, their members and roles, and the team tree."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from command_api.modules.auth.dependencies import CommandUser
from command_api.modules.organizations.dependencies import (
    MemberServiceDep,
    OrgAdmin,
    OrganizationServiceDep,
    OrgMember,
    OrgOwner,
    TeamServiceDep,
)
from command_api.modules.organizations.schemas import (
    MemberCreate,
    MembershipRead,
    MemberUpdate,
    OrganizationCreate,
    OrganizationRead,
    OrganizationUpdate,
    TeamCreate,
    TeamMemberRead,
    TeamMemberUpsert,
    TeamRead,
    TeamUpdate,
)
from command_api.transaction import CommandRoute
from shared.openapi import errors
from shared.responses import Envelope, ok

router = APIRouter(route_class=CommandRoute)

ORG = "/organizations/{org_id}"


# --- Organizations ---------------------------------------------------------------------


@router.post("/organizations", status_code=201, response_model=Envelope[OrganizationRead])
def create_organization(
    data: OrganizationCreate, organizations: OrganizationServiceDep, user: CommandUser
) -> Envelope[OrganizationRead]:
    """Create an organization. The caller becomes its owner."""
    org = organizations.create(user, data)
    return ok(OrganizationRead.model_validate(org))


@router.patch(ORG, response_model=Envelope[OrganizationRead], responses=errors(403, 409))
def update_organization(
    data: OrganizationUpdate, organizations: OrganizationServiceDep, context: OrgAdmin
) -> Envelope[OrganizationRead]:
    """Change settings (admin+). Turning `prevent_overlaps` on answers 409 while entries
    of the organization overlap. `long_running_timer_seconds` (900 to 604800, default
    28800 = 8 h) is how long a timer may run before its user gets a `long_running_timer`
    notification."""
    org = organizations.update(context, data)
    return ok(OrganizationRead.model_validate(org))


@router.delete(ORG, status_code=204, responses=errors(403))
def delete_organization(organizations: OrganizationServiceDep, context: OrgOwner) -> Response:
    """Delete the organization (owner only). The deletion is soft."""
    organizations.delete(context)
    return Response(status_code=204)


# --- Members ---------------------------------------------------------------------------


@router.post(
    f"{ORG}/members",
    status_code=201,
    response_model=Envelope[MembershipRead],
    responses=errors(403, 409),
)
def add_member(
    data: MemberCreate, members: MemberServiceDep, context: OrgAdmin
) -> Envelope[MembershipRead]:
    """Add an existing user by email (admin+; only an owner adds an owner). An unknown
    email is a 404; a member already is a 409."""
    membership, user = members.add(context, data)
    return ok(MembershipRead.of(membership, user))


@router.patch(
    f"{ORG}/members/{{user_id}}",
    response_model=Envelope[MembershipRead],
    responses=errors(400, 403),
)
def update_member(
    user_id: uuid.UUID, data: MemberUpdate, members: MemberServiceDep, context: OrgAdmin
) -> Envelope[MembershipRead]:
    """Change a member's role or hourly rate (admin+; only an owner makes or changes an
    owner; the last owner cannot be demoted)."""
    membership, user = members.update(context, user_id, data)
    return ok(MembershipRead.of(membership, user))


@router.delete(f"{ORG}/members/{{user_id}}", status_code=204, responses=errors(400, 403))
def remove_member(user_id: uuid.UUID, members: MemberServiceDep, context: OrgMember) -> Response:
    """Remove a member (admin+), or leave the organization (your own user id). The last
    owner cannot be removed. The member's team links in the organization go too."""
    members.remove(context, user_id)
    return Response(status_code=204)


# --- Teams -----------------------------------------------------------------------------


@router.post(
    f"{ORG}/teams", status_code=201, response_model=Envelope[TeamRead], responses=errors(403)
)
def create_team(data: TeamCreate, teams: TeamServiceDep, context: OrgAdmin) -> Envelope[TeamRead]:
    """Create a team, at the root or under `parent_id` (admin+)."""
    team = teams.create(context, data)
    return ok(TeamRead.model_validate(team))


@router.patch(
    f"{ORG}/teams/{{team_id}}", response_model=Envelope[TeamRead], responses=errors(400, 403)
)
def update_team(
    team_id: uuid.UUID, data: TeamUpdate, teams: TeamServiceDep, context: OrgAdmin
) -> Envelope[TeamRead]:
    """Rename or move a team (admin+). A team cannot move under itself or its sub-teams
    (400); `parent_id: null` moves it to the root."""
    team = teams.update(context, team_id, data)
    return ok(TeamRead.model_validate(team))


@router.delete(f"{ORG}/teams/{{team_id}}", status_code=204, responses=errors(403))
def delete_team(team_id: uuid.UUID, teams: TeamServiceDep, context: OrgAdmin) -> Response:
    """Delete a team (admin+). Its sub-teams move up to its parent; its member links go."""
    teams.delete(context, team_id)
    return Response(status_code=204)


@router.put(
    f"{ORG}/teams/{{team_id}}/members/{{user_id}}",
    response_model=Envelope[TeamMemberRead],
    responses=errors(403),
)
def set_team_member(
    team_id: uuid.UUID,
    user_id: uuid.UUID,
    teams: TeamServiceDep,
    context: OrgAdmin,
    data: TeamMemberUpsert | None = None,
) -> Envelope[TeamMemberRead]:
    """Put a member of the organization in a team, or set whether they lead it (admin+).
    Without `is_lead` an existing link keeps its flag; a new one is not a lead."""
    link = teams.put_member(context, team_id, user_id, data or TeamMemberUpsert())
    return ok(TeamMemberRead.model_validate(link))


@router.delete(
    f"{ORG}/teams/{{team_id}}/members/{{user_id}}", status_code=204, responses=errors(403)
)
def remove_team_member(
    team_id: uuid.UUID, user_id: uuid.UUID, teams: TeamServiceDep, context: OrgAdmin
) -> Response:
    """Take a user out of a team (admin+)."""
    teams.remove_member(context, team_id, user_id)
    return Response(status_code=204)
