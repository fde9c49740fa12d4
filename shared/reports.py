"""What a report may be asked for, the same for the report endpoints (query API) and for the
shared links that name their parameters (command API)."""

from __future__ import annotations

from enum import StrEnum

# The longest range of dates a report covers, in days.
MAX_RANGE_DAYS = 366 * 2


class GroupByDimension(StrEnum):
    """What a summary may group by (`group_by`)."""

    PROJECT = "project"
    CLIENT = "client"
    USER = "user"
    TASK = "task"
    TAG = "tag"
    TEAM = "team"
    BILLABLE = "billable"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
