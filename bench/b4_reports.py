"""B4: reports as the owner of the biggest organization (an admin sees everything, so the
largest reports) through the query API over HTTP: summary by project, by user and day,
by tag, and the detailed report's first page, over the last week, month (30 days) and
year (365 days) of the data, and the dashboard; p50 and p95. Against the same numbers
computed by a live GROUP BY on the normalized tables (time_entries with organizations,
users, projects, tags; the local day via AT TIME ZONE).

The live queries are written as well as plain SQL allows: the local date range is turned
into UTC bounds on `start_at` first (an index can serve it), and they run in this process
without HTTP or JSON, which favours them. At the profile's entry count, and in the full
profile also at the other sizes of `Profile.report_entries`, each generated once into a
database of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
from psycopg import sql
from sqlalchemy import make_url

from bench.cleanup import catch_up
from bench.context import Context
from bench.generate import Options, generate, plain_url
from bench.load import expect
from bench.report import Outcome, Row, ms, percentile
from bench.servers import API_WORKERS, QUERY_APP, api_server
from bench.services import BENCH_DATABASE
from bench.world import Organization, biggest_organization

API_SAMPLES = 30
LIVE_SAMPLES = 7
MIN_SAMPLES = 5  # slow reports stop here once their time budget is spent
BUDGET_SECONDS = 10.0  # per report and side (API, live), warm-up excluded
SLOW_SECONDS = 1.0  # a first run this slow is warm-up enough
RANGES = {"week": 7, "month": 30, "year": 365}
P95_TARGET_SECONDS = 0.050
SPEEDUP_TARGET = 100.0
SCALING_TARGET = 2.0  # the one-year summary at the largest size within 2× of 100k's
SMALLEST = 100_000

# --- the live GROUP BY ---------------------------------------------------------------------

_SECONDS = "FLOOR(EXTRACT(EPOCH FROM (e.end_at - e.start_at)))::bigint"
_SUMS = f"""
    sum({_SECONDS})::bigint,
    sum(CASE WHEN e.billable THEN {_SECONDS} ELSE 0 END)::bigint,
    sum(CASE WHEN e.billable THEN ({_SECONDS} * e.hourly_rate_amount + 1800) / 3600
        ELSE 0 END)::bigint,
    count(*)"""
_RANGE = (
    "e.org_id = %(org)s AND e.deleted_at IS NULL"
    " AND e.start_at >= %(low)s AND e.start_at < %(high)s"
)
_FINISHED = f"{_RANGE} AND e.end_at IS NOT NULL"
_LOCAL_DAY = "(e.start_at AT TIME ZONE o.timezone)::date"

LIVE_SUMMARY = {
    "project": f"""
        SELECT e.project_id, p.name, {_SUMS}
        FROM time_entries e LEFT JOIN projects p ON p.id = e.project_id
        WHERE {_FINISHED}
        GROUP BY GROUPING SETS ((e.project_id, p.name), ())""",
    "user,day": f"""
        SELECT e.user_id, u.full_name, {_LOCAL_DAY}, {_SUMS}
        FROM time_entries e JOIN organizations o ON o.id = e.org_id
        JOIN users u ON u.id = e.user_id
        WHERE {_FINISHED}
        GROUP BY GROUPING SETS ((e.user_id, u.full_name, {_LOCAL_DAY}),
                                (e.user_id, u.full_name), ())""",
    "tag": f"""
        WITH picked AS MATERIALIZED (
            SELECT e.id, e.billable, e.hourly_rate_amount, e.start_at, e.end_at
            FROM time_entries e WHERE {_FINISHED})
        SELECT t.id, t.name, {_SUMS}
        FROM picked e LEFT JOIN time_entry_tags et ON et.entry_id = e.id
        LEFT JOIN tags t ON t.id = et.tag_id
        GROUP BY t.id, t.name
        UNION ALL
        SELECT NULL, NULL, {_SUMS} FROM picked e""",
}

LIVE_DETAILED = (
    f"""
    SELECT e.id, e.user_id, u.full_name, e.project_id, p.name, p.color, c.id, c.name,
           e.task_id, t.name, tg.ids, tg.names, e.description, e.start_at, e.end_at,
           CASE WHEN e.end_at IS NULL THEN NULL ELSE {_SECONDS} END, e.billable,
           CASE WHEN e.end_at IS NULL OR NOT e.billable THEN 0
                ELSE ({_SECONDS} * e.hourly_rate_amount + 1800) / 3600 END,
           {_LOCAL_DAY}
    FROM time_entries e JOIN organizations o ON o.id = e.org_id
    JOIN users u ON u.id = e.user_id
    LEFT JOIN projects p ON p.id = e.project_id
    LEFT JOIN clients c ON c.id = p.client_id
    LEFT JOIN tasks t ON t.id = e.task_id
    LEFT JOIN LATERAL (
        SELECT array_agg(tag.id ORDER BY tag.id) AS ids, array_agg(tag.name ORDER BY tag.id)
               AS names
        FROM time_entry_tags et JOIN tags tag ON tag.id = et.tag_id WHERE et.entry_id = e.id
    ) tg ON true
    WHERE {_RANGE}
    ORDER BY e.start_at DESC, e.id DESC LIMIT 51""",
    f"SELECT {_SUMS} FROM time_entries e WHERE {_FINISHED}",
)

LIVE_DASHBOARD = (
    f"""
    SELECT {_LOCAL_DAY}, {_SUMS}
    FROM time_entries e JOIN organizations o ON o.id = e.org_id
    WHERE {_FINISHED} GROUP BY 1""",
    f"""
    SELECT e.project_id, p.name, p.color, sum({_SECONDS})
    FROM time_entries e LEFT JOIN projects p ON p.id = e.project_id
    WHERE e.org_id = %(org)s AND e.deleted_at IS NULL AND e.end_at IS NOT NULL
      AND e.start_at >= %(month)s AND e.start_at < %(high)s
    GROUP BY e.project_id, p.name, p.color ORDER BY 4 DESC LIMIT 5""",
    """
    SELECT e.id, e.user_id, u.full_name, e.project_id, p.name, e.description, e.start_at
    FROM time_entries e JOIN users u ON u.id = e.user_id
    LEFT JOIN projects p ON p.id = e.project_id
    WHERE e.org_id = %(org)s AND e.end_at IS NULL AND e.deleted_at IS NULL""",
)


def local_start(day: date, zone: ZoneInfo) -> datetime:
    """The instant the local day begins, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


