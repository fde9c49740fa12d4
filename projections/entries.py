"""The entries projection: the denormalized entries view, daily totals (plain and per tag,
an untagged entry under tag NULL), monthly roll-ups per bucket and per tag, daily and
monthly roll-ups per project and per project and tag (reports over a whole organization),
per-user daily and monthly roll-ups (reports by person and time), project and task stats,
and running timers.

A batch re-derives the entry rows it touched from the source of truth (the normalized
tables), and every total follows by the exact difference between those entries' old and
new rows (integer sums). Re-applying a change, applying changes out of order or twice,
all give the same rows; a rebuild runs the entries' source select without the key filter
and sums the totals from the entries. Only finished entries count in totals.

Every statement is built once, from the declared tables: `entries_source` (the entry rows,
labelled with proj_entries' column names) and `DERIVED` (each other table, the table it is
summed from, and how its buckets follow a batch's deltas).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Date,
    Delete,
    Executable,
    Insert,
    Integer,
    MetaData,
    Select,
    Subquery,
    Table,
    Text,
    Uuid,
    all_,
    and_,
    any_,
    bindparam,
    case,
    cast,
    column,
    delete,
    exists,
    extract,
    false,
    func,
    insert,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable
from sqlalchemy.types import UserDefinedType

from command_api.modules.organizations.models import Membership, Organization
from command_api.modules.projects.models import Client, Project, Tag, Task
from command_api.modules.time_entries.models import TimeEntry, TimeEntryTag
from command_api.modules.users.models import User
from projections.models import (
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
    proj_project_stats,
    proj_running_timers,
    proj_task_stats,
)
from projections.projection import (
    IDS,
    LIVE,
    ORGS,
    PRESERVE_ROWCOUNT,
    ChangeRow,
    Projection,
    RebuildPlan,
    Tables,
    among,
    fill,
)

# The normalized tables the entries derive from (read only).
time_entries = TimeEntry.__table__
time_entry_tags = TimeEntryTag.__table__
organizations = Organization.__table__
memberships = Membership.__table__
users = User.__table__
projects = Project.__table__
clients = Client.__table__
tasks = Task.__table__
tags = Tag.__table__

TOTALS = ("seconds", "billable_seconds", "amount", "entries")


def _names(rows: Select[Any]) -> list[str]:
    return [selected.name for selected in rows.selected_columns]


def _local_date(start_at: ColumnElement[Any], timezone: ColumnElement[Any]) -> ColumnElement[Any]:
    """The day an instant starts on in an IANA time zone (correct across DST changes)."""
    return cast(start_at.op("AT TIME ZONE")(timezone), Date)


# --- The entry rows ----------------------------------------------------------------------

# Whole seconds (floored), and the amount of API.md: round half up of seconds × rate / 3600.
_DURATION = cast(
    func.floor(extract("epoch", time_entries.c.end_at - time_entries.c.start_at)), BigInteger
)
_AMOUNT = case(
    (or_(time_entries.c.end_at.is_(None), not_(time_entries.c.billable)), 0),
    else_=(_DURATION * time_entries.c.hourly_rate_amount + 1800) // 3600,
)

# Which entries a statement derives: a condition on a key column, put on the entries and on
# their tags alike, so that the tags' aggregate reads only those entries' tags.
Keep = Callable[[ColumnElement[Any]], ColumnElement[bool]]
BY_ENTRY = (time_entries.c.id, time_entry_tags.c.entry_id)
BY_ORG = (time_entries.c.org_id, time_entry_tags.c.org_id)


def _tag_lists(keep: ColumnElement[bool] | None) -> Subquery:
    """Each tagged entry's tag ids and names, ordered by id so a rename never reorders them."""
    rows = (
        select(
            time_entry_tags.c.entry_id,
            func.array_agg(tags.c.id).aggregate_order_by(tags.c.id).label("tag_ids"),
            func.array_agg(cast(tags.c.name, Text))
            .aggregate_order_by(tags.c.id)
            .label("tag_names"),
        )
        .join_from(time_entry_tags, tags, tags.c.id == time_entry_tags.c.tag_id)
        .group_by(time_entry_tags.c.entry_id)
    )
    return (rows if keep is None else rows.where(keep)).subquery("tg")


