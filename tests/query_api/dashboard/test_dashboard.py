"""The dashboard: today, this week, this month and the last 30 days in the organization's
time zone, the month's top projects, and who is tracking now (managers and up), each
checked against numbers computed here from the entries the test wrote."""

from __future__ import annotations

import time as time_module
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import BackgroundProjector
from tests.factories import UserHandle, make_org
from tests.query_api.reports.helpers import Entry, World, build_world, local_day

WEEK_START = 3  # Wednesday


def _zone_off_utc_date() -> str:
    """A zone whose date differs from UTC's right now, so that "today" in UTC is wrong."""
    return "Pacific/Kiritimati" if datetime.now(UTC).hour >= 10 else "Pacific/Pago_Pago"


def _dashboard(
    qapi: httpx.Client, world: World, as_user: UserHandle | None = None, **params: str
) -> httpx.Response:
    return qapi.get(world.org.path("/dashboard"), params=params, headers=world.headers(as_user))


def _local_noon(world: World, day: date) -> datetime:
    return datetime.combine(day, time(12), ZoneInfo(world.timezone)).astimezone(UTC)


def _today(world: World) -> date:
    return datetime.now(ZoneInfo(world.timezone)).date()


@pytest.fixture
def world(api: httpx.Client, db: Engine, projector_running: BackgroundProjector) -> World:
    """Six projects; Ann, Bob and Cid track on days from today back to 45 days ago; Max
    leads team Alpha (Ann; Bob, also in Beta below it); Ann and Cid have timers running."""
    world = build_world(api, db, timezone=_zone_off_utc_date(), week_start=WEEK_START)
    for name in ("Dione", "Europa", "Fornax"):
        world.add_project(name, None, None, "#000000")
    max_ = world.add_person("max", "manager", "Max Miller", None)
    world.join_team(next(iter(world.teams)), max_, lead=True)
    today = _today(world)
    people = [world.people[k] for k in ("ann", "bob", "cid", "max")]
    entries = []
    for i, back in enumerate((0, 0, 1, 2, 3, 5, 6, 8, 10, 13, 20, 29, 30, 31, 45)):
        project = world.projects[i % 6] if i % 7 else None
        entries.append(
            world.entry(
                people[i % 4],
                _local_noon(world, today - timedelta(days=back)) + timedelta(minutes=i),
                600 + 97 * i,
                project_id=project.id if project else None,
                billable=i % 3 != 0,
            )
        )
    world.write(entries)
    for who in ("ann", "cid"):
        started = api.post(
            world.org.path("/timer/start"),
            json={"project_id": world.projects[1].id, "description": f"{who} at work"},
            headers=world.people[who].headers,
        )
        assert started.status_code == 201, started.text
        world.token = started.headers["X-Consistency-Token"]
    return world


def _sums(entries: list[Entry]) -> dict[str, int]:
    return {
        "seconds": sum(e.seconds for e in entries),
        "billable_seconds": sum(e.seconds for e in entries if e.billable),
        "amount": sum(e.amount for e in entries),
    }


def _expected(world: World, users: set[str]) -> dict[str, Any]:
    today = _today(world)
    week_first = today - timedelta(days=(today.isoweekday() - WEEK_START) % 7)
    mine = [e for e in world.entries if e.user_id in users and e.end_at is not None]

    def within(first: date, last: date) -> list[Entry]:
        return [e for e in mine if first <= local_day(world, e) <= last]

    month_first = today.replace(day=1)
    next_month = (month_first + timedelta(days=32)).replace(day=1)
    per_day: dict[date, int] = defaultdict(int)
    for entry in mine:
        per_day[local_day(world, entry)] += entry.seconds
    per_project: dict[str | None, int] = defaultdict(int)
    for entry in within(month_first, next_month - timedelta(days=1)):
        per_project[entry.project_id] += entry.seconds
    top = sorted(per_project.items(), key=lambda item: -item[1])[:5]
    return {
        "today": _sums(within(today, today)),
        "this_week": _sums(within(week_first, week_first + timedelta(days=6))),
        "this_month": _sums(within(month_first, next_month - timedelta(days=1))),
        "last_30_days": [
            {
                "date": (today - timedelta(days=back)).isoformat(),
                "seconds": per_day[today - timedelta(days=back)],
            }
            for back in range(29, -1, -1)
        ],
        "top_projects": top,
    }


