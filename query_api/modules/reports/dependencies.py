"""Parameters of the reports: `group_by` and the ISO `week`, refused with a 422 naming them."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from query_api.dependencies import ENTRIES, OrgReader, consistent_with
from query_api.filters import EntryFilters, covered_users
from query_api.modules.reports.queries import DIMENSIONS, SummaryScope
from shared.db import ReadSession
from shared.errors import ValidationFailedError
from shared.reports import GroupByDimension
from shared.time import EARLIEST_YEAR, LATEST_YEAR

MAX_GROUP_BY = 2
_ISO_WEEK = re.compile(r"(\d{4})-W(\d{2})")

ConsistentEntries = Annotated[None, Depends(consistent_with(ENTRIES))]


def _invalid(field: str, message: str) -> ValidationFailedError:
    return ValidationFailedError(
        f"Invalid parameter '{field}': {message}",
        details=[{"field": field, "location": "query", "message": message, "type": "value_error"}],
    )


def _dimensions(values: Any) -> list[str]:
    """`group_by=user,week` as API.md writes it (a repeated `group_by` reads the same): known
    dimensions, any case, at most two, each once. Each refusal names `group_by`."""
    values = [values] if isinstance(values, str) else values
    dims = [part.strip().lower() for value in values for part in str(value).split(",")]
    for dim in dims:
        if dim not in DIMENSIONS:
            raise PydanticCustomError(
                "value_error",
                "unknown dimension '{dimension}'; use {known}",
                {"dimension": dim, "known": ", ".join(DIMENSIONS)},
            )
    if len(dims) > MAX_GROUP_BY:
        raise PydanticCustomError("value_error", f"at most {MAX_GROUP_BY} dimensions")
    if len(set(dims)) != len(dims):
        raise PydanticCustomError("value_error", "a dimension may appear only once")
    return dims


def parse_group_by(
    group_by: Annotated[
        list[GroupByDimension],
        BeforeValidator(_dimensions),
        Query(
            min_length=1,
            max_length=MAX_GROUP_BY,
            description="One or two dimensions, comma-separated: the groups, and the groups "
            "inside each",
            # Comma-separated (`group_by=user,week`), as API.md writes it.
            json_schema_extra={"uniqueItems": True, "style": "form", "explode": False},
            examples=[["project"], ["user", "week"]],
        ),
    ],
) -> tuple[str, ...]:
    return tuple(dimension.value for dimension in group_by)


GroupByDep = Annotated[tuple[str, ...], Depends(parse_group_by)]


def parse_iso_week(
    week: Annotated[
        str,
        Query(
            max_length=10,
            description="ISO week, YYYY-Www",
            examples=["2026-W48"],
            json_schema_extra={"pattern": r"^\d{4}-W\d{2}$"},
        ),
    ],
) -> date:
    """The Monday of the ISO week."""
    match = _ISO_WEEK.fullmatch(week.strip())
    if match is None:
        raise _invalid("week", "must be an ISO week such as 2026-W48")
    year, number = int(match.group(1)), int(match.group(2))
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise _invalid("week", f"the year must be between {EARLIEST_YEAR} and {LATEST_YEAR}")
    try:
        return date.fromisocalendar(year, number, 1)
    except ValueError:
        raise _invalid("week", f"{year} has no ISO week {number}") from None


IsoWeekDep = Annotated[date, Depends(parse_iso_week)]


def summary_scope(session: ReadSession, org: OrgReader, filters: EntryFilters) -> SummaryScope:
    """The summary's range, users (what the caller may see, narrowed by user and team) and
    filters; `from` and `to` are required."""
    filters.check_range(required=True)
    assert filters.date_from is not None
    assert filters.date_to is not None
    return SummaryScope(
        org_id=org.org_id,
        date_from=filters.date_from,
        date_to=filters.date_to,
        week_start=int(org.organization["week_start"]),
        user_ids=covered_users(session, org, filters),
        project_id=filters.project_id,
        client_id=filters.client_id,
        task_id=filters.task_id,
        tag_id=filters.tag_id,
        billable=filters.billable,
    )
