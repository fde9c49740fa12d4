"""Dependency aliases of the projects module. The service it offers to others,
`EntryReferenceService`, is built by their own dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from command_api.modules.projects.service import ProjectsService
from command_api.transaction import SessionDep


async def get_projects_service(session: SessionDep) -> ProjectsService:
    return ProjectsService(session)


ProjectsServiceDep = Annotated[ProjectsService, Depends(get_projects_service)]
