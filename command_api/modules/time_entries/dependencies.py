"""Dependency aliases of the time entries module.

Each service is built with the services it uses in one dependency: FastAPI resolves every
dependency of a request one by one, and these are built per request anyway."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from command_api.modules.organizations.scope import MemberScopeService
from command_api.modules.projects.references import EntryReferenceService
from command_api.modules.time_entries.bulk import BulkEntryService
from command_api.modules.time_entries.service import TimeEntryService
from command_api.modules.time_entries.timers import TimerService
from command_api.transaction import SessionDep


async def get_time_entry_service(session: SessionDep) -> TimeEntryService:
    return TimeEntryService(session, EntryReferenceService(session), MemberScopeService(session))


async def get_bulk_entry_service(session: SessionDep) -> BulkEntryService:
    return BulkEntryService(session, EntryReferenceService(session), MemberScopeService(session))


async def get_timer_service(session: SessionDep) -> TimerService:
    return TimerService(session, EntryReferenceService(session), MemberScopeService(session))


TimeEntryServiceDep = Annotated[TimeEntryService, Depends(get_time_entry_service)]
BulkEntryServiceDep = Annotated[BulkEntryService, Depends(get_bulk_entry_service)]
TimerServiceDep = Annotated[TimerService, Depends(get_timer_service)]
