"""Shapes of time entries and of the detailed report (API.md)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from query_api.schemas import ProjectRef, Ref, ReportTotalsRead, UserRef, UtcTimestamp
from shared.pagination import PaginationMeta


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


class DetailedReportRead(BaseModel):
    totals: ReportTotalsRead
    entries: list[TimeEntryRead]


class DetailedReportResponse(BaseModel):
    """The envelope of the detailed report: the page of entries and the totals of the whole
    filtered range in `data`, the page in `pagination`."""

    success: bool = True
    data: DetailedReportRead
    pagination: PaginationMeta
