"""GET /organizations/{org_id}/reports/detailed: totals of the whole filtered range (from the
daily totals and monthly roll-ups, or the entries when searching), pagination, and CSV/XLSX
exports that parse back to the numbers of the JSON."""

from __future__ import annotations

import csv
import io
import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine

from query_api import exports
from tests.conftest import BackgroundProjector
from tests.factories import UserHandle, add_member, make_org
from tests.query_api.entries.helpers import Client, at, error_field, iso, span

TZ = "Europe/Berlin"  # clocks fall back on 2026-10-25
COLUMNS = [
    "date",
    "start_at",
    "end_at",
    "user",
    "project",
    "client",
    "task",
    "tags",
    "description",
    "duration_seconds",
    "billable",
    "amount",
]


@dataclass
class World:
    client: Client
    member: UserHandle
    team: uuid.UUID
    customer: uuid.UUID
    project: uuid.UUID
    unbilled_project: uuid.UUID
    task: uuid.UUID
    tag: uuid.UUID
    other_tag: uuid.UUID


@pytest.fixture
def world(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> World:
    """Four months of entries of two users (~120, a few per day around midnight and across
    the DST change), with projects, a client, a task, tags, and a running timer."""
    client = Client(api, qapi, make_org(db, timezone=TZ, hourly_rate_amount=4_999))
    member = add_member(db, client.org, "member", hourly_rate_amount=3_333)
    customer = client.named("/clients", "ACME")
    w = World(
        client=client,
        member=member,
        team=client.named("/teams", "Crew"),
        customer=customer,
        project=client.named("/projects", "Site", client_id=str(customer), hourly_rate=7_777),
        unbilled_project=client.named("/projects", "Internal", billable=False),
        task=uuid.uuid4(),
        tag=client.named("/tags", "red"),
        other_tag=client.named("/tags", "blue"),
    )
    w.task = client.named(f"/projects/{w.project}/tasks", "Build")
    client.write("PUT", f"/teams/{w.team}/members/{member.id}", {"is_lead": False})
    rng = random.Random(4)
    entries = []
    for i in range(120):
        day = date(2026, 8, 20) + timedelta(days=rng.randrange(100))
        start = at(day.isoformat(), rng.choice([0, 8, 13, 21, 22, 23]), rng.randrange(60))
        project = rng.choice([w.project, w.project, w.unbilled_project, None])
        entry: dict[str, Any] = {
            "start_at": iso(start),
            "end_at": iso(start + timedelta(seconds=rng.randrange(60, 6 * 3600))),
            "description": rng.choice(["Meeting", "coding", "Review of PR", "support call"]),
            "tag_ids": [str(t) for t in rng.sample([w.tag, w.other_tag], rng.randrange(3))],
        }
        if project is not None:
            entry["project_id"] = str(project)
        if project == w.project and rng.random() < 0.5:
            entry["task_id"] = str(w.task)
        if project is None:
            entry["billable"] = rng.random() < 0.5
        if i % 2:
            entry["user_id"] = str(member.id)
        entries.append(entry)
    client.bulk(entries)
    client.write("POST", "/timer/start", {"project_id": str(w.project), "description": "coding"})
    return w


def _totals_of(entries: list[dict[str, Any]]) -> dict[str, int]:
    finished = [e for e in entries if e["end_at"] is not None]
    return {
        "seconds": sum(e["duration_seconds"] for e in finished),
        "billable_seconds": sum(e["duration_seconds"] for e in finished if e["billable"]),
        "amount": sum(e["amount"] for e in finished),
        "entries": len(finished),
    }


def _report(client: Client, **params: Any) -> dict[str, Any]:
    response = client.get("/reports/detailed", **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    return dict(body)


RANGES = [
    ("2026-08-01", "2026-12-31"),  # everything: whole months only
    ("2026-09-01", "2026-10-31"),  # two whole months
    ("2026-08-25", "2026-11-10"),  # partial months around whole ones
    ("2026-10-05", "2026-10-28"),  # inside one month, across the DST change
    ("2026-10-01", "2026-10-31"),  # exactly one month
    ("2026-09-30", "2026-10-01"),  # two days across a month boundary
    ("2026-11-15", "2026-11-15"),  # one day
]


@pytest.mark.parametrize(("date_from", "date_to"), RANGES)
def test_totals_equal_the_sum_over_every_entry_of_the_range(
    world: World, date_from: str, date_to: str
) -> None:
    client = world.client
    dates = span(date_from, date_to)
    filter_sets: list[dict[str, Any]] = [
        {},
        {"user_id": world.member.id},
        {"team_id": world.team},
        {"project_id": world.project},
        {"client_id": world.customer},
        {"task_id": world.task},
        {"tag_id": world.tag},
        {"tag_id": world.other_tag, "client_id": world.customer},
        {"billable": True},
        {"billable": False, "user_id": client.org.owner.id},
        {"search": "CODING"},
        {"search": "r", "tag_id": world.tag},
        {"running": False},
    ]
    for filters in filter_sets:
        report = _report(client, page_size=200, **dates, **filters)
        listed = client.entries(**dates, **filters)
        assert report["data"]["entries"] == _without_running_durations(listed, report)
        assert report["data"]["totals"] == _totals_of(listed), filters
        assert report["pagination"]["total"] == len(listed)
        # A page short of the end counts (from the roll-ups and the running timers when
        # there is no search): the same number.
        counted = _report(client, page_size=1, **dates, **filters)["pagination"]["total"]
        assert counted == len(listed), filters


@pytest.mark.parametrize(
    ("date_from", "date_to"), [(None, None), ("2026-10-05", None), (None, "2026-10-28")]
)
def test_a_listing_with_an_open_range_counts_its_total_from_the_roll_ups_too(
    world: World, date_from: str | None, date_to: str | None
) -> None:
    """/time-entries without `from` or `to` (the whole history on either side) counts the
    same total from the roll-ups as the full listing has entries."""
    client = world.client
    dates = span(date_from, date_to)
    filter_sets: list[dict[str, Any]] = [
        {},
        {"user_id": world.member.id},
        {"project_id": world.project, "billable": True},
        {"tag_id": world.tag},
        {"running": False},
        {"running": True},
        {"search": "CODING"},
    ]
    for filters in filter_sets:
        listed = client.entries(**dates, **filters)
        page = client.get("/time-entries", page_size=1, **dates, **filters).json()
        assert page["pagination"]["total"] == len(listed), filters
    assert client.entries(**dates)  # the world has entries on both sides


def _without_running_durations(
    listed: list[dict[str, Any]], report: dict[str, Any]
) -> list[dict[str, Any]]:
    """The listing, with the running timer's duration as the report saw it a moment later."""
    durations = {e["id"]: e["duration_seconds"] for e in report["data"]["entries"]}
    return [
        {**e, "duration_seconds": durations.get(e["id"], e["duration_seconds"])}
        if e["end_at"] is None
        else e
        for e in listed
    ]


def test_totals_count_finished_entries_only_and_ignore_paging(world: World) -> None:
    client = world.client
    dates = span("2026-08-01", "2026-12-31")
    everything = _report(client, page_size=200, **dates)
    small_page = _report(client, page_size=5, page=3, **dates)
    running = _report(client, running=True, **dates)

    assert small_page["data"]["totals"] == everything["data"]["totals"]
    assert len(small_page["data"]["entries"]) == 5
    assert everything["data"]["totals"]["entries"] == 120  # the running timer not counted
    assert everything["pagination"]["total"] == 121  # but listed
    assert small_page["pagination"]["total"] == 121  # counted, not seen to the end
    assert len(running["data"]["entries"]) == 1
    assert running["data"]["entries"][0]["end_at"] is None
    assert running["data"]["totals"] == {
        "seconds": 0,
        "billable_seconds": 0,
        "amount": 0,
        "entries": 0,
    }


def test_a_member_sees_totals_of_their_own_entries(world: World) -> None:
    client = world.client
    dates = span("2026-08-01", "2026-12-31")
    mine = _report(client, user=world.member, page_size=200, **dates)
    assert {e["user"]["id"] for e in mine["data"]["entries"]} == {str(world.member.id)}
    assert (
        mine["data"]["totals"]
        == _report(client, user_id=world.member.id, **dates)["data"]["totals"]
    )
    assert mine["data"]["totals"]["entries"] == 60
    outside = client.get(
        "/reports/detailed", user=world.member, user_id=client.org.owner.id, **dates
    )
    assert outside.status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"to": "2026-11-30"}, "from"),
        ({"from": "2026-11-01"}, "to"),
        ({}, "from"),
        ({"from": "2026-11-30", "to": "2026-11-01"}, "from"),
        ({"from": "2020-01-01", "to": "2026-11-01"}, "to"),
        ({"from": "2026-11-01", "to": "2026-11-30", "format": "docx"}, "format"),
        ({"from": "2026-11-01", "to": "2026-11-30", "page_size": 0}, "page_size"),
        ({"from": "2026-11-01", "to": "2026-11-30", "page_size": 10_000}, "page_size"),
        ({"from": "2026-11-01", "to": "2026-11-30", "cursor": "nope"}, "cursor"),
    ],
)
def test_bad_parameters_are_422s_naming_the_parameter(
    client: Client, params: dict[str, Any], field: str
) -> None:
    assert error_field(client.get("/reports/detailed", **params)) == field


