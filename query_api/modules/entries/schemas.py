"""Shapes of time entries and of the detailed report (API.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel

from shared.pagination import PaginationMeta


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcTimestamp = Annotated[datetime, AfterValidator(_utc)]


class UserRef(BaseModel):
    id: uuid.UUID
    full_name: str


class ProjectRef(BaseModel):
    id: uuid.UUID
    name: str
    color: str | None


class NamedRef(BaseModel):
    id: uuid.UUID
    name: str


class EntryRead(BaseModel):
    id: uuid.UUID
    user: UserRef
    project: ProjectRef | None
    client: NamedRef | None
    task: NamedRef | None
    tags: list[NamedRef]
    description: str
    start_at: UtcTimestamp
    end_at: UtcTimestamp | None
    duration_seconds: int
    billable: bool
    amount: int


class TotalsRead(BaseModel):
    """Finished entries only."""

    seconds: int
    billable_seconds: int
    amount: int
    entries: int


class DetailedReportRead(BaseModel):
    totals: TotalsRead
    entries: list[EntryRead]


class DetailedReportEnvelope(BaseModel):
    success: bool = True
    data: DetailedReportRead
    pagination: PaginationMeta
