"""Realistic data for the benchmarks (issue 5 §1), COPYed straight into the normalized tables.

    DATABASE_URL=... python -m bench.generate --entries 1000000 [--orgs 4] [--seed 1]

Organizations in a few time zones (DST ones included), users with memberships, roles and a
small team tree, clients, projects with tasks, tags, and entries over the past year shaped
like real work: weekdays, working hours in the organization's local time, 15 minutes to
3 hours each, a lunch break, some running timers (at most one per user), tags on ~30 % of
entries, billable per project and the hourly rate resolved as the command API does
(project member > project > member > organization). Entries are streamed in chunks (memory
stays flat) in PostgreSQL's binary COPY format and each chunk is committed on its own, so
no long transaction holds the projections' watermark back; into empty tables they load
before their plain indexes are built, as `pg_restore` does. One change row per
organization tells the log about them; then every projection is rebuilt.

The same seed and `--until` day give the same data, ids included: generating twice with
one seed into one database fails on the primary keys (use another seed).
"""

from __future__ import annotations

import argparse
import os
import random
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from bench.pgcopy import (
    BINARY,
    COPY_SIGNATURE,
    COPY_TRAILER,
    MICROS,
    NULL,
    PG_EPOCH,
    bool_field,
    copy_binary,
    int8_field,
    pg_micros,
    text_field,
    uuid_field,
)
from bench.progress import ProgressBar, StepProgress

ZONES = ("Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata")
CURRENCIES = {"Europe/Berlin": "EUR", "America/New_York": "USD", "Asia/Kolkata": "INR"}
DAYS = 365
ENTRIES_PER_USER_YEAR = 1100  # ~4.5 entries per working day
MIN_USERS_PER_ORG = 5
CHUNK_ENTRIES = 50_000
LOADERS = min(2, os.cpu_count() or 1)
TAGGED_SHARE = 0.30
TWO_TAGS_SHARE = 0.09  # of all entries: 30 % of the tagged ones carry two tags
DELETED_SHARE = 0.01
VACATION_SHARE = 0.08
RUNNING_TIMER_EVERY = 20  # one member in twenty has a timer running
NO_PROJECT_SHARE = 0.08
DAY_LIMIT = 19 * 3600 + 1800  # entries should end by 19:30 local time
MIN_SECONDS, MAX_SECONDS = 15 * 60, 3 * 3600
BENCH_PASSWORD = "bench-password-1234"

