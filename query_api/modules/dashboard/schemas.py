"""Response shape of the dashboard."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field

from query_api.modules.dashboard.queries import PeriodTotals, RunningTimer, TopProject
from query_api.schemas import ProjectRef, UserRef


class PeriodTotalsRead(BaseModel):
    seconds: int
    billable_seconds: int
    amount: int = Field(description="Minor units of the organization's currency")


class DayTotalRead(BaseModel):
    date: date
    seconds: int


class TopProjectRead(BaseModel):
    project: ProjectRef | None = Field(description="null: time without a project")
    seconds: int


class RunningTimerRead(BaseModel):
    user: UserRef
    entry_id: uuid.UUID
    project: ProjectRef | None
    description: str
    start_at: datetime
    duration_seconds: int = Field(description="Up to the moment of the request")


class DashboardRead(BaseModel):
    today: PeriodTotalsRead
    this_week: PeriodTotalsRead = Field(description="The week holding today (org's week_start)")
    this_month: PeriodTotalsRead = Field(description="The calendar month holding today")
    last_30_days: list[DayTotalRead] = Field(
        description="Today and the 29 days before, oldest first"
    )
    top_projects: list[TopProjectRead] = Field(description="This month's top 5 by seconds")
    running_timers: list[RunningTimerRead] = Field(
        description="Who in your scope is tracking now (managers and up; empty for members)"
    )


def _period(totals: PeriodTotals) -> PeriodTotalsRead:
    return PeriodTotalsRead(
        seconds=totals.seconds, billable_seconds=totals.billable_seconds, amount=totals.amount
    )


def _project(
    project_id: uuid.UUID | None, name: str | None, color: str | None
) -> ProjectRef | None:
    if project_id is None:
        return None
    return ProjectRef(id=project_id, name=name if name is not None else "(deleted)", color=color)


def _timer(timer: RunningTimer, now: datetime) -> RunningTimerRead:
    return RunningTimerRead(
        user=UserRef(id=timer.user_id, full_name=timer.full_name),
        entry_id=timer.entry_id,
        project=_project(timer.project_id, timer.project_name, timer.project_color),
        description=timer.description,
        start_at=timer.start_at,
        duration_seconds=max(0, int((now - timer.start_at).total_seconds())),
    )


def build_dashboard(
    periods: list[PeriodTotals],
    days: list[tuple[date, int]],
    top: list[TopProject],
    timers: list[RunningTimer],
    now: datetime,
) -> DashboardRead:
    today, week, month = periods
    return DashboardRead(
        today=_period(today),
        this_week=_period(week),
        this_month=_period(month),
        last_30_days=[DayTotalRead(date=day, seconds=seconds) for day, seconds in days],
        top_projects=[
            TopProjectRead(project=_project(p.project_id, p.name, p.color), seconds=p.seconds)
            for p in top
        ],
        running_timers=[_timer(timer, now) for timer in timers],
    )
