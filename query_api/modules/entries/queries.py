"""Reads of proj_entries and of the daily/monthly totals for the entry listings.

Pages walk ix_proj_entries_org_id_start_at_entry_id: `org_id = :org AND (start_at, entry_id)
< (:s, :id) ORDER BY start_at DESC, entry_id DESC LIMIT n + 1` (or the mirror image for the
oldest-first order), so a deep page costs what the first one costs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Subquery,
    Table,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    tuple_,
    union_all,
)

from projections.models import (
    proj_daily_project_totals,
    proj_daily_tag_totals,
    proj_daily_totals,
    proj_daily_user_totals,
    proj_entries,
    proj_monthly_project_totals,
    proj_monthly_tag_totals,
    proj_monthly_totals,
    proj_monthly_user_totals,
    proj_projects,
)
from query_api.modules.entries.dependencies import EntryQuery, Keyset, TimeEntrySort
from shared.db import ReadSession

e = proj_entries.c

# Rows fetched per round trip when streaming an export through a server-side cursor.
STREAM_BATCH_ROWS = 1000


@dataclass(frozen=True, slots=True)
class EntryRow:
    entry_id: uuid.UUID
    user_id: uuid.UUID
    user_name: str
    project_id: uuid.UUID | None
    project_name: str | None
    project_color: str | None
    client_id: uuid.UUID | None
    client_name: str | None
    task_id: uuid.UUID | None
    task_name: str | None
    tag_ids: list[uuid.UUID]
    tag_names: list[str]
    description: str
    start_at: datetime
    end_at: datetime | None
    duration_seconds: int | None
    billable: bool
    amount: int
    local_date: date
    version: int
    updated_at: datetime

    @property
    def keyset(self) -> Keyset:
        return Keyset(self.start_at, self.entry_id)

    def duration_at(self, now: datetime) -> int:
        """Finished: the stored duration. Running: whole seconds up to `now`."""
        if self.duration_seconds is not None:
            return self.duration_seconds
        return max(0, int((now - self.start_at).total_seconds()))


@dataclass(frozen=True)
class Totals:
    seconds: int = 0
    billable_seconds: int = 0
    amount: int = 0
    entries: int = 0


_ENTRY_COLUMNS = [proj_entries.c[name] for name in EntryRow.__dataclass_fields__]


def _utc_midnight(day: date, shift_days: int) -> datetime | None:
    try:
        return datetime.combine(day + timedelta(days=shift_days), time(), UTC)
    except OverflowError:
        return None


def _date_conditions(date_from: date | None, date_to: date | None) -> list[ColumnElement[bool]]:
    """Local dates, exactly; plus a start_at window one day wider on each side (no offset
    exceeds a day) so that the (org_id, start_at, entry_id) index bounds the scan."""
    conditions: list[ColumnElement[bool]] = []
    if date_from is not None:
        conditions.append(e.local_date >= date_from)
        lower = _utc_midnight(date_from, -1)
        if lower is not None:
            conditions.append(e.start_at >= lower)
    if date_to is not None:
        conditions.append(e.local_date <= date_to)
        upper = _utc_midnight(date_to, 2)
        if upper is not None:
            conditions.append(e.start_at < upper)
    return conditions


def entry_conditions(query: EntryQuery) -> list[ColumnElement[bool]]:
    """The WHERE clause of every entry read: organization, visibility and filters."""
    f = query.filters
    conditions: list[ColumnElement[bool]] = [e.org_id == query.org_id]
    conditions += _date_conditions(f.date_from, f.date_to)
    if query.users is not None:
        conditions.append(e.user_id.in_(sorted(query.users)) if query.users else false())
    for column, value in (
        (e.project_id, f.project_id),
        (e.client_id, f.client_id),
        (e.task_id, f.task_id),
        (e.billable, f.billable),
    ):
        if value is not None:
            conditions.append(column == value)
    if f.tag_id is not None:
        conditions.append(e.tag_ids.contains([f.tag_id]))  # GIN: tag_ids @> ARRAY[:tag]
    if query.running is not None:
        conditions.append(e.end_at.is_(None) if query.running else e.end_at.is_not(None))
    if query.search:
        conditions.append(e.description.icontains(query.search, autoescape=True))
    return conditions


def _ordered(query: EntryQuery, sort: TimeEntrySort, after: Keyset | None) -> Select[Any]:
    stmt = select(*_ENTRY_COLUMNS).where(*entry_conditions(query))
    key = tuple_(e.start_at, e.entry_id)
    if after is not None:
        position = tuple_(
            literal(after.start_at, e.start_at.type), literal(after.entry_id, e.entry_id.type)
        )
        stmt = stmt.where(key < position if sort.descending else key > position)
    if sort.descending:
        return stmt.order_by(e.start_at.desc(), e.entry_id.desc())
    return stmt.order_by(e.start_at.asc(), e.entry_id.asc())


def entries_by_id(
    session: ReadSession, org_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, EntryRow]:
    """The entries of `ids` that exist in the organization, by id (delta sync's pages)."""
    if not ids:
        return {}
    stmt = select(*_ENTRY_COLUMNS).where(e.org_id == org_id, e.entry_id.in_(list(ids)))
    return {row["entry_id"]: EntryRow(**row) for row in session.execute(stmt).mappings()}


def page_of_entries(
    session: ReadSession,
    query: EntryQuery,
    *,
    sort: TimeEntrySort,
    after: Keyset | None,
    offset: int,
    limit: int,
) -> list[EntryRow]:
    """`limit` entries in `sort` order, after the keyset `after` or past `offset` rows."""
    stmt = _ordered(query, sort, after).offset(offset or None).limit(limit)
    return [EntryRow(**row) for row in session.execute(stmt).mappings()]


def count_entries(session: ReadSession, query: EntryQuery, *, at_most: int | None = None) -> int:
    """How many entries match; with `at_most`, stop counting past it (`at_most + 1`).

    Without a search, the finished entries are counted by the roll-ups (their `entries`
    sums; an open end of the range reaches as far as entries can) and only the running
    timers row by row: a large organization's history is millions of entries, and the
    page's total must not cost a scan (the newest-first listing at 10M entries: 1.1 s)."""
    if at_most is None and not query.search:
        finished = 0
        if query.running is not True:
            finished = _from_totals(session, query, *_closed_range(query)).entries
        running = 0
        if query.running is not False:
            running_only = replace(query, running=True)
            stmt = select(func.count()).select_from(proj_entries)
            running = int(session.execute(stmt.where(*entry_conditions(running_only))).scalar_one())
        return finished + running
    if at_most is None:
        stmt = select(func.count()).select_from(proj_entries).where(*entry_conditions(query))
    else:
        matching = select(literal(1)).where(*entry_conditions(query)).limit(at_most + 1)
        stmt = select(func.count()).select_from(matching.subquery())
    return int(session.execute(stmt).scalar_one())


def stream_entries(
    session: ReadSession, query: EntryQuery, sort: TimeEntrySort
) -> Iterator[EntryRow]:
    """Every matching entry in `sort` order, read through a server-side cursor in batches
    (memory stays flat however many there are)."""
    stmt = _ordered(query, sort, None).execution_options(yield_per=STREAM_BATCH_ROWS)
    for row in session.execute(stmt).mappings():
        yield EntryRow(**row)


# --- Totals of the whole filtered range -----------------------------------------------------


def _sums(table: Table) -> list[ColumnElement[Any]]:
    return [table.c.seconds, table.c.billable_seconds, table.c.amount, table.c.entries]


def _bucket_conditions(table: Table, query: EntryQuery) -> list[ColumnElement[bool]]:
    f = query.filters
    c = table.c
    conditions: list[ColumnElement[bool]] = [c.org_id == query.org_id]
    if query.users is not None:
        conditions.append(c.user_id.in_(sorted(query.users)) if query.users else false())
    # By name: the coarser roll-ups have no column for a filter that is not set.
    for name, value in (("project_id", f.project_id), ("task_id", f.task_id)):
        if value is not None:
            conditions.append(c[name] == value)
    if f.billable is not None:
        conditions.append(c.billable == f.billable)
    if f.tag_id is not None:
        conditions.append(c.tag_id == f.tag_id)
    if f.client_id is not None:
        client_projects = select(proj_projects.c.id).where(
            proj_projects.c.org_id == query.org_id, proj_projects.c.client_id == f.client_id
        )
        conditions.append(c.project_id.in_(client_projects))
    return conditions


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _whole_months(date_from: date, date_to: date) -> tuple[date, date] | None:
    """[first, end): the first day of the first whole calendar month inside [from, to] and
    the first day after the last one; None when the range holds no whole month."""
    try:
        first = date_from if date_from.day == 1 else _next_month(date_from)
        after_to = date_to + timedelta(days=1)
    except OverflowError:  # the year 9999: no roll-ups there
        return None
    end = after_to if after_to.day == 1 else date_to.replace(day=1)
    return (first, end) if first < end else None


def _totals_tables(query: EntryQuery) -> tuple[Table, Table]:
    """The coarsest (daily, monthly) totals the filters allow: per project when the caller
    sees the whole organization and nothing narrows by task or tag, per user when nothing
    narrows by project, client, task or tag, else per bucket (per tag with a tag filter)."""
    f = query.filters
    if f.tag_id is not None:
        return proj_daily_tag_totals, proj_monthly_tag_totals
    if f.task_id is None and query.users is None:
        return proj_daily_project_totals, proj_monthly_project_totals
    if f.task_id is None and f.project_id is None and f.client_id is None:
        return proj_daily_user_totals, proj_monthly_user_totals
    return proj_daily_totals, proj_monthly_totals


def _rolled_up(query: EntryQuery, date_from: date, date_to: date) -> Subquery:
    """Bucket rows covering [from, to]: monthly roll-ups for the whole months inside the
    range, daily totals for the days around them (a year is ~12 rows per combination)."""
    daily, monthly = _totals_tables(query)
    months = _whole_months(date_from, date_to)
    if months is None:
        in_range = daily.c.day.between(date_from, date_to)
        return select(*_sums(daily)).where(in_range, *_bucket_conditions(daily, query)).subquery()
    first, end = months
    around_months = or_(
        and_(daily.c.day >= date_from, daily.c.day < first),
        and_(daily.c.day >= end, daily.c.day <= date_to),
    )
    return union_all(
        select(*_sums(daily)).where(around_months, *_bucket_conditions(daily, query)),
        select(*_sums(monthly)).where(
            monthly.c.month >= first, monthly.c.month < end, *_bucket_conditions(monthly, query)
        ),
    ).subquery()


def _from_totals(session: ReadSession, query: EntryQuery, date_from: date, date_to: date) -> Totals:
    buckets = _rolled_up(query, date_from, date_to)
    stmt = select(
        func.coalesce(func.sum(buckets.c.seconds), 0),
        func.coalesce(func.sum(buckets.c.billable_seconds), 0),
        func.coalesce(func.sum(buckets.c.amount), 0),
        func.coalesce(func.sum(buckets.c.entries), 0),
    )
    return Totals(*(int(v) for v in session.execute(stmt).one()))


def _from_entries(session: ReadSession, query: EntryQuery) -> Totals:
    billable_seconds = case((e.billable, e.duration_seconds), else_=0)
    stmt = select(
        func.coalesce(func.sum(e.duration_seconds), 0),
        func.coalesce(func.sum(billable_seconds), 0),
        func.coalesce(func.sum(e.amount), 0),
        func.count(),
    ).where(*entry_conditions(query), e.end_at.is_not(None))
    return Totals(*(int(v) for v in session.execute(stmt).one()))


def finished_totals(session: ReadSession, query: EntryQuery) -> Totals:
    """Totals of every finished entry the query covers (running timers never count).

    Read from the daily totals and monthly roll-ups whenever the filters allow it (they have
    no description and hold finished entries only); a search aggregates the entries."""
    if query.running:
        return Totals()
    if query.search:
        return _from_entries(session, query)
    return _from_totals(session, query, *_closed_range(query))


# The local days an entry can fall on, as whole months: instants are kept to 1970–2100
# UTC, and a zone moves the local day by at most a day either way.
_FIRST_MONTH = date(1969, 12, 1)
_LAST_DAY = date(2101, 1, 31)


def _closed_range(query: EntryQuery) -> tuple[date, date]:
    """The query's date range with an open end closed where no entry can be beyond it."""
    return query.filters.date_from or _FIRST_MONTH, query.filters.date_to or _LAST_DAY
