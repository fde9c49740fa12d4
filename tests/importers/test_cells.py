"""Errors in cells name the row (the header is row 1), the column as docs/API.md
writes it, and what is wrong in words."""

from __future__ import annotations

import pytest

from importers import RowError
from tests.importers.helpers import (
    GENERIC_HEADER,
    HARVEST_HEADER,
    TOGGL_HEADER,
    only_error,
    parse_text,
    toggl_line,
    utc,
)


def test_end_before_start():
    line = toggl_line(start="2026-03-02,10:00:00", end="2026-03-02,09:30:00")

    result = parse_text("toggl_csv", TOGGL_HEADER, toggl_line(), line)

    assert only_error(result) == RowError(
        3, "End time", "the entry ends (2026-03-02 09:30) before it starts (2026-03-02 10:00)"
    )
    assert len(result.rows) == 1  # the good row is still parsed; the caller writes nothing


def test_end_equal_to_start_is_refused_too():
    result = parse_text("generic_csv", GENERIC_HEADER, "2026-03-02T09:00Z,2026-03-02T09:00Z,a@b.c")

    assert only_error(result) == RowError(
        2, "end", "the entry ends (2026-03-02 10:00) before it starts (2026-03-02 10:00)"
    )


def test_entry_longer_than_a_day():
    line = toggl_line(start="2026-03-02,09:00:00", end="2026-03-03,09:30:00")

    result = parse_text("toggl_csv", TOGGL_HEADER, line)

    assert only_error(result) == RowError(
        2, "End time", "the entry is 24:30 h long; at most 24 hours are allowed"
    )


def test_harvest_hours_over_a_day_and_zero():
    result = parse_text(
        "harvest_csv",
        HARVEST_HEADER,
        "2026-03-02,Acme,Web,Design,,25,Yes,Ada,Lovelace",
        "2026-03-02,Acme,Web,Design,,0,Yes,Ada,Lovelace",
    )

    assert result.errors == [
        RowError(2, "Hours", "25:00 h in one entry; at most 24 hours are allowed"),
        RowError(3, "Hours", "'0' hours: an entry must last some time"),
    ]


@pytest.mark.parametrize(
    ("start", "column", "message"),
    [
        (",09:00:00", "Start date", "'Start date' is empty; it is required"),
        ("2026-03-02,", "Start time", "'Start time' is empty; it is required"),
        ("2026-02-30,09:00", "Start date", "'2026-02-30' is not a date in the calendar"),
        ("March 2,09:00", "Start date", "'March 2' is not a date; write it like 2026-03-02"),
        (
            "2026-03-02,9h",
            "Start time",
            "'9h' is not a time of day; write it like 13:30 or 1:30 PM",
        ),
        ("2026-03-02,25:00", "Start time", "'25:00' is not a time of day"),
        (
            "2026-03-02,13:00 PM",
            "Start time",
            "'13:00 PM' is not a time of day: a 12-hour clock runs 1 to 12",
        ),
    ],
)
def test_bad_start_cells(start: str, column: str, message: str):
    result = parse_text("toggl_csv", TOGGL_HEADER, toggl_line(start=start))

    assert only_error(result) == RowError(2, column, message)


def test_no_person():
    result = parse_text("toggl_csv", TOGGL_HEADER, toggl_line(user="", email=""))

    assert only_error(result) == RowError(
        2, "Email", "no person: both 'Email' and 'User' are empty"
    )


def test_harvest_without_a_name():
    result = parse_text("harvest_csv", HARVEST_HEADER, "2026-03-02,Acme,Web,Design,,1,Yes,,")

    assert only_error(result) == RowError(
        2, "First Name", "no person: both 'First Name' and 'Last Name' are empty"
    )


def test_bad_billable_and_bad_hours():
    result = parse_text(
        "harvest_csv",
        HARVEST_HEADER,
        "2026-03-02,Acme,Web,Design,,1.5,Perhaps,Ada,Lovelace",
        "2026-03-02,Acme,Web,Design,,one,Yes,Ada,Lovelace",
        "2026-03-02,Acme,Web,Design,,1:75,Yes,Ada,Lovelace",
    )

    assert result.errors == [
        RowError(2, "Billable?", "'Perhaps' is not yes or no"),
        RowError(3, "Hours", "'one' is not a number of hours; write it like 1.5 or 1:30"),
        RowError(4, "Hours", "'1:75' is not a number of hours"),
    ]


def test_harvest_hours_as_a_clock_and_with_a_comma():
    result = parse_text(
        "harvest_csv",
        HARVEST_HEADER,
        "2026-03-02,Acme,Web,Design,,1:30,Yes,Ada,Lovelace",
        '2026-03-02,Acme,Web,Design,,"0,25",Yes,Ada,Lovelace',
    )

    assert [row.duration_seconds for row in result.rows] == [5400, 900]


def test_generic_missing_email_and_bad_date_time():
    result = parse_text(
        "generic_csv",
        GENERIC_HEADER,
        "2026-03-02T09:00Z,2026-03-02T10:00Z,",
        "2026-03-02,2026-03-02T10:00Z,a@b.c",
        "2026-03-02T09:00Z,tomorrow,a@b.c",
    )

    assert result.errors == [
        RowError(2, "user_email", "'user_email' is empty; it is required"),
        RowError(
            3, "start", "'2026-03-02' is not a date and time; write it like 2026-03-02T09:00:00Z"
        ),
        RowError(4, "end", "'tomorrow' is not a date and time; write it like 2026-03-02T09:00:00Z"),
    ]


def test_generic_tags_are_semicolon_separated_and_deduplicated():
    line = "2026-03-02T09:00+01:00,2026-03-02T10:00+01:00,a@b.c,,,,,a; B ;b;;c,yes"

    result = parse_text("generic_csv", GENERIC_HEADER, line)

    assert result.rows[0].tags == ("a", "B", "c")
    assert result.rows[0].start_at == utc("2026-03-02T08:00")