def entries_source(
    keep: Keep | None = None,
    by: tuple[ColumnElement[Any], ColumnElement[Any]] = BY_ENTRY,
) -> Select[Any]:
    """proj_entries rows from the normalized tables, labelled with its column names: a new
    column of proj_entries is one more labelled column here. Live organizations only,
    deleted entries left out; `keep` picks entries `by` entry id or organization."""
    entry_key, tag_key = by
    tagged = _tag_lists(None if keep is None else keep(tag_key))
    entry = time_entries.c
    rows = (
        select(
            entry.id.label("entry_id"),
            entry.org_id,
            entry.user_id,
            users.c.full_name.label("user_name"),
            entry.project_id,
            projects.c.name.label("project_name"),
            projects.c.color.label("project_color"),
            projects.c.client_id,
            clients.c.name.label("client_name"),
            entry.task_id,
            tasks.c.name.label("task_name"),
            func.coalesce(tagged.c.tag_ids, cast(array([]), ARRAY(Uuid))).label("tag_ids"),
            func.coalesce(tagged.c.tag_names, cast(array([]), ARRAY(Text))).label("tag_names"),
            func.coalesce(entry.description, "").label("description"),
            entry.start_at,
            entry.end_at,
            case((entry.end_at.is_(None), null()), else_=_DURATION).label("duration_seconds"),
            entry.billable,
            entry.hourly_rate_amount,
            _AMOUNT.label("amount"),
            _local_date(entry.start_at, organizations.c.timezone).label("local_date"),
            entry.version,
            entry.updated_at,
        )
        .select_from(time_entries)
        .join(
            organizations,
            and_(organizations.c.id == entry.org_id, organizations.c.deleted_at.is_(None)),
        )
        .join(users, users.c.id == entry.user_id)
        .outerjoin(projects, projects.c.id == entry.project_id)
        .outerjoin(clients, clients.c.id == projects.c.client_id)
        .outerjoin(tasks, tasks.c.id == entry.task_id)
        .outerjoin(tagged, tagged.c.entry_id == entry.id)
        .where(entry.deleted_at.is_(None))
    )
    return rows if keep is None else rows.where(keep(entry_key))


def _every_column(rows: Select[Any]) -> Select[Any]:
    """The source select, checked to fill every column of proj_entries (the upsert sets
    them all: a column it forgot would be reset on every update)."""
    if set(_names(rows)) != set(proj_entries.c.keys()):
        raise RuntimeError(f"entries_source() labels {_names(rows)}, not proj_entries' columns")
    return rows


# --- Totals and what derives from them -----------------------------------------------------


def _each_tag(tag_ids: ColumnElement[Any]) -> ColumnElement[Any]:
    """One row per tag of an entry, and one with tag NULL for an untagged entry."""
    tags_or_none = case(
        (func.cardinality(tag_ids) == 0, cast(array([null()]), ARRAY(Uuid))), else_=tag_ids
    )
    return func.unnest(tags_or_none, type_=Uuid).column_valued("tag_id", joins_implicitly=True)


def _entry_bucket(table: Table, entries: Table) -> list[ColumnElement[Any]]:
    """`table`'s daily bucket (organization, local day, keys) of entry rows."""
    keys = table.info["keys"]
    return [
        entries.c.org_id,
        entries.c.local_date.label("day"),
        *(_each_tag(entries.c.tag_ids) if key == "tag_id" else entries.c[key] for key in keys),
    ]


def _bucket(table: Table, source: Table) -> list[ColumnElement[Any]]:
    """`table`'s bucket (organization, period, keys) of a finer totals table's rows: the same
    period, or days folded into months."""
    period = table.info["period"]
    if period in source.c:
        period_column: ColumnElement[Any] = source.c[period]
    else:
        period_column = cast(func.date_trunc("month", source.c.day), Date).label(period)
    return [source.c.org_id, period_column, *(source.c[key] for key in table.info["keys"])]


