"""Bodies and answers of the shared-report commands (API.md, "Shared reports").

A link's `params` are the report's own query parameters, checked as its endpoint checks
them, so that a link made today still reads tomorrow: the summary takes `from`, `to`,
`group_by` and the filters; the detailed report `from`, `to` and the filters; the timesheet
`week` and `user_id`. Anything else is a 422 naming it. The dimensions and the longest range
are the query API's (query_api/modules/reports, query_api/filters.py); a test holds them
equal.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from shared.reports import MAX_RANGE_DAYS, GroupByDimension
from shared.time import EARLIEST_YEAR, LATEST_YEAR, Day, Timestamp

_ISO_WEEK = re.compile(r"(\d{4})-W(\d{2})")


class SharedReportKind(StrEnum):
    SUMMARY = "summary"
    DETAILED = "detailed"
    TIMESHEET = "timesheet"


def _split_dimensions(value: Any) -> Any:
    """`"user,week"` as the query string writes it, or a list; any case."""
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, list):
        return [part.strip().lower() if isinstance(part, str) else part for part in value]
    return value


def _distinct(dimensions: list[GroupByDimension]) -> list[GroupByDimension]:
    if len(set(dimensions)) != len(dimensions):
        raise ValueError("a dimension may appear only once")
    return dimensions


def _iso_week(week: str) -> str:
    match = _ISO_WEEK.fullmatch(week)
    assert match is not None  # the pattern checked it
    year, number = int(match.group(1)), int(match.group(2))
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise ValueError(f"the year must be between {EARLIEST_YEAR} and {LATEST_YEAR}")
    try:
        date.fromisocalendar(year, number, 1)
    except ValueError:
        raise ValueError(f"{year} has no ISO week {number}") from None
    return week


GroupBy = Annotated[
    list[GroupByDimension],
    BeforeValidator(_split_dimensions),
    Field(min_length=1, max_length=2, examples=[["project"], ["user", "week"]]),
    AfterValidator(_distinct),
]
IsoWeek = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^\d{4}-W\d{2}$"),
    Field(description="ISO week, YYYY-Www", examples=["2026-W48"]),
    AfterValidator(_iso_week),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def stored(self) -> dict[str, Any]:
        """The parameters as the link keeps and shows them: query-string names, no nulls."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def subject(self) -> tuple[uuid.UUID | None, uuid.UUID | None]:
        """The user and the team the report is narrowed to, if any."""
        return None, None


class _RangeParams(_Params):
    """A range of local dates (inclusive) and the filters of the entry listings."""

    date_from: Day = Field(alias="from", description="Local date, inclusive")
    date_to: Day = Field(alias="to", description="Local date, inclusive")
    user_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = Field(default=None, description="This team and all below it")
    project_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None
    task_id: uuid.UUID | None = None
    tag_id: uuid.UUID | None = None
    billable: bool | None = None

    def subject(self) -> tuple[uuid.UUID | None, uuid.UUID | None]:
        return self.user_id, self.team_id

    @model_validator(mode="after")
    def _a_range(self) -> _RangeParams:
        if self.date_from > self.date_to:
            raise ValueError("'from' must not be after 'to'")
        if (self.date_to - self.date_from).days + 1 > MAX_RANGE_DAYS:
            raise ValueError(f"the range may cover at most {MAX_RANGE_DAYS} days")
        return self


class SummaryParams(_RangeParams):
    group_by: GroupBy


class DetailedParams(_RangeParams):
    pass


class TimesheetParams(_Params):
    week: IsoWeek
    user_id: uuid.UUID | None = Field(default=None, description="The creator by default")

    def subject(self) -> tuple[uuid.UUID | None, uuid.UUID | None]:
        return self.user_id, None


class _SharedReportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    expires_at: Timestamp | None = Field(default=None, description="Never, when left out")

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return value


class SharedSummaryCreate(_SharedReportCreate):
    kind: Literal["summary"]
    params: SummaryParams


class SharedDetailedCreate(_SharedReportCreate):
    kind: Literal["detailed"]
    params: DetailedParams


class SharedTimesheetCreate(_SharedReportCreate):
    kind: Literal["timesheet"]
    params: TimesheetParams


SharedReportBody = SharedSummaryCreate | SharedDetailedCreate | SharedTimesheetCreate
SharedReportCreate = Annotated[SharedReportBody, Field(discriminator="kind")]


class SharedReportCreated(BaseModel):
    """The new link; `token` and `url` are shown this once and only the token's hash is
    kept."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: SharedReportKind
    params: dict[str, Any] = Field(description="The report's parameters, as the link keeps them")
    expires_at: datetime | None
    created_at: datetime
    token: str = Field(description="Shown this once: the secret of the link")
    url: str = Field(description="The path of the public read on the query API")
