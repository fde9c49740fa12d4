"""Dependency aliases of the time entries module."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from command_api.modules.organizations.scope import MemberScopeDep
from command_api.modules.projects.dependencies import EntryReferencesDep
from command_api.modules.time_entries.bulk import BulkEntryService
from command_api.modules.time_entries.service import TimeEntryService
from command_api.modules.time_entries.timers import TimerService
from command_api.transaction import SessionDep


async def get_time_entry_service(
    session: SessionDep, references: EntryReferencesDep, scope: MemberScopeDep
) -> TimeEntryService:
    return TimeEntryService(session, references, scope)


async def get_bulk_entry_service(
    session: SessionDep, references: EntryReferencesDep, scope: MemberScopeDep
) -> BulkEntryService:
    return BulkEntryService(session, references, scope)


async def get_timer_service(
    session: SessionDep, references: EntryReferencesDep, scope: MemberScopeDep
) -> TimerService:
    return TimerService(session, references, scope)


TimeEntryServiceDep = Annotated[TimeEntryService, Depends(get_time_entry_service)]
BulkEntryServiceDep = Annotated[BulkEntryService, Depends(get_bulk_entry_service)]
TimerServiceDep = Annotated[TimerService, Depends(get_timer_service)]