DESCRIPTIONS = (
    "",
    "",
    "Code review",
    "Standup",
    "Sprint planning",
    "Bug triage",
    "Customer call",
    "Write specification",
    "Implement feature",
    "Fix failing tests",
    "Deploy to staging",
    "Refactoring",
    "Design workshop",
    "Email and admin",
    "Pair programming",
    "Research",
    "Documentation",
    "Performance tuning",
    "Support ticket",
    "Interview",
    "Onboarding",
    "Retrospective",
    "Estimate change request",
    "Prepare invoice",
    "Update dependencies",
)
TAG_NAMES = (
    "meeting",
    "development",
    "design",
    "support",
    "travel",
    "urgent",
    "internal",
    "review",
    "research",
    "admin",
    "training",
    "overtime",
)
FIRST_NAMES = ("Anna", "Ben", "Chen", "Dana", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas")
LAST_NAMES = ("Ito", "Jansen", "Kumar", "Lopez", "Meyer", "Nowak", "Okafor", "Petrov", "Quinn")
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


@dataclass(frozen=True)
class Options:
    entries: int
    orgs: int = 4
    seed: int = 1
    until: date | None = None  # local days covered end the day before; default today (UTC)
    chunk_entries: int = CHUNK_ENTRIES

    @property
    def last_day(self) -> date:
        return (self.until or datetime.now(UTC).date()) - timedelta(days=1)


@dataclass(frozen=True)
class Project:
    id: str
    client_id: str | None
    name: str
    color: str
    billable: bool
    rate: int | None
    budget_seconds: int | None
    tasks: tuple[str, ...]


@dataclass
class Member:
    user_id: str
    membership_id: str
    email: str
    full_name: str
    role: str
    rate: int | None
    team_id: str
    is_lead: bool
    assignments: list[tuple[Project, int | None]]  # a project and the member's rate on it
    quota: int = 0
    first_id: int = 0  # entry ids of this member count up from here
    running_timer: bool = False
    slots: list[bytes] = field(default_factory=list)


@dataclass
class Org:
    id: str
    name: str
    timezone: str
    rate: int | None
    clients: list[tuple[str, str]]
    projects: list[Project]
    tags: list[tuple[str, str]]
    teams: list[tuple[str, str, str | None]]
    members: list[Member]
    workdays: list[int] = field(default_factory=list)  # see workdays()


@dataclass
class Counts:
    organizations: int = 0
    users: int = 0
    projects: int = 0
    tasks: int = 0
    tags: int = 0
    entries: int = 0
    running_timers: int = 0
    entry_tags: int = 0
    copy_seconds: float = 0.0
    foreign_keys_checked: bool = True

    @property
    def copy_rate(self) -> float:
        return self.entries / self.copy_seconds if self.copy_seconds else 0.0


# --- the world: organizations, people, projects ------------------------------------------


class Ids:
    """Deterministic UUIDs from the seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def new(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


def user_count(options: Options) -> int:
    needed = -(-options.entries // ENTRIES_PER_USER_YEAR)
    return max(needed, MIN_USERS_PER_ORG * options.orgs)


def org_sizes(total_users: int, orgs: int) -> list[int]:
    """Organizations of decreasing size (1, 1/2, 1/3, ...), each with a few members at least."""
    weights = [1 / (i + 1) for i in range(orgs)]
    spare = total_users - MIN_USERS_PER_ORG * orgs
    sizes = [MIN_USERS_PER_ORG + int(spare * w / sum(weights)) for w in weights]
    sizes[0] += total_users - sum(sizes)
    return sizes


def make_projects(
    rng: random.Random, ids: Ids, users: int
) -> tuple[list[Project], list[tuple[str, str]]]:
    client_count = max(2, users // 12)
    clients = [(ids.new(), f"Client {i + 1:03d}") for i in range(client_count)]
    projects = []
    for i in range(max(3, min(users // 3, 300))):
        internal = i % 7 == 0
        tasks = tuple(ids.new() for _ in range(rng.choice((0, 0, 2, 3, 4, 6))))
        projects.append(
            Project(
                id=ids.new(),
                client_id=None if internal else rng.choice(clients)[0],
                name=f"{'Internal' if internal else 'Project'} {i + 1:03d}",
                color=rng.choice(COLORS),
                billable=not internal and rng.random() < 0.85,
                rate=rng.choice((None, None, 9000, 12000, 15000)),
                budget_seconds=rng.choice((None, 500 * 3600, 2000 * 3600)),
                tasks=tasks,
            )
        )
    return projects, clients


def make_teams(ids: Ids) -> list[tuple[str, str, str | None]]:
    """A company root, three departments, two squads in each."""
    root = ids.new()
    teams: list[tuple[str, str, str | None]] = [(root, "Company", None)]
    for dept in ("Engineering", "Consulting", "Operations"):
        dept_id = ids.new()
        teams.append((dept_id, dept, root))
        teams += [(ids.new(), f"{dept} squad {n}", dept_id) for n in (1, 2)]
    return teams


def make_members(
    rng: random.Random, ids: Ids, org_index: int, size: int, org: Org, run_tag: str
) -> list[Member]:
    leaves = [team for team in org.teams if team[2] is not None and "squad" in team[1]]
    members = []
    for i in range(size):
        role = "owner" if i == 0 else "admin" if i < 3 else "manager" if i % 10 == 0 else "member"
        team = leaves[i % len(leaves)]
        picks = rng.sample(org.projects, k=min(len(org.projects), rng.randint(1, 5)))
        assignments = [(p, rng.choice((None, None, None, None, 11000))) for p in picks]
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        members.append(
            Member(
                user_id=ids.new(),
                membership_id=ids.new(),
                email=f"u{org_index}-{i}-{run_tag}@bench.example.com",
                full_name=name,
                role=role,
                rate=rng.choice((None, 6000, 8000, 10000)),
                team_id=team[0],
                is_lead=i < len(leaves),
                assignments=assignments,
                running_timer=i % RUNNING_TIMER_EVERY == 1,
            )
        )
    return members


def build_world(options: Options) -> list[Org]:
    rng = random.Random(options.seed)
    ids = Ids(rng)
    run_tag = f"{options.seed:x}"
    orgs = []
    for index, size in enumerate(org_sizes(user_count(options), options.orgs)):
        zone = ZONES[index % len(ZONES)]
        projects, clients = make_projects(rng, ids, size)
        org = Org(
            id=ids.new(),
            name=f"Bench {index + 1} ({zone})",
            timezone=zone,
            rate=rng.choice((None, 5000, 7500)),
            clients=clients,
            projects=projects,
            tags=[(ids.new(), name) for name in TAG_NAMES],
            teams=make_teams(ids),
            members=[],
        )
        org.members = make_members(rng, ids, index, size, org, run_tag)
        org.workdays = workdays(zone, options.last_day)
        orgs.append(org)
    assign_quotas(rng, orgs, options.entries)
    for org in orgs:
        for member in org.members:
            member.slots = work_slots(org, member)
    return orgs


def assign_quotas(rng: random.Random, orgs: list[Org], entries: int) -> None:
    """Share the entries among members, some busier than others; the sum is exact."""
    members = [m for org in orgs for m in org.members]
    weights = [rng.uniform(0.6, 1.4) for _ in members]
    total = sum(weights)
    for member, weight in zip(members, weights, strict=True):
        member.quota = int(entries * weight / total)
    for i in range(entries - sum(m.quota for m in members)):
        members[i % len(members)].quota += 1
    first_id = 0
    for member in members:
        member.first_id = first_id
        first_id += member.quota


def pick_rate(*rates: int | None) -> int:
    """The first rate set: project member > project > member > organization, else 0."""
    return next((rate for rate in rates if rate is not None), 0)


def work_slots(org: Org, member: Member) -> list[bytes]:
    """What a member's entries can be about, as the binary COPY fields
    `org_id, user_id, project_id, task_id, billable, hourly_rate_amount, no_overlap`,
    repeated by weight (tasks more often than bare projects)."""
    prefix = uuid_field(org.id) + uuid_field(member.user_id)
    slots = []
    for project, member_project_rate in member.assignments:
        rate = pick_rate(member_project_rate, project.rate, member.rate, org.rate)
        tail = bool_field(project.billable) + int8_field(rate) + bool_field(False)
        head = prefix + uuid_field(project.id)
        slots += [head + uuid_field(task) + tail for task in project.tasks] * 2
        slots += [head + NULL + tail] * 2
    rate = pick_rate(member.rate, org.rate)
    without = prefix + NULL + NULL + bool_field(False) + int8_field(rate) + bool_field(False)
    share = max(1, round(len(slots) * NO_PROJECT_SHARE / (1 - NO_PROJECT_SHARE)))
    return slots + [without] * share


def workdays(zone: str, last_day: date) -> list[int]:
    """For each weekday of the year up to `last_day`: the UTC epoch at which the local day
    would start with that day's midday offset. Working hours (07:00-22:00) never straddle a
    DST change, so `base + seconds_of_day` is exact for them."""
    tz = ZoneInfo(zone)
    days = []
    for back in range(DAYS - 1, -1, -1):
        day = last_day - timedelta(days=back)
        if day.weekday() >= 5:
            continue
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=tz)
        offset = noon.utcoffset()
        assert offset is not None
        naive = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        days.append(int(naive - offset.total_seconds()))
    return days


# --- binary COPY rows ---------------------------------------------------------------------

ENTRY_FIELDS = 12
# field count, id (6 bytes of run prefix, a 10-byte counter), start_at, end_at
FINISHED_HEAD = struct.Struct(">hi6sxxQiqiq")
RUNNING_HEAD = struct.Struct(">hi6sxxQiqi")  # end_at NULL
TAG_HEAD = struct.Struct(">hi6sxxQ")
TIMESTAMP = struct.Struct(">iq")
DESCRIPTION_FIELDS = tuple(text_field(text) for text in DESCRIPTIONS)


# --- entries ------------------------------------------------------------------------------


@dataclass
class Chunk:
    """COPY lines waiting to be sent, and the next entry id.

    Entry ids are handed out in insertion order (as UUIDv7-style ids are), so the primary
    key index grows at its right edge: a 48-bit prefix from the seed, then a counter."""

    id_prefix: bytes  # 6 bytes
    next_id: int = 0
    entries: list[bytes] = field(default_factory=list)
    tags: list[bytes] = field(default_factory=list)
    running: int = 0
    entries_sent: int = 0


def plan_days(rng: random.Random, workdays: Sequence[int], quota: int) -> list[tuple[int, int]]:
    """(day base, entries that day): the quota spread over the days the member works."""
    days = [base for base in workdays if rng.random() >= VACATION_SHARE] or list(workdays)
    plan = []
    remaining = quota
    for left, base in zip(range(len(days), 0, -1), days, strict=True):
        expected = remaining / left
        count = int(expected)
        if rng.random() < expected - count:
            count += 1
        count = min(count, remaining)
        if count:
            plan.append((base, count))
            remaining -= count
    return plan


def member_entries(rng: random.Random, org: Org, member: Member, out: Chunk) -> None:
    """Append the member's entries (and their tags) as binary COPY rows.

    The hot loop of the generator (~2.5 µs an entry, two thirds of formatting it as text):
    names bound to locals, no datetime or UUID objects, one `struct` call per row beyond
    the generator's."""
    rand = rng.random
    prefix = out.id_prefix
    seq = out.next_id
    head = FINISHED_HEAD.pack
    tag_head = TAG_HEAD.pack
    stamp = TIMESTAMP.pack
    slots = member.slots
    nslots = len(slots)
    descriptions = DESCRIPTION_FIELDS
    ndesc = len(descriptions)
    tags = [uuid_field(tag_id) for tag_id, _ in org.tags]
    ntags = len(tags)
    org_field = uuid_field(org.id)
    entries = out.entries
    tag_rows = out.tags
    quota = member.quota - (1 if member.running_timer and member.quota else 0)
    last_end = 0
    for base, count in plan_days(rng, org.workdays, quota):
        t = 25200 + int(rand() * 9000)  # start between 07:00 and 09:30
        lunched = False
        for i in range(count):
            room = (DAY_LIMIT - t) // (count - i) - 300
            high = (
                MAX_SECONDS if room > MAX_SECONDS else room if room > MIN_SECONDS else MIN_SECONDS
            )
            start = base + t
            end = start + MIN_SECONDS + int(rand() * (high - MIN_SECONDS))
            end_at = (end - PG_EPOCH) * MICROS
            deleted = stamp(8, end_at) if rand() < DELETED_SHARE else NULL
            entries.append(
                head(ENTRY_FIELDS, 16, prefix, seq, 8, (start - PG_EPOCH) * MICROS, 8, end_at)
                + deleted
                + slots[int(rand() * nslots)]
                + descriptions[int(rand() * ndesc)]
            )
            r = rand()
            if r < TAGGED_SHARE:
                first = int(rand() * ntags)
                tagged = tag_head(3, 16, prefix, seq)
                tag_rows.append(tagged + tags[first] + org_field)
                if r < TWO_TAGS_SHARE:
                    tag_rows.append(tagged + tags[(first + 1) % ntags] + org_field)
            seq += 1
            t = end - base + int(rand() * 600)
            if not lunched and t > 43200:
                lunched = True
                t += 1800 + int(rand() * 1800)
        last_end = base + t
    out.next_id = seq
    if quota < member.quota:
        running_timer(rng, member, max(last_end, org.workdays[-1] + 28800), out)


def running_timer(rng: random.Random, member: Member, after: int, out: Chunk) -> None:
    """A timer started a little after the member's last entry, still running."""
    start = after + 600 + rng.randrange(3000)
    out.entries.append(
        RUNNING_HEAD.pack(ENTRY_FIELDS, 16, out.id_prefix, out.next_id, 8, pg_micros(start), -1)
        + NULL
        + rng.choice(member.slots)
        + rng.choice(DESCRIPTION_FIELDS)
    )
    out.next_id += 1
    out.running += 1


# --- writing ------------------------------------------------------------------------------

ENTRY_COLUMNS = (
    "id, start_at, end_at, deleted_at, org_id, user_id, project_id, task_id, billable,"
    " hourly_rate_amount, no_overlap, description"
)
TAG_COLUMNS = "entry_id, tag_id, org_id"


def copy_rows(
    conn: psycopg.Connection[object], table: str, columns: str, rows: Iterable[Sequence[object]]
) -> int:
    count = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


Table = tuple[str, str, Iterable[Sequence[object]]]


def people_tables(orgs: list[Org], created: datetime, password_hash: str) -> list[Table]:
    """Organizations, users, memberships and the team tree, as (table, columns, rows)."""
    members = [(org, m) for org in orgs for m in org.members]
    org_columns = "id, name, timezone, currency, week_start, hourly_rate_amount, prevent_overlaps"
    return [
        (
            "organizations",
            f"{org_columns}, created_at, updated_at",
            (
                (
                    o.id,
                    o.name,
                    o.timezone,
                    CURRENCIES.get(o.timezone, "EUR"),
                    7 if o.timezone == "America/New_York" else 1,
                    o.rate,
                    False,
                    created,
                    created,
                )
                for o in orgs
            ),
        ),
        (
            "users",
            "id, email, full_name, password_hash, timezone, is_active, created_at, updated_at",
            (
                (m.user_id, m.email, m.full_name, password_hash, o.timezone, True, created, created)
                for o, m in members
            ),
        ),
        (
            "memberships",
            "id, org_id, user_id, role, hourly_rate_amount, created_at, updated_at",
            (
                (m.membership_id, o.id, m.user_id, m.role, m.rate, created, created)
                for o, m in members
            ),
        ),
        (
            "teams",
            "id, org_id, name, parent_id",
            ((t_id, o.id, name, parent) for o in orgs for t_id, name, parent in o.teams),
        ),
        (
            "team_members",
            "team_id, user_id, org_id, is_lead",
            ((m.team_id, m.user_id, o.id, m.is_lead) for o, m in members),
        ),
    ]


def work_tables(orgs: list[Org]) -> list[Table]:
    """Clients, projects with their members and tasks, and tags."""
    members = [(org, m) for org in orgs for m in org.members]
    projects = [(o, p) for o in orgs for p in o.projects]
    return [
        (
            "clients",
            "id, org_id, name, archived",
            ((c_id, o.id, name, False) for o in orgs for c_id, name in o.clients),
        ),
        (
            "projects",
            "id, org_id, client_id, name, color, billable, hourly_rate_amount, budget_seconds,"
            " archived",
            (
                (
                    p.id,
                    o.id,
                    p.client_id,
                    p.name,
                    p.color,
                    p.billable,
                    p.rate,
                    p.budget_seconds,
                    False,
                )
                for o, p in projects
            ),
        ),
        (
            "project_members",
            "project_id, user_id, org_id, hourly_rate_amount",
            ((p.id, m.user_id, o.id, rate) for o, m in members for p, rate in m.assignments),
        ),
        (
            "tasks",
            "id, org_id, project_id, name, done",
            (
                (task, o.id, p.id, f"Task {n + 1}", False)
                for o, p in projects
                for n, task in enumerate(p.tasks)
            ),
        ),
        (
            "tags",
            "id, org_id, name",
            ((tag_id, o.id, name) for o in orgs for tag_id, name in o.tags),
        ),
    ]


def write_catalog(conn: psycopg.Connection[object], orgs: list[Org], options: Options) -> None:
    """Everything but the entries, in foreign-key order, in one transaction."""
    created = datetime.combine(options.last_day, datetime.min.time(), UTC) - timedelta(days=400)
    for table, columns, rows in people_tables(orgs, created, _password_hash()) + work_tables(orgs):
        copy_rows(conn, table, columns, rows)


def _password_hash() -> str:
    """One real hash shared by every generated user, so benchmarks can log in."""
    from shared.security import hash_password

    return hash_password(BENCH_PASSWORD)


@dataclass
class Loader:
    """What the loading threads share: the work, the counts and the progress bar."""

    members: list[tuple[Org, Member]]
    options: Options
    counts: Counts
    bar: ProgressBar
    id_prefix: bytes
    next_member: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> tuple[int, int]:
        """The next run of members worth about a chunk of entries: (first, end)."""
        with self.lock:
            first = end = self.next_member
            size = 0
            while end < len(self.members) and size < self.options.chunk_entries:
                size += self.members[end][1].quota
                end += 1
            self.next_member = end
            return first, end

    def done(self, chunk: Chunk) -> None:
        with self.lock:
            self.counts.entries += chunk.entries_sent
            self.counts.entry_tags += len(chunk.tags)
            self.counts.running_timers += chunk.running
            self.bar.update(self.counts.entries)


def write_entries(
    database_url: str, orgs: list[Org], options: Options, counts: Counts, loaders: int
) -> None:
    """Stream every member's entries through `loaders` connections at once (the server
    side of COPY costs more than generating the rows: one backend per core). The COPY time
    counted includes building the indexes set aside: the data are not usable before."""
    members = [(org, member) for org in orgs for member in org.members]
    loader = Loader(
        members,
        options,
        counts,
        ProgressBar("generate", options.entries),
        random.Random(f"entry-ids-{options.seed}").getrandbits(48).to_bytes(6, "big"),
    )
    started = time.perf_counter()
    set_aside = set_aside_indexes(database_url)
    try:
        with ThreadPoolExecutor(max_workers=loaders) as pool:
            runs = [pool.submit(_load, database_url, loader) for _ in range(loaders)]
            checks = [run.result() for run in runs]
    finally:
        if set_aside:
            loader.bar.say(f"building {len(set_aside)} indexes")
        restore_indexes(database_url, set_aside, loaders)
    counts.copy_seconds = time.perf_counter() - started
    counts.foreign_keys_checked = any(checks)
    loader.bar.close(f"COPY {counts.copy_rate:,.0f} entries/s")


ENTRY_TABLES = ("time_entries", "time_entry_tags")
INDEX_MEMORY = "256MB"  # per index build: a sort of a few million keys stays in memory


def set_aside_indexes(database_url: str) -> list[str]:
    """Drop the entry tables' plain indexes when the tables are empty, as `pg_restore` loads
    data before it builds indexes: kept up to date row by row, the three (org, ...) btrees
    of time_entries cost more backend CPU than the rest of the COPY (5.2 s a million
    entries); built once afterwards, two at a time, about two thirds of that. Unique,
    primary-key and exclusion indexes stay, so every constraint is still checked during the
    load. Returns the `CREATE INDEX` statements that put them back (none when the tables
    hold data already: their rows would go unindexed for the whole load). A run killed
    before it builds them leaves them missing: `python -m bench` recreates its database."""
    with psycopg.connect(plain_url(database_url)) as conn:
        if conn.execute(
            "SELECT EXISTS (SELECT FROM time_entries) OR EXISTS (SELECT FROM time_entry_tags)"
        ).fetchone() != (False,):
            return []
        plain = conn.execute(
            "SELECT n.nspname, c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisunique"
            " AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
            " ORDER BY c.relname",
            [list(ENTRY_TABLES)],
        ).fetchall()
        try:
            conn.execute("SET LOCAL lock_timeout = '2s'")  # never queue behind a session
            for schema, name, _ in plain:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.LockNotAvailable):
            conn.rollback()
            return []
    return [definition for _, _, definition in plain]


