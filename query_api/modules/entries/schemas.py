"""Shapes of time entries and of the detailed report (API.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel

from query_api.schemas import ProjectRef, Ref, ReportTotalsRead, UserRef, UtcTimestamp
from shared.pagination import PaginationMeta
from shared.responses import Version

if TYPE_CHECKING:
    from query_api.modules.entries.queries import EntryRow


class TimeEntryRead(BaseModel):
    id: uuid.UUID
    user: UserRef
    project: ProjectRef | None
    client: Ref | None
    task: Ref | None
    tags: list[Ref]
    description: str
    start_at: UtcTimestamp
    end_at: UtcTimestamp | None
    duration_seconds: int
    billable: bool
    amount: int
    version: Version
    updated_at: UtcTimestamp

    @classmethod
    def of(cls, row: EntryRow, now: datetime) -> TimeEntryRead:
        """An entry as its row in proj_entries has it (a running one's duration up to `now`)."""
        return cls(
            id=row.entry_id,
            user=UserRef(id=row.user_id, full_name=row.user_name),
            project=None
            if row.project_id is None
            else ProjectRef(
                id=row.project_id, name=row.project_name or "", color=row.project_color
            ),
            client=None
            if row.client_id is None
            else Ref(id=row.client_id, name=row.client_name or ""),
            task=None if row.task_id is None else Ref(id=row.task_id, name=row.task_name or ""),
            tags=[Ref(id=i, name=n) for i, n in zip(row.tag_ids, row.tag_names, strict=False)],
            description=row.description,
            start_at=row.start_at,
            end_at=row.end_at,
            duration_seconds=row.duration_at(now),
            billable=row.billable,
            amount=row.amount,
            version=row.version,
            updated_at=row.updated_at,
        )


class DetailedReportRead(BaseModel):
    totals: ReportTotalsRead
    entries: list[TimeEntryRead]


class DetailedReportResponse(BaseModel):
    """The envelope of the detailed report: the page of entries and the totals of the whole
    filtered range in `data`, the page in `pagination`."""

    success: bool = True
    data: DetailedReportRead
    pagination: PaginationMeta
