"""The entries projection: the denormalized entries view, daily totals (plain and per tag,
an untagged entry under tag NULL), monthly roll-ups per bucket and per tag, daily and
monthly roll-ups per project and per project and tag (reports over a whole organization),
per-user daily and monthly roll-ups (reports by person and time), project and task stats,
and running timers.

A batch re-derives the entry rows it touched from the source of truth (the normalized
tables), and every total follows by the exact difference between those entries' old and
new rows (integer sums). Re-applying a change, applying changes out of order or twice,
all give the same rows; a rebuild runs the entry SQL without the key filter and sums the
totals from the entries. Only finished entries count in totals.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Table, text
from sqlalchemy.orm import Session

from projections import models
from projections.runner import ChangeRow

NAME = "entries"

# Whole seconds (floored), and the amount of API.md: round half up of seconds × rate / 3600.
_DURATION = "FLOOR(EXTRACT(EPOCH FROM (e.end_at - e.start_at)))::bigint"
_AMOUNT = (
    f"CASE WHEN e.end_at IS NULL OR NOT e.billable THEN 0"
    f" ELSE ({_DURATION} * e.hourly_rate_amount + 1800) / 3600 END"
)


def entries_source(where: str, tag_where: str = "") -> str:
    """SELECT of proj_entries rows from the normalized tables. Tags are ordered by id so a
    rename never reorders them."""
    return f"""
        SELECT e.id, e.org_id, e.user_id, u.full_name,
               e.project_id, p.name, p.color, p.client_id, c.name,
               e.task_id, t.name,
               COALESCE(tg.tag_ids, '{{}}'), COALESCE(tg.tag_names, '{{}}'),
               COALESCE(e.description, ''), e.start_at, e.end_at,
               CASE WHEN e.end_at IS NULL THEN NULL ELSE {_DURATION} END,
               e.billable, e.hourly_rate_amount, {_AMOUNT},
               (e.start_at AT TIME ZONE o.timezone)::date
        FROM time_entries e
        JOIN organizations o ON o.id = e.org_id AND o.deleted_at IS NULL
        JOIN users u ON u.id = e.user_id
        LEFT JOIN projects p ON p.id = e.project_id
        LEFT JOIN clients c ON c.id = p.client_id
        LEFT JOIN tasks t ON t.id = e.task_id
        LEFT JOIN (
            SELECT et.entry_id,
                   array_agg(tag.id ORDER BY tag.id) AS tag_ids,
                   array_agg(tag.name::text ORDER BY tag.id) AS tag_names
            FROM time_entry_tags et JOIN tags tag ON tag.id = et.tag_id
            WHERE true {tag_where}
            GROUP BY et.entry_id
        ) tg ON tg.entry_id = e.id
        WHERE e.deleted_at IS NULL {where}
    """


_ENTRY_COLUMNS = (
    "entry_id, org_id, user_id, user_name, project_id, project_name, project_color,"
    " client_id, client_name, task_id, task_name, tag_ids, tag_names, description,"
    " start_at, end_at, duration_seconds, billable, hourly_rate_amount, amount, local_date"
)
_SUMS = (
    "SUM(seconds)::bigint, SUM(billable_seconds)::bigint, SUM(amount)::bigint, SUM(entries)::bigint"
)
_ENTRY_SUMS = (
    "SUM(duration_seconds)::bigint,"
    " SUM(CASE WHEN billable THEN duration_seconds ELSE 0 END)::bigint,"
    " SUM(amount)::bigint, COUNT(*)::bigint"
)
_TOTALS = "seconds, billable_seconds, amount, entries"
_MONTH_OF_DAY = "date_trunc('month', day)::date AS month"


@dataclass(frozen=True)
class Tables:
    """The physical tables a statement writes: live ones, or a rebuild's new ones."""

    suffix: str = ""

    def __getattr__(self, name: str) -> str:
        return f"proj_{name}{self.suffix}"


LIVE = Tables()


def insert_entries(t: Tables, where: str = "", tag_where: str = "") -> str:
    return f"INSERT INTO {t.entries} ({_ENTRY_COLUMNS}) {entries_source(where, tag_where)}"


def insert_daily(t: Tables, where: str = "") -> str:
    return f"""
        INSERT INTO {t.daily_totals}
            (org_id, day, user_id, project_id, task_id, billable, {_TOTALS})
        SELECT org_id, local_date, user_id, project_id, task_id, billable, {_ENTRY_SUMS}
        FROM {t.entries} WHERE end_at IS NOT NULL {where}
        GROUP BY org_id, local_date, user_id, project_id, task_id, billable
    """