def restore_indexes(database_url: str, statements: list[str], connections: int) -> None:
    """Build the indexes set aside, `connections` at a time."""

    def build(statement: str) -> None:
        with psycopg.connect(plain_url(database_url), autocommit=True) as conn:
            conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(INDEX_MEMORY))
            conn.execute(statement.encode())

    with ThreadPoolExecutor(max_workers=connections) as pool:
        list(pool.map(build, statements))


def _load(database_url: str, loader: Loader) -> bool:
    """One loading connection: take runs of members until none is left. Returns whether
    foreign keys were checked row by row."""
    with psycopg.connect(plain_url(database_url)) as conn:
        checked = not skip_reference_checks(conn)
        while True:
            first, end = loader.take()
            if first == end:
                return checked
            chunk = Chunk(id_prefix=loader.id_prefix)
            _copy_members(conn, loader, range(first, end), chunk)
            copy_binary(conn, "time_entry_tags", TAG_COLUMNS, chunk.tags)
            conn.commit()
            loader.done(chunk)


def _copy_members(
    conn: psycopg.Connection[object], loader: Loader, positions: range, chunk: Chunk
) -> None:
    """One COPY fed member by member, so the server parses rows while the next member's
    are generated. Each member has its own random generator and id range: the data do
    not depend on which connection loads whom."""
    seed = loader.options.seed
    statement = f"COPY time_entries ({ENTRY_COLUMNS}) FROM STDIN {BINARY}"
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.write(COPY_SIGNATURE)
        for position in positions:
            org, member = loader.members[position]
            chunk.next_id = member.first_id
            rng = random.Random(seed * 1_000_003 + position)
            member_entries(rng, org, member, chunk)
            copy.write(b"".join(chunk.entries))
            chunk.entries_sent += len(chunk.entries)
            chunk.entries.clear()
        copy.write(COPY_TRAILER)


