"""Request and response shapes of time entries and timers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationInfo,
    field_validator,
)

from command_api.modules.time_entries.models import MAX_DESCRIPTION_LENGTH
from shared.responses import Version
from shared.time import Timestamp

MAX_BULK_ENTRIES = 1000
MAX_TAGS_PER_ENTRY = 50

TagIds = list[uuid.UUID]


def _unique_tags(tag_ids: TagIds | None) -> TagIds | None:
    return None if tag_ids is None else list(dict.fromkeys(tag_ids))


class _EntryFields(BaseModel):
    """What an entry refers to; shared by entries and timers."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    project_id: uuid.UUID | None = None
    task_id: uuid.UUID | None = None
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)
    billable: bool | None = Field(
        default=None, description="Defaults to the project's billable flag (false without one)"
    )
    tag_ids: TagIds = Field(default_factory=list, max_length=MAX_TAGS_PER_ENTRY)

    @field_validator("tag_ids")
    @classmethod
    def _dedupe_tags(cls, value: TagIds) -> TagIds:
        return _unique_tags(value) or []


class TimerStart(_EntryFields):
    """Starts a timer now for the caller."""


class TimeEntryCreate(_EntryFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "start_at": "2026-03-02T09:00:00Z",
                    "end_at": "2026-03-02T10:30:00Z",
                    "description": "Sprint planning",
                }
            ]
        }
    )

    start_at: Timestamp
    end_at: Timestamp | None = Field(default=None, description="Omit to start a running timer")
    user_id: uuid.UUID | None = Field(
        default=None, description="Write for another member (managers and up, within scope)"
    )

    @field_validator("end_at")
    @classmethod
    def _end_after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start_at = info.data.get("start_at")
        if value is not None and start_at is not None and value <= start_at:
            raise ValueError("must be after start_at")
        return value


def _checked_by_the_service(item: Any) -> Any:
    return item


# A bulk item is checked by the service, not here: one 422 then lists every failing item by
# index, malformed or breaking a rule (the framework would name only the malformed ones).
# The document still says what an item is: the body of a single create.
BulkEntryItem = Annotated[
    Any, PlainValidator(_checked_by_the_service, json_schema_input_type=TimeEntryCreate)
]


class TimeEntryBulkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[BulkEntryItem] = Field(min_length=1, max_length=MAX_BULK_ENTRIES)


class TimeEntryUpdate(BaseModel):
    """Any field of an entry; only the fields sent change. `project_id`/`task_id` may be
    null to clear them; setting `end_at` on a running timer stops it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    start_at: Timestamp | None = None
    end_at: Timestamp | None = None
    project_id: uuid.UUID | None = None
    task_id: uuid.UUID | None = None
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)
    billable: bool | None = None
    tag_ids: TagIds | None = Field(default=None, max_length=MAX_TAGS_PER_ENTRY)
    user_id: uuid.UUID | None = None

    # Runs only for fields the client sent: an explicit null is refused here.
    @field_validator("start_at", "billable", "tag_ids", "user_id", "description")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value

    @field_validator("tag_ids")
    @classmethod
    def _dedupe_tags(cls, value: TagIds | None) -> TagIds | None:
        return _unique_tags(value)

    @field_validator("end_at")
    @classmethod
    def _end_after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start_at = info.data.get("start_at")
        if value is not None and start_at is not None and value <= start_at:
            raise ValueError("must be after start_at")
        return value


class TimeEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    project_id: uuid.UUID | None
    task_id: uuid.UUID | None
    description: str
    billable: bool
    start_at: datetime
    end_at: datetime | None = Field(description="null while the timer runs")
    duration_seconds: int | None = Field(description="null while the timer runs")
    hourly_rate: int = Field(description="Minor units per hour, resolved when written")
    amount: int | None = Field(description="Minor units; null while the timer runs")
    tag_ids: list[uuid.UUID]
    version: Version
    created_at: datetime
    updated_at: datetime


class BulkCreatedRead(BaseModel):
    created: int
    ids: list[uuid.UUID] = Field(description="In the order of the input")
