"""The dashboard: today, this week, this month, the last 30 days, top projects and who is
tracking now."""

from __future__ import annotations

from fastapi import APIRouter

from query_api.dependencies import OrgReaderDep, ReadSessionDep
from query_api.modules.dashboard.dependencies import (
    TOP_PROJECTS,
    ConsistentEntries,
    TeamParam,
    UserParam,
    dashboard_periods,
    dashboard_users,
)
from query_api.modules.dashboard.queries import (
    period_totals,
    running_timers,
    seconds_per_day,
    top_projects,
)
from query_api.modules.dashboard.schemas import DashboardRead, build_dashboard
from shared.responses import Envelope, ok

router = APIRouter(prefix="/organizations/{org_id}", tags=["dashboard"])


@router.get("/dashboard", response_model=Envelope[DashboardRead])
def get_dashboard(
    _: ConsistentEntries,
    org: OrgReaderDep,
    session: ReadSessionDep,
    user_id: UserParam = None,
    team_id: TeamParam = None,
) -> Envelope[DashboardRead]:
    """Finished time of today, this week (from the organization's `week_start`) and this
    calendar month, in the organization's time zone; seconds of each of the last 30 days
    (zeros included); this month's top 5 projects; and, for managers and up, the timers
    running now in their scope (running timers count in no total). Covers what the caller
    may see, narrowed by `user_id` or `team_id`."""
    users = dashboard_users(session, org, user_id, team_id)
    periods = dashboard_periods(
        str(org.organization["timezone"]), int(org.organization["week_start"])
    )
    totals = period_totals(session, org.org_id, users, [periods.today, periods.week, periods.month])
    per_day = seconds_per_day(session, org.org_id, users, periods.last_days)
    last_days = [(day, per_day.get(day, 0)) for day in periods.last_days.days()]
    top = top_projects(session, org.org_id, users, periods.month.first, TOP_PROJECTS)
    timers = running_timers(session, org.org_id, users) if org.at_least("manager") else []
    return ok(build_dashboard(totals, last_days, top, timers, periods.now))