def skip_reference_checks(conn: psycopg.Connection[object]) -> bool:
    """Skip the foreign-key triggers while loading entries, as `pg_restore
    --disable-triggers` does: the rows reference what was just written by construction
    (tests/bench checks it) and the triggers would cost 60 % of the load. Unique, check and
    exclusion constraints are still enforced. Needs a superuser; otherwise the checks stay."""
    try:
        conn.execute("SET session_replication_role = replica")
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback()
        print(
            "bench.generate: not a superuser, foreign keys are checked row by row", file=sys.stderr
        )
        return False
    return True


def log_organizations(conn: psycopg.Connection[object], orgs: list[Org]) -> None:
    """One change row per organization, as a command would have written."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO changes (org_id, entity, entity_id, op, payload)"
            " VALUES (%s, 'organization', %s, 'created', '{\"seeded\": true}')",
            [(org.id, org.id) for org in orgs],
        )


def analyze(conn: psycopg.Connection[object]) -> None:
    """Set hint bits and statistics now, as a settled database would have them."""
    conn.commit()
    previous = conn.autocommit
    conn.autocommit = True
    try:
        conn.execute("VACUUM (ANALYZE) time_entries, time_entry_tags")
        conn.execute(
            "ANALYZE organizations, users, memberships, teams, team_members, clients,"
            " projects, project_members, tasks, tags"
        )
    finally:
        conn.autocommit = previous


# --- the whole run ------------------------------------------------------------------------


def plain_url(url: str) -> str:
    """A libpq URL (no SQLAlchemy driver suffix)."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def generate(
    database_url: str,
    options: Options,
    *,
    rebuild_projections: bool = True,
    loaders: int = LOADERS,
) -> tuple[Counts, list[str]]:
    """Generate, load, analyze and (by default) rebuild every projection. Returns the counts
    and the ids of the organizations made."""
    orgs = build_world(options)
    counts = Counts(
        organizations=len(orgs),
        users=sum(len(o.members) for o in orgs),
        projects=sum(len(o.projects) for o in orgs),
        tasks=sum(len(p.tasks) for o in orgs for p in o.projects),
        tags=sum(len(o.tags) for o in orgs),
    )
    with psycopg.connect(plain_url(database_url)) as conn:
        write_catalog(conn, orgs, options)
        log_organizations(conn, orgs)
        conn.commit()
        write_entries(database_url, orgs, options, counts, loaders)
        analyze(conn)
    if rebuild_projections:
        rebuild_all(database_url)
    return counts, [org.id for org in orgs]


