"""Shared reports as their creators list them (never a token), and as a link reads."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from query_api.modules.entries.schemas import DetailedReportRead
from query_api.modules.reports.schemas import SummaryReportRead, TimesheetRead
from query_api.schemas import UtcTimestamp
from shared.pagination import PaginationMeta


class SharedReportKind(StrEnum):
    SUMMARY = "summary"
    DETAILED = "detailed"
    TIMESHEET = "timesheet"


class SharedReportRead(BaseModel):
    id: uuid.UUID
    name: str
    kind: SharedReportKind
    params: dict[str, Any] = Field(description="The report's parameters: from, to, group_by …")
    created_by: uuid.UUID
    expires_at: UtcTimestamp | None = Field(description="Null: never")
    created_at: UtcTimestamp


class PublicReportOrganization(BaseModel):
    name: str
    currency: str


class PublicReportRead(BaseModel):
    name: str
    kind: SharedReportKind
    organization: PublicReportOrganization
    params: dict[str, Any]
    report: SummaryReportRead | DetailedReportRead | TimesheetRead = Field(
        description="The report's usual `data`, as its creator may see it now"
    )


class PublicReportResponse(BaseModel):
    """The envelope of a shared report; `pagination` pages a detailed report's entries
    (`page`, `page_size`) and is null for the others."""

    success: bool = True
    message: str = "Operation successful"
    data: PublicReportRead
    pagination: PaginationMeta | None = None
