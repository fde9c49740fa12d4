from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from importers import ParseResult, RowError, parse

DATA = Path(__file__).resolve().parent.parent / "data" / "imports"
BERLIN = "Europe/Berlin"

TOGGL_HEADER = (
    "User,Email,Client,Project,Task,Description,Billable,"
    "Start date,Start time,End date,End time,Duration,Tags"
)
HARVEST_HEADER = "Date,Client,Project,Task,Notes,Hours,Billable?,First Name,Last Name"
GENERIC_HEADER = "start,end,user_email,project,client,task,description,tags,billable"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def sample(source: str, name: str, date_format: str | None = None) -> ParseResult:
    return parse(source, (DATA / name).read_bytes(), timezone=BERLIN, date_format=date_format)


def parse_text(source: str, *lines: str, date_format: str | None = None) -> ParseResult:
    data = "\n".join(lines).encode() + b"\n"
    return parse(source, data, timezone=BERLIN, date_format=date_format)


def toggl_line(
    start: str = "2026-03-02,09:00:00", end: str = "2026-03-02,10:00:00", **cells: str
) -> str:
    values = {
        "user": "Ada Lovelace",
        "email": "ada@example.com",
        "billable": "Yes",
        "tags": "",
    } | cells
    return (
        f"{values['user']},{values['email']},Acme,Website,,Work,{values['billable']},"
        f"{start},{end},01:00:00,{values['tags']}"
    )


def only_error(result: ParseResult) -> RowError:
    assert result.error_count == 1, result.errors
    return result.errors[0]