def _sums(source: Table) -> list[ColumnElement[Any]]:
    return [cast(func.sum(source.c[name]), BigInteger).label(name) for name in TOTALS]


def _from_entries(table: Table, entries: Table) -> Select[Any]:
    bucket = _entry_bucket(table, entries)
    billable_seconds = case((entries.c.billable, entries.c.duration_seconds), else_=0)
    return (
        select(
            *bucket,
            cast(func.sum(entries.c.duration_seconds), BigInteger).label("seconds"),
            cast(func.sum(billable_seconds), BigInteger).label("billable_seconds"),
            cast(func.sum(entries.c.amount), BigInteger).label("amount"),
            cast(func.count(), BigInteger).label("entries"),
        )
        .where(entries.c.end_at.is_not(None))
        .group_by(*bucket)
    )


def _rollup(table: Table, source: Table) -> Select[Any]:
    bucket = _bucket(table, source)
    return select(*bucket, *_sums(source)).group_by(*bucket)


def _project_stats(table: Table, monthly: Table) -> Select[Any]:
    return (
        select(monthly.c.project_id, monthly.c.org_id, *_sums(monthly))
        .where(monthly.c.project_id.is_not(None))
        .group_by(monthly.c.org_id, monthly.c.project_id)
    )


def _task_stats(table: Table, monthly: Table) -> Select[Any]:
    # A task belongs to one project: any of its rows names it.
    project_id = func.array_agg(monthly.c.project_id)[1].label("project_id")
    return (
        select(monthly.c.task_id, monthly.c.org_id, project_id, *_sums(monthly))
        .where(monthly.c.task_id.is_not(None))
        .group_by(monthly.c.org_id, monthly.c.task_id)
    )


def _running_timers(table: Table, entries: Table) -> Select[Any]:
    return select(
        entries.c.user_id, entries.c.entry_id, entries.c.org_id, entries.c.start_at
    ).where(entries.c.end_at.is_(None))


# The old (as they were, sign -1) and new (re-derived, sign +1) rows of a batch's entries,
# restricted to what totals and running timers depend on. Their signed sums are the exact
# change of every total: an entry whose old and new rows agree (a new description) cancels
# out and costs no total a write. Temporary tables of their own metadata: Alembic never
# sees them.
_TEMPORARY = MetaData()
_ENTRY_DELTA = Table(
    "evotrack_entry_delta",
    _TEMPORARY,
    Column("sign", Integer),
    Column("entry_id", Uuid),
    Column("org_id", Uuid),
    Column("local_date", Date),
    Column("user_id", Uuid),
    Column("project_id", Uuid),
    Column("task_id", Uuid),
    Column("billable", Boolean),
    Column("tag_ids", ARRAY(Uuid)),
    Column("running", Boolean),
    Column("duration_seconds", BigInteger),
    Column("amount", BigInteger),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)
# The batch's entry deltas summed per daily bucket (`tagged`: per tag, for the tag totals),
# which every totals table adds to its buckets.
_DAILY_DELTA = Table(
    "evotrack_daily_delta",
    _TEMPORARY,
    Column("tagged", Boolean),
    Column("org_id", Uuid),
    Column("day", Date),
    Column("user_id", Uuid),
    Column("project_id", Uuid),
    Column("task_id", Uuid),
    Column("billable", Boolean),
    Column("tag_id", Uuid),
    *(Column(name, BigInteger) for name in TOTALS),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)


def _delta_sums(deltas: Table) -> list[ColumnElement[Any]]:
    return [func.sum(deltas.c[name]).label(name) for name in TOTALS]


def _changed(deltas: Table) -> ColumnElement[bool]:
    """A bucket whose deltas cancel out is left alone."""
    names = ("entries", "seconds", "billable_seconds", "amount")
    return or_(*(func.sum(deltas.c[name]) != 0 for name in names))


def _tagged(table: Table) -> ColumnElement[bool]:
    tagged = "tag_id" in (table.info.get("keys") or ())
    return _DAILY_DELTA.c.tagged == (true() if tagged else false())


