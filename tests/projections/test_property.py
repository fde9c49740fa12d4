"""Property: after any sequence of commands, and whatever the batch sizes, duplicated or
concurrent wake-ups, every projection equals a rebuild from the normalized tables, and the
totals equal an oracle computed here in plain Python from the normalized rows.

`EVOTRACK_HYPOTHESIS_EXAMPLES` sets the number of examples (default 200).
"""

from __future__ import annotations

import os
import random
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pprint import pformat
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from projections.rebuild import verify
from projections.registry import PROJECTIONS
from projections.runner import advance
from projections.status import projection_status
from tests.conftest import LiveServer
from tests.factories import OrgHandle, UserHandle, add_member, make_org
from tests.projections.conftest import drain

EXAMPLES = int(os.environ.get("EVOTRACK_HYPOTHESIS_EXAMPLES", "200"))
WEEK_START = datetime(2026, 3, 23, tzinfo=UTC)  # holds Europe's spring DST change
ZONES = ("Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata")

small = st.integers(min_value=0, max_value=7)
entry_fields = st.fixed_dictionaries(
    {
        "day": st.integers(0, 6),
        "minute": st.integers(0, 24 * 60 - 1),
        "duration": st.integers(1, 600),
        "project": st.none() | small,
        "tags": st.lists(small, max_size=2, unique=True),
        "billable": st.booleans(),
        "for_member": st.booleans(),
    }
)
command = st.one_of(
    st.tuples(st.just("create"), entry_fields),
    st.tuples(st.just("bulk"), st.lists(entry_fields, min_size=1, max_size=3)),
    st.tuples(st.just("edit"), st.tuples(small, entry_fields)),
    st.tuples(st.just("delete"), small),
    st.tuples(st.just("timer_start"), st.none() | small),
    st.tuples(st.just("timer_stop"), st.none()),
    st.tuples(st.just("rename_project"), small),
    st.tuples(st.just("rename_client"), small),
    st.tuples(st.just("rename_tag"), small),
    st.tuples(st.just("project_rate"), st.tuples(small, st.integers(0, 20000))),
    st.tuples(st.just("remove_member"), st.none()),
    st.tuples(st.just("move_team"), st.none()),
    st.tuples(st.just("timezone"), st.sampled_from(ZONES)),
)
projection_plan = st.lists(
    st.tuples(st.integers(0, len(PROJECTIONS) - 1), st.integers(1, 40), st.booleans()),
    max_size=6,
)


@dataclass
class World:
    client: httpx.Client
    org: OrgHandle
    member: UserHandle
    projects: list[str] = field(default_factory=list)
    clients: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)
    entries: list[str] = field(default_factory=list)
    member_removed: bool = False
    # Every command sent and its answer, for a failure's diagnosis.
    calls: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return self.org.owner.headers

    def call(
        self, method: str, path: str, body: Any = None, *, expect: int | None = None
    ) -> httpx.Response:
        """Send a command. Most may be refused (an overlap, a timer already running);
        `expect` names the answer of one that cannot be, so that a refusal fails here with
        its reason instead of later as a difference nobody can explain."""
        response = self.client.request(method, self.org.path(path), json=body, headers=self.headers)
        self.calls.append(f"{method} {path or '/'} -> {response.status_code}")
        assert response.status_code < 500, response.text
        assert expect is None or response.status_code == expect, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        return response

    def pick(self, items: list[str], index: int | None) -> str | None:
        return items[index % len(items)] if items and index is not None else None

    def entry_body(self, f: dict[str, Any]) -> dict[str, Any]:
        start = WEEK_START + timedelta(days=f["day"], minutes=f["minute"])
        body: dict[str, Any] = {
            "start_at": start.isoformat(),
            "end_at": (start + timedelta(minutes=f["duration"])).isoformat(),
            "project_id": self.pick(self.projects, f["project"]),
            "tag_ids": sorted({t for i in f["tags"] if (t := self.pick(self.tags, i))}),
            "billable": f["billable"],
        }
        if f["for_member"] and not self.member_removed:
            body["user_id"] = str(self.member.id)
        return body