def insert_daily_tags(t: Tables, where: str = "") -> str:
    return f"""
        INSERT INTO {t.daily_tag_totals}
            (org_id, day, user_id, project_id, task_id, billable, tag_id, {_TOTALS})
        SELECT org_id, local_date, user_id, project_id, task_id, billable, tag_id, {_ENTRY_SUMS}
        FROM {t.entries} CROSS JOIN LATERAL unnest(
            CASE WHEN cardinality(tag_ids) = 0 THEN ARRAY[NULL]::uuid[] ELSE tag_ids END
        ) AS tag_id
        WHERE end_at IS NOT NULL {where}
        GROUP BY org_id, local_date, user_id, project_id, task_id, billable, tag_id
    """


def insert_monthly(t: Tables, where: str = "") -> str:
    return f"""
        INSERT INTO {t.monthly_totals}
            (org_id, month, user_id, project_id, task_id, billable, {_TOTALS})
        SELECT org_id, {_MONTH_OF_DAY}, user_id, project_id, task_id,
               billable, {_SUMS}
        FROM {t.daily_totals} WHERE true {where}
        GROUP BY org_id, month, user_id, project_id, task_id, billable
    """


def insert_monthly_tags(t: Tables, where: str = "") -> str:
    return f"""
        INSERT INTO {t.monthly_tag_totals}
            (org_id, month, user_id, project_id, task_id, billable, tag_id, {_TOTALS})
        SELECT org_id, {_MONTH_OF_DAY}, user_id, project_id, task_id,
               billable, tag_id, {_SUMS}
        FROM {t.daily_tag_totals} WHERE true {where}
        GROUP BY org_id, month, user_id, project_id, task_id, billable, tag_id
    """


@dataclass(frozen=True)
class Rollup:
    """A coarser roll-up of a totals table: the same period (day or month) and sums, fewer
    key columns (both as the table declares them). One definition gives its rebuild
    statement and its delta upsert."""

    table: Table
    source: str  # the totals table it sums, as a Tables attribute

    @property
    def name(self) -> str:
        return self.table.name.removeprefix("proj_")

    @property
    def columns(self) -> str:
        return ", ".join(("org_id", self.table.info["period"], *self.table.info["keys"]))

    def insert(self, t: Tables, where: str = "") -> str:
        return f"""
            INSERT INTO {getattr(t, self.name)} ({self.columns}, {_TOTALS})
            SELECT {self.columns}, {_SUMS} FROM {getattr(t, self.source)} WHERE true {where}
            GROUP BY {self.columns}
        """

    def add_deltas(self) -> str:
        keys = self.table.info["keys"]
        period = "day" if self.table.info["period"] == "day" else _MONTH_OF_DAY
        selected = ", ".join(("org_id", period, *keys))
        return _add_deltas(self.table.name, self.columns, selected, tagged="tag_id" in keys)


# In dependency order: each reads a table made before it.
ROLLUPS = (
    Rollup(models.proj_monthly_project_totals, "monthly_totals"),
    Rollup(models.proj_daily_project_totals, "daily_totals"),
    Rollup(models.proj_daily_project_tag_totals, "daily_tag_totals"),
    Rollup(models.proj_daily_user_totals, "daily_totals"),
    Rollup(models.proj_monthly_user_totals, "monthly_totals"),
    Rollup(models.proj_monthly_project_tag_totals, "monthly_tag_totals"),
    Rollup(models.proj_monthly_org_tag_totals, "monthly_project_tag_totals"),
)


def insert_project_stats(t: Tables, where: str = "") -> str:
    return f"""
        INSERT INTO {t.project_stats} (project_id, org_id, {_TOTALS})
        SELECT project_id, org_id, {_SUMS} FROM {t.monthly_totals}
        WHERE project_id IS NOT NULL {where} GROUP BY org_id, project_id
    """


def insert_task_stats(t: Tables, where: str = "") -> str:
    return f"""
        INSERT INTO {t.task_stats} (task_id, org_id, project_id, {_TOTALS})
        SELECT task_id, org_id, (array_agg(project_id))[1], {_SUMS} FROM {t.monthly_totals}
        WHERE task_id IS NOT NULL {where} GROUP BY org_id, task_id
    """