# --- Exports ----------------------------------------------------------------------------------


def _local_day(start_at: str) -> str:
    instant = datetime.fromisoformat(start_at.replace("Z", "+00:00"))
    return instant.astimezone(ZoneInfo(TZ)).date().isoformat()


def _expected_row(entry: dict[str, Any]) -> list[Any]:
    def name(ref: dict[str, Any] | None) -> str | None:
        return None if ref is None else str(ref["name"])

    return [
        _local_day(entry["start_at"]),
        entry["start_at"],
        entry["end_at"],
        entry["user"]["full_name"],
        name(entry["project"]),
        name(entry["client"]),
        name(entry["task"]),
        ", ".join(t["name"] for t in entry["tags"]) or None,
        entry["description"],
        entry["duration_seconds"],
        entry["billable"],
        entry["amount"],
    ]


def _csv_rows(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    reader = csv.reader(io.StringIO(response.content.decode("utf-8")))
    header, *rows = list(reader)
    assert header == COLUMNS
    return [
        [
            *(cell or None for cell in row[:8]),
            row[8],
            int(row[9]),
            {"true": True, "false": False}[row[10]],
            int(row[11]),
        ]
        for row in rows
    ]


def _xlsx_rows(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == exports.XLSX_MEDIA_TYPE
    assert ".xlsx" in response.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert header == COLUMNS
    parsed = []
    for row in rows:
        r: list[Any] = row + [None] * (len(COLUMNS) - len(row))
        assert isinstance(r[0], datetime)  # an Excel date
        texts = [c if c != "" else None for c in r[1:8]]
        parsed.append([r[0].date().isoformat(), *texts, r[8] or "", *r[9:]])
    return parsed


def _compare(exported: list[list[Any]], report: dict[str, Any]) -> None:
    expected = [_expected_row(e) for e in report["data"]["entries"]]
    assert len(exported) == len(expected)
    for got, want in zip(exported, expected, strict=True):
        if want[2] is None:  # running: the duration kept growing between the two reads
            assert got[9] >= want[9]
            got, want = got[:9] + got[10:], want[:9] + want[10:]
        assert got == want
    finished = [r for r in exported if r[2] is not None]
    totals = report["data"]["totals"]
    assert sum(r[9] for r in finished) == totals["seconds"]
    assert sum(r[9] for r in finished if r[10]) == totals["billable_seconds"]
    assert sum(r[11] for r in finished) == totals["amount"]
    assert len(finished) == totals["entries"]


@pytest.mark.parametrize(
    "filters",
    [{}, {"project_id": "project", "sort": "start_at"}, {"search": "review", "tag_id": "tag"}],
)
def test_csv_and_xlsx_exports_parse_back_to_the_numbers_of_the_json(
    world: World, filters: dict[str, str]
) -> None:
    client = world.client
    params: dict[str, Any] = {"from": "2026-08-01", "to": "2026-12-31"}
    for key, value in filters.items():
        params[key] = getattr(world, value) if key.endswith("_id") else value
    report = _report(client, page_size=200, **params)
    assert report["pagination"]["has_next"] is False

    csv_response = client.get("/reports/detailed", format="csv", page_size=1, **params)
    _compare(_csv_rows(csv_response), report)  # every entry: exports are not paged
    xlsx_response = client.get("/reports/detailed", format="xlsx", **params)
    _compare(_xlsx_rows(xlsx_response), report)
    assert csv_response.headers["content-disposition"] == (
        'attachment; filename="detailed-report_2026-08-01_2026-12-31.csv"'
    )


# Text a spreadsheet would read as a formula (OWASP's CSV injection list; the command API
# strips the leading tab or CR of a description, tests/query_api/test_exports.py has them).
FORMULAS = ["=cmd|' /C calc'!A0", "+1+2", "-2+3", "@SUM(1+1)"]
PLAIN = ['Überstunden, "quoted"\nline ✓', "a;=1+2", "it's fine"]


def test_exports_keep_text_as_text(client: Client) -> None:
    """CSV: text a spreadsheet would run as a formula starts with a quote (OWASP), every
    other cell is as written, numbers too. XLSX: every text is a string cell, never a
    formula."""
    descriptions = [*FORMULAS, *PLAIN]
    for day, description in enumerate(descriptions, start=1):
        client.entry(at(f"2026-11-{day:02d}"), 60, description=description)
    dates = span("2026-11-01", "2026-11-30", sort="start_at")
    rows = _csv_rows(client.get("/reports/detailed", format="csv", **dates))
    assert [r[8] for r in rows] == [*("'" + text for text in FORMULAS), *PLAIN]
    assert [r[9] for r in rows] == [60] * len(descriptions)

    response = client.get("/reports/detailed", format="xlsx", **dates)
    sheet = load_workbook(io.BytesIO(response.content)).worksheets[0]
    column = COLUMNS.index("description") + 1
    cells = [sheet.cell(row=row, column=column) for row in range(2, len(descriptions) + 2)]
    assert [cell.value for cell in cells] == descriptions
    assert {cell.data_type for cell in cells} == {"s"}  # strings, never formulas


def test_an_export_past_the_cap_is_a_422_naming_format(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The query API runs in this process: lowering the cap here lowers it for the server.
    monkeypatch.setattr(exports, "MAX_EXPORT_ROWS", 3)
    client.bulk(
        [
            {"start_at": iso(at(f"2026-11-0{d}")), "end_at": iso(at(f"2026-11-0{d}", 10))}
            for d in range(1, 5)
        ]
    )
    dates = span("2026-11-01", "2026-11-30")
    for export_format in ("csv", "xlsx"):
        response = client.get("/reports/detailed", format=export_format, **dates)
        assert error_field(response) == "format"
        assert "at most 3 rows" in response.json()["error"]
    # JSON is paged, so it is not capped; a narrower range exports.
    assert _report(client, **dates)["pagination"]["total"] == 4
    narrower = client.get("/reports/detailed", format="csv", **span("2026-11-02", "2026-11-30"))
    assert len(_csv_rows(narrower)) == 3


def test_a_large_export_streams_every_row_once_in_order(client: Client) -> None:
    # More rows than one server-side batch (1,000) and more bytes than one chunk (64 KiB).
    start = at("2026-10-01", 0)
    for batch in range(3):
        client.bulk(
            [
                {
                    "start_at": iso(start + timedelta(minutes=17 * (batch * 1000 + i))),
                    "end_at": iso(start + timedelta(minutes=17 * (batch * 1000 + i) + 5)),
                    "description": f"row {batch * 1000 + i:05d} " + "x" * 40,
                }
                for i in range(1000 if batch < 2 else 600)
            ]
        )
    dates = span("2026-10-01", "2026-12-31", sort="start_at")
    rows = _csv_rows(client.get("/reports/detailed", format="csv", **dates))
    assert [r[8][:9] for r in rows] == [f"row {i:05d}" for i in range(2600)]
    assert (
        sum(r[9] for r in rows)
        == 2600 * 300
        == _report(client, **dates)["data"]["totals"]["seconds"]
    )


@pytest.mark.parametrize(
    ("date_from", "date_to"), [("0001-01-01", "0001-02-28"), ("9999-11-15", "9999-12-31")]
)
def test_ranges_at_the_ends_of_the_calendar_are_empty_not_errors(
    client: Client, date_from: str, date_to: str
) -> None:
    report = _report(client, **span(date_from, date_to))
    assert report["data"]["entries"] == []
    assert report["data"]["totals"]["entries"] == 0
    assert client.entries(**span(date_from, date_to)) == []