def _bucket_deltas(table: Table) -> Select[Any]:
    bucket = _bucket(table, _DAILY_DELTA)
    return (
        select(*bucket, *_delta_sums(_DAILY_DELTA))
        .where(_tagged(table))
        .group_by(*bucket)
        .having(_changed(_DAILY_DELTA))
    )


def _stat_deltas(*keys: str) -> Callable[[Table], Select[Any]]:
    """The deltas of stats keyed by `keys[0]` (a project or a task), with their other columns."""

    def deltas(table: Table) -> Select[Any]:
        columns = [_DAILY_DELTA.c[key] for key in keys]
        return (
            select(*columns, *_delta_sums(_DAILY_DELTA))
            .where(_tagged(table), columns[0].is_not(None))
            .group_by(*columns)
            .having(_changed(_DAILY_DELTA))
        )

    return deltas


@dataclass(frozen=True)
class Derived:
    """A table summed from one loaded before it: its rows from that table's rows (`rows`,
    for a rebuild or a whole organization), and the batch's daily deltas summed into its
    buckets (`deltas`, None for a table a batch re-derives otherwise)."""

    table: Table
    source: Table
    rows: Callable[[Table, Table], Select[Any]] = _rollup
    deltas: Callable[[Table], Select[Any]] | None = _bucket_deltas


# In dependency order: each reads a table made before it.
DERIVED = (
    Derived(proj_daily_totals, proj_entries, _from_entries),
    Derived(proj_daily_tag_totals, proj_entries, _from_entries),
    Derived(proj_monthly_totals, proj_daily_totals),
    Derived(proj_monthly_tag_totals, proj_daily_tag_totals),
    Derived(proj_monthly_project_totals, proj_monthly_totals),
    Derived(proj_daily_project_totals, proj_daily_totals),
    Derived(proj_daily_project_tag_totals, proj_daily_tag_totals),
    Derived(proj_daily_user_totals, proj_daily_totals),
    Derived(proj_monthly_user_totals, proj_monthly_totals),
    Derived(proj_monthly_project_tag_totals, proj_monthly_tag_totals),
    Derived(proj_monthly_org_tag_totals, proj_monthly_project_tag_totals),
    Derived(
        proj_project_stats,
        proj_monthly_totals,
        _project_stats,
        _stat_deltas("project_id", "org_id"),
    ),
    Derived(
        proj_task_stats,
        proj_monthly_totals,
        _task_stats,
        _stat_deltas("task_id", "org_id", "project_id"),
    ),
    Derived(proj_running_timers, proj_entries, _running_timers, None),
)
_DERIVED = {derived.table: derived for derived in DERIVED}
TABLES = (proj_entries, *_DERIVED)

# The entries load in parts by entry id, for parallel sessions on one snapshot: most of a
# rebuild's first seconds are this one statement, on one core. Parts by the id's last byte,
# which is random in uuid4 and UUIDv7 ids alike (ranges would put time-ordered ids in one
# part).
ENTRY_PARTS = 2


@functools.cache
def _load(t: Tables, table: Table, scoped: bool) -> Insert:
    if table is proj_entries:
        rows = entries_source(lambda key: among(key, ORGS), BY_ORG) if scoped else entries_source()
        return fill(t[table], rows)
    derived = _DERIVED[table]
    source = t[derived.source]
    rows = derived.rows(table, source)
    return fill(t[table], rows.where(among(source.c.org_id, ORGS)) if scoped else rows)


@functools.cache
def _load_part(t: Tables, index: int, parts: int) -> Insert:
    def in_part(key: ColumnElement[Any]) -> ColumnElement[bool]:
        return func.get_byte(func.uuid_send(key), 15, type_=Integer) % parts == index

    return fill(t[proj_entries], entries_source(in_part))


# --- Applying a batch ----------------------------------------------------------------------


def _delta_row(entries: Table) -> list[ColumnElement[Any]]:
    """What totals and running timers depend on, of an entry row (_ENTRY_DELTA's columns)."""
    entry = entries.c
    return [
        entry.entry_id,
        entry.org_id,
        entry.local_date,
        entry.user_id,
        entry.project_id,
        entry.task_id,
        entry.billable,
        entry.tag_ids,
        entry.end_at.is_(None).label("running"),
        entry.duration_seconds,
        entry.amount,
    ]