def build_world(client: httpx.Client, db: Engine) -> World:
    org = make_org(db, timezone="Europe/Berlin", hourly_rate_amount=4000)
    member = add_member(db, org, "member", hourly_rate_amount=2500)
    world = World(client, org, member)
    for i in range(2):
        world.clients.append(
            world.call("POST", "/clients", {"name": f"Client {i}"}).json()["data"]["id"]
        )
    for i in range(3):
        body = {"name": f"Project {i}", "client_id": world.clients[i % 2], "hourly_rate": 3000 + i}
        world.projects.append(world.call("POST", "/projects", body).json()["data"]["id"])
    for i in range(3):
        world.tags.append(world.call("POST", "/tags", {"name": f"tag {i}"}).json()["data"]["id"])
    parent = world.call("POST", "/teams", {"name": "Parent"}).json()["data"]["id"]
    child = world.call("POST", "/teams", {"name": "Child", "parent_id": parent}).json()["data"][
        "id"
    ]
    other = world.call("POST", "/teams", {"name": "Other"}).json()["data"]["id"]
    world.teams = [parent, child, other]
    world.call("PUT", f"/teams/{child}/members/{member.id}", {"is_lead": False})
    return world


def run(world: World, name: str, arg: Any) -> None:  # noqa: C901 - one branch per command
    if name == "create":
        response = world.call("POST", "/time-entries", world.entry_body(arg))
        if response.status_code == 201:
            world.entries.append(response.json()["data"]["id"])
    elif name == "bulk":
        response = world.call(
            "POST", "/time-entries/bulk", {"entries": [world.entry_body(f) for f in arg]}
        )
        if response.status_code == 201:
            world.entries.extend(response.json()["data"]["ids"])
    elif name == "edit" and world.entries:
        index, fields = arg
        body = world.entry_body(fields)
        body.pop("user_id", None)
        world.call("PATCH", f"/time-entries/{world.pick(world.entries, index)}", body)
    elif name == "delete" and world.entries:
        world.call("DELETE", f"/time-entries/{world.entries.pop(arg % len(world.entries))}")
    elif name == "timer_start":
        response = world.call(
            "POST", "/timer/start", {"project_id": world.pick(world.projects, arg)}
        )
        if response.status_code == 201:
            world.entries.append(response.json()["data"]["id"])
    elif name == "timer_stop":
        world.call("POST", "/timer/stop")
    elif name == "rename_project":
        world.call(
            "PATCH",
            f"/projects/{world.pick(world.projects, arg)}",
            {"name": f"P {uuid.uuid4().hex[:8]}"},
        )
    elif name == "rename_client":
        world.call(
            "PATCH",
            f"/clients/{world.pick(world.clients, arg)}",
            {"name": f"C {uuid.uuid4().hex[:8]}"},
        )
    elif name == "rename_tag":
        world.call(
            "PATCH", f"/tags/{world.pick(world.tags, arg)}", {"name": f"t {uuid.uuid4().hex[:8]}"}
        )
    elif name == "project_rate":
        index, rate = arg
        world.call("PATCH", f"/projects/{world.pick(world.projects, index)}", {"hourly_rate": rate})
    elif name == "remove_member" and not world.member_removed:
        world.call("DELETE", f"/members/{world.member.id}", expect=204)
        world.member_removed = True
    elif name == "move_team":
        parent, child, other = world.teams
        world.call("PATCH", f"/teams/{child}", {"parent_id": other}, expect=200)
    elif name == "timezone":
        world.call("PATCH", "", {"timezone": arg}, expect=200)


def project_randomly(sessions: sessionmaker[Session], plan: list[tuple[int, int, bool]]) -> None:
    """Advance with the given batch sizes, some wake-ups doubled and run concurrently."""
    for index, batch_size, concurrent in plan:
        projector = PROJECTIONS[index]
        if concurrent:
            threads = [
                threading.Thread(
                    target=advance,
                    args=(sessions, projector),
                    kwargs={"batch_size": batch_size, "max_batches": 3},
                )
                for _ in range(2)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        else:
            advance(sessions, projector, batch_size=batch_size, max_batches=2)
            advance(sessions, projector, batch_size=batch_size, max_batches=1)  # duplicate wake-up
    drain(sessions)


def database_now(db: Engine) -> datetime:
    with db.connect() as conn:
        now: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    return now


def log_position(db: Engine, world: World) -> dict[str, Any]:
    """For a failure: each projection's status (checkpoint, watermark, lag, dead letters),
    every change row of the world (its users' and its organization's, with the catalog's
    dead letters, if any, beside them: was a change skipped, set aside, or never logged?),
    which of its users the live catalog has, and the commands sent with their answers."""
    with Session(db) as session:
        status = [s.as_dict() for s in projection_status(session)]
        changes = session.execute(
            text(
                "SELECT c.id, c.tx::text, c.entity, c.op,"
                " (SELECT string_agg(d.projection || CASE WHEN d.resolved_at IS NULL THEN ''"
                "  ELSE ' (resolved)' END, ',')"
                "  FROM projection_dead_letters d WHERE d.change_id = c.id) AS dead"
                " FROM changes c WHERE c.entity_id = ANY(:users) OR c.org_id = :org"
                " ORDER BY c.tx, c.id"
            ),
            {"users": [world.org.owner.id, world.member.id], "org": world.org.id},
        ).all()
        projected_users = (
            session.execute(
                text("SELECT id FROM proj_users WHERE id = ANY(:users)"),
                {"users": [world.org.owner.id, world.member.id]},
            )
            .scalars()
            .all()
        )
        xmin = session.execute(
            text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
        ).scalar_one()
    return {
        "status": status,
        "xmin": xmin,
        "changes": changes,
        "owner": world.org.owner.id,
        "member": world.member.id,
        "proj_users": projected_users,
        "calls": world.calls,
    }


def dead_letters_since(db: Engine, since: datetime) -> list[tuple[str, str, str]]:
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT d.projection, c.entity, d.error FROM projection_dead_letters d"
                " JOIN changes c ON c.id = d.change_id WHERE d.created_at >= :since"
            ),
            {"since": since},
        ).all()
    return [(projection, entity, error) for projection, entity, error in rows]


