"""Shapes several query modules answer: references to other records, report totals and
instants in UTC.

One class per shape, so that the OpenAPI document has one schema per shape (`Ref`, not
`NamedRef`, `TimesheetRef` and `Ref` for the same `{id, name}`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Instants answer in UTC whatever the database session's time zone.
UtcTimestamp = Annotated[datetime, AfterValidator(_utc)]


class Ref(BaseModel):
    """Another record, by id and display name."""

    id: uuid.UUID
    name: str


class UserRef(BaseModel):
    id: uuid.UUID
    full_name: str


class ProjectRef(Ref):
    color: str | None


class ReportTotalsRead(BaseModel):
    """Finished entries only."""

    seconds: int
    billable_seconds: int
    amount: int = Field(description="Minor units of the organization's currency")
    entries: int