def _upsert_entries() -> Insert:
    """The batch's entry rows re-derived in place, their new delta rows (sign +1) kept.

    An upsert, so that a row whose indexed columns did not change (a new description,
    billable, a rename) is a heap-only update that writes none of the table's indexes (the
    table keeps room in its pages for that: ENTRIES_FILLFACTOR)."""
    rows = _every_column(entries_source(lambda key: among(key, IDS)))
    upsert = postgresql.insert(proj_entries).from_select(_names(rows), rows)
    upsert = upsert.on_conflict_do_update(
        index_elements=[proj_entries.c.entry_id],
        set_={c.name: upsert.excluded[c.name] for c in proj_entries.c if not c.primary_key},
    )
    new = upsert.returning(*_delta_row(proj_entries)).cte("new")
    return fill(_ENTRY_DELTA, select(literal(1).label("sign"), *new.c))


_CREATE_ENTRY_DELTA = CreateTable(_ENTRY_DELTA, if_not_exists=True)
# Rows of an earlier part of a batch split by apply_isolating_poison.
_CLEAR_ENTRY_DELTA = delete(_ENTRY_DELTA)
_OLD_ENTRIES = fill(
    _ENTRY_DELTA,
    select(literal(-1).label("sign"), *_delta_row(proj_entries)).where(
        among(proj_entries.c.entry_id, IDS)
    ),
)
_UPSERT_ENTRIES = _upsert_entries()
# The rows whose entry is gone (deleted, or its organization).
_DELETE_GONE_ENTRIES = delete(proj_entries).where(
    among(proj_entries.c.entry_id, IDS),
    proj_entries.c.entry_id.not_in(select(_ENTRY_DELTA.c.entry_id).where(_ENTRY_DELTA.c.sign == 1)),
)
# The users with a running timer before or after the batch.
_RUNNING_USERS = select(_ENTRY_DELTA.c.user_id).distinct().where(_ENTRY_DELTA.c.running)


def _refresh_projects() -> Executable:
    """Project and client names of the entries of projects in IDS, where they changed."""
    named = (
        select(
            projects.c.id,
            projects.c.org_id,
            projects.c.name.label("project_name"),
            projects.c.color.label("project_color"),
            projects.c.client_id,
            clients.c.name.label("client_name"),
        )
        .outerjoin_from(projects, clients, clients.c.id == projects.c.client_id)
        .where(among(projects.c.id, IDS))
        .subquery("p")
    )
    columns = ("project_name", "project_color", "client_id", "client_name")
    entry = proj_entries.c
    return (
        update(proj_entries)
        .values({name: named.c[name] for name in columns})
        .where(
            entry.org_id == named.c.org_id,
            entry.project_id == named.c.id,
            tuple_(*(entry[name] for name in columns)).is_distinct_from(
                tuple_(*(named.c[name] for name in columns))
            ),
        )
    )


def _refresh_tag_names() -> Executable:
    tag_id = func.unnest(proj_entries.c.tag_ids).table_valued("tid").alias("tid")
    names = (
        select(func.array_agg(cast(tags.c.name, Text)).aggregate_order_by(tags.c.id))
        .select_from(tag_id.join(tags, tags.c.id == tag_id.c.tid))
        .scalar_subquery()
    )
    return update(proj_entries).values(tag_names=names).where(proj_entries.c.tag_ids.overlap(IDS))


_CLIENTS_PROJECTS = select(projects.c.id).where(among(projects.c.client_id, IDS))
_REFRESH_PROJECT_NAMES = _refresh_projects()
_REFRESH_TASK_NAMES = (
    update(proj_entries)
    .values(task_name=tasks.c.name)
    .where(
        among(tasks.c.id, IDS),
        proj_entries.c.org_id == tasks.c.org_id,
        proj_entries.c.task_id == tasks.c.id,
        proj_entries.c.task_name.is_distinct_from(tasks.c.name),
    )
)
_REFRESH_TAG_NAMES = _refresh_tag_names()
_REFRESH_USER_NAMES = (
    update(proj_entries)
    .values(user_name=users.c.full_name)
    .where(
        among(users.c.id, IDS),
        memberships.c.user_id == users.c.id,
        proj_entries.c.org_id == memberships.c.org_id,
        proj_entries.c.user_id == users.c.id,
        proj_entries.c.user_name.is_distinct_from(users.c.full_name),
    )
)