def insert_running_timers(t: Tables, where: str = "") -> str:
    return f"""
        INSERT INTO {t.running_timers} (user_id, entry_id, org_id, start_at)
        SELECT user_id, entry_id, org_id, start_at FROM {t.entries}
        WHERE end_at IS NULL {where}
    """


# The full rebuild, in dependency order.
def rebuild_statements(t: Tables, *, scoped: bool = False) -> list[str]:
    """The full rebuild; `scoped` limits it to the organizations in `:orgs`."""
    where = "AND org_id = ANY(:orgs)" if scoped else ""
    return [
        insert_entries(t, "AND e.org_id = ANY(:orgs)", "AND et.org_id = ANY(:orgs)")
        if scoped
        else insert_entries(t),
        insert_daily(t, where),
        insert_daily_tags(t, where),
        insert_monthly(t, where),
        insert_monthly_tags(t, where),
        *(rollup.insert(t, where) for rollup in ROLLUPS),
        insert_project_stats(t, where),
        insert_task_stats(t, where),
        insert_running_timers(t, where),
    ]


# The entries load in parts by entry id, for parallel sessions on one snapshot: most of a
# rebuild's first seconds are this one statement, on one core. Parts by the id's last byte,
# which is random in uuid4 and UUIDv7 ids alike (ranges would put time-ordered ids in one
# part).
ENTRY_PARTS = 2


def entries_parts(t: Tables, parts: int = ENTRY_PARTS) -> list[str]:
    """The full load of `t.entries` as `parts` statements over disjoint sets of ids."""

    def part(column: str, index: int) -> str:
        return f" AND get_byte(uuid_send({column}), 15) % {parts} = {index}"

    return [
        insert_entries(t, part("e.id", index), part("et.entry_id", index)) for index in range(parts)
    ]


# Rows of each table that belong to the organizations in `:orgs` (for scoped verify).
SCOPE_PREDICATES = {"entries": "org_id = ANY(:orgs)"}


TABLES = (
    "entries",
    "daily_totals",
    "daily_tag_totals",
    "monthly_totals",
    "monthly_tag_totals",
    "monthly_project_totals",
    "daily_project_totals",
    "daily_project_tag_totals",
    "daily_user_totals",
    "monthly_user_totals",
    "monthly_project_tag_totals",
    "monthly_org_tag_totals",
    "project_stats",
    "task_stats",
    "running_timers",
)

