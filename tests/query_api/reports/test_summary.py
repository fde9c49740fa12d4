"""The summary report: "(none)" groups, labels and order, running timers left out, CSV and
XLSX exports that parse back to the JSON numbers, refused parameters, visibility by role,
and the rule that a long range reads monthly roll-ups, never the entries."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine

from query_api.modules.reports import queries
from query_api.modules.reports.schemas import (
    SummaryGroupRead,
    SummaryOuterGroupRead,
    SummaryReportRead,
)
from query_api.schemas import ReportTotalsRead
from shared.reports import MAX_RANGE_DAYS
from shared.responses import Envelope
from tests.conftest import BackgroundProjector
from tests.factories import OrgHandle, UserHandle, make_org
from tests.query_api.reports.helpers import (
    SUMS,
    Filters,
    World,
    answered,
    build_world,
    oracle,
    selected,
)

FROM, TO = date(2026, 1, 1), date(2026, 12, 31)
ONE_USER = frozenset({uuid.uuid4()})


def _summary(
    qapi: httpx.Client,
    world: World,
    group_by: str,
    as_user: UserHandle | None = None,
    date_from: date = FROM,
    date_to: date = TO,
    **params: str,
) -> httpx.Response:
    query = {"from": date_from.isoformat(), "to": date_to.isoformat(), "group_by": group_by}
    query.update(params)
    return qapi.get(
        world.org.path("/reports/summary"), params=query, headers=world.headers(as_user)
    )


def _data(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    # The router serializes plain data without validation: hold it to the documented schema
    # (extra or missing fields, wrong types all fail).
    Envelope[StrictSummaryRead].model_validate(body)
    data: dict[str, Any] = body["data"]
    return data


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StrictGroup(_Strict, SummaryGroupRead):
    pass


class StrictOuterGroup(_Strict, SummaryOuterGroupRead):
    groups: list[StrictGroup]  # type: ignore[assignment]


class StrictTotals(_Strict, ReportTotalsRead):
    pass


class StrictSummaryRead(_Strict, SummaryReportRead):
    totals: StrictTotals
    groups: list[StrictOuterGroup] | list[StrictGroup]  # type: ignore[assignment]


@pytest.fixture
def world(api: httpx.Client, db: Engine, projector_running: BackgroundProjector) -> World:
    """A few entries over the year in Berlin: with and without project, task and tags."""
    world = build_world(api, db, timezone="Europe/Berlin")
    ann, bob, cid = (world.people[k] for k in ("ann", "bob", "cid"))
    apollo, boreas, ceres = (p.id for p in world.projects)
    design = next(t for t, (p, name) in world.tasks.items() if name == "Design")
    red, green, _ = world.tags
    at = datetime(2026, 3, 10, 9, tzinfo=UTC)
    world.write(
        [
            world.entry(ann, at, 3600, project_id=apollo, task_id=design, tag_ids=(red, green)),
            world.entry(ann, at + timedelta(days=40), 1800, project_id=boreas, tag_ids=(red,)),
            world.entry(bob, at + timedelta(days=100), 900, project_id=ceres, billable=False),
            world.entry(cid, at + timedelta(days=200), 600),
            world.entry(world.owner, at - timedelta(days=300), 999),  # before the range
        ]
    )
    return world


def test_entries_without_project_client_task_tag_or_team_group_under_none(
    qapi: httpx.Client, world: World
) -> None:
    for dim in ("project", "client", "task", "tag", "team"):
        data = _data(_summary(qapi, world, dim))
        none = [g for g in data["groups"] if g["key"] is None]
        assert len(none) == 1, (dim, data)
        assert none[0]["label"] == "(none)"
        assert data["groups"][-1] is none[0]  # (none) comes last
        expected = oracle(world, selected(world, FROM, TO, Filters()), (dim,))
        assert none[0]["seconds"] == expected["groups"][None][0]["seconds"]


def test_tags_count_an_entry_under_each_tag_and_the_totals_once(
    qapi: httpx.Client, world: World
) -> None:
    data = _data(_summary(qapi, world, "tag"))
    red, green, _ = world.tags
    by_key = {g["key"]: g for g in data["groups"]}
    assert by_key[red]["entries"] == 2
    assert by_key[red]["seconds"] == 3600 + 1800
    assert by_key[green]["entries"] == 1
    assert by_key[None]["entries"] == 2
    assert data["totals"]["entries"] == 4
    assert data["totals"]["seconds"] == 3600 + 1800 + 900 + 600
    assert sum(g["entries"] for g in data["groups"]) == 5  # ann's first entry counts twice
    assert [g["label"] for g in data["groups"]] == ["green", "red", "(none)"]


def test_amounts_are_sums_of_entry_amounts_with_their_own_rates(
    qapi: httpx.Client, world: World
) -> None:
    data = _data(_summary(qapi, world, "user,billable"))
    ann = next(g for g in data["groups"] if g["key"] == str(world.people["ann"].id))
    # Apollo's rate (12000) wins over Ann's (9000); Boreas has none, so Ann's applies.
    assert ann["amount"] == 12000 + 9000 // 2
    assert ann["groups"] == [
        {
            "key": True,
            "label": "Billable",
            "seconds": 5400,
            "billable_seconds": 5400,
            "amount": 16500,
            "entries": 2,
        }
    ]
    bob = next(g for g in data["groups"] if g["key"] == str(world.people["bob"].id))
    assert bob["label"] == "Bob Baker"
    assert bob["groups"][0]["key"] is False
    assert bob["amount"] == 0


def test_time_keys_and_labels(qapi: httpx.Client, world: World) -> None:
    data = _data(_summary(qapi, world, "month,day"))
    assert [g["key"] for g in data["groups"]] == ["2026-03", "2026-04", "2026-06", "2026-09"]
    assert data["groups"][0]["groups"][0] == {
        "key": "2026-03-10",
        "label": "2026-03-10",
        "seconds": 3600,
        "billable_seconds": 3600,
        "amount": 12000,
        "entries": 1,
    }
    weeks = _data(_summary(qapi, world, "week"))
    assert [g["key"] for g in weeks["groups"]] == ["2026-W11", "2026-W16", "2026-W25", "2026-W39"]


def test_a_week_starting_on_sunday_is_keyed_by_the_iso_week_of_that_sunday(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    world = build_world(api, db, timezone="America/New_York", week_start=7)
    ann = world.people["ann"]
    # Sunday 2026-11-22 (ISO week 47) and Saturday 2026-11-28 share one week.
    sunday = datetime(2026, 11, 22, 15, tzinfo=UTC)
    world.write([world.entry(ann, sunday, 60), world.entry(ann, sunday + timedelta(days=6), 60)])
    data = _data(_summary(qapi, world, "week"))
    assert [(g["key"], g["entries"]) for g in data["groups"]] == [("2026-W47", 2)]


def test_running_timers_count_in_no_total(
    api: httpx.Client, qapi: httpx.Client, world: World
) -> None:
    before = _data(_summary(qapi, world, "user"))
    started = api.post(world.org.path("/timer/start"), json={}, headers=world.people["ann"].headers)
    assert started.status_code == 201, started.text
    world.token = started.headers["X-Consistency-Token"]
    today = datetime.now(UTC).date()
    after = _data(_summary(qapi, world, "user", date_from=today - timedelta(days=2), date_to=today))
    assert after["totals"]["entries"] == 0
    assert _data(_summary(qapi, world, "user")) == before


# --- Exports ---------------------------------------------------------------------------------


def _leaves(data: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for group in data["groups"]:
        for child in group.get("groups", [group]):
            labels = [group["label"], child["label"]] if "groups" in group else [group["label"]]
            rows.append([*labels, *(child[name] for name in SUMS)])
    return rows


@pytest.mark.parametrize("group_by", ["project", "project,tag", "team,week", "billable,client"])
def test_csv_and_xlsx_exports_parse_back_to_the_json_numbers(
    qapi: httpx.Client, world: World, group_by: str
) -> None:
    data = _data(_summary(qapi, world, group_by))
    expected = _leaves(data)
    header = [*group_by.split(","), *SUMS]

    as_csv = _summary(qapi, world, group_by, format="csv")
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["content-disposition"].startswith("attachment; filename=")
    assert ".csv" in as_csv.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8"))))
    assert rows[0] == header
    width = len(header) - len(SUMS)
    parsed = [[*row[:width], *(int(v) for v in row[width:])] for row in rows[1:]]
    assert parsed == expected

    as_xlsx = _summary(qapi, world, group_by, format="xlsx")
    assert as_xlsx.status_code == 200, as_xlsx.text
    assert ".xlsx" in as_xlsx.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(as_xlsx.content), read_only=True).worksheets[0]
    cells = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert cells[0] == header
    assert cells[1:] == expected


def test_an_export_over_the_cap_is_a_422_naming_format(
    qapi: httpx.Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import query_api.exports

    monkeypatch.setattr(query_api.exports, "MAX_EXPORT_ROWS", 2)
    response = _summary(qapi, world, "project", format="csv")
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "format"


# --- Refused parameters ------------------------------------------------------------------------


@pytest.fixture
def reader(
    api: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> tuple[OrgHandle, dict[str, str]]:
    """An organization whose owner the read side knows, and the headers to read with."""
    org = make_org(db)
    write = api.post(org.path("/tags"), json={"name": "x"}, headers=org.owner.headers)
    assert write.status_code == 201, write.text
    return org, {**org.owner.headers, "X-Consistency-Token": write.headers["X-Consistency-Token"]}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"group_by": "colour"}, "group_by"),
        ({"group_by": "project,user,day"}, "group_by"),
        ({"group_by": "project,project"}, "group_by"),
        ({"group_by": ""}, "group_by"),
        ({"group_by": None}, "group_by"),
        ({"from": "2026-05-02", "to": "2026-05-01"}, "from"),
        ({"from": "2024-01-01", "to": "2026-12-31"}, "to"),
        ({"from": None}, "from"),
        ({"to": None}, "to"),
        ({"from": "2026-13-01"}, "from"),
        ({"format": "docx"}, "format"),
        ({"user_id": "not-a-uuid"}, "user_id"),
    ],
)
def test_bad_parameters_are_422s_naming_the_parameter(
    qapi: httpx.Client, reader: tuple[OrgHandle, dict[str, str]], params: dict[str, Any], field: str
) -> None:
    org, headers = reader
    query = {"from": "2026-01-01", "to": "2026-01-31", "group_by": "project", **params}
    query = {k: v for k, v in query.items() if v is not None}
    response = qapi.get(org.path("/reports/summary"), params=query, headers=headers)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error_code"] == "VALIDATION_ERROR"
    assert field in [d["field"] for d in body["details"]], body


def test_the_range_cap_is_inclusive(
    qapi: httpx.Client, reader: tuple[OrgHandle, dict[str, str]]
) -> None:
    org, headers = reader
    first = date(2025, 1, 1)
    longest = {"from": first.isoformat(), "to": (first + timedelta(MAX_RANGE_DAYS - 1)).isoformat()}
    ok = qapi.get(
        org.path("/reports/summary"),
        params={**longest, "group_by": "month"},
        headers=headers,
    )
    assert ok.status_code == 200, ok.text


# --- Visibility --------------------------------------------------------------------------------


@pytest.fixture
def teams_world(world: World) -> World:
    """Max manages team Alpha (Ann, Bob; Bob also in Beta below it)."""
    max_ = world.add_person("max", "manager", "Max Miller", None)
    world.join_team(next(iter(world.teams)), max_, lead=True)
    world.add_person("ada", "admin", "Ada Admin", None)
    world.write([world.entry(max_, datetime(2026, 5, 5, 8, tzinfo=UTC), 700)])
    return world


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("owner", {"owner", "ann", "bob", "cid", "max", "ada"}),
        ("ada", {"owner", "ann", "bob", "cid", "max", "ada"}),
        ("max", {"max", "ann", "bob"}),
        ("ann", {"ann"}),
        ("cid", {"cid"}),
    ],
)
def test_each_role_sees_its_scope(
    qapi: httpx.Client, teams_world: World, who: str, sees: set[str]
) -> None:
    world = teams_world
    visible = {str(world.people[k].id) for k in sees}
    data = _data(_summary(qapi, world, "user", as_user=world.people[who]))
    expected = oracle(world, selected(world, FROM, TO, Filters(), visible), ("user",))
    assert answered(data) == expected


def test_a_user_filter_outside_the_scope_is_a_404_and_a_team_filter_narrows(
    qapi: httpx.Client, teams_world: World
) -> None:
    world = teams_world
    ann, max_, cid = (world.people[k] for k in ("ann", "max", "cid"))
    for who, other in ((ann, cid), (max_, cid), (ann, max_)):
        response = _summary(qapi, world, "user", as_user=who, user_id=str(other.id))
        assert response.status_code == 404
        assert response.json()["error_code"] == "NOT_FOUND"
    alpha = next(iter(world.teams))
    data = _data(_summary(qapi, world, "user", as_user=ann, team_id=alpha))
    assert [g["key"] for g in data["groups"]] == [str(ann.id)]  # narrowed to what Ann may see
    data = _data(_summary(qapi, world, "user", as_user=max_, user_id=str(ann.id)))
    assert [g["key"] for g in data["groups"]] == [str(ann.id)]


def test_another_organization_is_a_404(qapi: httpx.Client, world: World, db: Engine) -> None:
    other = make_org(db)
    response = qapi.get(
        other.path("/reports/summary"),
        params={"from": "2026-01-01", "to": "2026-01-31", "group_by": "project"},
        headers=world.owner.headers,
    )
    assert response.status_code == 404
    unknown_team = _summary(qapi, world, "user", team_id=str(uuid.uuid4()))
    assert unknown_team.status_code == 404


# --- Reads the roll-ups ----------------------------------------------------------------------


def _sql(
    db: Engine, group_by: tuple[str, ...], date_from: date, date_to: date, **filters: Any
) -> str:
    scope = queries.SummaryScope(uuid.uuid4(), date_from, date_to, 1, **filters)
    return str(queries.summary_statement(scope, group_by).compile(dialect=db.dialect))


_TOTALS_TABLES = {
    "proj_daily_project_totals",
    "proj_daily_project_tag_totals",
    "proj_daily_totals",
    "proj_daily_tag_totals",
    "proj_daily_user_totals",
    "proj_monthly_totals",
    "proj_monthly_tag_totals",
    "proj_monthly_user_totals",
    "proj_monthly_project_totals",
    "proj_monthly_project_tag_totals",
    "proj_monthly_org_tag_totals",
}
_BUCKETS = ("proj_monthly_totals", "proj_daily_totals")
_PEOPLE = ("proj_monthly_user_totals", "proj_daily_user_totals")
_PROJECTS = ("proj_monthly_project_totals", "proj_daily_project_totals")
_TAGS = ("proj_monthly_tag_totals", "proj_daily_tag_totals")
_PROJECT_TAGS = ("proj_monthly_project_tag_totals", "proj_daily_project_tag_totals")
_ORG_TAGS = ("proj_monthly_org_tag_totals", "proj_daily_project_tag_totals")


@pytest.mark.parametrize(
    ("group_by", "filters", "tables"),
    [
        (("project",), {"user_ids": ONE_USER}, _BUCKETS),
        (("client",), {"user_ids": ONE_USER}, _BUCKETS),
        (("task",), {"user_ids": ONE_USER}, _BUCKETS),
        (("user",), {"user_ids": ONE_USER}, _PEOPLE),
        (("team",), {"user_ids": ONE_USER}, _PEOPLE),
        (("billable",), {"user_ids": ONE_USER}, _PEOPLE),
        (("user", "month"), {}, _PEOPLE),
        (("user",), {"project_id": uuid.uuid4()}, _BUCKETS),
        (("user",), {"client_id": uuid.uuid4()}, _BUCKETS),
        (("user",), {"task_id": uuid.uuid4()}, _BUCKETS),
        # Tags: the tag levels from the tag totals, the grand totals (each entry once) not.
        (("tag",), {}, (*_ORG_TAGS, *_PROJECTS)),
        (("tag", "billable"), {"billable": True}, (*_ORG_TAGS, *_PROJECTS)),
        (("tag",), {"project_id": uuid.uuid4()}, (*_PROJECT_TAGS, *_PROJECTS)),
        (("tag", "client"), {}, (*_PROJECT_TAGS, *_PROJECTS)),
        (("tag", "user"), {}, (*_TAGS, *_PROJECTS)),
        (("tag",), {"user_ids": ONE_USER}, (*_TAGS, *_PEOPLE)),
        # The whole organization: per-project rows, days included.
        (("project",), {}, _PROJECTS),
        (("client", "billable"), {}, _PROJECTS),
        (("project", "month"), {"client_id": uuid.uuid4()}, _PROJECTS),
    ],
)
def test_a_year_reads_the_coarsest_roll_up_that_answers_it_and_only_the_edge_days(
    db: Engine, group_by: tuple[str, ...], filters: dict[str, Any], tables: tuple[str, ...]
) -> None:
    sql = _sql(db, group_by, date(2026, 1, 15), date(2026, 12, 20), **filters)
    read = {table for table in _TOTALS_TABLES if re.search(rf"\b{table}\b", sql)}
    assert read == set(tables)
    assert "proj_entries" not in sql


def test_a_month_mostly_inside_the_range_is_read_whole_less_its_days_outside() -> None:
    d = date
    split = queries.split_range
    assert split(d(2026, 1, 15), d(2026, 12, 20), daily_only=False) == queries.Periods(
        (),
        (d(2026, 1, 1), d(2027, 1, 1)),
        ((d(2026, 1, 1), d(2026, 1, 14)), (d(2026, 12, 21), d(2026, 12, 31))),
    )
    # Reading a month's rows costs days: January's 17 days are read one by one.
    assert split(d(2026, 1, 15), d(2026, 12, 20), daily_only=False, month_cost=4) == (
        queries.Periods(
            ((d(2026, 1, 15), d(2026, 1, 31)),),
            (d(2026, 2, 1), d(2027, 1, 1)),
            ((d(2026, 12, 21), d(2026, 12, 31)),),
        )
    )
    whole = split(d(2026, 1, 1), d(2026, 12, 31), daily_only=False)
    assert whole == queries.Periods((), (d(2026, 1, 1), d(2027, 1, 1)))
    # A year up to today: two days at each end, not most of two months.
    assert split(d(2025, 11, 29), d(2026, 11, 28), daily_only=False) == queries.Periods(
        ((d(2025, 11, 29), d(2025, 11, 30)),),
        (d(2025, 12, 1), d(2026, 12, 1)),
        ((d(2026, 11, 29), d(2026, 11, 30)),),
    )
    assert split(d(2026, 11, 2), d(2026, 11, 29), daily_only=False) == queries.Periods(
        (),
        (d(2026, 11, 1), d(2026, 12, 1)),
        ((d(2026, 11, 1), d(2026, 11, 1)), (d(2026, 11, 30), d(2026, 11, 30))),
    )
    week = (d(2026, 11, 23), d(2026, 11, 29))
    assert split(*week, daily_only=False) == queries.Periods((week,), None)
    year = (d(2026, 1, 1), d(2026, 12, 31))
    assert split(*year, daily_only=True) == queries.Periods((year,), None)


@settings(max_examples=300, deadline=None)
@given(
    date_from=st.dates(date(2024, 1, 1), date(2027, 12, 31)),
    length=st.integers(0, 800),
    month_cost=st.integers(0, 10),
)
def test_the_split_covers_every_day_of_the_range_exactly_once(
    date_from: date, length: int, month_cost: int
) -> None:
    date_to = date_from + timedelta(days=length)
    periods = queries.split_range(date_from, date_to, daily_only=False, month_cost=month_cost)
    counted: Counter[date] = Counter()

    def days(low: date, high: date) -> list[date]:
        return [low + timedelta(days=i) for i in range((high - low).days + 1)]

    for low, high in periods.days:
        counted.update(days(low, high))
    if periods.months is not None:
        first, after = periods.months
        assert first.day == 1
        assert after.day == 1
        counted.update(days(first, after - timedelta(days=1)))
    for low, high in periods.minus:
        counted.subtract(days(low, high))
    assert +counted == Counter(days(date_from, date_to))
    assert -counted == Counter()


@pytest.mark.parametrize(
    ("group_by", "filters"),
    [
        (("project",), {}),
        (("client",), {}),
        (("billable",), {}),
        (("month",), {}),
        (("client", "month"), {}),
        (("billable", "project"), {"project_id": uuid.uuid4(), "billable": True}),
        (("project",), {"client_id": uuid.uuid4()}),
        (("project", "tag"), {}),  # the project level and the totals
    ],
)
def test_the_whole_organization_over_long_ranges_reads_the_per_project_roll_up(
    db: Engine, group_by: tuple[str, ...], filters: dict[str, Any]
) -> None:
    sql = _sql(db, group_by, date(2025, 11, 29), date(2026, 11, 28), **filters)
    assert "proj_monthly_project_totals" in sql
    assert "proj_monthly_totals" not in sql
    assert "proj_entries" not in sql


@pytest.mark.parametrize(
    ("group_by", "filters"),
    [
        (("project",), {"user_ids": ONE_USER}),  # a member's, a manager's, a user or team filter
        (("project",), {"task_id": uuid.uuid4()}),
        (("project",), {"tag_id": uuid.uuid4()}),
        (("user",), {}),
        (("task",), {}),
        (("user", "team"), {}),  # (("team",) reads its totals from the per-project roll-up)
        (("project", "day"), {}),
        (("week",), {}),
    ],
)
def test_narrower_or_finer_summaries_do_not_read_the_per_project_roll_up(
    db: Engine, group_by: tuple[str, ...], filters: dict[str, Any]
) -> None:
    sql = _sql(db, group_by, date(2026, 1, 1), date(2026, 12, 31), **filters)
    assert "proj_monthly_project_totals" not in sql
    assert "proj_entries" not in sql


def test_days_and_weeks_read_daily_rows_and_tags_the_tag_totals(db: Engine) -> None:
    sql = _sql(db, ("week",), date(2026, 1, 1), date(2026, 12, 31))
    assert "proj_monthly_totals" not in sql
    assert "proj_entries" not in sql
    sql = _sql(db, ("project",), date(2026, 1, 1), date(2026, 12, 31), tag_id=uuid.uuid4())
    assert "proj_monthly_tag_totals" in sql
    assert "proj_entries" not in sql
    # Untagged entries have their own tag-total rows: the (none) group needs no entries.
    sql = _sql(db, ("tag", "user"), date(2026, 1, 1), date(2026, 12, 31))
    assert "proj_monthly_tag_totals" in sql
    assert "proj_entries" not in sql
    # Which other tags an entry with the filtered tag carries, only the entries know.
    sql = _sql(db, ("tag",), date(2026, 1, 1), date(2026, 12, 31), tag_id=uuid.uuid4())
    assert "proj_entries" in sql


@pytest.mark.parametrize("group_by", ["project", "user", "tag,project", "client,team"])
def test_a_group_whose_days_all_lie_outside_the_range_is_left_out(
    qapi: httpx.Client,
    api: httpx.Client,
    db: Engine,
    projector_running: BackgroundProjector,
    group_by: str,
) -> None:
    """November is read whole less its last two days: Boreas (worked on the 30th only) and
    Bob (the 29th only) must not come out as empty groups."""
    world = build_world(api, db, timezone="Europe/Berlin")
    ann, bob = world.people["ann"], world.people["bob"]
    apollo, boreas, _ = (p.id for p in world.projects)
    red = next(iter(world.tags))
    world.write(
        [
            world.entry(ann, datetime(2026, 11, 10, 9, tzinfo=UTC), 3600, project_id=apollo),
            world.entry(bob, datetime(2026, 11, 29, 9, tzinfo=UTC), 1800, tag_ids=(red,)),
            world.entry(ann, datetime(2026, 11, 30, 9, tzinfo=UTC), 900, project_id=boreas),
        ]
    )
    date_from, date_to = date(2026, 11, 1), date(2026, 11, 28)
    data = _data(_summary(qapi, world, group_by, date_from=date_from, date_to=date_to))
    dims = tuple(group_by.split(","))
    assert answered(data) == oracle(world, selected(world, date_from, date_to, Filters()), dims)
    assert data["totals"]["entries"] == 1
    assert len(data["groups"]) == 1


def test_a_csv_export_escapes_labels_a_spreadsheet_would_run(
    api: httpx.Client, qapi: httpx.Client, reader: tuple[OrgHandle, dict[str, str]]
) -> None:
    """Project names are user text: one starting with = + - @ tab or CR gets a leading quote
    (OWASP's rule), while the sums stay plain numbers. XLSX keeps the name as a string."""
    org, headers = reader
    names = ['=HYPERLINK("http://x","y")', "-1", "Plain"]
    token = ""
    for day, name in enumerate(names, start=1):
        project = api.post(org.path("/projects"), json={"name": name}, headers=org.owner.headers)
        assert project.status_code == 201, project.text
        start = datetime(2026, 3, day, 9, tzinfo=UTC)
        entry = api.post(
            org.path("/time-entries"),
            json={
                "start_at": start.isoformat(),
                "end_at": (start + timedelta(minutes=day)).isoformat(),
                "project_id": project.json()["data"]["id"],
            },
            headers=org.owner.headers,
        )
        assert entry.status_code == 201, entry.text
        token = entry.headers["X-Consistency-Token"]
    query = {"from": "2026-03-01", "to": "2026-03-31", "group_by": "project"}
    headers = {**headers, "X-Consistency-Token": token}

    as_csv = qapi.get(
        org.path("/reports/summary"), params={**query, "format": "csv"}, headers=headers
    )
    assert as_csv.status_code == 200, as_csv.text
    rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8"))))[1:]
    assert sorted((row[0], int(row[1])) for row in rows) == sorted(
        [('\'=HYPERLINK("http://x","y")', 60), ("'-1", 120), ("Plain", 180)]
    )

    as_xlsx = qapi.get(
        org.path("/reports/summary"), params={**query, "format": "xlsx"}, headers=headers
    )
    sheet = load_workbook(io.BytesIO(as_xlsx.content)).worksheets[0]
    labels = [sheet.cell(row=row, column=1) for row in range(2, 5)]
    assert sorted(str(cell.value) for cell in labels) == sorted(names)
    assert {cell.data_type for cell in labels} == {"s"}
