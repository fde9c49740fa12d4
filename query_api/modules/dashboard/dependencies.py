"""The dashboard's periods, in the organization's time zone, and whom it covers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Query

from query_api.dependencies import ENTRIES, OrgReader, consistent_with
from query_api.filters import EntryFilters, covered_users
from query_api.modules.dashboard.queries import Period, Users
from shared.db import ReadSession

LAST_DAYS = 30
TOP_PROJECTS = 5

ConsistentEntries = Annotated[None, Depends(consistent_with(ENTRIES))]


@dataclass(frozen=True)
class DashboardPeriods:
    now: datetime
    today: Period
    week: Period
    month: Period
    last_days: Period


def _month_end(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def dashboard_periods(
    timezone: str, week_start: int, now: datetime | None = None
) -> DashboardPeriods:
    """Today, the week holding it (from the org's week_start), its calendar month and the
    last 30 days, as local dates of the organization's time zone."""
    now = now or datetime.now(UTC)
    today = now.astimezone(ZoneInfo(timezone)).date()
    week_first = today - timedelta(days=(today.isoweekday() - week_start) % 7)
    month_first = today.replace(day=1)
    return DashboardPeriods(
        now=now,
        today=Period(today, today),
        week=Period(week_first, week_first + timedelta(days=6)),
        month=Period(month_first, _month_end(month_first)),
        last_days=Period(today - timedelta(days=LAST_DAYS - 1), today),
    )


def dashboard_users(
    session: ReadSession,
    org: OrgReader,
    user_id: uuid.UUID | None,
    team_id: uuid.UUID | None,
) -> Users:
    return covered_users(session, org, EntryFilters(user_id=user_id, team_id=team_id))


UserParam = Annotated[uuid.UUID | None, Query(description="Someone in your scope")]
TeamParam = Annotated[uuid.UUID | None, Query(description="This team and all below it")]