# The organizations in IDS that are deleted (or were never there). The column is named
# org_id so that the inner query's `id` cannot capture it.
_org_id = func.unnest(IDS, type_=Uuid).column_valued("org_id")
_GONE_ORGS = select(_org_id).where(
    ~exists().where(organizations.c.id == _org_id, organizations.c.deleted_at.is_(None))
)
_DELETE_ORG_ENTRIES = delete(proj_entries).where(among(proj_entries.c.org_id, IDS))
# The organizations in IDS whose entries changed local day (a new time zone).
_local_dates = _local_date(proj_entries.c.start_at, organizations.c.timezone)
_MOVED = (
    update(proj_entries)
    .values(local_date=_local_dates)
    .where(
        among(organizations.c.id, IDS),
        proj_entries.c.org_id == organizations.c.id,
        proj_entries.c.local_date != _local_dates,
    )
    .returning(proj_entries.c.org_id)
    .cte("moved")
)
_MOVED_ORGS = select(_MOVED.c.org_id).distinct()


class _Tid(UserDefinedType[str]):
    """PostgreSQL's row address (`ctid`), which SQLAlchemy has no type for."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "TID"


# A row's physical address: a system column, never declared on a table.
_ctid = column("ctid", _Tid())
_ROWS = bindparam("rows", type_=ARRAY(_Tid()))


def _add_deltas(table: Table, rows: Select[Any]) -> Select[Any]:
    """Add the batch's deltas to `table`'s buckets; select the rows left empty."""
    # The stats' primary key, or the bucket's unique index (NULLs not distinct).
    conflict = list(table.primary_key) or [
        table.c.org_id,
        table.c[table.info["period"]],
        *(table.c[key] for key in table.info["keys"]),
    ]
    upsert = postgresql.insert(table).from_select(_names(rows), rows)
    upsert = upsert.on_conflict_do_update(
        index_elements=conflict,
        set_={name: table.c[name] + upsert.excluded[name] for name in TOTALS},
    )
    added = upsert.returning(_ctid, table.c.entries).cte("added")
    return select(cast(added.c.ctid, Text)).where(added.c.entries == 0)


_SKIP = bindparam("skip", type_=ARRAY(Uuid))


def _entry_deltas() -> Insert:
    """The batch's entry deltas summed per daily bucket, untagged and per tag. Only finished
    entries count; the organizations recomputed whole (`skip`) already are."""
    delta = _ENTRY_DELTA.c
    signed = {
        "seconds": func.sum(delta.sign * delta.duration_seconds),
        "billable_seconds": func.sum(
            case((delta.billable, delta.sign * delta.duration_seconds), else_=0)
        ),
        "amount": func.sum(delta.sign * delta.amount),
        "entries": func.sum(delta.sign),
    }
    changed = or_(signed["entries"] != 0, signed["seconds"] != 0, signed["amount"] != 0)

    def summed(table: Table, tagged: bool) -> Select[Any]:
        bucket = _entry_bucket(table, _ENTRY_DELTA)
        untagged = [] if tagged else [cast(null(), Uuid).label("tag_id")]
        return (
            select(
                (true() if tagged else false()).label("tagged"),
                *bucket,
                *untagged,
                *(total.label(name) for name, total in signed.items()),
            )
            .where(not_(delta.running), delta.org_id != all_(_SKIP))
            .group_by(*bucket)
            .having(changed)
        )

    untagged, tagged = summed(proj_daily_totals, False), summed(proj_daily_tag_totals, True)
    return insert(_DAILY_DELTA).from_select(_names(untagged), union_all(untagged, tagged))


_CREATE_DAILY_DELTA = CreateTable(_DAILY_DELTA, if_not_exists=True)
_CLEAR_DAILY_DELTA = delete(_DAILY_DELTA)
_ENTRY_DELTAS = _entry_deltas()
# For each table a batch's deltas change, in the order of TABLES: the statement adding them
# and selecting the rows it emptied, and the statement deleting those.
_DELTA_UPSERTS: tuple[tuple[Select[Any], Delete], ...] = tuple(
    (
        _add_deltas(derived.table, derived.deltas(derived.table)),
        delete(derived.table).where(_ctid == any_(_ROWS)),
    )
    for derived in DERIVED
    if derived.deltas is not None
)
_DELETE_TIMERS = delete(proj_running_timers).where(among(proj_running_timers.c.user_id, IDS))
_INSERT_TIMERS = fill(
    proj_running_timers,
    _running_timers(proj_running_timers, proj_entries).where(among(proj_entries.c.user_id, IDS)),
)
# A whole organization's totals: emptied, then summed from its entries again.
_DELETE_ORG_ROWS = tuple(
    delete(derived.table).where(among(derived.table.c.org_id, ORGS)) for derived in DERIVED
)


@dataclass
class Touched:
    """What a batch of changes touched."""

    entry_ids: set[uuid.UUID] = field(default_factory=set)
    project_ids: set[uuid.UUID] = field(default_factory=set)
    client_ids: set[uuid.UUID] = field(default_factory=set)
    task_ids: set[uuid.UUID] = field(default_factory=set)
    tag_ids: set[uuid.UUID] = field(default_factory=set)
    user_ids: set[uuid.UUID] = field(default_factory=set)
    org_ids: set[uuid.UUID] = field(default_factory=set)

    @classmethod
    def of(cls, changes: Iterable[ChangeRow]) -> Touched:
        touched = cls()
        by_entity = {
            "time_entry": touched.entry_ids,
            "project": touched.project_ids,
            "client": touched.client_ids,
            "task": touched.task_ids,
            "tag": touched.tag_ids,
            "user": touched.user_ids,
            "organization": touched.org_ids,
        }
        for change in changes:
            target = by_entity.get(change.entity)
            if target is not None:
                target.add(uuid.UUID(str(change.entity_id)))
        return touched


@dataclass
class Buckets:
    """What the totals must follow: the entry rows a batch re-derived (their old and new
    rows are in evotrack_entry_delta), users' running timers, whole organizations."""

    entries_rederived: bool = False
    users: set[uuid.UUID] = field(default_factory=set)
    whole_orgs: set[uuid.UUID] = field(default_factory=set)