Key = tuple[date, str, str | None, str | None, bool]


def oracle(db: Engine, org_id: uuid.UUID) -> tuple[dict[Key, list[int]], dict[str, list[int]]]:
    """Daily totals and project stats computed in Python from the normalized rows."""
    with db.connect() as conn:
        zone = ZoneInfo(
            conn.execute(
                text("SELECT timezone FROM organizations WHERE id = :o"), {"o": org_id}
            ).scalar_one()
        )
        rows = conn.execute(
            text(
                "SELECT user_id::text, project_id::text, task_id::text, billable, start_at, end_at,"
                " hourly_rate_amount FROM time_entries"
                " WHERE org_id = :o AND deleted_at IS NULL AND end_at IS NOT NULL"
            ),
            {"o": org_id},
        ).all()
    daily: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    projects: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for user, project, task, billable, start_at, end_at, rate in rows:
        seconds = int((end_at - start_at).total_seconds())
        amount = (seconds * rate + 1800) // 3600 if billable else 0
        values = (seconds, seconds if billable else 0, amount, 1)
        for target in [daily[(start_at.astimezone(zone).date(), user, project, task, billable)]] + (
            [projects[project]] if project else []
        ):
            for i, value in enumerate(values):
                target[i] += value
    return dict(daily), dict(projects)


def projected(db: Engine, org_id: uuid.UUID) -> tuple[dict[Key, list[int]], dict[str, list[int]]]:
    with db.connect() as conn:
        daily = {
            (day, user, project, task, billable): [s, b, a, n]
            for day, user, project, task, billable, s, b, a, n in conn.execute(
                text(
                    "SELECT day, user_id::text, project_id::text, task_id::text, billable,"
                    " seconds, billable_seconds, amount, entries FROM proj_daily_totals"
                    " WHERE org_id = :o"
                ),
                {"o": org_id},
            )
        }
        projects = {
            project: [s, b, a, n]
            for project, s, b, a, n in conn.execute(
                text(
                    "SELECT project_id::text, seconds, billable_seconds, amount, entries"
                    " FROM proj_project_stats WHERE org_id = :o AND entries > 0"
                ),
                {"o": org_id},
            )
        }
    return daily, projects


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    commands=st.lists(command, min_size=1, max_size=12),
    plan=projection_plan,
    seed=st.integers(0, 2**16),
)
def test_projections_equal_a_rebuild_and_the_oracle(
    command_server: LiveServer,
    db: Engine,
    commands: list[tuple[str, Any]],
    plan: list[tuple[int, int, bool]],
    seed: int,
) -> None:
    random.seed(seed)
    sessions = sessionmaker(bind=db)
    started = database_now(db)
    with httpx.Client(base_url=f"{command_server.url}/api/v1", timeout=60) as client:
        world = build_world(client, db)
        for name, arg in commands:
            run(world, name, arg)
    project_randomly(sessions, plan)
    # A change set aside is skipped for good: show its error rather than a diff below.
    assert dead_letters_since(db, started) == []
    for projector in PROJECTIONS:
        result = verify(sessions, projector.name, org_ids=[world.org.id])
        # A str message, which pytest shows whole (a tuple was cut to 240 characters).
        assert result.ok, pformat(
            ([(d.table, d.missing, d.unexpected, d.samples) for d in result.diffs],
             log_position(db, world)),
            width=100,
        )  # fmt: skip
    assert projected(db, world.org.id) == oracle(db, world.org.id)
