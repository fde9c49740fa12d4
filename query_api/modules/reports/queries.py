"""Summary and timesheet queries over the daily totals and their monthly roll-ups.

A summary reads `proj_monthly_totals` for the whole months of its range and
`proj_daily_totals` for the days at its edges (daily rows only when it groups by day or
week): a year reads twelve rows per bucket instead of 365. A month mostly inside the range
is read whole, less the daily rows of its days outside (see `split_range`). When the caller
sees the whole organization, nothing narrows it by user, team, task or tag, and it groups
by project, client, billable, day, week or month only (tags too, from the tag totals), it
reads the per-project roll-ups instead (`proj_daily_project_totals`,
`proj_monthly_project_totals`, and their `_tag_` twins): one row per (day or month,
project, billable[, tag]), however many users and tasks. When nothing narrows it by
project, client, task or tag and it groups by user, team, day, week, month or billable only,
it reads the per-user roll-ups `proj_daily_user_totals` and `proj_monthly_user_totals`: one
row per (user, day or month, billable), however many projects and tasks. Everything is
aggregated in PostgreSQL, in one statement per report: every level of the report (inner
groups, outer groups, totals) comes from the same snapshot.

Two dimensions count an entry more than once: `tag` (once per tag, from the tag totals) and
`team` (once per current team of its user, joined from `proj_team_members`). A level that
does not group by them must not see those duplicates: levels that count entries alike are
aggregated once from the facts (the deepest) and re-aggregated from that small result (the
others); levels that count differently read the facts again. UNION ALL glues them.

Untagged entries have tag-total rows under tag_id NULL: the "(none)" tag group. Entries are
read (`proj_entries`) in one case only, which no total answers: a tag grouping filtered by a
tag (an entry carrying the filtered tag also counts under its other tags, and the tag totals
do not say which tags share an entry).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    FromClause,
    Integer,
    Select,
    Table,
    Uuid,
    and_,
    case,
    cast,
    extract,
    false,
    func,
    literal,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.types import TypeEngine

from projections.models import (
    proj_clients,
    proj_daily_project_tag_totals,
    proj_daily_project_totals,
    proj_daily_tag_totals,
    proj_daily_totals,
    proj_daily_user_totals,
    proj_entries,
    proj_monthly_org_tag_totals,
    proj_monthly_project_tag_totals,
    proj_monthly_project_totals,
    proj_monthly_tag_totals,
    proj_monthly_totals,
    proj_monthly_user_totals,
    proj_projects,
    proj_tags,
    proj_tasks,
    proj_team_members,
    proj_teams,
    proj_users,
)
from shared.db import ReadSession
from shared.reports import GroupByDimension

DIMENSIONS = tuple(dimension.value for dimension in GroupByDimension)
# Dimensions under which one entry may count several times.
MULTI_VALUED = frozenset({"tag", "team"})
# Dimensions that need daily rows for the whole range.
DAILY = frozenset({"day", "week"})
# Dimensions the per-project roll-ups answer (a client from its projects), tags included
# when the tag totals are read.
COARSE = frozenset({"project", "client", "billable", "day", "week", "month"})
# Dimensions the per-user daily and monthly roll-ups answer (a team from its users).
BY_PERSON = frozenset({"user", "team", "billable", "day", "week", "month"})
# What reading a month of roll-up rows costs, in days of the daily rows it replaces: the
# per-bucket month holds about as many rows as four days (people keep to a few projects
# and tasks in a month), the per-user month about as many as two, and the per-project
# month, a few hundred rows, next to nothing.
MONTH_COST_DAYS = {"bucket": 4, "person": 2, "project": 0, "tag": 0}
# Dimensions the per-organization monthly tag roll-up answers.
BY_TAG = frozenset({"tag", "billable", "month"})

_KEY_TYPES: dict[str, type[TypeEngine[Any]]] = {
    "project": Uuid,
    "client": Uuid,
    "user": Uuid,
    "task": Uuid,
    "tag": Uuid,
    "team": Uuid,
    "billable": Boolean,
    "day": Date,
    "week": Date,
    "month": Date,
}
# Where the display name of an id dimension lives.
_LABELS: dict[str, tuple[Table, str]] = {
    "project": (proj_projects, "name"),
    "client": (proj_clients, "name"),
    "user": (proj_users, "full_name"),
    "task": (proj_tasks, "name"),
    "tag": (proj_tags, "name"),
    "team": (proj_teams, "name"),
}
SUMS = ("seconds", "billable_seconds", "amount", "entries")


@dataclass(frozen=True)
class SummaryScope:
    """What a summary covers: the organization, local dates (inclusive), users (None: all)
    and the other filters."""

    org_id: uuid.UUID
    date_from: date
    date_to: date
    week_start: int
    user_ids: frozenset[uuid.UUID] | None = None
    project_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None
    task_id: uuid.UUID | None = None
    tag_id: uuid.UUID | None = None
    billable: bool | None = None


@dataclass(frozen=True)
class Totals:
    seconds: int = 0
    billable_seconds: int = 0
    amount: int = 0
    entries: int = 0


class SummaryRow(NamedTuple):
    """One aggregated row: `level` is how many of the group_by dimensions it is grouped by
    (0 for the totals); `keys` and `labels` hold the first `level` dimensions; `totals` the
    four sums by name. (A tuple and a dict: a year by user and day makes 100k of them.)"""

    level: int
    keys: tuple[Any, ...]
    labels: tuple[str | None, ...]
    totals: dict[str, int]


# --- Which rows to read ------------------------------------------------------------------


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


DayRange = tuple[date, date]  # inclusive


@dataclass(frozen=True)
class Periods:
    """How a range is covered: day ranges read from daily rows (`days`), months read from
    monthly rows (`month >= months[0] AND month < months[1]`), and the days of those months
    that lie outside the range (`minus`), read from daily rows and subtracted."""

    days: tuple[DayRange, ...]
    months: tuple[date, date] | None
    minus: tuple[DayRange, ...] = ()


def split_range(
    date_from: date, date_to: date, *, daily_only: bool, month_cost: int = 0
) -> Periods:
    """Each month the range touches is read the cheaper way: its days inside the range from
    the daily rows, or its monthly rows minus the daily rows of the days outside, when
    those are fewer by more than `month_cost` (what reading a month's rows costs, in days
    of daily rows). Sums are exact integers, so the difference is too: a year up to today
    reads its months and a few days, not most of two months day by day."""
    if daily_only:
        return Periods(((date_from, date_to),), None)
    days: list[DayRange] = []
    months: list[date] = []
    minus: list[DayRange] = []
    month = _month_start(date_from)
    while month <= date_to:
        after = _next_month(month)
        last = after - timedelta(days=1)
        low, high = max(month, date_from), min(last, date_to)
        inside = (high - low).days + 1
        if (after - month).days - inside + month_cost < inside:
            months.append(month)
            if month < low:
                minus.append((month, low - timedelta(days=1)))
            if high < last:
                minus.append((high + timedelta(days=1), last))
        else:
            days.append((low, high))
        month = after
    if not months:
        return Periods(((date_from, date_to),), None)
    return Periods(tuple(days), (months[0], _next_month(months[-1])), tuple(minus))


def _filters(scope: SummaryScope, table: FromClause) -> list[ColumnElement[bool]]:
    c = table.c
    clauses: list[ColumnElement[bool]] = [c.org_id == scope.org_id]
    if scope.user_ids is not None:
        clauses.append(c.user_id.in_(sorted(scope.user_ids)) if scope.user_ids else false())
    if scope.project_id is not None:
        clauses.append(c.project_id == scope.project_id)
    if scope.client_id is not None:
        clauses.append(
            c.project_id.in_(
                select(proj_projects.c.id).where(
                    proj_projects.c.org_id == scope.org_id,
                    proj_projects.c.client_id == scope.client_id,
                )
            )
        )
    if scope.task_id is not None:
        clauses.append(c.task_id == scope.task_id)
    if scope.billable is not None:
        clauses.append(c.billable == scope.billable)
    return clauses


@dataclass(frozen=True)
class _Shape:
    """Which rows and columns the facts of one level need: tag_id, day (daily rows for the
    whole range), month, and the `grain` of the totals read: "bucket" (user, project, task,
    billable), "project" (project and billable only: the per-project roll-ups), "person"
    (user and billable only: the per-user roll-ups) or "tag" (billable only, beside the
    tag: the months of the per-organization tag roll-up). Columns nobody groups by are not
    computed."""

    tagged: bool
    daily: bool
    monthly_key: bool
    grain: str

    @classmethod
    def of(cls, scope: SummaryScope, dims: tuple[str, ...]) -> _Shape:
        tagged = "tag" in dims
        unnarrowed = scope.task_id is None and scope.tag_id is None
        grain = "bucket"
        whole = unnarrowed and scope.user_ids is None
        if (
            whole
            and tagged
            and scope.project_id is None
            and scope.client_id is None
            and (set(dims) <= BY_TAG)
        ):
            grain = "tag"
        elif whole and set(dims) <= COARSE | {"tag"}:
            grain = "project"
        elif (
            unnarrowed
            and not tagged
            and scope.project_id is None
            and scope.client_id is None
            and set(dims) <= BY_PERSON
        ):
            grain = "person"
        return cls(tagged, bool(DAILY & set(dims)), "month" in dims, grain)

    @property
    def coarse(self) -> bool:
        return self.grain == "project"


def _month_of(day: ColumnElement[Any]) -> ColumnElement[Any]:
    return cast(func.date_trunc(literal_column("'month'"), cast(day, DateTime)), Date)


_GRAIN_COLUMNS = {
    "bucket": ("user_id", "project_id", "task_id", "billable"),
    "project": ("project_id", "billable"),
    "person": ("user_id", "billable"),
    "tag": ("billable",),
}


def _fact_columns(
    table: FromClause, shape: _Shape, day: ColumnElement[Any] | None, month: ColumnElement[Any]
) -> list[ColumnElement[Any]]:
    columns: list[ColumnElement[Any]] = [table.c[name] for name in _GRAIN_COLUMNS[shape.grain]]
    if shape.daily and day is not None:
        columns.append(day.label("day"))
    if shape.monthly_key:
        columns.append(month.label("month"))
    return columns


def _tables(shape: _Shape, *, tag_table: bool) -> tuple[Table, Table]:
    """The (daily, monthly) totals a level reads."""
    if tag_table:
        if shape.grain == "tag":
            return proj_daily_project_tag_totals, proj_monthly_org_tag_totals
        if shape.coarse:
            return proj_daily_project_tag_totals, proj_monthly_project_tag_totals
        return proj_daily_tag_totals, proj_monthly_tag_totals
    if shape.grain == "person":
        return proj_daily_user_totals, proj_monthly_user_totals
    if shape.coarse:
        return proj_daily_project_totals, proj_monthly_project_totals
    return proj_daily_totals, proj_monthly_totals


def _total_parts(
    scope: SummaryScope, periods: Periods, shape: _Shape, *, tag_table: bool
) -> list[Select[Any]]:
    """Selects of daily and monthly total rows covering the range (the days in
    `periods.minus` with their sums negated)."""
    daily, monthly = _tables(shape, tag_table=tag_table)

    def part(table: Table, period: ColumnElement[bool], sign: int = 1) -> Select[Any]:
        where = [*_filters(scope, table), period]
        if scope.tag_id is not None:
            where.append(table.c.tag_id == scope.tag_id)
        if table is monthly:
            columns = _fact_columns(table, shape, None, table.c.month)
        else:
            columns = _fact_columns(table, shape, table.c.day, _month_of(table.c.day))
        if shape.tagged:
            columns.append(table.c.tag_id)
        sums = [table.c[n] if sign > 0 else (-table.c[n]).label(n) for n in SUMS]
        return select(*columns, *sums).where(*where)

    parts = [part(daily, daily.c.day.between(low, high)) for low, high in periods.days]
    if periods.months is not None:
        first, after = periods.months
        parts.append(part(monthly, and_(monthly.c.month >= first, monthly.c.month < after)))
    parts += [part(daily, daily.c.day.between(low, high), -1) for low, high in periods.minus]
    return parts


def _co_tagged_entries(scope: SummaryScope, shape: _Shape, tag_id: uuid.UUID) -> Select[Any]:
    """Finished entries of the range carrying `tag_id`, one row per tag they carry."""
    e = proj_entries
    return select(
        *_fact_columns(e, shape, e.c.local_date, _month_of(e.c.local_date)),
        func.unnest(e.c.tag_ids).label("tag_id"),
        e.c.duration_seconds.label("seconds"),
        case((e.c.billable, e.c.duration_seconds), else_=0).label("billable_seconds"),
        e.c.amount,
        literal(1, BigInteger).label("entries"),
    ).where(
        *_filters(scope, e),
        e.c.local_date.between(scope.date_from, scope.date_to),
        e.c.end_at.is_not(None),
        e.c.tag_ids.contains([tag_id]),
    )


def _facts(scope: SummaryScope, shape: _Shape) -> FromClause:
    """The rows a level aggregates: bucket columns, day and month when grouped by, tag_id
    when `tagged`, and the four sums."""
    if shape.tagged and scope.tag_id is not None:
        return _co_tagged_entries(scope, shape, scope.tag_id).subquery("facts")
    periods = split_range(
        scope.date_from,
        scope.date_to,
        daily_only=shape.daily,
        month_cost=MONTH_COST_DAYS[shape.grain],
    )
    parts = _total_parts(scope, periods, shape, tag_table=shape.tagged or scope.tag_id is not None)
    return (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("facts")


# --- Grouping ----------------------------------------------------------------------------


# The fact column a dimension is derived from (client from the project, team from the user).
_SOURCE_DIMENSION = {"client": "project", "team": "user"}


def _direct_keys(scope: SummaryScope, facts: FromClause, shape: _Shape) -> dict[str, Any]:
    f = facts.c
    keys: dict[str, ColumnElement[Any]] = {"billable": f.billable}
    columns = _GRAIN_COLUMNS[shape.grain]
    for dim in ("project", "user", "task"):
        if f"{dim}_id" in columns:
            keys[dim] = f[f"{dim}_id"]
    if shape.daily:
        keys["day"] = f.day
        # Back to the week's first day: ISO weekday 1-7 against the org's week_start 1-7
        # (an integer from the catalog, inlined so GROUP BY matches the select list).
        offset: ColumnElement[Any] = literal_column(str(7 - int(scope.week_start)))
        keys["week"] = f.day - (cast(extract("isodow", f.day), Integer) + offset) % 7
    if shape.monthly_key:
        keys["month"] = f.month
    if shape.tagged:
        keys["tag"] = f.tag_id
    return keys


def _keyed(scope: SummaryScope, dims: tuple[str, ...]) -> FromClause:
    """The facts with one key column per dimension of `dims` (`k_<dim>`) and the sums.

    Clients and teams are looked up after a first aggregation by project and user, so the
    joins see a few rows per project or user instead of every fact."""
    shape = _Shape.of(scope, dims)
    facts = _facts(scope, shape)
    direct = _direct_keys(scope, facts, shape)
    if not set(dims) & set(_SOURCE_DIMENSION):
        columns = [direct[dim].label(f"k_{dim}") for dim in dims]
        return select(*columns, *[facts.c[name] for name in SUMS]).subquery()
    needed = list(dict.fromkeys(_SOURCE_DIMENSION.get(dim, dim) for dim in dims))
    first = (
        select(*[direct[n].label(f"r_{n}") for n in needed], *_sums(facts))
        .group_by(*[direct[n] for n in needed])
        .subquery("by_project_and_user")
    )
    source: FromClause = first
    keys: dict[str, ColumnElement[Any]] = {n: first.c[f"r_{n}"] for n in needed}
    if "client" in dims:
        project = proj_projects.alias("fact_project")
        source = source.outerjoin(project, project.c.id == first.c.r_project)
        keys["client"] = project.c.client_id
    if "team" in dims:
        member = proj_team_members.alias("fact_team")
        on = and_(member.c.org_id == scope.org_id, member.c.user_id == first.c.r_user)
        source = source.outerjoin(member, on)
        keys["team"] = member.c.team_id
    columns = [keys[dim].label(f"k_{dim}") for dim in dims]
    return select(*columns, *[first.c[n] for n in SUMS]).select_from(source).subquery()


def _sums(source: FromClause) -> list[ColumnElement[Any]]:
    return [
        cast(func.coalesce(func.sum(source.c[name]), 0), BigInteger).label(name) for name in SUMS
    ]


def _level_selects(
    scope: SummaryScope, group_by: tuple[str, ...], levels: list[tuple[str, ...]], name: str
) -> list[Select[Any]]:
    """Selects of `levels`, prefixes of `group_by` that count each entry the same number of
    times: the deepest is aggregated from the facts (a CTE), the others re-aggregate its
    few rows instead of reading the facts again."""
    deepest = max(levels, key=len)
    keyed = _keyed(scope, deepest)
    keys = [keyed.c[f"k_{dim}"] for dim in deepest]
    grouped = select(*keys, *_sums(keyed)).select_from(keyed)
    if keys:
        # A group whose subtracted days cancel its monthly rows has no entry in the range.
        grouped = grouped.group_by(*keys).having(func.sum(keyed.c.entries) != 0)
    cte = grouped.cte(name)
    selects = []
    for level in sorted(levels, key=len, reverse=True):
        level_keys = [cte.c[f"k_{dim}"] for dim in level]
        columns = [
            cte.c[f"k_{dim}"] if dim in level else cast(null(), _KEY_TYPES[dim]).label(f"k_{dim}")
            for dim in group_by
        ]
        lvl = literal(len(level), Integer).label("lvl")
        if level == deepest:
            selects.append(select(*columns, lvl, *[cte.c[n] for n in SUMS]))
            continue
        statement = select(*columns, lvl, *_sums(cte))
        selects.append(statement.group_by(*level_keys) if level_keys else statement)
    return selects


def _multiplicity(level: tuple[str, ...]) -> tuple[bool, bool]:
    """How many times a level counts an entry: once per tag? once per team?"""
    return ("tag" in level, "team" in level)


def summary_statement(scope: SummaryScope, group_by: tuple[str, ...]) -> Select[Any]:
    """Every level of a summary (totals, outer groups, inner groups) in one statement: one
    aggregation of the facts per multiplicity, glued with UNION ALL, then the labels."""
    levels = [group_by[:n] for n in range(len(group_by), -1, -1)]
    by_kind: dict[tuple[bool, bool], list[tuple[str, ...]]] = {}
    for level in levels:
        by_kind.setdefault(_multiplicity(level), []).append(level)
    selects = [
        statement
        for index, same in enumerate(by_kind.values())
        for statement in _level_selects(scope, group_by, same, f"grouped_{index}")
    ]
    grouped = (selects[0] if len(selects) == 1 else union_all(*selects)).subquery("grouped")
    source: FromClause = grouped
    labels: list[ColumnElement[Any]] = []
    for dim in group_by:
        if dim in _LABELS:
            table, column = _LABELS[dim]
            alias = table.alias(f"label_{dim}")
            source = source.outerjoin(alias, alias.c.id == grouped.c[f"k_{dim}"])
            labels.append(alias.c[column].label(f"label_{dim}"))
    return select(grouped, *labels).select_from(source)


def summary_rows(
    session: ReadSession, scope: SummaryScope, group_by: tuple[str, ...]
) -> list[SummaryRow]:
    result = session.execute(summary_statement(scope, group_by))
    # Positions, looked up once: a year by user and day is a hundred thousand rows.
    names = list(result.keys())
    key_at = [names.index(f"k_{dim}") for dim in group_by]
    label_at = [names.index(f"label_{dim}") if dim in _LABELS else None for dim in group_by]
    level_at = names.index("lvl")
    sums_at = [(name, names.index(name)) for name in SUMS]
    return [
        SummaryRow(
            level,
            tuple(row[i] for i in key_at[:level]),
            tuple(None if i is None else row[i] for i in label_at[:level]),
            {name: row[i] for name, i in sums_at},
        )
        for row in result
        for level in (row[level_at],)
    ]


# --- Timesheet ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TimesheetCell:
    project_id: uuid.UUID | None
    project_name: str | None
    task_id: uuid.UUID | None
    task_name: str | None
    day: date
    seconds: int


def timesheet_cells(
    session: ReadSession, org_id: uuid.UUID, user_id: uuid.UUID, monday: date
) -> list[TimesheetCell]:
    """Finished seconds of one user per (project, task, day) over the 7 days from `monday`."""
    d = proj_daily_totals
    cells = (
        select(
            d.c.project_id,
            d.c.task_id,
            d.c.day,
            cast(func.sum(d.c.seconds), BigInteger).label("seconds"),
        )
        .where(
            d.c.org_id == org_id,
            d.c.user_id == user_id,
            d.c.day.between(monday, monday + timedelta(days=6)),
        )
        .group_by(d.c.project_id, d.c.task_id, d.c.day)
        .subquery("cells")
    )
    statement = select(
        cells, proj_projects.c.name.label("project_name"), proj_tasks.c.name.label("task_name")
    ).select_from(
        cells.outerjoin(proj_projects, proj_projects.c.id == cells.c.project_id).outerjoin(
            proj_tasks, proj_tasks.c.id == cells.c.task_id
        )
    )
    return [
        TimesheetCell(
            row.project_id, row.project_name, row.task_id, row.task_name, row.day, int(row.seconds)
        )
        for row in session.execute(statement)
    ]
