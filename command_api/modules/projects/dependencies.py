"""Dependency aliases of the projects module (and the one service it offers to others)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from command_api.modules.projects.references import EntryReferenceService
from command_api.modules.projects.service import ProjectsService
from command_api.transaction import SessionDep


async def get_projects_service(session: SessionDep) -> ProjectsService:
    return ProjectsService(session)


async def get_entry_reference_service(session: SessionDep) -> EntryReferenceService:
    return EntryReferenceService(session)


ProjectsServiceDep = Annotated[ProjectsService, Depends(get_projects_service)]
EntryReferencesDep = Annotated[EntryReferenceService, Depends(get_entry_reference_service)]
