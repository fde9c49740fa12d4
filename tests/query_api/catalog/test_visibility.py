"""Who sees what in the catalog, role by role, on one organization.

The world: an owner, an admin, a manager leading team Alpha (with sub-team Beta), Uma in
Beta, Walt in Alpha and Xena in no team. Everyone tracked time on project P (rate 3600:
a billable second is worth one minor unit); Uma and Xena on its task T too.

Every member sees the whole catalog (members, teams, clients, projects, tasks, tags);
rates of members only admins and owners; totals only the entries the reader may see
(manager: their own, Alpha's and Beta's; member: their own); budget use the whole project.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine

from tests.conftest import BackgroundProjector
from tests.factories import OrgHandle, UserHandle, add_member, make_org, make_user
from tests.query_api.catalog.helpers import Reader, Writer, entry


@dataclass
class World:
    org: OrgHandle
    people: dict[str, UserHandle]
    project: uuid.UUID
    task: uuid.UUID
    client: uuid.UUID
    tag: uuid.UUID
    teams: dict[str, uuid.UUID]


# (who, start, end, billable, on task T) — P's entries; the admin's is not billable.
ENTRIES = (
    ("uma", "2025-03-03T09:00:00Z", "2025-03-03T10:00:00Z", True, True),  # 3600
    ("walt", "2025-03-04T09:00:00Z", "2025-03-04T11:00:00Z", True, False),  # 7200
    ("manager", "2025-03-05T09:00:00Z", "2025-03-05T09:30:00Z", True, False),  # 1800
    ("xena", "2025-04-01T09:00:00Z", "2025-04-01T12:00:00Z", True, True),  # 10800
    ("admin", "2025-03-06T09:00:00Z", "2025-03-06T10:00:00Z", False, False),  # 3600
    ("owner", "2025-02-10T08:00:00Z", "2025-02-10T12:00:00Z", True, False),  # 14400
)
TOTAL_SECONDS = 41400
BUDGET_SECONDS = 2 * TOTAL_SECONDS  # budget_used 0.5 (time); money: 37800 / 378000 = 0.1
TASK_BUDGET_SECONDS = 28800  # Uma + Xena = 14400: 0.5

# role -> (P: tracked, billable, amount), T: tracked, sees member rates
EXPECTED: dict[str, tuple[tuple[int, int, int], int, bool]] = {
    "owner": ((41400, 37800, 37800), 14400, True),
    "admin": ((41400, 37800, 37800), 14400, True),
    "manager": ((12600, 12600, 12600), 3600, False),  # own + Walt (Alpha) + Uma (Beta)
    "uma": ((3600, 3600, 3600), 3600, False),
    "xena": ((10800, 10800, 10800), 10800, False),
}
ROLES = {
    "owner": "owner",
    "admin": "admin",
    "manager": "manager",
    "uma": "member",
    "xena": "member",
}


def build_world(db: Engine, writer: Writer) -> World:
    org = make_org(db)
    people = {
        "owner": org.owner,
        "admin": add_member(db, org, "admin", hourly_rate_amount=9000),
        "manager": add_member(db, org, "manager", hourly_rate_amount=8000),
        "uma": add_member(db, org, "member", user=make_user(db, full_name="Uma")),
        "walt": add_member(db, org, "member", user=make_user(db, full_name="Walt")),
        "xena": add_member(db, org, "member", user=make_user(db, full_name="Xena")),
    }
    alpha = writer.create(org, "/teams", {"name": "Alpha"})
    beta = writer.create(org, "/teams", {"name": "Beta", "parent_id": str(alpha)})
    for team, who, is_lead in (
        (alpha, "manager", True),
        (alpha, "walt", False),
        (beta, "uma", False),
    ):
        path = org.path(f"/teams/{team}/members/{people[who].id}")
        writer.send("PUT", path, org.owner, {"is_lead": is_lead}, status=200)
    client = writer.create(org, "/clients", {"name": "Client"})
    project = writer.create(
        org,
        "/projects",
        {
            "name": "P",
            "client_id": str(client),
            "hourly_rate": 3600,
            "budget_seconds": BUDGET_SECONDS,
            "budget_amount": 378000,
        },
    )
    task = writer.create(
        org, f"/projects/{project}/tasks", {"name": "T", "budget_seconds": TASK_BUDGET_SECONDS}
    )
    for who, start, end, billable, on_task in ENTRIES:
        extra: dict[str, Any] = {"task_id": str(task)} if on_task else {}
        entry(
            writer,
            org,
            people[who],
            start,
            end,
            project_id=str(project),
            billable=billable,
            **extra,
        )
    tag = writer.create(org, "/tags", {"name": "tag"})
    # Walt's running timer counts nowhere but in his own GET …/timer.
    writer.send("POST", org.path("/timer/start"), people["walt"], {"project_id": str(project)})
    return World(org, people, project, task, client, tag, {"alpha": alpha, "beta": beta})


def test_each_role_sees_exactly_its_part(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    writer = Writer(api)
    world = build_world(db, writer)
    reader = Reader(qapi, writer)
    everyone = {str(user.id) for user in world.people.values()}
    reference: dict[str, Any] = {}

    for who, ((tracked, billable, amount), task_tracked, sees_rates) in EXPECTED.items():
        user = world.people[who]

        def get(suffix: str, user: UserHandle = user) -> Any:
            return reader.data(world.org.path(suffix), user)

        assert get("")["role"] == ROLES[who], who

        members = get("/members")
        assert {m["user_id"] for m in members} == everyone, who
        rates = {m["user_id"]: m["hourly_rate"] for m in members}
        admin_rate = rates[str(world.people["admin"].id)]
        assert admin_rate == (9000 if sees_rates else None), who
        if not sees_rates:
            assert set(rates.values()) == {None}, who

        project = get(f"/projects/{world.project}")
        listed = get("/projects")
        assert listed == [project], who
        seen = (project["tracked_seconds"], project["billable_seconds"], project["amount"])
        assert seen == (tracked, billable, amount), who
        assert project["budget_used"] == 0.5, who  # the whole project, whoever asks

        tasks = get(f"/projects/{world.project}/tasks")
        assert [(t["id"], t["tracked_seconds"], t["budget_used"]) for t in tasks] == [
            (str(world.task), task_tracked, 0.5)
        ], who

        assert get("/timer") is None, who  # only Walt runs a timer

        # The rest of the catalog is the same for everyone.
        same = {
            "teams": get("/teams"),
            "clients": get("/clients"),
            "tags": get("/tags"),
            "projects": [
                {**p, "tracked_seconds": 0, "billable_seconds": 0, "amount": 0} for p in listed
            ],
            "members": [{**m, "hourly_rate": None} for m in members],
        }
        if reference:
            assert same == reference, who
        reference = same

    teams = reference["teams"]
    assert [(t["id"], t["parent_id"]) for t in teams] == [
        (str(world.teams["alpha"]), None),
        (str(world.teams["beta"]), str(world.teams["alpha"])),
    ]
    assert teams[0]["leads"] == [{"id": str(world.people["manager"].id), "full_name": "A manager"}]
    timer = reader.data(world.org.path("/timer"), world.people["walt"])
    assert timer["user"]["id"] == str(world.people["walt"].id)
    assert timer["project"]["id"] == str(world.project)