# --- what is measured ----------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    name: str
    range: str  # a key of RANGES, or "" for the dashboard
    path: str
    params: dict[str, str]
    statements: tuple[str, ...]
    bounds: dict[str, Any]

    @property
    def one_year_summary(self) -> bool:
        return self.name.startswith("summary") and self.range == "year"


# (name, path, group_by or None, live statements), in the order of the table
KINDS: tuple[tuple[str, str, str | None, tuple[str, ...]], ...] = (
    ("summary by project", "/reports/summary", "project", (LIVE_SUMMARY["project"],)),
    ("summary by user and day", "/reports/summary", "user,day", (LIVE_SUMMARY["user,day"],)),
    ("summary by tag", "/reports/summary", "tag", (LIVE_SUMMARY["tag"],)),
    ("detailed, first page", "/reports/detailed", None, LIVE_DETAILED),
)


def reports(org: Organization) -> list[Report]:
    zone = ZoneInfo(org.timezone)
    found: list[Report] = []
    for name, path, group_by, statements in KINDS:
        for range_name, days in RANGES.items():
            first = org.last_day - timedelta(days=days - 1)
            params = {"from": first.isoformat(), "to": org.last_day.isoformat()}
            if group_by:
                params["group_by"] = group_by
            bounds = {
                "org": org.id,
                "low": local_start(first, zone),
                "high": local_start(org.last_day + timedelta(days=1), zone),
            }
            found.append(Report(name, range_name, org.path(path), params, statements, bounds))
    found.append(dashboard(org, zone))
    return found


