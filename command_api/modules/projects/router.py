"""Clients, projects, project members, tasks and tags of an organization."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from command_api.conditional import IfMatchDep
from command_api.modules.organizations.dependencies import OrgManager, OrgMember
from command_api.modules.projects.dependencies import ProjectsServiceDep
from command_api.modules.projects.schemas import (
    ClientCreate,
    ClientRead,
    ClientUpdate,
    ProjectCreate,
    ProjectMemberPut,
    ProjectMemberRead,
    ProjectRead,
    ProjectUpdate,
    TagCreate,
    TagRead,
    TagUpdate,
    TaskCreate,
    TaskRead,
    TaskUpdate,
)
from command_api.transaction import CommandRoute
from shared.openapi import errors
from shared.responses import Envelope, ok

router = APIRouter(route_class=CommandRoute)

ORG = "/organizations/{org_id}"
CLIENT = ORG + "/clients/{client_id}"
PROJECT = ORG + "/projects/{project_id}"
PROJECT_MEMBER = PROJECT + "/members/{user_id}"
TASK = PROJECT + "/tasks/{task_id}"
TAG = ORG + "/tags/{tag_id}"

# Below the manager role (403); a name taken by a live record of the organization (409);
# `If-Match` naming a version the record moved past (412).
MANAGERS = errors(403)
MANAGERS_IF_MATCH = errors(403, 412)
MANAGERS_UNIQUE_NAME = errors(403, 409)
MANAGERS_UNIQUE_NAME_IF_MATCH = errors(403, 409, 412)


def _no_content() -> Response:
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- Clients ---------------------------------------------------------------------------


@router.post(
    ORG + "/clients",
    status_code=201,
    response_model=Envelope[ClientRead],
    responses=MANAGERS_UNIQUE_NAME,
)
def create_client(
    body: ClientCreate, context: OrgManager, service: ProjectsServiceDep
) -> Envelope[ClientRead]:
    """Create a client (manager and up). Names are unique per organization, ignoring case."""
    client = service.create_client(context.org_id, body)
    return ok(ClientRead.model_validate(client))


@router.patch(CLIENT, response_model=Envelope[ClientRead], responses=MANAGERS_UNIQUE_NAME_IF_MATCH)
def update_client(
    client_id: uuid.UUID,
    body: ClientUpdate,
    context: OrgManager,
    service: ProjectsServiceDep,
    condition: IfMatchDep,
) -> Envelope[ClientRead]:
    """Rename or (un)archive a client (manager and up)."""
    client = service.update_client(context.org_id, client_id, body, condition)
    return ok(ClientRead.model_validate(client))


@router.delete(CLIENT, status_code=204, response_class=Response, responses=MANAGERS_IF_MATCH)
def delete_client(
    client_id: uuid.UUID, context: OrgManager, service: ProjectsServiceDep, condition: IfMatchDep
) -> Response:
    """Delete a client (soft; manager and up). Its projects keep it for past reports."""
    service.delete_client(context.org_id, client_id, condition)
    return _no_content()


# --- Projects --------------------------------------------------------------------------


@router.post(
    ORG + "/projects",
    status_code=201,
    response_model=Envelope[ProjectRead],
    responses=MANAGERS_UNIQUE_NAME,
)
def create_project(
    body: ProjectCreate, context: OrgManager, service: ProjectsServiceDep
) -> Envelope[ProjectRead]:
    """Create a project (manager and up), optionally for a client of the organization."""
    project = service.create_project(context.org_id, body)
    return ok(ProjectRead.model_validate(project))


@router.patch(
    PROJECT, response_model=Envelope[ProjectRead], responses=MANAGERS_UNIQUE_NAME_IF_MATCH
)
def update_project(
    project_id: uuid.UUID,
    body: ProjectUpdate,
    context: OrgManager,
    service: ProjectsServiceDep,
    condition: IfMatchDep,
) -> Envelope[ProjectRead]:
    """Change a project (manager and up); `null` clears client, color, rate or budgets."""
    project = service.update_project(context.org_id, project_id, body, condition)
    return ok(ProjectRead.model_validate(project))


@router.delete(PROJECT, status_code=204, response_class=Response, responses=MANAGERS_IF_MATCH)
def delete_project(
    project_id: uuid.UUID, context: OrgManager, service: ProjectsServiceDep, condition: IfMatchDep
) -> Response:
    """Delete a project (soft; manager and up)."""
    service.delete_project(context.org_id, project_id, condition)
    return _no_content()


# --- Project members -------------------------------------------------------------------


@router.put(PROJECT_MEMBER, response_model=Envelope[ProjectMemberRead], responses=errors(403, 409))
def set_project_member(
    project_id: uuid.UUID,
    user_id: uuid.UUID,
    context: OrgManager,
    service: ProjectsServiceDep,
    body: ProjectMemberPut | None = None,
) -> Envelope[ProjectMemberRead]:
    """Add a member of the organization to the project, or set their rate on it (manager
    and up). The body may be left out: no `hourly_rate` means no project-specific rate."""
    rate = body.hourly_rate if body is not None else None
    member = service.put_project_member(context.org_id, project_id, user_id, rate)
    return ok(ProjectMemberRead.model_validate(member))


@router.delete(PROJECT_MEMBER, status_code=204, response_class=Response, responses=MANAGERS)
def remove_project_member(
    project_id: uuid.UUID, user_id: uuid.UUID, context: OrgManager, service: ProjectsServiceDep
) -> Response:
    """Remove a user from the project (manager and up). Their past entries are untouched."""
    service.remove_project_member(context.org_id, project_id, user_id)
    return _no_content()


# --- Tasks -----------------------------------------------------------------------------


@router.post(
    PROJECT + "/tasks", status_code=201, response_model=Envelope[TaskRead], responses=MANAGERS
)
def create_task(
    project_id: uuid.UUID, body: TaskCreate, context: OrgManager, service: ProjectsServiceDep
) -> Envelope[TaskRead]:
    """Create a task of the project (manager and up)."""
    task = service.create_task(context.org_id, project_id, body)
    return ok(TaskRead.model_validate(task))


@router.patch(TASK, response_model=Envelope[TaskRead], responses=MANAGERS_IF_MATCH)
def update_task(
    project_id: uuid.UUID,
    task_id: uuid.UUID,
    body: TaskUpdate,
    context: OrgManager,
    service: ProjectsServiceDep,
    condition: IfMatchDep,
) -> Envelope[TaskRead]:
    """Rename a task, mark it done or open, or change its budget (manager and up)."""
    task = service.update_task(context.org_id, project_id, task_id, body, condition)
    return ok(TaskRead.model_validate(task))


@router.delete(TASK, status_code=204, response_class=Response, responses=MANAGERS_IF_MATCH)
def delete_task(
    project_id: uuid.UUID,
    task_id: uuid.UUID,
    context: OrgManager,
    service: ProjectsServiceDep,
    condition: IfMatchDep,
) -> Response:
    """Delete a task (soft; manager and up)."""
    service.delete_task(context.org_id, project_id, task_id, condition)
    return _no_content()


# --- Tags ------------------------------------------------------------------------------


@router.post(
    ORG + "/tags", status_code=201, response_model=Envelope[TagRead], responses=errors(409)
)
def create_tag(
    body: TagCreate, context: OrgMember, service: ProjectsServiceDep
) -> Envelope[TagRead]:
    """Create a tag (any member). Names are unique per organization, ignoring case."""
    tag = service.create_tag(context.org_id, body)
    return ok(TagRead.model_validate(tag))


@router.patch(TAG, response_model=Envelope[TagRead], responses=MANAGERS_UNIQUE_NAME_IF_MATCH)
def update_tag(
    tag_id: uuid.UUID,
    body: TagUpdate,
    context: OrgManager,
    service: ProjectsServiceDep,
    condition: IfMatchDep,
) -> Envelope[TagRead]:
    """Rename a tag (manager and up)."""
    tag = service.update_tag(context.org_id, tag_id, body, condition)
    return ok(TagRead.model_validate(tag))


@router.delete(TAG, status_code=204, response_class=Response, responses=MANAGERS_IF_MATCH)
def delete_tag(
    tag_id: uuid.UUID, context: OrgManager, service: ProjectsServiceDep, condition: IfMatchDep
) -> Response:
    """Delete a tag (soft; manager and up). Entries keep their tag for past reports."""
    service.delete_tag(context.org_id, tag_id, condition)
    return _no_content()