# What a rebuild may load in parallel once the entries are in: the totals and what derives
# from them, and the tag totals and what derives from those (each lane in dependency order).
LANES = (
    (
        "daily_totals",
        "monthly_totals",
        "monthly_project_totals",
        "daily_project_totals",
        "daily_user_totals",
        "monthly_user_totals",
        "project_stats",
        "task_stats",
        "running_timers",
    ),
    (
        "daily_tag_totals",
        "monthly_tag_totals",
        "daily_project_tag_totals",
        "monthly_project_tag_totals",
        "monthly_org_tag_totals",
    ),
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


# The old (as they were, sign -1) and new (re-derived, sign +1) rows of the batch's entries,
# restricted to what totals and running timers depend on. Their signed sums are the exact
# change of every total: an entry whose old and new rows agree (a new description) cancels
# out and costs no total a write.
_ENTRY_DELTA_TABLE = """
    CREATE TEMP TABLE IF NOT EXISTS evotrack_entry_delta (
        sign int, entry_id uuid, org_id uuid, local_date date, user_id uuid, project_id uuid,
        task_id uuid, billable boolean, tag_ids uuid[], running boolean,
        duration_seconds bigint, amount bigint
    ) ON COMMIT DELETE ROWS
"""
_ENTRY_DELTA_COLUMNS = (
    "entry_id, org_id, local_date, user_id, project_id, task_id, billable, tag_ids,"
    " end_at IS NULL, duration_seconds, amount"
)
# The batch's entry rows as they were (sign -1), then re-derived in place (sign +1): an
# upsert, so that a row whose indexed columns did not change (a new description, billable,
# a rename) is a heap-only update that writes none of the table's eight indexes (the table
# keeps room in its pages for that: ENTRIES_FILLFACTOR). A DELETE and a fresh INSERT wrote
# every index for every row: twice the time for a batch of edits. Then the rows whose
# entry is gone (deleted, or its organization) are deleted.
_OLD_ENTRIES = f"""
    INSERT INTO evotrack_entry_delta
    SELECT -1, {_ENTRY_DELTA_COLUMNS} FROM proj_entries WHERE entry_id = ANY(:ids)
"""
_UPDATED = ", ".join(
    f"{column} = EXCLUDED.{column}"
    for column in (name.strip() for name in _ENTRY_COLUMNS.split(","))
    if column != "entry_id"
)
_UPSERT_ENTRIES = f"""
    WITH new AS (
        {insert_entries(LIVE, "AND e.id = ANY(:ids)", "AND et.entry_id = ANY(:ids)")}
        ON CONFLICT (entry_id) DO UPDATE SET {_UPDATED}
        RETURNING {_ENTRY_DELTA_COLUMNS})
    INSERT INTO evotrack_entry_delta SELECT 1, * FROM new
"""
_DELETE_GONE_ENTRIES = """
    DELETE FROM proj_entries WHERE entry_id = ANY(:ids) AND entry_id NOT IN (
        SELECT entry_id FROM evotrack_entry_delta WHERE sign = 1)
"""
# The users with a running timer before or after the batch.
_RUNNING_USERS = "SELECT DISTINCT user_id FROM evotrack_entry_delta WHERE running"


class EntriesProjector:
    name = NAME

    def apply(self, session: Session, changes: Sequence[ChangeRow]) -> None:
        touched = Touched.of(changes)
        buckets = Buckets()
        if touched.entry_ids:
            self._rederive_entries(session, touched.entry_ids, buckets)
        self._refresh_names(session, touched)
        if touched.org_ids:
            self._refresh_organizations(session, touched.org_ids, buckets)
        recompute_totals(session, buckets)

    def _rederive_entries(self, session: Session, ids: set[uuid.UUID], buckets: Buckets) -> None:
        params = {"ids": list(ids)}
        session.execute(text(_ENTRY_DELTA_TABLE))
        # Rows of an earlier part of a batch split by apply_isolating_poison.
        session.execute(text("DELETE FROM evotrack_entry_delta"))
        session.execute(text(_OLD_ENTRIES), params)
        session.execute(text(_UPSERT_ENTRIES), params)
        session.execute(text(_DELETE_GONE_ENTRIES), params)
        buckets.entries_rederived = True
        buckets.users.update(session.execute(text(_RUNNING_USERS)).scalars())

    def _refresh_names(self, session: Session, touched: Touched) -> None:
        """Renames change display names only; totals are keyed by ids."""
        if touched.client_ids:
            project_ids = session.execute(
                text("SELECT id FROM projects WHERE client_id = ANY(:ids)"),
                {"ids": list(touched.client_ids)},
            ).scalars()
            touched.project_ids.update(project_ids)
        if touched.project_ids:
            session.execute(text(_UPDATE_PROJECT_NAMES), {"ids": list(touched.project_ids)})
        if touched.task_ids:
            session.execute(text(_UPDATE_TASK_NAMES), {"ids": list(touched.task_ids)})
        if touched.tag_ids:
            session.execute(text(_UPDATE_TAG_NAMES), {"ids": list(touched.tag_ids)})
        if touched.user_ids:
            session.execute(text(_UPDATE_USER_NAMES), {"ids": list(touched.user_ids)})

    def _refresh_organizations(
        self, session: Session, org_ids: set[uuid.UUID], buckets: Buckets
    ) -> None:
        """A deleted organization leaves the read side; a new time zone moves local days."""
        params = {"ids": list(org_ids)}
        gone = set(
            session.execute(
                text(
                    "SELECT id FROM unnest(CAST(:ids AS uuid[])) AS id WHERE NOT EXISTS ("
                    " SELECT 1 FROM organizations o WHERE o.id = id AND o.deleted_at IS NULL)"
                ),
                params,
            ).scalars()
        )
        if gone:
            session.execute(
                text("DELETE FROM proj_entries WHERE org_id = ANY(:ids)"), {"ids": list(gone)}
            )
            buckets.whole_orgs.update(gone)
        moved = session.execute(text(_UPDATE_LOCAL_DATES), params).scalars().all()
        buckets.whole_orgs.update(moved)


_UPDATE_PROJECT_NAMES = """
    UPDATE proj_entries e
    SET project_name = p.name, project_color = p.color, client_id = p.client_id,
        client_name = c.name
    FROM projects p LEFT JOIN clients c ON c.id = p.client_id
    WHERE p.id = ANY(:ids) AND e.org_id = p.org_id AND e.project_id = p.id
      AND (e.project_name, e.project_color, e.client_id, e.client_name)
          IS DISTINCT FROM (p.name, p.color, p.client_id, c.name)
"""
_UPDATE_TASK_NAMES = """
    UPDATE proj_entries e SET task_name = t.name FROM tasks t
    WHERE t.id = ANY(:ids) AND e.org_id = t.org_id AND e.task_id = t.id
      AND e.task_name IS DISTINCT FROM t.name
"""
_UPDATE_TAG_NAMES = """
    UPDATE proj_entries e
    SET tag_names = (
        SELECT array_agg(tag.name::text ORDER BY tag.id)
        FROM unnest(e.tag_ids) AS tid JOIN tags tag ON tag.id = tid)
    WHERE e.tag_ids && CAST(:ids AS uuid[])
"""
_UPDATE_USER_NAMES = """
    UPDATE proj_entries e SET user_name = u.full_name
    FROM users u JOIN memberships m ON m.user_id = u.id
    WHERE u.id = ANY(:ids) AND e.org_id = m.org_id AND e.user_id = u.id
      AND e.user_name IS DISTINCT FROM u.full_name
"""
_UPDATE_LOCAL_DATES = """
    WITH moved AS (
        UPDATE proj_entries e SET local_date = (e.start_at AT TIME ZONE o.timezone)::date
        FROM organizations o
        WHERE o.id = ANY(:ids) AND e.org_id = o.id
          AND e.local_date <> (e.start_at AT TIME ZONE o.timezone)::date
        RETURNING e.org_id)
    SELECT DISTINCT org_id FROM moved
"""


def _delete_where(session: Session, table: str, where: str, params: Mapping[str, object]) -> None:
    session.execute(text(f"DELETE FROM {table} WHERE {where}"), params)


def recompute_totals(session: Session, buckets: Buckets) -> None:
    """Bring every total a batch touched up to date with the entry rows."""
    if buckets.whole_orgs:
        _recompute_whole_orgs(session, buckets.whole_orgs)
    if buckets.entries_rederived:
        _add_entry_deltas(session, buckets.whole_orgs)
    if buckets.users:
        params: dict[str, object] = {"users": list(buckets.users)}
        _delete_where(session, "proj_running_timers", "user_id = ANY(:users)", params)
        session.execute(text(insert_running_timers(LIVE, "AND user_id = ANY(:users)")), params)


def _recompute_whole_orgs(session: Session, org_ids: set[uuid.UUID]) -> None:
    params: dict[str, object] = {"orgs": list(org_ids)}
    for table in TABLES[1:]:
        _delete_where(session, f"proj_{table}", "org_id = ANY(:orgs)", params)
    for statement in rebuild_statements(LIVE, scoped=True)[1:]:  # all but the entries
        session.execute(text(statement), params)


# Every total follows the entry rows by exact integer deltas, in the transaction that
# re-derives them: the batch's old and new entry rows, summed per daily bucket, are added
# to the daily totals, and the same daily deltas to every coarser roll-up and the stats.
# Re-applying a change yields a zero delta; a rebuild (which sums the entries, then the
# daily rows) gives the same rows.
_DELTA_TABLE = """
    CREATE TEMP TABLE IF NOT EXISTS evotrack_daily_delta (
        tagged boolean, org_id uuid, day date, user_id uuid, project_id uuid, task_id uuid,
        billable boolean, tag_id uuid, seconds bigint, billable_seconds bigint,
        amount bigint, entries bigint
    ) ON COMMIT DELETE ROWS
"""
_DAILY_COLUMNS = "org_id, day, user_id, project_id, task_id, billable"
_SIGNED_SUMS = (
    "SUM(sign * duration_seconds), SUM(CASE WHEN billable THEN sign * duration_seconds"
    " ELSE 0 END), SUM(sign * amount), SUM(sign)"
)
_NONZERO = "HAVING SUM(sign) <> 0 OR SUM(sign * duration_seconds) <> 0 OR SUM(sign * amount) <> 0"
# Only finished entries count; the organizations recomputed whole (`:skip`) already are.
_ENTRY_DELTAS = f"""
    INSERT INTO evotrack_daily_delta
    SELECT false, org_id, local_date, user_id, project_id, task_id, billable, NULL::uuid,
           {_SIGNED_SUMS}
    FROM evotrack_entry_delta WHERE NOT running AND org_id <> ALL(CAST(:skip AS uuid[]))
    GROUP BY org_id, local_date, user_id, project_id, task_id, billable
    {_NONZERO}
    UNION ALL
    SELECT true, org_id, local_date, user_id, project_id, task_id, billable, tag_id,
           {_SIGNED_SUMS}
    FROM evotrack_entry_delta CROSS JOIN LATERAL unnest(
        CASE WHEN cardinality(tag_ids) = 0 THEN ARRAY[NULL]::uuid[] ELSE tag_ids END
    ) AS tag_id
    WHERE NOT running AND org_id <> ALL(CAST(:skip AS uuid[]))
    GROUP BY org_id, local_date, user_id, project_id, task_id, billable, tag_id
    {_NONZERO}
"""


def _add_deltas(
    table: str, key: str, select_key: str, tagged: bool, where: str = "", conflict: str = ""
) -> str:
    sums = "SUM(seconds), SUM(billable_seconds), SUM(amount), SUM(entries)"
    return f"""
        WITH added AS (
        INSERT INTO {table} ({key}, {_TOTALS})
        SELECT {select_key}, {sums} FROM evotrack_daily_delta
        WHERE tagged = {tagged} {where}
        GROUP BY {key}
        HAVING SUM(entries) <> 0 OR SUM(seconds) <> 0 OR SUM(billable_seconds) <> 0
            OR SUM(amount) <> 0
        ON CONFLICT ({conflict or key}) DO UPDATE SET
            seconds = {table}.seconds + EXCLUDED.seconds,
            billable_seconds = {table}.billable_seconds + EXCLUDED.billable_seconds,
            amount = {table}.amount + EXCLUDED.amount,
            entries = {table}.entries + EXCLUDED.entries
        RETURNING ctid, entries)
        SELECT ctid::text FROM added WHERE entries = 0
    """


_MONTH = "org_id, month, user_id, project_id, task_id, billable"
_MONTH_SELECT = f"org_id, {_MONTH_OF_DAY}, user_id, project_id, task_id, billable"


# (table, statement adding the batch's deltas and returning the rows it emptied).
_DELTA_UPSERTS = (
    (
        "proj_daily_totals",
        _add_deltas("proj_daily_totals", _DAILY_COLUMNS, _DAILY_COLUMNS, tagged=False),
    ),
    (
        "proj_daily_tag_totals",
        _add_deltas(
            "proj_daily_tag_totals",
            f"{_DAILY_COLUMNS}, tag_id",
            f"{_DAILY_COLUMNS}, tag_id",
            tagged=True,
        ),
    ),
    (
        "proj_monthly_totals",
        _add_deltas("proj_monthly_totals", _MONTH, _MONTH_SELECT, tagged=False),
    ),
    (
        "proj_monthly_tag_totals",
        _add_deltas(
            "proj_monthly_tag_totals", f"{_MONTH}, tag_id", f"{_MONTH_SELECT}, tag_id", tagged=True
        ),
    ),
    *((rollup.table.name, rollup.add_deltas()) for rollup in ROLLUPS),
    (
        "proj_project_stats",
        _add_deltas(
            "proj_project_stats",
            "project_id, org_id",
            "project_id, org_id",
            tagged=False,
            where="AND project_id IS NOT NULL",
            conflict="project_id",
        ),
    ),
    (
        "proj_task_stats",
        _add_deltas(
            "proj_task_stats",
            "task_id, org_id, project_id",
            "task_id, org_id, project_id",
            tagged=False,
            where="AND task_id IS NOT NULL",
            conflict="task_id",
        ),
    ),
)


def _add_entry_deltas(session: Session, skip_orgs: set[uuid.UUID]) -> None:
    session.execute(text(_DELTA_TABLE))
    session.execute(text("DELETE FROM evotrack_daily_delta"))
    added = session.execute(text(_ENTRY_DELTAS), {"skip": list(skip_orgs)})
    if not getattr(added, "rowcount", 0):
        return  # nothing that counts changed
    for table, statement in _DELTA_UPSERTS:
        # A bucket whose last entry left it is deleted; no other row can have become empty.
        emptied = session.execute(text(statement)).scalars().all()
        if emptied:
            session.execute(
                text(f"DELETE FROM {table} WHERE ctid = ANY(CAST(:rows AS tid[]))"),
                {"rows": list(emptied)},
            )
