"""The weekly timesheet: the seven local days of an ISO week, a row per project and task,
finished time only, and who may see whose."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import BackgroundProjector
from tests.factories import UserHandle
from tests.query_api.reports.helpers import World, build_world, local_day

WEEK = "2026-W13"  # Monday 2026-03-23 to Sunday 2026-03-29: Europe's clocks move on Sunday
MONDAY = date(2026, 3, 23)


def _timesheet(
    qapi: httpx.Client, world: World, as_user: UserHandle | None = None, **params: Any
) -> httpx.Response:
    return qapi.get(
        world.org.path("/reports/timesheet"),
        params={"week": WEEK, **params},
        headers=world.headers(as_user),
    )


@pytest.fixture
def world(api: httpx.Client, db: Engine, projector_running: BackgroundProjector) -> World:
    world = build_world(api, db, timezone="Europe/Berlin")
    ann, bob = world.people["ann"], world.people["bob"]
    apollo, boreas, _ = (p.id for p in world.projects)
    design, build = (t for t, (p, _) in world.tasks.items() if p == apollo)
    world.write(
        [
            # Sunday 22 March 23:30 UTC is Monday 00:30 in Berlin: the first day.
            world.entry(ann, datetime(2026, 3, 22, 23, 30, tzinfo=UTC), 3600, project_id=apollo),
            world.entry(ann, datetime(2026, 3, 24, 9, tzinfo=UTC), 1800, project_id=apollo),
            world.entry(
                ann, datetime(2026, 3, 24, 12, tzinfo=UTC), 600, project_id=apollo, task_id=design
            ),
            world.entry(
                ann, datetime(2026, 3, 25, 12, tzinfo=UTC), 700, project_id=apollo, task_id=build
            ),
            world.entry(ann, datetime(2026, 3, 26, 8, tzinfo=UTC), 900, project_id=boreas),
            world.entry(ann, datetime(2026, 3, 28, 23, 30, tzinfo=UTC), 1200),  # Sunday 00:30
            # Sunday 29 March 22:30 UTC is Monday 00:30 (summer time): the next week.
            world.entry(ann, datetime(2026, 3, 29, 22, 30, tzinfo=UTC), 5000, project_id=apollo),
            world.entry(ann, datetime(2026, 3, 22, 22, 30, tzinfo=UTC), 4000),  # the week before
            world.entry(bob, datetime(2026, 3, 24, 9, tzinfo=UTC), 300, project_id=boreas),
        ]
    )
    return world


def _expected_rows(world: World, user: UserHandle) -> dict[tuple[Any, Any], list[int]]:
    rows: dict[tuple[Any, Any], list[int]] = defaultdict(lambda: [0] * 7)
    for entry in world.entries:
        offset = (local_day(world, entry) - MONDAY).days
        if entry.user_id == str(user.id) and 0 <= offset < 7:
            rows[(entry.project_id, entry.task_id)][offset] += entry.seconds
    return dict(rows)


def test_my_timesheet_has_the_seven_days_and_a_row_per_project_and_task(
    qapi: httpx.Client, world: World
) -> None:
    ann = world.people["ann"]
    response = _timesheet(qapi, world, ann)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["week"] == WEEK
    assert data["user_id"] == str(ann.id)
    assert data["days"] == [(MONDAY + timedelta(days=i)).isoformat() for i in range(7)]
    got = {
        (r["project"] and r["project"]["id"], r["task"] and r["task"]["id"]): r["seconds_per_day"]
        for r in data["rows"]
    }
    assert got == _expected_rows(world, ann)
    assert got[(world.projects[0].id, None)] == [3600, 1800, 0, 0, 0, 0, 0]
    names = [
        (r["project"] and r["project"]["name"], r["task"] and r["task"]["name"])
        for r in data["rows"]
    ]
    assert names == [
        ("Apollo", None),
        ("Apollo", "Build"),
        ("Apollo", "Design"),
        ("Boreas", None),
        (None, None),
    ]
    for row in data["rows"]:
        assert row["total"] == sum(row["seconds_per_day"])
    assert data["totals_per_day"] == [3600, 1800 + 600, 700, 900, 0, 0, 1200]
    assert data["total"] == sum(data["totals_per_day"])


def test_running_timers_are_left_out(api: httpx.Client, qapi: httpx.Client, world: World) -> None:
    ann = world.people["ann"]
    started = api.post(world.org.path("/timer/start"), json={}, headers=ann.headers)
    assert started.status_code == 201, started.text
    world.token = started.headers["X-Consistency-Token"]
    year, week, _ = datetime.now(UTC).isocalendar()
    response = _timesheet(qapi, world, ann, week=f"{year}-W{week:02d}")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["rows"] == []
    assert response.json()["data"]["total"] == 0


def test_a_week_without_entries_is_empty(qapi: httpx.Client, world: World) -> None:
    response = _timesheet(qapi, world, world.people["ann"], week="2026-W53")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["days"][0] == "2026-12-28"
    assert data["rows"] == []
    assert data["totals_per_day"] == [0] * 7


@pytest.fixture
def managed(world: World) -> World:
    max_ = world.add_person("max", "manager", "Max Miller", None)
    world.join_team(next(iter(world.teams)), max_, lead=True)
    return world


@pytest.mark.parametrize(
    ("who", "whose", "status"),
    [
        ("owner", "ann", 200),
        ("max", "ann", 200),
        ("max", "bob", 200),
        ("max", "cid", 404),
        ("ann", "bob", 404),
        ("ann", "ann", 200),
        ("cid", "owner", 404),
    ],
)
def test_someone_elses_timesheet_needs_them_in_scope(
    qapi: httpx.Client, managed: World, who: str, whose: str, status: int
) -> None:
    world = managed
    target = world.people[whose]
    response = _timesheet(qapi, world, world.people[who], user_id=str(target.id))
    assert response.status_code == status, response.text
    if status == 200:
        data = response.json()["data"]
        assert data["user_id"] == str(target.id)
        expected = _expected_rows(world, target)
        assert data["total"] == sum(sum(days) for days in expected.values())
    else:
        assert response.json()["error_code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "week", ["2026-48", "2026-W54", "2025-W53", "2026-W00", "26-W01", "2026-w48", "", "1969-W01"]
)
def test_a_bad_iso_week_is_a_422_naming_week(qapi: httpx.Client, world: World, week: str) -> None:
    response = _timesheet(qapi, world, week=week)
    assert response.status_code == 422, response.text
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert response.json()["details"][0]["field"] == "week"


def test_week_is_required(qapi: httpx.Client, world: World) -> None:
    response = qapi.get(world.org.path("/reports/timesheet"), headers=world.headers())
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "week"
