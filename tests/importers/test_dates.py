"""Dates in the exporters' forms, decided once per file, and local times read in the
import's time zone, daylight saving time included."""

from __future__ import annotations

from datetime import time

import pytest

from importers import RowError, parse
from importers.dates import DateOrder, detect_date_order, parse_time
from tests.importers.helpers import (
    GENERIC_HEADER,
    HARVEST_HEADER,
    TOGGL_HEADER,
    only_error,
    parse_text,
    toggl_line,
    utc,
)


def harvest(*dates: str, date_format: str | None = None) -> list[str]:
    lines = [f"{day},Acme,Web,Design,,1,Yes,Ada,Lovelace" for day in dates]
    result = parse_text("harvest_csv", HARVEST_HEADER, *lines, date_format=date_format)
    assert result.ok, result.errors
    return [row.start_at.date().isoformat() for row in result.rows]


def test_ambiguous_dates_ask_for_date_format():
    result = parse_text(
        "harvest_csv",
        HARVEST_HEADER,
        "03/02/2026,Acme,Web,Design,,1,Yes,Ada,Lovelace",
        "04/02/2026,Acme,Web,Design,,1,Yes,Ada,Lovelace",
    )

    assert only_error(result) == RowError(
        None,
        "Date",
        "a date like '03/02/2026' could be day-first or month-first; "
        "set date_format to DMY (day first) or MDY (month first)",
    )
    assert result.rows == []


def test_date_format_settles_the_ambiguity():
    dates = ("03/02/2026", "04/02/2026")
    assert harvest(*dates, date_format="DMY") == ["2026-02-03", "2026-02-04"]
    assert harvest(*dates, date_format="mdy") == ["2026-03-02", "2026-04-02"]


def test_one_unambiguous_date_decides_the_whole_file():
    assert harvest("03/02/2026", "25/02/2026") == ["2026-02-03", "2026-02-25"]
    assert harvest("03/02/2026", "02/25/2026") == ["2026-03-02", "2026-02-25"]


def test_dates_that_read_the_same_both_ways_need_no_format():
    assert harvest("03/03/2026", "2026-03-04") == ["2026-03-03", "2026-03-04"]


def test_dotted_dates_are_day_first():
    assert harvest("02.03.2026", "2026-03-04") == ["2026-03-02", "2026-03-04"]


def test_mixed_day_first_and_month_first_dates():
    result = parse_text(
        "harvest_csv",
        HARVEST_HEADER,
        "25/02/2026,Acme,Web,Design,,1,Yes,Ada,Lovelace",
        "02/25/2026,Acme,Web,Design,,1,Yes,Ada,Lovelace",
    )

    assert only_error(result) == RowError(
        None,
        "Date",
        "the dates mix day-first and month-first forms; "
        "set date_format to DMY (day first) or MDY (month first)",
    )


def test_a_forced_format_that_does_not_fit_names_the_row():
    result = parse_text(
        "harvest_csv",
        HARVEST_HEADER,
        "2026-03-02,Acme,Web,Design,,1,Yes,Ada,Lovelace",  # ISO fits any format
        "02/25/2026,Acme,Web,Design,,1,Yes,Ada,Lovelace",
        date_format="DMY",
    )

    assert only_error(result) == RowError(3, "Date", "'02/25/2026' is not a date in the calendar")


def test_ymd_refuses_other_forms():
    result = parse_text(
        "harvest_csv", HARVEST_HEADER, "02/03/2026,A,W,D,,1,Yes,Ada,L", date_format="YMD"
    )

    assert only_error(result) == RowError(
        2, "Date", "'02/03/2026' is not a date; write it like 2026-03-02"
    )


def test_generic_local_date_times_take_part_in_detection():
    line = "13/03/2026 09:00,13/03/2026 5:30 PM,a@b.c,,,,,,"

    result = parse_text("generic_csv", GENERIC_HEADER, line)

    assert result.ok, result.errors
    assert (result.rows[0].start_at, result.rows[0].end_at) == (
        utc("2026-03-13T08:00"),
        utc("2026-03-13T16:30"),
    )


def test_detection_ignores_iso_dates():
    assert detect_date_order(["2026-03-02", "2026-12-31"]).order is DateOrder.MDY


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12:00 AM", time(0)),
        ("12:30 PM", time(12, 30)),
        ("1:30 pm", time(13, 30)),
        ("01:30:15 P.M.", time(13, 30, 15)),
        ("11:59 AM", time(11, 59)),
        ("9:05", time(9, 5)),
        ("23:59:59", time(23, 59, 59)),
    ],
)
def test_times(text: str, expected: time):
    assert parse_time(text) == expected


def test_a_time_the_clocks_skip_is_an_error():
    line = toggl_line(start="2026-03-29,02:30:00", end="2026-03-29,04:00:00")

    result = parse_text("toggl_csv", TOGGL_HEADER, line)

    assert only_error(result) == RowError(
        2,
        "Start time",
        "2026-03-29 02:30 does not exist in Europe/Berlin: the clocks skip that hour",
    )


def test_the_repeated_autumn_hour_is_its_first_occurrence():
    line = toggl_line(start="2026-10-25,02:30:00", end="2026-10-25,03:30:00")

    result = parse_text("toggl_csv", TOGGL_HEADER, line)

    # 02:30 CEST is 00:30 UTC; 03:30 CET is 02:30 UTC: two hours passed
    assert (result.rows[0].start_at, result.rows[0].end_at) == (
        utc("2026-10-25T00:30"),
        utc("2026-10-25T02:30"),
    )


def test_harvest_day_in_another_time_zone():
    data = f"{HARVEST_HEADER}\n2026-03-08,A,W,D,,1,Yes,Ada,L\n".encode()

    result = parse("harvest_csv", data, timezone="America/New_York", date_format=None)

    # the US springs forward on 2026-03-08: 09:00 EDT is 13:00 UTC
    assert result.rows[0].start_at == utc("2026-03-08T13:00")
