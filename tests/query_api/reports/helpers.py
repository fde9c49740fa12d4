"""A small organization written through the command API, the entries the test wrote, and
an oracle computing reports from those entries in plain Python (zoneinfo for local days).

The oracle never reads the database: it knows what was written, and the rules of API.md.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Engine

from tests.factories import OrgHandle, UserHandle, add_member, make_org, make_user

NONE = "(none)"
SUMS = ("seconds", "billable_seconds", "amount", "entries")


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    client_id: str | None
    rate: int | None
    color: str


@dataclass(frozen=True)
class Entry:
    user_id: str
    project_id: str | None
    task_id: str | None
    tag_ids: tuple[str, ...]
    start_at: datetime
    end_at: datetime | None
    billable: bool
    rate: int

    @property
    def seconds(self) -> int:
        assert self.end_at is not None
        return int((self.end_at - self.start_at).total_seconds())

    @property
    def amount(self) -> int:
        return (self.seconds * self.rate + 1800) // 3600 if self.billable else 0


@dataclass
class World:
    """An organization with two clients, three projects (one without a client), tasks, tags,
    a team tree and four people with different rates; and every entry written."""

    api: httpx.Client
    db: Engine
    org: OrgHandle
    timezone: str
    week_start: int
    org_rate: int | None
    people: dict[str, UserHandle] = field(default_factory=dict)
    member_rates: dict[str, int | None] = field(default_factory=dict)
    clients: dict[str, str] = field(default_factory=dict)
    projects: list[Project] = field(default_factory=list)
    tasks: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (project, name)
    tags: dict[str, str] = field(default_factory=dict)
    teams: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # id -> (name, parent)
    team_members: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    entries: list[Entry] = field(default_factory=list)
    token: str = ""

    @property
    def owner(self) -> UserHandle:
        return self.org.owner

    def post(self, path: str, body: dict[str, Any], user: UserHandle | None = None) -> Any:
        response = self.api.post(
            self.org.path(path), json=body, headers=(user or self.owner).headers
        )
        assert response.status_code in (200, 201), response.text
        self.token = response.headers["X-Consistency-Token"]
        return response.json()["data"]

    def put(self, path: str, body: dict[str, Any]) -> Any:
        response = self.api.put(self.org.path(path), json=body, headers=self.owner.headers)
        assert response.status_code == 200, response.text
        self.token = response.headers["X-Consistency-Token"]
        return response.json()["data"]

    def headers(self, user: UserHandle | None = None) -> dict[str, str]:
        return {**(user or self.owner).headers, "X-Consistency-Token": self.token}

    # --- the catalog ---------------------------------------------------------------------

    def add_person(self, key: str, role: str, name: str, rate: int | None) -> UserHandle:
        user = make_user(self.db, full_name=name)
        add_member(self.db, self.org, role, hourly_rate_amount=rate, user=user)
        self.people[key] = user
        self.member_rates[str(user.id)] = rate
        return user

    def add_client(self, name: str) -> str:
        client_id = str(self.post("/clients", {"name": name})["id"])
        self.clients[client_id] = name
        return client_id

    def add_project(self, name: str, client_id: str | None, rate: int | None, color: str) -> str:
        body = {"name": name, "client_id": client_id, "hourly_rate": rate, "color": color}
        project_id = str(self.post("/projects", body)["id"])
        self.projects.append(Project(project_id, name, client_id, rate, color))
        return project_id

    def add_task(self, project_id: str, name: str) -> str:
        task_id = str(self.post(f"/projects/{project_id}/tasks", {"name": name})["id"])
        self.tasks[task_id] = (project_id, name)
        return task_id

    def add_tag(self, name: str) -> str:
        tag_id = str(self.post("/tags", {"name": name})["id"])
        self.tags[tag_id] = name
        return tag_id

    def add_team(self, name: str, parent_id: str | None = None) -> str:
        team_id = str(self.post("/teams", {"name": name, "parent_id": parent_id})["id"])
        self.teams[team_id] = (name, parent_id)
        return team_id

    def join_team(self, team_id: str, user: UserHandle, *, lead: bool = False) -> None:
        self.put(f"/teams/{team_id}/members/{user.id}", {"is_lead": lead})
        self.team_members[str(user.id)].add(team_id)

    # --- entries -------------------------------------------------------------------------

    def project(self, project_id: str | None) -> Project | None:
        return next((p for p in self.projects if p.id == project_id), None)

    def rate_for(self, user_id: str, project_id: str | None) -> int:
        project = self.project(project_id)
        for rate in (
            project.rate if project else None,
            self.member_rates.get(user_id),
            self.org_rate,
        ):
            if rate is not None:
                return rate
        return 0

    def entry(
        self,
        user: UserHandle,
        start_at: datetime,
        seconds: int,
        *,
        project_id: str | None = None,
        task_id: str | None = None,
        tag_ids: tuple[str, ...] = (),
        billable: bool = True,
    ) -> Entry:
        return Entry(
            user_id=str(user.id),
            project_id=project_id,
            task_id=task_id,
            tag_ids=tag_ids,
            start_at=start_at,
            end_at=start_at + timedelta(seconds=seconds),
            billable=billable,
            rate=self.rate_for(str(user.id), project_id),
        )

    def write(self, entries: list[Entry]) -> None:
        """Writes entries in one all-or-nothing bulk command and remembers them."""
        for start in range(0, len(entries), 1000):
            chunk = entries[start : start + 1000]
            body = {"entries": [_entry_body(e) for e in chunk]}
            created = self.post("/time-entries/bulk", body)
            assert created["created"] == len(chunk)
            self.entries.extend(chunk)

    # --- derived facts the oracle needs --------------------------------------------------

    def team_subtree(self, team_id: str) -> set[str]:
        found = {team_id}
        changed = True
        while changed:
            changed = False
            for tid, (_, parent) in self.teams.items():
                if parent in found and tid not in found:
                    found.add(tid)
                    changed = True
        return found

    def users_of_team(self, team_id: str) -> set[str]:
        subtree = self.team_subtree(team_id)
        return {user for user, teams in self.team_members.items() if teams & subtree}

    def name_of_user(self, user_id: str) -> str:
        return next(u.full_name for u in self.people.values() if str(u.id) == user_id)


def _entry_body(entry: Entry) -> dict[str, Any]:
    return {
        "user_id": entry.user_id,
        "start_at": entry.start_at.isoformat(),
        "end_at": entry.end_at.isoformat() if entry.end_at else None,
        "project_id": entry.project_id,
        "task_id": entry.task_id,
        "tag_ids": list(entry.tag_ids),
        "billable": entry.billable,
        "description": "work",
    }


def build_world(
    api: httpx.Client,
    db: Engine,
    *,
    timezone: str = "UTC",
    week_start: int = 1,
    org_rate: int | None = 6000,
) -> World:
    """Owner (no team), Ann (team Alpha, rate 9000), Bob (Alpha and its sub-team Beta),
    Cid (no team, no rate); clients Acme and Zenith; projects Apollo (Acme, rate 12000),
    Boreas (Zenith) and Ceres (no client); tasks on Apollo and Boreas; tags red, green, blue."""
    org = make_org(db, timezone=timezone, week_start=week_start, hourly_rate_amount=org_rate)
    world = World(api, db, org, timezone=timezone, week_start=week_start, org_rate=org_rate)
    world.people["owner"] = org.owner
    world.member_rates[str(org.owner.id)] = None
    world.add_person("ann", "member", "Ann Archer", 9000)
    world.add_person("bob", "member", "Bob Baker", None)
    world.add_person("cid", "member", "Cid Carter", None)
    acme = world.add_client("Acme")
    zenith = world.add_client("Zenith")
    apollo = world.add_project("Apollo", acme, 12000, "#112233")
    boreas = world.add_project("Boreas", zenith, None, "#445566")
    world.add_project("Ceres", None, None, "#778899")
    world.add_task(apollo, "Design")
    world.add_task(apollo, "Build")
    world.add_task(boreas, "Support")
    for name in ("red", "green", "blue"):
        world.add_tag(name)
    alpha = world.add_team("Alpha")
    beta = world.add_team("Beta", alpha)
    world.join_team(alpha, world.people["ann"])
    world.join_team(alpha, world.people["bob"])
    world.join_team(beta, world.people["bob"])
    return world


# --- The oracle ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    user_id: str | None = None
    team_id: str | None = None
    project_id: str | None = None
    client_id: str | None = None
    task_id: str | None = None
    tag_id: str | None = None
    billable: bool | None = None

    def params(self) -> dict[str, str]:
        values = {k: v for k, v in self.__dict__.items() if v is not None}
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}


def local_day(world: World, entry: Entry) -> date:
    return entry.start_at.astimezone(ZoneInfo(world.timezone)).date()


def week_key(day: date, week_start: int) -> str:
    first = day - timedelta(days=(day.isoweekday() - week_start) % 7)
    year, week, _ = first.isocalendar()
    return f"{year}-W{week:02d}"


def keys_of(world: World, entry: Entry, dim: str) -> list[Any]:
    """The group keys of one entry under one dimension (several for tags and teams)."""
    day = local_day(world, entry)
    project = world.project(entry.project_id)
    if dim == "project":
        return [entry.project_id]
    if dim == "client":
        return [project.client_id if project else None]
    if dim == "user":
        return [entry.user_id]
    if dim == "task":
        return [entry.task_id]
    if dim == "tag":
        return list(entry.tag_ids) or [None]
    if dim == "team":
        return sorted(world.team_members.get(entry.user_id, set())) or [None]
    if dim == "billable":
        return [entry.billable]
    if dim == "day":
        return [day.isoformat()]
    if dim == "week":
        return [week_key(day, world.week_start)]
    assert dim == "month"
    return [f"{day.year:04d}-{day.month:02d}"]


def label_of(world: World, dim: str, key: Any) -> str:
    if dim == "billable":
        return "Billable" if key else "Non-billable"
    if key is None:
        return NONE
    names: dict[str, dict[str, str]] = {
        "project": {p.id: p.name for p in world.projects},
        "client": world.clients,
        "task": {tid: name for tid, (_, name) in world.tasks.items()},
        "tag": world.tags,
        "team": {tid: name for tid, (name, _) in world.teams.items()},
    }
    if dim == "user":
        return world.name_of_user(key)
    if dim in names:
        return names[dim][key]
    return str(key)


def selected(
    world: World,
    date_from: date,
    date_to: date,
    filters: Filters,
    visible: set[str] | None = None,
) -> list[Entry]:
    """Finished entries of the range that pass the filters and the caller's scope."""
    team_users = world.users_of_team(filters.team_id) if filters.team_id else None
    chosen = []
    for entry in world.entries:
        project = world.project(entry.project_id)
        checks = [
            entry.end_at is not None,
            date_from <= local_day(world, entry) <= date_to,
            visible is None or entry.user_id in visible,
            filters.user_id is None or entry.user_id == filters.user_id,
            team_users is None or entry.user_id in team_users,
            filters.project_id is None or entry.project_id == filters.project_id,
            filters.client_id is None
            or (project is not None and project.client_id == filters.client_id),
            filters.task_id is None or entry.task_id == filters.task_id,
            filters.tag_id is None or filters.tag_id in entry.tag_ids,
            filters.billable is None or entry.billable == filters.billable,
        ]
        if all(checks):
            chosen.append(entry)
    return chosen