def rebuild_all(database_url: str, progress: Callable[[str], StepProgress] = StepProgress) -> None:
    from sqlalchemy.orm import sessionmaker

    from projections.rebuild import CONNECTIONS, rebuild
    from projections.registry import PROJECTIONS
    from shared.db import make_engine

    engine = make_engine(database_url, pool_size=CONNECTIONS, max_overflow=0)
    try:
        sessions = sessionmaker(bind=engine)
        for projector in PROJECTIONS:
            rebuild(sessions, projector.name, progress(f"rebuild {projector.name}"))
    finally:
        engine.dispose()


def parse_args(argv: Sequence[str] | None) -> Arguments:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__)
    parser.add_argument("--entries", type=int, required=True, help="time entries to make")
    parser.add_argument("--orgs", type=int, default=4, help="organizations (default 4)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--until",
        type=date.fromisoformat,
        default=None,
        help="the covered year ends the day before (YYYY-MM-DD; default today, UTC)",
    )
    parser.add_argument(
        "--loaders", type=int, default=LOADERS, help=f"COPY connections (default {LOADERS})"
    )
    parser.add_argument("--no-rebuild", action="store_true", help="skip the projection rebuild")
    args = parser.parse_args(argv)
    if args.entries < 0 or args.orgs < 1 or args.loaders < 1:
        parser.error("--entries must be >= 0, --orgs and --loaders >= 1")
    return Arguments(
        Options(args.entries, args.orgs, args.seed, args.until),
        rebuild=not args.no_rebuild,
        loaders=args.loaders,
    )


@dataclass(frozen=True)
class Arguments:
    options: Options
    rebuild: bool
    loaders: int


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("bench.generate: DATABASE_URL is not set", file=sys.stderr)
        return 2
    try:
        counts, _ = generate(
            url, args.options, rebuild_projections=args.rebuild, loaders=args.loaders
        )
    except psycopg.errors.UniqueViolation:
        seed = args.options.seed
        print(
            f"bench.generate: seed {seed}'s data are already there: use another --seed",
            file=sys.stderr,
        )
        return 1
    print(
        f"{counts.entries:,} entries ({counts.running_timers} running, {counts.entry_tags:,} tag"
        f" links) for {counts.users:,} users in {counts.organizations} organizations;"
        f" COPY {counts.copy_seconds:.1f} s = {counts.copy_rate:,.0f} entries/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
