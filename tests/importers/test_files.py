"""Whole-file answers: encodings, BOMs, delimiters, files that are not CSV, missing
columns, and a large export."""

from __future__ import annotations

import time

import pytest

from importers import RowError, parse
from tests.importers.helpers import (
    BERLIN,
    DATA,
    TOGGL_HEADER,
    only_error,
    parse_text,
    sample,
    toggl_line,
    utc,
)

NOT_CSV = "this is not a CSV file; export the report as CSV and upload that"


@pytest.mark.parametrize("name", ["toggl_bom.csv", "toggl_utf16.csv"])
def test_bom_files_parse_like_the_plain_one(name: str):
    assert sample("toggl_csv", name) == sample("toggl_csv", "toggl.csv")


def test_latin1_file_still_parses():
    result = sample("toggl_csv", "toggl_latin1.csv")

    assert result.ok, result.errors
    assert result.rows[0].person.full_name == "Zoë Müller"
    assert result.rows[0].description == "Café menu"


def test_cp1252_characters_are_read_as_windows_writes_them():
    data = f"{TOGGL_HEADER}\n{toggl_line(user='Zoë – “Z”')}\n".encode("cp1252")

    result = parse("toggl_csv", data, timezone=BERLIN, date_format=None)

    assert result.rows[0].person.full_name == "Zoë – “Z”"


def test_tab_delimited_file():
    text = f"{TOGGL_HEADER}\n{toggl_line()}\n".replace(",", "\t")

    result = parse("toggl_csv", text.encode(), timezone=BERLIN, date_format=None)

    assert result.ok, result.errors
    assert result.rows[0].start_at == utc("2026-03-02T08:00")


def test_binary_file_is_not_a_csv():
    result = sample("toggl_csv", "not_a_csv.bin")

    assert only_error(result) == RowError(None, None, NOT_CSV)
    assert result.rows == []


def test_a_spreadsheet_is_named_as_such():
    result = parse("harvest_csv", b"PK\x03\x04" + bytes(200), timezone=BERLIN, date_format=None)

    assert only_error(result).message == (
        "this is a spreadsheet (XLSX) or a ZIP archive, not a CSV file; save it as CSV"
    )


def test_empty_file():
    result = parse("generic_csv", b"\xef\xbb\xbf \n", timezone=BERLIN, date_format=None)

    assert only_error(result) == RowError(None, None, "the file is empty")


def test_text_of_another_kind_is_not_an_export():
    result = parse_text("toggl_csv", "Dear team,", "here are my hours.")

    assert only_error(result) == RowError(
        1,
        None,
        "this is not a Toggl Track CSV export: none of its columns are here; "
        "the file's columns are: Dear team",
    )


def test_missing_required_column():
    header = TOGGL_HEADER.replace(",Start date", "")
    line = toggl_line().replace(",2026-03-02,09:00:00", ",09:00:00", 1)

    result = parse_text("toggl_csv", header, line)

    assert only_error(result) == RowError(
        1,
        "Start date",
        "the file has no column 'Start date'; its columns are: User, Email, Client, Project, "
        "Task, Description, Billable, Start time, End date, End time, Duration, Tags",
    )


def test_missing_person_columns_name_both():
    result = parse_text("generic_csv", "start,end,project", "2026-03-02T09:00Z,2026-03-02T10:00Z,X")

    assert only_error(result) == RowError(
        1, "user_email", "the file has no column 'user_email'; its columns are: start, end, project"
    )


def test_headers_ignore_case_spaces_and_extra_columns():
    header = " USER , email,Start Date,start TIME,End date,End time,Amount (USD),Rate"
    line = "Ada,ada@example.com,2026-03-02,09:00,2026-03-02,10:00,100,50"

    result = parse_text("toggl_csv", header, line)

    assert result.ok, result.errors
    assert result.rows[0].person.email == "ada@example.com"
    assert (result.rows[0].client, result.rows[0].tags, result.rows[0].billable) == (
        None,
        (),
        False,
    )


def test_blank_lines_are_skipped_but_rows_keep_their_numbers():
    result = parse_text("toggl_csv", TOGGL_HEADER, "", toggl_line(), ",,,", toggl_line())

    assert result.ok, result.errors
    assert [row.row for row in result.rows] == [3, 5]
    assert result.rows_total == 2


def test_bad_parameters_are_errors_not_exceptions():
    result = parse("jira_csv", b"x", timezone="Mars/Olympus", date_format="YDM")

    assert result.errors == [
        RowError(
            None,
            "source",
            "unknown source 'jira_csv'; one of: toggl_csv, clockify_csv, harvest_csv, generic_csv",
        ),
        RowError(None, "timezone", "'Mars/Olympus' is not an IANA time zone"),
        RowError(None, "date_format", "'YDM' is not YMD, MDY or DMY"),
    ]


def test_errors_are_capped_at_one_hundred_with_the_total_counted():
    bad = toggl_line(billable="maybe")

    result = parse_text("toggl_csv", TOGGL_HEADER, *[bad] * 250)

    assert result.error_count == 250
    assert len(result.errors) == 100
    assert result.errors[-1] == RowError(101, "Billable", "'maybe' is not yes or no")


def test_a_broken_quote_is_reported_at_its_row():
    huge = '"' + "x" * 200_000  # an unclosed quote swallows the rest of the file
    result = parse_text("toggl_csv", TOGGL_HEADER, toggl_line(), huge)

    assert len(result.rows) == 1
    assert only_error(result).row == 3
    assert only_error(result).message.startswith("the file cannot be read as CSV from here: ")


def test_a_fifty_megabyte_export_parses_in_seconds():
    line = (DATA / "toggl.csv").read_text().splitlines()[1]
    count = 50 * 1024 * 1024 // (len(line) + 1)
    data = (TOGGL_HEADER + ",Amount (EUR)\n" + (line + "\n") * count).encode()
    assert len(data) >= 50 * 1024 * 1024 - len(line)

    began = time.perf_counter()
    result = parse("toggl_csv", data, timezone=BERLIN, date_format=None)
    seconds = time.perf_counter() - began

    assert result.ok, result.errors[:3]
    assert len(result.rows) == count
    assert seconds < 60, seconds


def test_utf16_without_a_bom():
    text = f"{TOGGL_HEADER}\n{toggl_line()}\n"

    result = parse("toggl_csv", text.encode("utf-16-le"), timezone=BERLIN, date_format=None)

    assert result.ok, result.errors
    assert result.rows[0].person.email == "ada@example.com"


def test_nul_bytes_in_a_text_file():
    data = f"{TOGGL_HEADER}\n{toggl_line()}\n".encode() + b"\x00\x01\x02garbage"

    result = parse("toggl_csv", data, timezone=BERLIN, date_format=None)

    assert only_error(result) == RowError(None, None, NOT_CSV)