def _add(target: dict[str, int], entry: Entry) -> None:
    target["seconds"] += entry.seconds
    target["billable_seconds"] += entry.seconds if entry.billable else 0
    target["amount"] += entry.amount
    target["entries"] += 1


def _zero() -> dict[str, int]:
    return dict.fromkeys(SUMS, 0)


def oracle(world: World, entries: list[Entry], group_by: tuple[str, ...]) -> dict[str, Any]:
    """The summary's numbers: {"totals": sums, "groups": {key: (sums, {key: sums})}}."""
    totals = _zero()
    outer: dict[Any, dict[str, int]] = defaultdict(_zero)
    inner: dict[Any, dict[Any, dict[str, int]]] = defaultdict(lambda: defaultdict(_zero))
    for entry in entries:
        _add(totals, entry)
        for first in keys_of(world, entry, group_by[0]):
            _add(outer[first], entry)
            if len(group_by) == 2:
                for second in keys_of(world, entry, group_by[1]):
                    _add(inner[first][second], entry)
    groups = {
        key: (sums, dict(inner[key]) if len(group_by) == 2 else None) for key, sums in outer.items()
    }
    return {"totals": totals, "groups": groups}


def answered(data: dict[str, Any]) -> dict[str, Any]:
    """The same shape as `oracle`, from a summary response's `data`."""
    groups = {}
    for group in data["groups"]:
        sums = {name: group[name] for name in SUMS}
        children = None
        if "groups" in group:
            children = {child["key"]: {n: child[n] for n in SUMS} for child in group["groups"]}
        groups[group["key"]] = (sums, children)
    return {"totals": data["totals"], "groups": groups}


def expected_labels(world: World, data: dict[str, Any], group_by: tuple[str, ...]) -> None:
    """Every label is the display name of its key; every key appears once per level."""
    for group in data["groups"]:
        assert group["label"] == label_of(world, group_by[0], group["key"]), group
        for child in group.get("groups", []):
            assert child["label"] == label_of(world, group_by[1], child["key"]), child
    keys = [g["key"] for g in data["groups"]]
    assert len(keys) == len(set(keys))