class EntriesProjection(Projection):
    name = "entries"
    tables = TABLES
    plan = RebuildPlan(
        # Once the entries are in: the totals and what derives from them, and the tag
        # totals and what derives from those (each lane in dependency order).
        lanes=(
            (
                proj_daily_totals,
                proj_monthly_totals,
                proj_monthly_project_totals,
                proj_daily_project_totals,
                proj_daily_user_totals,
                proj_monthly_user_totals,
                proj_project_stats,
                proj_task_stats,
                proj_running_timers,
            ),
            (
                proj_daily_tag_totals,
                proj_monthly_tag_totals,
                proj_daily_project_tag_totals,
                proj_monthly_project_tag_totals,
                proj_monthly_org_tag_totals,
            ),
        ),
        first_parts=ENTRY_PARTS,
        # The detailed report and the dashboard read the roll-ups before the entries.
        read_order=(*TABLES[1:], TABLES[0]),
    )

    def load(self, t: Tables, table: Table, *, scoped: bool = False) -> Executable:
        return _load(t, table, scoped)

    def load_part(self, t: Tables, index: int, parts: int) -> Executable:
        return _load_part(t, index, parts)

    def apply(self, session: Session, changes: Sequence[ChangeRow]) -> None:
        touched = Touched.of(changes)
        buckets = Buckets()
        if touched.entry_ids:
            _rederive_entries(session, touched.entry_ids, buckets)
        _refresh_names(session, touched)
        if touched.org_ids:
            _refresh_organizations(session, touched.org_ids, buckets)
        recompute_totals(session, buckets)


def _create_temporary(session: Session, table: CreateTable) -> None:
    connection = session.connection()
    connection.exec_driver_sql(_compiled_ddl(table, connection.dialect))


