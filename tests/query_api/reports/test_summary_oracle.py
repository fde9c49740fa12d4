"""Property: the summary equals an oracle computed here from the entries the test wrote,
over generated entries in several time zones, around DST changes and month edges, with any
one or two dimensions, any week start and any filter.

`EVOTRACK_HYPOTHESIS_EXAMPLES` sets the number of examples (default 25).
"""

from __future__ import annotations

import itertools
import os
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from tests.conftest import BackgroundProjector
from tests.query_api.reports.helpers import (
    Entry,
    Filters,
    World,
    answered,
    build_world,
    expected_labels,
    local_day,
    oracle,
    selected,
)

EXAMPLES = int(os.environ.get("EVOTRACK_HYPOTHESIS_EXAMPLES", "25"))
DIMENSIONS = (
    "project",
    "client",
    "user",
    "task",
    "tag",
    "team",
    "billable",
    "day",
    "week",
    "month",
)
# Lord Howe moves by 30 minutes; Kolkata never; the others by an hour, on different days.
ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "UTC",
)
# UTC days where some zone changes its clocks, month edges, days just outside the ranges
# below but inside their first or last month, and plain days.
ANCHORS = (
    date(2025, 12, 31),
    date(2026, 1, 10),
    date(2026, 1, 31),
    date(2026, 2, 1),
    date(2026, 3, 8),
    date(2026, 3, 20),
    date(2026, 3, 29),
    date(2026, 4, 5),
    date(2026, 4, 30),
    date(2026, 7, 15),
    date(2026, 9, 27),
    date(2026, 10, 4),
    date(2026, 10, 25),
    date(2026, 10, 29),
    date(2026, 11, 1),
    date(2026, 12, 31),
)
# A range edge: the local day of one of the written entries (by index), give or take a day,
# so edges fall where entries are, including on month starts and ends.
edge_picks = st.tuples(st.integers(0, 1000), st.integers(-1, 1))
FILTERS = ("none", "user", "team", "project", "client", "task", "tag", "billable")

entry_specs = st.fixed_dictionaries(
    {
        "who": st.sampled_from(("owner", "ann", "bob", "cid")),
        "anchor": st.sampled_from(ANCHORS),
        "minute": st.integers(-24 * 60, 24 * 60),
        "seconds": st.integers(1, 6 * 3600),
        "project": st.none() | st.integers(0, 2),
        "task": st.none() | st.integers(0, 1),
        "tags": st.lists(st.integers(0, 2), max_size=3, unique=True),
        "billable": st.booleans(),
    }
)
group_bys = st.lists(st.sampled_from(DIMENSIONS), min_size=1, max_size=2, unique=True).map(tuple)
queries = st.lists(
    st.tuples(group_bys, st.sampled_from(FILTERS), st.integers(0, 5)), min_size=1, max_size=4
)


def _entry(world: World, spec: dict[str, Any]) -> Entry:
    project = world.projects[spec["project"]] if spec["project"] is not None else None
    tasks = [tid for tid, (pid, _) in world.tasks.items() if project and pid == project.id]
    task = tasks[spec["task"] % len(tasks)] if tasks and spec["task"] is not None else None
    tags = list(world.tags)
    start = datetime.combine(spec["anchor"], datetime.min.time(), UTC)
    return world.entry(
        world.people[spec["who"]],
        start + timedelta(minutes=spec["minute"]),
        spec["seconds"],
        project_id=project.id if project else None,
        task_id=task,
        tag_ids=tuple(tags[i] for i in spec["tags"]),
        billable=spec["billable"],
    )


def _filter(world: World, kind: str, pick: int) -> Filters:
    def choose(values: list[Any]) -> Any:
        return values[pick % len(values)]

    if kind == "user":
        return Filters(user_id=str(choose(list(world.people.values())).id))
    if kind == "team":
        return Filters(team_id=choose(sorted(world.teams)))
    if kind == "project":
        return Filters(project_id=choose([p.id for p in world.projects]))
    if kind == "client":
        return Filters(client_id=choose(sorted(world.clients)))
    if kind == "task":
        return Filters(task_id=choose(sorted(world.tasks)))
    if kind == "tag":
        return Filters(tag_id=choose(sorted(world.tags)))
    if kind == "billable":
        return Filters(billable=bool(pick % 2))
    return Filters()