def dashboard(org: Organization, zone: ZoneInfo) -> Report:
    """Today, this week, this month and the last 30 days, as the query API computes them."""
    today = datetime.now(zone).date()
    week = today - timedelta(days=(today.isoweekday() - org.week_start) % 7)
    month = today.replace(day=1)
    first = min(today - timedelta(days=29), week, month)
    bounds = {
        "org": org.id,
        "low": local_start(first, zone),
        "month": local_start(month, zone),
        "high": local_start(today + timedelta(days=1), zone),
    }
    return Report("dashboard", "", org.path("/dashboard"), {}, LIVE_DASHBOARD, bounds)


@dataclass
class Timing:
    report: Report
    size: int
    api: list[float] = field(default_factory=list)
    live: list[float] = field(default_factory=list)

    @property
    def api_p95(self) -> float:
        return percentile(self.api, 0.95)

    @property
    def live_p95(self) -> float:
        return percentile(self.live, 0.95)


def timed(action: Callable[[], object], count: int) -> list[float]:
    """`count` timed runs after a warm-up (two runs, one when it is slow); fewer (but
    MIN_SAMPLES at least) when they would take more than BUDGET_SECONDS."""
    started = time.perf_counter()
    action()
    if time.perf_counter() - started < SLOW_SECONDS:
        action()
    samples: list[float] = []
    while len(samples) < count and (len(samples) < MIN_SAMPLES or sum(samples) < BUDGET_SECONDS):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def measure(ctx: Context, database_url: str, size: int) -> tuple[Organization, list[Timing]]:
    org = biggest_organization(database_url)
    timings = [Timing(report, size) for report in reports(org)]
    with (
        api_server(ctx, QUERY_APP, "query-api", database_url) as api,
        httpx.Client(base_url=api.root, timeout=120.0) as client,
    ):
        for timing in timings:
            report = timing.report

            def get(report: Report = report) -> None:
                expect(
                    client.get(report.path, params=report.params, headers=org.owner.headers), 200
                )

            timing.api = timed(get, API_SAMPLES)
    with psycopg.connect(plain_url(database_url), autocommit=True) as conn:
        for timing in timings:
            report = timing.report

            def live(report: Report = report) -> None:
                for statement in report.statements:
                    conn.execute(statement, report.bounds).fetchall()

            timing.live = timed(live, LIVE_SAMPLES)
    return org, timings


# --- the other sizes of the full profile ----------------------------------------------------