# SQLAlchemy compiles DDL on every execution (its statement cache skips DDL): once here.
@functools.cache
def _compiled_ddl(table: CreateTable, dialect: Dialect) -> str:
    return str(table.compile(dialect=dialect))


def _rederive_entries(session: Session, ids: set[uuid.UUID], buckets: Buckets) -> None:
    """The entries' rows as they were, then re-derived in place; then the gone ones deleted."""
    params = {"ids": list(ids)}
    _create_temporary(session, _CREATE_ENTRY_DELTA)
    session.execute(_CLEAR_ENTRY_DELTA)
    session.execute(_OLD_ENTRIES, params)
    session.execute(_UPSERT_ENTRIES, params)
    session.execute(_DELETE_GONE_ENTRIES, params)
    buckets.entries_rederived = True
    buckets.users.update(session.execute(_RUNNING_USERS).scalars())


def _refresh_names(session: Session, touched: Touched) -> None:
    """Renames change display names only; totals are keyed by ids."""
    if touched.client_ids:
        projects_of_clients = session.execute(_CLIENTS_PROJECTS, {"ids": list(touched.client_ids)})
        touched.project_ids.update(projects_of_clients.scalars())
    refreshes = (
        (touched.project_ids, _REFRESH_PROJECT_NAMES),
        (touched.task_ids, _REFRESH_TASK_NAMES),
        (touched.tag_ids, _REFRESH_TAG_NAMES),
        (touched.user_ids, _REFRESH_USER_NAMES),
    )
    for ids, statement in refreshes:
        if ids:
            session.execute(statement, {"ids": list(ids)})


def _refresh_organizations(session: Session, org_ids: set[uuid.UUID], buckets: Buckets) -> None:
    """A deleted organization leaves the read side; a new time zone moves local days."""
    params = {"ids": list(org_ids)}
    gone = set(session.execute(_GONE_ORGS, params).scalars())
    if gone:
        session.execute(_DELETE_ORG_ENTRIES, {"ids": list(gone)})
        buckets.whole_orgs.update(gone)
    buckets.whole_orgs.update(session.execute(_MOVED_ORGS, params).scalars())


def recompute_totals(session: Session, buckets: Buckets) -> None:
    """Bring every total a batch touched up to date with the entry rows."""
    if buckets.whole_orgs:
        _recompute_whole_orgs(session, buckets.whole_orgs)
    if buckets.entries_rederived:
        _add_entry_deltas(session, buckets.whole_orgs)
    if buckets.users:
        params = {"ids": list(buckets.users)}
        session.execute(_DELETE_TIMERS, params)
        session.execute(_INSERT_TIMERS, params)


def _recompute_whole_orgs(session: Session, org_ids: set[uuid.UUID]) -> None:
    params = {"orgs": list(org_ids)}
    for statement in _DELETE_ORG_ROWS:
        session.execute(statement, params)
    for table in TABLES[1:]:  # all but the entries
        session.execute(_load(LIVE, table, True), params)


# Every total follows the entry rows by exact integer deltas, in the transaction that
# re-derives them: the batch's old and new entry rows, summed per daily bucket, are added
# to the daily totals, and the same daily deltas to every coarser roll-up and the stats.
# Re-applying a change yields a zero delta; a rebuild (which sums the entries, then the
# daily rows) gives the same rows.
def _add_entry_deltas(session: Session, skip_orgs: set[uuid.UUID]) -> None:
    _create_temporary(session, _CREATE_DAILY_DELTA)
    session.execute(_CLEAR_DAILY_DELTA)
    added = session.execute(
        _ENTRY_DELTAS, {"skip": list(skip_orgs)}, execution_options=PRESERVE_ROWCOUNT
    )
    if not getattr(added, "rowcount", 0):
        return  # nothing that counts changed
    for add, delete_emptied in _DELTA_UPSERTS:
        # A bucket whose last entry left it is deleted; no other row can have become empty.
        emptied = session.execute(add).scalars().all()
        if emptied:
            session.execute(delete_emptied, {"rows": list(emptied)})
