"""Who the HTTP benchmarks act as: the biggest generated organization (the most members),
its owner (an admin sees everything: the largest reports) and members who write entries,
each on projects they are assigned to; and what those writers send.

Read from the database, so that reused data work as well as fresh ones.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.types.json import Jsonb

from bench.generate import plain_url
from bench.servers import API_PREFIX, token_for

# Entries written by the benchmarks: recent working hours, spread over many users and days
# as real traffic is (a day bucket of one user holds a handful of entries, not thousands).
RECENT_DAYS = 28
DESCRIPTION = "bench write"
MIN_MINUTES, MAX_MINUTES = 15, 120


@dataclass(frozen=True)
class Writer:
    user_id: str
    token: str
    project_ids: tuple[str, ...]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Organization:
    id: str
    timezone: str
    week_start: int  # ISO weekday the week starts on
    members: int
    owner: Writer
    writers: list[Writer]
    last_day: date  # the local day of the latest finished entry

    def path(self, suffix: str) -> str:
        return f"{API_PREFIX}/organizations/{self.id}{suffix}"


def biggest_organization(database_url: str, writers: int = 256) -> Organization:
    """The organization with the most members, its first owner, and up to `writers` members
    (owner excluded) with the projects they are assigned to."""
    with psycopg.connect(plain_url(database_url)) as conn:
        row = conn.execute(
            "SELECT o.id, o.timezone, o.week_start, count(*) FROM organizations o"
            " JOIN memberships m ON m.org_id = o.id AND m.deleted_at IS NULL"
            " WHERE o.deleted_at IS NULL GROUP BY o.id ORDER BY count(*) DESC, o.id LIMIT 1"
        ).fetchone()
        if row is None:
            raise RuntimeError("no organization in the benchmark's database")
        org_id, timezone, week_start, members = str(row[0]), str(row[1]), int(row[2]), int(row[3])
        people = conn.execute(
            "SELECT m.user_id, m.role, array_remove(array_agg(p.id ORDER BY p.id), NULL)"
            " FROM memberships m"
            " LEFT JOIN project_members pm ON pm.org_id = m.org_id AND pm.user_id = m.user_id"
            " LEFT JOIN projects p ON p.id = pm.project_id AND NOT p.archived"
            " AND p.deleted_at IS NULL"
            " WHERE m.org_id = %s AND m.deleted_at IS NULL"
            " GROUP BY m.user_id, m.role ORDER BY m.role <> 'owner', m.user_id",
            (org_id,),
        ).fetchall()
        latest = conn.execute(
            "SELECT max(start_at) FROM time_entries"
            " WHERE org_id = %s AND end_at IS NOT NULL AND deleted_at IS NULL",
            (org_id,),
        ).fetchone()
    everyone = [
        Writer(str(user_id), token_for(user_id), tuple(str(p) for p in projects))
        for user_id, _, projects in people
    ]
    zone = ZoneInfo(timezone)
    last = latest[0] if latest and latest[0] else datetime.now(UTC)
    return Organization(
        id=org_id,
        timezone=timezone,
        week_start=week_start,
        members=members,
        owner=everyone[0],
        writers=everyone[1 : writers + 1] or everyone[:1],
        last_day=last.astimezone(zone).date(),
    )


class Entries:
    """Entries to write: a random recent working interval of a writer, on one of their
    projects (or none). The same entry is available as an API body and as table rows."""

    def __init__(self, org: Organization, seed: int) -> None:
        self.org = org
        self.rng = random.Random(seed)
        self.today = datetime.now(UTC).date()

    def interval(self) -> tuple[datetime, datetime]:
        day = self.today - timedelta(days=self.rng.randrange(RECENT_DAYS))
        minute = self.rng.randrange(7 * 60, 18 * 60)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minute)
        return start, start + timedelta(minutes=self.rng.randint(MIN_MINUTES, MAX_MINUTES))

    def body(self, writer: Writer, *, for_user: bool = False) -> dict[str, Any]:
        """A POST …/time-entries body (with `user_id` when someone else writes it)."""
        start, end = self.interval()
        body: dict[str, Any] = {
            "start_at": start.isoformat(),
            "end_at": end.isoformat(),
            "description": DESCRIPTION,
        }
        if writer.project_ids:
            body["project_id"] = self.rng.choice(writer.project_ids)
        if for_user:
            body["user_id"] = writer.user_id
        return body


# What a plain client of PostgreSQL writes for one entry: the row and its change row.
ENTRY_COLUMNS = (
    "id, org_id, user_id, project_id, description, billable, start_at, end_at,"
    " hourly_rate_amount, no_overlap"
)
CHANGE_COLUMNS = "org_id, entity, entity_id, op, payload"
RATE = 10_000


def entry_row(org_id: str, user_id: str, body: dict[str, Any]) -> tuple[Any, ...]:
    """The time_entries row (ENTRY_COLUMNS) of an API body, as the command would write it."""
    return (
        uuid.uuid4(),
        org_id,
        user_id,
        body.get("project_id"),
        body["description"],
        "project_id" in body,
        datetime.fromisoformat(body["start_at"]),
        datetime.fromisoformat(body["end_at"]),
        RATE,
        False,
    )


def change_payload(row: tuple[Any, ...]) -> dict[str, Any]:
    """The change row's payload of an entry row, shaped as the command's (`old`/`new`)."""
    _, _, user_id, project_id, description, billable, start, end, rate, _ = row
    seconds = int((end - start).total_seconds())
    return {
        "old": None,
        "new": {
            "user_id": str(user_id),
            "project_id": project_id,
            "task_id": None,
            "billable": billable,
            "start_at": start.isoformat(),
            "end_at": end.isoformat(),
            "duration_seconds": seconds,
            "hourly_rate": rate,
            "amount": (seconds * rate + 1800) // 3600 if billable else 0,
            "tag_ids": [],
            "description": description,
        },
    }


def change_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The change row (CHANGE_COLUMNS) of an entry row."""
    return (row[1], "time_entry", row[0], "created", Jsonb(change_payload(row)))
