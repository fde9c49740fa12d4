"""The entries projection: the denormalized entries view, daily totals (plain and per tag,
an untagged entry under tag NULL), monthly roll-ups per bucket and per tag, daily and
monthly roll-ups per project and per project and tag (reports over a whole organization),
per-user daily and monthly roll-ups (reports by person and time), project and task stats,
and running timers.

Every step re-derives what a batch touched from the source of truth instead of adding
deltas: entry rows from the normalized tables, totals from the entry rows. Re-applying a
change, applying changes out of order or twice, all give the same rows; a rebuild runs
the very same SQL without the key filter. Only finished entries count in totals.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import text
from sqlalchemy.orm import Session

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
        SELECT org_id, date_trunc('month', day)::date AS month, user_id, project_id, task_id,
               billable, {_SUMS}
        FROM {t.daily_totals} WHERE true {where}
        GROUP BY org_id, month, user_id, project_id, task_id, billable
    """


def insert_monthly_tags(t: Tables, where: str = "") -> str:
    return f"""
        INSERT INTO {t.monthly_tag_totals}
            (org_id, month, user_id, project_id, task_id, billable, tag_id, {_TOTALS})
        SELECT org_id, date_trunc('month', day)::date AS month, user_id, project_id, task_id,
               billable, tag_id, {_SUMS}
        FROM {t.daily_tag_totals} WHERE true {where}
        GROUP BY org_id, month, user_id, project_id, task_id, billable, tag_id
    """


@dataclass(frozen=True)
class Rollup:
    """A coarser roll-up of a totals table: the same period (day or month) and sums, fewer
    key columns. One definition gives its rebuild statement, its delta upsert and its
    clean-up of emptied rows."""

    table: str
    source: str
    period: str  # "day" or "month", a column of both tables
    keys: tuple[str, ...]  # besides org_id and the period
    tagged: bool = False

    def insert(self, t: Tables, where: str = "") -> str:
        columns = ", ".join(("org_id", self.period, *self.keys))
        return f"""
            INSERT INTO {getattr(t, self.table)} ({columns}, {_TOTALS})
            SELECT {columns}, {_SUMS} FROM {getattr(t, self.source)} WHERE true {where}
            GROUP BY {columns}
        """

    def add_deltas(self) -> str:
        columns = ", ".join(("org_id", self.period, *self.keys))
        period = "day" if self.period == "day" else "date_trunc('month', day)::date AS month"
        selected = ", ".join(("org_id", period, *self.keys))
        return _add_deltas(f"proj_{self.table}", columns, selected, tagged=self.tagged)

    def delete_emptied(self) -> str:
        keys = _DAY_KEYS if self.period == "day" else _MONTH_KEYS
        if "user_id" in self.keys:
            touched = f"(org_id, {self.period}, user_id) IN {keys}"
        else:
            touched = f"(org_id, {self.period}) IN (SELECT org_id, {self.period} FROM {keys} AS k)"
        return f"DELETE FROM proj_{self.table} WHERE entries = 0 AND {touched}"


# In dependency order: each reads a table made before it.
ROLLUPS = (
    Rollup("monthly_project_totals", "monthly_totals", "month", ("project_id", "billable")),
    Rollup("daily_project_totals", "daily_totals", "day", ("project_id", "billable")),
    Rollup(
        "daily_project_tag_totals",
        "daily_tag_totals",
        "day",
        ("project_id", "billable", "tag_id"),
        tagged=True,
    ),
    Rollup("daily_user_totals", "daily_totals", "day", ("user_id", "billable")),
    Rollup("monthly_user_totals", "monthly_totals", "month", ("user_id", "billable")),
    Rollup(
        "monthly_project_tag_totals",
        "monthly_tag_totals",
        "month",
        ("project_id", "billable", "tag_id"),
        tagged=True,
    ),
    Rollup(
        "monthly_org_tag_totals",
        "monthly_project_tag_totals",
        "month",
        ("billable", "tag_id"),
        tagged=True,
    ),
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
    """Keys of totals to recompute: (org, day, user) buckets, projects, tasks, users."""

    days: set[tuple[uuid.UUID, date, uuid.UUID]] = field(default_factory=set)
    projects: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)
    tasks: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)
    users: set[uuid.UUID] = field(default_factory=set)
    whole_orgs: set[uuid.UUID] = field(default_factory=set)

    def collect(self, session: Session, where: str, params: Mapping[str, object]) -> None:
        rows = session.execute(
            text(
                "SELECT org_id, local_date, user_id, project_id, task_id FROM proj_entries"
                f" WHERE {where}"
            ),
            params,
        )
        for org_id, day, user_id, project_id, task_id in rows:
            self.days.add((org_id, day, user_id))
            self.users.add(user_id)
            if project_id is not None:
                self.projects.add((org_id, project_id))
            if task_id is not None:
                self.tasks.add((org_id, task_id))


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
        buckets.collect(session, "entry_id = ANY(:ids)", params)
        session.execute(text("DELETE FROM proj_entries WHERE entry_id = ANY(:ids)"), params)
        session.execute(
            text(insert_entries(LIVE, "AND e.id = ANY(:ids)", "AND et.entry_id = ANY(:ids)")),
            params,
        )
        buckets.collect(session, "entry_id = ANY(:ids)", params)

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
    """Recompute every total a batch touched, from the entry rows, in dependency order."""
    if buckets.whole_orgs:
        _recompute_whole_orgs(session, buckets.whole_orgs)
    days = [d for d in buckets.days if d[0] not in buckets.whole_orgs]
    if days:
        _recompute_days(session, days)
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


