"""`format=pdf` on the summary, detailed and timesheet reports (API.md "PDF"): the text of
each document, read back with pypdf, holds the organization's name, the range or week, the
filters in words, the rows and the totals (money in the organization's currency); a long
report runs over pages and ends with its totals; names in any script do not break it; bad
input is a 422 as with JSON."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import Engine

from query_api import exports
from query_api.reports_pdf import format_duration, format_money
from tests.conftest import BackgroundProjector
from tests.query_api.reports.helpers import World, build_world

ORG_NAME = "Zoë & Łódź Consulting 東京 한국"
ZOE = "Zoë Łódź 张伟"
MARCH = {"from": "2026-03-01", "to": "2026-03-31"}
WEEK = "2026-W11"  # Monday 2026-03-09 to Sunday 2026-03-15


@pytest.fixture
def world(api: httpx.Client, db: Engine, projector_running: BackgroundProjector) -> World:
    """Four entries in the week of 2026-03-09 (UTC): Ann 1:30 on Apollo/Design (its rate
    120.00/h: 180.00 EUR) and 0:30 on Boreas (her rate 90.00/h: 45.00 EUR), Bob 1:00 on
    Apollo not billable, Zoë 0:45 on Ceres (the organization's 60.00/h: 45.00 EUR)."""
    world = build_world(api, db)
    renamed = api.patch(world.org.path(), json={"name": ORG_NAME}, headers=world.owner.headers)
    assert renamed.status_code == 200, renamed.text
    zoe = world.add_person("zoe", "member", ZOE, None)
    ann, bob = world.people["ann"], world.people["bob"]
    apollo, boreas, ceres = (p.id for p in world.projects)
    design = next(t for t, (p, name) in world.tasks.items() if name == "Design")
    tuesday = datetime(2026, 3, 10, 9, tzinfo=UTC)
    world.write(
        [
            world.entry(ann, tuesday, 5400, project_id=apollo, task_id=design),
            world.entry(ann, tuesday + timedelta(days=1), 1800, project_id=boreas),
            world.entry(bob, tuesday, 3600, project_id=apollo, billable=False),
            world.entry(zoe, tuesday + timedelta(hours=3), 2700, project_id=ceres),
        ]
    )
    return world


def _pdf(qapi: httpx.Client, world: World, report: str, **params: str) -> list[list[str]]:
    """The lines of text of each page of the report's PDF."""
    response = qapi.get(
        world.org.path(f"/reports/{report}"),
        params={**params, "format": "pdf"},
        headers=world.headers(),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    reader = PdfReader(io.BytesIO(response.content))
    return [[line.strip() for line in page.extract_text().splitlines()] for page in reader.pages]


def _has_row(lines: list[str], cells: list[str]) -> bool:
    """`cells` as consecutive lines: one table row, in order."""
    return any(lines[i : i + len(cells)] == cells for i in range(len(lines)))


def test_formats_of_durations_and_money() -> None:
    assert [format_duration(s) for s in (0, 59, 5400, 3600 * 1234 + 61)] == [
        "0:00:00",
        "0:00:59",
        "1:30:00",
        "1234:01:01",
    ]
    assert format_money(123456, "EUR") == "1,234.56 EUR"
    assert format_money(5, "USD") == "0.05 USD"
    assert format_money(1234, "JPY") == "1,234 JPY"
    assert format_money(1234, "BHD") == "1.234 BHD"


def test_the_summary_as_pdf(qapi: httpx.Client, world: World) -> None:
    response = qapi.get(
        world.org.path("/reports/summary"),
        params={**MARCH, "group_by": "project", "format": "pdf"},
        headers=world.headers(),
    )
    assert response.headers["content-disposition"] == (
        'attachment; filename="summary-2026-03-01-2026-03-31.pdf"'
    )
    (lines,) = _pdf(qapi, world, "summary", group_by="project", **MARCH)
    assert ORG_NAME in lines
    assert "Summary report, 2026-03-01 to 2026-03-31" in lines
    assert "Grouped by project" in lines
    assert "Filters: none" in lines
    assert _has_row(lines, ["Apollo", "2:30:00", "1:30:00", "180.00 EUR", "2"])
    assert _has_row(lines, ["Boreas", "0:30:00", "0:30:00", "45.00 EUR", "1"])
    assert _has_row(lines, ["Ceres", "0:45:00", "0:45:00", "45.00 EUR", "1"])
    assert _has_row(lines, ["Total", "3:45:00", "2:45:00", "270.00 EUR", "4"])


def test_the_summary_by_two_dimensions_with_a_filter(qapi: httpx.Client, world: World) -> None:
    apollo = world.projects[0].id
    (lines,) = _pdf(qapi, world, "summary", group_by="user,task", project_id=apollo, **MARCH)
    assert "Grouped by user, then task" in lines
    assert "Filters: project Apollo" in lines
    assert _has_row(lines, ["Ann Archer", "1:30:00", "1:30:00", "180.00 EUR", "1"])
    assert _has_row(lines, ["Design", "1:30:00", "1:30:00", "180.00 EUR", "1"])
    assert _has_row(lines, ["Bob Baker", "1:00:00", "0:00:00", "0.00 EUR", "1"])
    assert _has_row(lines, ["(none)", "1:00:00", "0:00:00", "0.00 EUR", "1"])
    assert _has_row(lines, ["Total", "2:30:00", "1:30:00", "180.00 EUR", "2"])


def test_the_detailed_report_as_pdf(qapi: httpx.Client, world: World) -> None:
    pages = _pdf(qapi, world, "detailed", billable="true", sort="start_at", **MARCH)
    (lines,) = pages
    assert ORG_NAME in lines
    assert "Detailed report, 2026-03-01 to 2026-03-31" in lines
    assert "Filters: billable entries only" in lines
    assert "Dates and times in UTC" in lines
    design = ["2026-03-10", "09:00–10:30", "Ann Archer", "Apollo (Acme)", "Design", "work"]
    assert _has_row(lines, [*design, "1:30:00", "180.00 EUR"])
    zoe = ["2026-03-10", "12:00–12:45", ZOE, "Ceres", "work", "0:45:00", "45.00 EUR"]
    assert _has_row(lines, zoe)  # no task: an empty cell
    assert "Bob Baker" not in lines
    total = ["Total", "3 finished entries, billable 2:45:00", "2:45:00", "270.00 EUR"]
    assert _has_row(lines, total)


def test_a_long_detailed_report_runs_over_pages_and_ends_with_its_totals(
    qapi: httpx.Client, world: World
) -> None:
    cid = world.people["cid"]
    april = datetime(2026, 4, 1, 8, tzinfo=UTC)
    world.write([world.entry(cid, april + timedelta(hours=2 * i), 900) for i in range(120)])
    start = april + timedelta(hours=1)
    long_text = "A description long enough to wrap over more than one line of its cell. " * 3
    entry = {"user_id": str(cid.id), "description": long_text, "billable": True}
    entry |= {"start_at": start.isoformat(), "end_at": (start + timedelta(minutes=15)).isoformat()}
    world.post("/time-entries", entry)
    april_range = {"from": "2026-04-01", "to": "2026-04-30"}
    pages = _pdf(qapi, world, "detailed", user_id=str(cid.id), **april_range)
    assert len(pages) > 2
    for page in pages:  # the table's header on every page
        assert page[page.index("Date") : page.index("Date") + 3] == ["Date", "Time", "User"]
    # 121 entries of 15 minutes at the organization's 60.00/h.
    total = ["Total", "121 finished entries, billable 30:15:00", "30:15:00", "1,815.00 EUR"]
    assert _has_row(pages[-1], total)
    assert not any(line == "Total" for page in pages[:-1] for line in page)


def test_the_timesheet_as_pdf(qapi: httpx.Client, world: World) -> None:
    ann = world.people["ann"]
    response = qapi.get(
        world.org.path("/reports/timesheet"),
        params={"week": WEEK, "user_id": str(ann.id), "format": "pdf"},
        headers=world.headers(),
    )
    assert (
        response.headers["content-disposition"] == 'attachment; filename="timesheet-2026-W11.pdf"'
    )
    (lines,) = _pdf(qapi, world, "timesheet", week=WEEK, user_id=str(ann.id))
    assert ORG_NAME in lines
    assert "Timesheet, 2026-W11 (2026-03-09 to 2026-03-15)" in lines
    assert "User: Ann Archer" in lines
    assert _has_row(lines, ["Mon 09 Mar", "Tue 10 Mar", "Wed 11 Mar"])
    assert _has_row(lines, ["Apollo / Design", "1:30:00", "1:30:00"])
    assert _has_row(lines, ["Boreas", "0:30:00", "0:30:00"])
    day_totals = ["0:00:00", "1:30:00", "0:30:00", "0:00:00", "0:00:00", "0:00:00", "0:00:00"]
    assert _has_row(lines, ["Total", *day_totals, "2:00:00"])


def test_a_name_in_any_script_reads_back(qapi: httpx.Client, world: World) -> None:
    zoe = world.people["zoe"]
    (lines,) = _pdf(qapi, world, "timesheet", week=WEEK, user_id=str(zoe.id))
    assert f"User: {ZOE}" in lines
    assert _has_row(lines, ["Ceres", "0:45:00", "0:45:00"])


@pytest.mark.parametrize(
    ("report", "params", "field"),
    [
        ("summary", {**MARCH, "group_by": "nope"}, "group_by"),
        ("summary", {"from": "2026-03-31", "to": "2026-03-01", "group_by": "user"}, "from"),
        ("detailed", {"from": "2026-03-01"}, "to"),
        ("detailed", {**MARCH, "cursor": "garbled"}, "cursor"),
        ("timesheet", {"week": "2026-W99"}, "week"),
        ("timesheet", {"week": WEEK, "format": "csv"}, "format"),
        ("summary", {**MARCH, "group_by": "user", "format": "docx"}, "format"),
    ],
)
def test_bad_input_is_a_422(
    qapi: httpx.Client, world: World, report: str, params: dict[str, str], field: str
) -> None:
    response = qapi.get(
        world.org.path(f"/reports/{report}"),
        params={"format": "pdf", **params},
        headers=world.headers(),
    )
    assert response.status_code == 422, response.text
    assert field in {detail["field"] for detail in response.json()["details"]}


def test_a_pdf_past_its_cap_is_a_422_naming_format(
    qapi: httpx.Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The query API runs in this process: lowering the cap here lowers it for the server.
    monkeypatch.setattr(exports, "MAX_PDF_ROWS", 2)
    for report, params in (("summary", {"group_by": "project"}), ("detailed", {})):
        response = qapi.get(
            world.org.path(f"/reports/{report}"),
            params={**MARCH, **params, "format": "pdf"},
            headers=world.headers(),
        )
        assert response.status_code == 422, response.text
        assert response.json()["details"][0]["field"] == "format"
        assert "A PDF holds at most 2 rows" in response.json()["error"]
    # The spreadsheets keep their own cap.
    csv = qapi.get(
        world.org.path("/reports/summary"),
        params={**MARCH, "group_by": "project", "format": "csv"},
        headers=world.headers(),
    )
    assert csv.status_code == 200, csv.text