def summary(
    qapi: httpx.Client,
    world: World,
    group_by: tuple[str, ...],
    date_from: date,
    date_to: date,
    filters: Filters = Filters(),
) -> dict[str, Any]:
    params = {
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "group_by": ",".join(group_by),
        **filters.params(),
    }
    response = qapi.get(world.org.path("/reports/summary"), params=params, headers=world.headers())
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def check(
    qapi: httpx.Client,
    world: World,
    group_by: tuple[str, ...],
    date_from: date,
    date_to: date,
    filters: Filters = Filters(),
) -> None:
    data = summary(qapi, world, group_by, date_from, date_to, filters)
    expected = oracle(world, selected(world, date_from, date_to, filters), group_by)
    assert answered(data) == expected, (group_by, filters, data, expected)
    expected_labels(world, data, group_by)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    zone=st.sampled_from(ZONES),
    week_start=st.integers(1, 7),
    specs=st.lists(entry_specs, min_size=3, max_size=30),
    edges=st.tuples(edge_picks, edge_picks),
    asked=queries,
)
def test_the_summary_equals_the_oracle(
    api: httpx.Client,
    qapi: httpx.Client,
    db: Engine,
    projector_running: BackgroundProjector,
    zone: str,
    week_start: int,
    specs: list[dict[str, Any]],
    edges: tuple[tuple[int, int], tuple[int, int]],
    asked: list[tuple[tuple[str, ...], str, int]],
) -> None:
    world = build_world(api, db, timezone=zone, week_start=week_start)
    world.write([_entry(world, spec) for spec in specs])
    days = sorted(local_day(world, entry) for entry in world.entries)
    picked = [days[index % len(days)] + timedelta(days=shift) for index, shift in edges]
    ranges = [(min(picked), max(picked)), (days[0], days[-1])]
    # Where whole months meet partial ones: ranges ending on a 1st, starting on a last day.
    ranges += [(days[0], day) for day in days if day.day == 1][:1]
    ranges += [(day, days[-1]) for day in days if (day + timedelta(days=1)).day == 1][:1]
    for group_by, kind, pick in asked:
        for date_from, date_to in ranges:
            check(qapi, world, group_by, date_from, date_to, _filter(world, kind, pick))


def test_every_dimension_and_every_pair(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    """All 10 dimensions alone and all 90 ordered pairs, over a range with monthly and
    daily parts, in a zone with DST and a week starting on Wednesday."""
    world = build_world(api, db, timezone="America/New_York", week_start=3)
    people = list(world.people.values())
    tags = list(world.tags)
    entries = []
    every_eight_days = [date(2026, 1, 2) + timedelta(days=8 * i) for i in range(46)]
    for i, anchor in enumerate([*ANCHORS, *every_eight_days]):
        project = world.projects[i % 3] if i % 4 else None
        tasks = [tid for tid, (pid, _) in world.tasks.items() if project and pid == project.id]
        entries.append(
            world.entry(
                people[i % len(people)],
                datetime.combine(anchor, datetime.min.time(), UTC)
                + timedelta(minutes=97 * i - 900),
                600 + 317 * i,
                project_id=project.id if project else None,
                task_id=tasks[i % len(tasks)] if tasks and i % 3 else None,
                tag_ids=tuple(tags[: i % 4]),
                billable=i % 5 != 0,
            )
        )
    world.write(entries)
    date_from, date_to = date(2026, 1, 20), date(2026, 11, 10)
    singles = [(dim,) for dim in DIMENSIONS]
    for group_by in [*singles, *itertools.permutations(DIMENSIONS, 2)]:
        check(qapi, world, tuple(group_by), date_from, date_to)
