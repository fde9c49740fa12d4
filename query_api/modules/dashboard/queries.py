"""Dashboard figures: period totals and the last 30 days from the daily roll-ups (per user,
or per project when the caller sees the whole organization), the month's top projects from
the monthly roll-ups, and who is tracking now from the running timers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import BigInteger, ColumnElement, FromClause, Table, cast, false, func, select

from projections.models import (
    proj_daily_project_totals,
    proj_daily_user_totals,
    proj_entries,
    proj_monthly_project_totals,
    proj_monthly_totals,
    proj_projects,
    proj_running_timers,
)
from shared.db import ReadSession

Users = frozenset[uuid.UUID] | None


@dataclass(frozen=True)
class Period:
    """Local dates, inclusive."""

    first: date
    last: date

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


@dataclass(frozen=True)
class PeriodTotals:
    seconds: int = 0
    billable_seconds: int = 0
    amount: int = 0


@dataclass(frozen=True)
class TopProject:
    project_id: uuid.UUID | None
    name: str | None
    color: str | None
    seconds: int


@dataclass(frozen=True)
class RunningTimer:
    user_id: uuid.UUID
    full_name: str
    entry_id: uuid.UUID
    project_id: uuid.UUID | None
    project_name: str | None
    project_color: str | None
    description: str
    start_at: datetime


def _scope(table: FromClause, org_id: uuid.UUID, users: Users) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [table.c.org_id == org_id]
    if users is not None:
        clauses.append(table.c.user_id.in_(sorted(users)) if users else false())
    return clauses


def _daily(users: Users) -> Table:
    """The whole organization's days per project (fewer rows than per user), else per user."""
    return proj_daily_project_totals if users is None else proj_daily_user_totals


def _sum(column: ColumnElement[int], where: ColumnElement[bool]) -> ColumnElement[int]:
    return cast(func.coalesce(func.sum(column).filter(where), 0), BigInteger)


def period_totals(
    session: ReadSession, org_id: uuid.UUID, users: Users, periods: list[Period]
) -> list[PeriodTotals]:
    """Totals of each period (inclusive local dates), in one pass over the daily rows."""
    d = _daily(users)
    first = min(p.first for p in periods)
    last = max(p.last for p in periods)
    columns = []
    for period in periods:
        inside = d.c.day.between(period.first, period.last)
        columns += [_sum(d.c.seconds, inside), _sum(d.c.billable_seconds, inside)]
        columns.append(_sum(d.c.amount, inside))
    row = session.execute(
        select(*columns).where(*_scope(d, org_id, users), d.c.day.between(first, last))
    ).one()
    return [PeriodTotals(*(int(v) for v in row[i * 3 : i * 3 + 3])) for i in range(len(periods))]


def seconds_per_day(
    session: ReadSession, org_id: uuid.UUID, users: Users, period: Period
) -> dict[date, int]:
    d = _daily(users)
    rows = session.execute(
        select(d.c.day, cast(func.sum(d.c.seconds), BigInteger))
        .where(*_scope(d, org_id, users), d.c.day.between(period.first, period.last))
        .group_by(d.c.day)
    )
    return {day: int(seconds) for day, seconds in rows}


def top_projects(
    session: ReadSession, org_id: uuid.UUID, users: Users, month: date, limit: int
) -> list[TopProject]:
    """The month's projects (no project included) by finished seconds, most first."""
    m = proj_monthly_project_totals if users is None else proj_monthly_totals
    seconds = cast(func.sum(m.c.seconds), BigInteger)
    scope = [m.c.org_id == org_id] if users is None else _scope(m, org_id, users)
    top = (
        select(m.c.project_id, seconds.label("seconds"))
        .where(*scope, m.c.month == month)
        .group_by(m.c.project_id)
        .order_by(seconds.desc(), m.c.project_id.nulls_last())
        .limit(limit)
        .subquery("top")
    )
    p = proj_projects
    rows = session.execute(
        select(top.c.project_id, p.c.name, p.c.color, top.c.seconds)
        .select_from(top.outerjoin(p, p.c.id == top.c.project_id))
        .order_by(top.c.seconds.desc(), top.c.project_id.nulls_last())
    )
    return [TopProject(r.project_id, r.name, r.color, int(r.seconds)) for r in rows]


def running_timers(session: ReadSession, org_id: uuid.UUID, users: Users) -> list[RunningTimer]:
    """Timers running now in the organization for `users`, longest running first."""
    t, e = proj_running_timers, proj_entries
    rows = session.execute(
        select(
            t.c.user_id,
            e.c.user_name,
            t.c.entry_id,
            e.c.project_id,
            e.c.project_name,
            e.c.project_color,
            e.c.description,
            t.c.start_at,
        )
        .select_from(t.join(e, e.c.entry_id == t.c.entry_id))
        .where(*_scope(t, org_id, users))
        .order_by(t.c.start_at, t.c.user_id)
    )
    return [RunningTimer(*row) for row in rows]