_DAY_KEYS = (
    "(SELECT * FROM unnest(CAST(:orgs AS uuid[]), CAST(:days AS date[]),"
    " CAST(:users AS uuid[])) AS k(org_id, day, user_id))"
)
_MONTH_KEYS = (
    "(SELECT * FROM unnest(CAST(:m_orgs AS uuid[]), CAST(:m_months AS date[]),"
    " CAST(:m_users AS uuid[])) AS m(org_id, month, user_id))"
)


# Monthly roll-ups and stats follow the daily totals by deltas: within one transaction
# the batch knows each touched daily bucket's old rows (deleted) and new rows (re-derived
# from the entries), and adds their difference to the months and the stats. As the daily
# totals are exact, so are the sums of their differences: re-applying a change yields a
# zero delta, and a rebuild (which sums the daily rows) gives the same rows.
_DELTA_TABLE = """
    CREATE TEMP TABLE IF NOT EXISTS evotrack_daily_delta (
        tagged boolean, org_id uuid, day date, user_id uuid, project_id uuid, task_id uuid,
        billable boolean, tag_id uuid, seconds bigint, billable_seconds bigint,
        amount bigint, entries bigint
    ) ON COMMIT DELETE ROWS
"""
_DAILY_COLUMNS = "org_id, day, user_id, project_id, task_id, billable"


def _capture_old(table: str, tagged: bool) -> str:
    tag = "tag_id" if tagged else "NULL::uuid"
    returning = f"{_DAILY_COLUMNS}, {'tag_id, ' if tagged else ''}{_TOTALS}"
    return f"""
        WITH old AS (
            DELETE FROM {table} WHERE (org_id, day, user_id) IN {_DAY_KEYS}
            RETURNING {returning})
        INSERT INTO evotrack_daily_delta
        SELECT {tagged}, {_DAILY_COLUMNS}, {tag}, -seconds, -billable_seconds, -amount, -entries
        FROM old
    """


def _capture_new(insert: str, tagged: bool) -> str:
    tag = "tag_id" if tagged else "NULL::uuid"
    returning = f"{_DAILY_COLUMNS}, {'tag_id, ' if tagged else ''}{_TOTALS}"
    return f"""
        WITH new AS ({insert} RETURNING {returning})
        INSERT INTO evotrack_daily_delta
        SELECT {tagged}, {_DAILY_COLUMNS}, {tag}, seconds, billable_seconds, amount, entries
        FROM new
    """


def _add_deltas(
    table: str, key: str, select_key: str, tagged: bool, where: str = "", conflict: str = ""
) -> str:
    sums = "SUM(seconds), SUM(billable_seconds), SUM(amount), SUM(entries)"
    return f"""
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
    """


_MONTH = "org_id, month, user_id, project_id, task_id, billable"
_MONTH_SELECT = (
    "org_id, date_trunc('month', day)::date AS month, user_id, project_id, task_id, billable"
)


def _recompute_days(session: Session, days: list[tuple[uuid.UUID, date, uuid.UUID]]) -> None:
    months = sorted({(org, day.replace(day=1), user) for org, day, user in days})
    params: dict[str, object] = {
        "orgs": [d[0] for d in days],
        "days": [d[1] for d in days],
        "users": [d[2] for d in days],
        "m_orgs": [m[0] for m in months],
        "m_months": [m[1] for m in months],
        "m_users": [m[2] for m in months],
    }
    in_entry_days = f"AND (org_id, local_date, user_id) IN {_DAY_KEYS}"
    session.execute(text(_DELTA_TABLE))
    session.execute(text("DELETE FROM evotrack_daily_delta"))
    session.execute(text(_capture_old("proj_daily_totals", tagged=False)), params)
    session.execute(text(_capture_old("proj_daily_tag_totals", tagged=True)), params)
    session.execute(text(_capture_new(insert_daily(LIVE, in_entry_days), tagged=False)), params)
    session.execute(text(_capture_new(insert_daily_tags(LIVE, in_entry_days), tagged=True)), params)
    statements = [
        _add_deltas("proj_monthly_totals", _MONTH, _MONTH_SELECT, tagged=False),
        _add_deltas(
            "proj_monthly_tag_totals", f"{_MONTH}, tag_id", f"{_MONTH_SELECT}, tag_id", tagged=True
        ),
        *(rollup.add_deltas() for rollup in ROLLUPS),
        _add_deltas(
            "proj_project_stats",
            "project_id, org_id",
            "project_id, org_id",
            tagged=False,
            where="AND project_id IS NOT NULL",
            conflict="project_id",
        ),
        _add_deltas(
            "proj_task_stats",
            "task_id, org_id, project_id",
            "task_id, org_id, project_id",
            tagged=False,
            where="AND task_id IS NOT NULL",
            conflict="task_id",
        ),
    ]
    for statement in statements:
        session.execute(text(statement))
    # Buckets whose last entry left them.
    session.execute(
        text(
            "DELETE FROM proj_monthly_totals WHERE entries = 0"
            f" AND (org_id, month, user_id) IN {_MONTH_KEYS}"
        ),
        params,
    )
    session.execute(
        text(
            "DELETE FROM proj_monthly_tag_totals WHERE entries = 0"
            f" AND (org_id, month, user_id) IN {_MONTH_KEYS}"
        ),
        params,
    )
    for rollup in ROLLUPS:
        session.execute(text(rollup.delete_emptied()), params)
    for kind in ("project", "task"):
        session.execute(
            text(
                f"DELETE FROM proj_{kind}_stats WHERE entries = 0 AND {kind}_id IN"
                f" (SELECT {kind}_id FROM evotrack_daily_delta WHERE NOT tagged)"
            )
        )