def sized_database(ctx: Context, entries: int) -> str:
    """A database holding exactly `entries` generated entries (made on first use)."""
    name = f"{BENCH_DATABASE}_{entries}"
    url = make_url(plain_url(ctx.database_url)).set(database=name)
    database_url = url.render_as_string(hide_password=False)
    try:
        with psycopg.connect(plain_url(database_url)) as conn:
            row = conn.execute("SELECT count(*) FROM time_entries").fetchone()
        if row and row[0] == entries:
            return database_url
    except psycopg.Error:
        pass
    from evotrack.migrations import upgrade_to_head

    with psycopg.connect(plain_url(ctx.database_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    upgrade_to_head(database_url)
    generate(database_url, Options(entries))
    return database_url


def run(ctx: Context) -> Outcome:
    catch_up(ctx)  # whatever earlier benchmarks left is projected before reading
    sizes = sorted({ctx.entries, *ctx.profile.report_entries})
    timings: dict[int, list[Timing]] = {}
    orgs: dict[int, Organization] = {}
    for size in sizes:
        url = ctx.database_url if size == ctx.entries else sized_database(ctx, size)
        orgs[size], timings[size] = measure(ctx, url, size)
    smallest = timings.get(SMALLEST)
    rows = [
        _row(t, size == max(sizes) and smallest is not None, smallest)
        for size in sizes
        for t in timings[size]
    ]
    every = [t for size in sizes for t in timings[size]]
    return Outcome(rows, _notes(ctx, orgs, sizes, every))


def size_label(entries: int) -> str:
    if entries % 1_000_000 == 0:
        return f"{entries // 1_000_000}M"
    if entries % 1_000 == 0:
        return f"{entries // 1_000}k"
    return f"{entries:,}"


def _speedup(ratio: float) -> str:
    """live ÷ API at p95, said the way round that reads: '8.9× faster' or '4.0× slower'."""
    value, word = (ratio, "faster") if ratio >= 1 else (1 / ratio, "slower")
    return f"{value:,.{0 if value >= 10 else 1}f}× {word} (p95)"


def _row(timing: Timing, largest: bool, smallest: list[Timing] | None) -> Row:
    report = timing.report
    api_p50, api_p95 = percentile(timing.api, 0.5), timing.api_p95
    live_p50, live_p95 = percentile(timing.live, 0.5), timing.live_p95
    speedup = live_p95 / api_p95
    target = "—"
    met: bool | None = None
    if report.one_year_summary:
        target = f"p95 ≤ {ms(P95_TARGET_SECONDS)}, ≥ {SPEEDUP_TARGET:g}× live"
        met = api_p95 <= P95_TARGET_SECONDS and speedup >= SPEEDUP_TARGET
        if largest and smallest is not None:
            small = next(
                t for t in smallest if t.report.name == report.name and t.report.range == "year"
            )
            target += (
                f", ≤ {SCALING_TARGET:g}× the {size_label(SMALLEST)} case ({ms(small.api_p95)})"
            )
            met = met and api_p95 <= SCALING_TARGET * small.api_p95
    over = f", {report.range}" if report.range else ""
    return Row(
        f"B4 {report.name}{over}, {size_label(timing.size)} entries",
        f"p50 {ms(api_p50)}, p95 {ms(api_p95)}",
        f"live GROUP BY: p50 {ms(live_p50)}, p95 {ms(live_p95)}",
        _speedup(speedup),
        target,
        met,
    )


def _notes(
    ctx: Context, orgs: dict[int, Organization], sizes: list[int], timings: list[Timing]
) -> list[str]:
    short = [
        f"{t.report.name}{f', {t.report.range}' if t.report.range else ''} at "
        f"{size_label(t.size)}: {len(t.api)} API / {len(t.live)} live"
        for t in timings
        if len(t.api) < API_SAMPLES or len(t.live) < LIVE_SAMPLES
    ]
    reduced = f" (so: {'; '.join(short)})" if short else ""
    where = "; ".join(
        f"{size_label(size)}: {org.members} members, data up to {org.last_day}"
        for size, org in orgs.items()
    )
    return [
        f"B4: the query API (`uvicorn query_api.main:create_app --factory`, {API_WORKERS} "
        "worker processes) "
        "on the benchmark's data, one httpx client, requests one after another as the "
        "owner of the biggest organization (JWT), no consistency token; "
        f"2 warm-up runs (1 when it takes over {SLOW_SECONDS:g} s) then {API_SAMPLES} timed "
        f"requests per report; the live GROUP BY: the same warm-up then {LIVE_SAMPLES} "
        "timed runs of the same statements with psycopg in this process (results fetched, "
        f"no HTTP); either stops after {MIN_SAMPLES} samples once {BUDGET_SECONDS:g} s are "
        f"spent{reduced}. Ranges end at the local day "
        "of the organization's latest entry: week = 7 days, month = 30 days, year = 365 "
        "days (so month and year start mid-month: roll-ups plus daily edges). Summary = "
        "groups and totals (user and day: both levels); detailed = the first 50 entries "
        "with names and tags, plus the range's totals; dashboard = today/week/month "
        "totals, the last 30 days, the month's top 5 projects and the running timers. "
        f"Sizes {', '.join(size_label(s) for s in sizes)} ({where}). The issue's target "
        "applies at 10M entries; at other sizes it is shown for orientation.",
    ]