def _check(world: World, data: dict[str, Any], users: set[str]) -> None:
    expected = _expected(world, users)
    for period in ("today", "this_week", "this_month", "last_30_days"):
        assert data[period] == expected[period], period
    assert len(data["last_30_days"]) == 30
    top = [(p["project"] and p["project"]["id"], p["seconds"]) for p in data["top_projects"]]
    assert top == expected["top_projects"]
    projects = {p.id: p for p in world.projects}
    for item in data["top_projects"]:
        if item["project"] is not None:
            known = projects[item["project"]["id"]]
            assert item["project"] == {"id": known.id, "name": known.name, "color": known.color}


def _ids(world: World, *keys: str) -> set[str]:
    return {str(world.people[k].id) for k in keys}


def test_the_owner_sees_the_organization_and_every_running_timer(
    qapi: httpx.Client, world: World
) -> None:
    response = _dashboard(qapi, world)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    _check(world, data, _ids(world, "owner", "ann", "bob", "cid", "max"))
    assert data["today"]["seconds"] > 0  # the test would prove little otherwise
    assert len(data["top_projects"]) == 5
    timers = data["running_timers"]
    assert {t["user"]["id"] for t in timers} == _ids(world, "ann", "cid")
    ann = next(t for t in timers if t["user"]["id"] == str(world.people["ann"].id))
    assert ann["user"]["full_name"] == "Ann Archer"
    assert ann["description"] == "ann at work"
    assert ann["project"] == {
        "id": world.projects[1].id,
        "name": "Boreas",
        "color": world.projects[1].color,
    }
    started = datetime.fromisoformat(ann["start_at"])
    assert 0 <= ann["duration_seconds"] <= (datetime.now(UTC) - started).total_seconds() + 1
    assert ann["entry_id"]


def test_a_manager_sees_their_teams_and_their_running_timers(
    qapi: httpx.Client, world: World
) -> None:
    response = _dashboard(qapi, world, world.people["max"])
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    _check(world, data, _ids(world, "max", "ann", "bob"))
    assert [t["user"]["id"] for t in data["running_timers"]] == [str(world.people["ann"].id)]


def test_a_member_sees_their_own_numbers_and_no_running_timers(
    qapi: httpx.Client, world: World
) -> None:
    response = _dashboard(qapi, world, world.people["ann"])
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    _check(world, data, _ids(world, "ann"))
    assert data["running_timers"] == []


def test_user_and_team_filters_narrow_and_outside_the_scope_is_a_404(
    qapi: httpx.Client, world: World
) -> None:
    ann, max_ = world.people["ann"], world.people["max"]
    data = _dashboard(qapi, world, max_, user_id=str(ann.id)).json()["data"]
    _check(world, data, _ids(world, "ann"))
    assert [t["user"]["id"] for t in data["running_timers"]] == [str(ann.id)]
    beta = [team for team, (_, parent) in world.teams.items() if parent is not None][0]
    data = _dashboard(qapi, world, team_id=beta).json()["data"]
    _check(world, data, _ids(world, "bob"))
    assert data["running_timers"] == []
    for who, other in ((ann, world.people["bob"]), (max_, world.people["cid"])):
        response = _dashboard(qapi, world, who, user_id=str(other.id))
        assert response.status_code == 404
        assert response.json()["error_code"] == "NOT_FOUND"


def test_running_timers_count_in_no_total_until_they_stop(
    api: httpx.Client, qapi: httpx.Client, world: World
) -> None:
    before = _dashboard(qapi, world).json()["data"]
    time_module.sleep(1.1)  # so that the stopped entry lasts at least a second
    stopped = api.post(world.org.path("/timer/stop"), headers=world.people["cid"].headers)
    assert stopped.status_code == 200, stopped.text
    world.token = stopped.headers["X-Consistency-Token"]
    after = _dashboard(qapi, world).json()["data"]
    entry = stopped.json()["data"]
    assert entry["duration_seconds"] >= 1
    started_on = (
        datetime.fromisoformat(entry["start_at"]).astimezone(ZoneInfo(world.timezone)).date()
    )
    index = 29 - (_today(world) - started_on).days
    assert (
        after["last_30_days"][index]["seconds"]
        == before["last_30_days"][index]["seconds"] + entry["duration_seconds"]
    )
    assert [t["user"]["id"] for t in after["running_timers"]] == [str(world.people["ann"].id)]


def test_another_organization_is_a_404(qapi: httpx.Client, world: World, db: Engine) -> None:
    other = make_org(db)
    response = qapi.get(other.path("/dashboard"), headers=world.headers())
    assert response.status_code == 404
