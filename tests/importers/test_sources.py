"""Each source's sample export (tests/data/imports, written to the columns of
docs/API.md) parses to exactly the expected rows, in UTC."""

from __future__ import annotations

from datetime import timedelta

from importers import ImportRow, Person, parse
from tests.importers.helpers import sample, utc

ADA = Person("ada@example.com", "Ada Lovelace")
GRACE = Person("grace@example.com", "Grace Hopper")


def total_seconds(rows: list[ImportRow]) -> int:
    return sum(row.duration_seconds for row in rows)


def test_toggl_sample():
    result = sample("toggl_csv", "toggl.csv")

    assert result.ok, result.errors
    assert result.rows_total == len(result.rows) == 4
    assert result.rows[0] == ImportRow(
        row=2,
        person=ADA,
        client="Acme",
        project="Website",
        task="Design",
        description="Homepage mockups",
        tags=("design", "urgent"),
        billable=True,
        start_at=utc("2026-03-02T08:00"),
        end_at=utc("2026-03-02T09:30"),
    )
    assert result.rows[2] == ImportRow(
        row=4,
        person=GRACE,
        client=None,
        project="Internal",
        task=None,
        description="Reading, notes",
        tags=("reading",),
        billable=False,
        start_at=utc("2026-03-03T22:30"),
        end_at=utc("2026-03-03T23:30"),
    )
    # 01:30 CET to 03:30 CEST on the spring-forward night is one hour
    assert result.rows[3].description == 'Fix "quoted" bug'
    assert (result.rows[3].start_at, result.rows[3].end_at) == (
        utc("2026-03-29T00:30"),
        utc("2026-03-29T01:30"),
    )
    assert total_seconds(result.rows) == (90 + 15 + 60 + 60) * 60
    assert [row.billable for row in result.rows] == [True, False, False, True]


def test_clockify_sample_us_dates_and_12_hour_times():
    result = sample("clockify_csv", "clockify.csv")

    assert result.ok, result.errors
    assert len(result.rows) == 3
    assert result.rows[0] == ImportRow(
        row=2,
        person=ADA,
        client="Acme",
        project="Website",
        task="Writing",
        description="Homepage copy",
        tags=("writing", "copy"),
        billable=True,
        start_at=utc("2026-03-02T08:00"),
        end_at=utc("2026-03-02T11:30"),
    )
    night = result.rows[2]  # 03/13/2026 11:00 PM to 03/14/2026 12:30 AM
    assert (night.start_at, night.end_at) == (utc("2026-03-13T22:00"), utc("2026-03-13T23:30"))
    assert (night.task, night.tags) == ("Development", ("ops",))
    assert total_seconds(result.rows) == (210 + 45 + 90) * 60


def test_clockify_activity_column_is_the_task():
    header = (
        "Project,Client,Description,Activity,User,Email,Billable,"
        "Start Date,Start Time,End Date,End Time,Duration (decimal)"
    )
    line = "Website,Acme,Copy,Writing,Ada,ada@x.org,No,03/02/2026,9:00 AM,03/02/2026,10:00 AM,1,0"
    data = f"{header}\n{line}\n".encode()

    result = parse("clockify_csv", data, timezone="UTC", date_format="MDY")

    assert result.ok, result.errors
    assert result.rows[0].task == "Writing"
    assert result.rows[0].start_at == utc("2026-03-02T09:00")


def test_harvest_sample_is_laid_end_to_end_from_nine():
    result = sample("harvest_csv", "harvest.csv")

    assert result.ok, result.errors
    assert len(result.rows) == 5
    ada, grace, ada_again = result.rows[:3]
    assert ada == ImportRow(
        row=2,
        person=Person(None, "Ada Lovelace"),
        client="Acme",
        project="Website",
        task="Design",
        description="Mockups",
        tags=(),
        billable=True,
        start_at=utc("2026-03-02T08:00"),  # 09:00 CET
        end_at=utc("2026-03-02T09:30"),
    )
    # each person's day starts at 09:00; Ada's second entry follows her first
    assert (grace.start_at, grace.end_at) == (utc("2026-03-02T08:00"), utc("2026-03-02T10:00"))
    assert (ada_again.start_at, ada_again.end_at) == (
        utc("2026-03-02T09:30"),
        utc("2026-03-02T09:45"),
    )
    assert not ada_again.billable
    assert total_seconds(result.rows) == int(
        timedelta(hours=1.5 + 2 + 0.25 + 1 + 0.5).total_seconds()
    )


def test_harvest_on_the_spring_forward_day_starts_at_nine_summer_time():
    sunday = sample("harvest_csv", "harvest.csv").rows[3:]

    # 2026-03-29: Berlin moves from UTC+1 to UTC+2 at 02:00, so 09:00 is 07:00 UTC
    assert [(row.start_at, row.end_at) for row in sunday] == [
        (utc("2026-03-29T07:00"), utc("2026-03-29T08:00")),
        (utc("2026-03-29T08:00"), utc("2026-03-29T08:30")),
    ]


def test_harvest_semicolons_decimal_commas_and_dotted_dates():
    result = sample("harvest_csv", "harvest_semicolon.csv")

    assert result.ok, result.errors
    assert [row.person.full_name for row in result.rows] == ["Zoë Müller"] * 3
    assert result.rows[0].description == "Entwürfe, erste Runde"
    assert [row.duration_seconds for row in result.rows] == [5400, 2700, 7200]
    # 13.03.2026 is day-first, so 02.03.2026 is the 2nd of March
    assert result.rows[0].start_at == utc("2026-03-02T08:00")
    assert result.rows[2].start_at == utc("2026-03-13T08:00")


def test_generic_sample_offsets_and_local_times():
    result = sample("generic_csv", "generic.csv")

    assert result.ok, result.errors
    assert len(result.rows) == 3
    assert result.rows[0] == ImportRow(
        row=2,
        person=Person("ada@example.com", None),
        client="Acme",
        project="Website",
        task="Design",
        description="Mockups",
        tags=("design", "urgent"),
        billable=True,
        start_at=utc("2026-03-02T08:00"),
        end_at=utc("2026-03-02T09:00"),
    )
    assert result.rows[1].start_at == utc("2026-03-02T08:00")  # Z is kept, not localized
    assert result.rows[2].start_at == utc("2026-03-03T08:00")  # local, in Europe/Berlin
    assert total_seconds(result.rows) == (60 + 75 + 480) * 60
