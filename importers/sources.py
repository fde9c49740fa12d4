"""The four sources: their columns (as docs/API.md lists them) and how one record of
each becomes an `ImportRow`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TypeVar, cast
from zoneinfo import ZoneInfo

from importers.dates import DateOrder, parse_date, parse_date_time, parse_hours, parse_time, to_utc
from importers.decoding import normalize_header
from importers.rows import ImportRow, Person

MAX_ENTRY = timedelta(hours=24)
HARVEST_DAY_START = time(9)
T = TypeVar("T")
H = TypeVar("H", Person, tuple[str, ...])

_BOOLEANS = {
    "": False,
    "yes": True,
    "y": True,
    "true": True,
    "1": True,
    "billable": True,
    "no": False,
    "n": False,
    "false": False,
    "0": False,
    "non-billable": False,
}


class CellError(ValueError):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


@dataclass
class Context:
    zone: ZoneInfo
    order: DateOrder
    # Harvest: where the next entry of (person, day) starts
    next_start_at: dict[tuple[str, date], datetime] = field(default_factory=dict)
    _shared: dict[object, object] = field(default_factory=dict)

    def share(self, value: H) -> H:
        """One object for equal people and tag lists: a large export repeats them."""
        return cast(H, self._shared.setdefault(value, value))


class Cells:
    """One record, read by canonical column name."""

    def __init__(self, row: int, record: Sequence[str], index: Mapping[str, int]) -> None:
        self.row = row
        self._record = record
        self._index = index

    def has(self, column: str) -> bool:
        return column in self._index

    def get(self, column: str) -> str:
        position = self._index.get(column)
        if position is None or position >= len(self._record):
            return ""
        return self._record[position].strip()

    def name(self, column: str) -> str | None:
        """An optional name (client, project, …): None when empty, shared when repeated."""
        value = self.get(column)
        return sys.intern(value) if value else None

    def required(self, column: str) -> str:
        value = self.get(column)
        if not value:
            raise CellError(column, f"'{column}' is empty; it is required")
        return value


@dataclass(frozen=True)
class Source:
    label: str
    columns: tuple[str, ...]  # as API.md writes them; errors use these names
    required: tuple[tuple[str, ...], ...]  # each group: at least one must be present
    date_columns: tuple[str, ...]
    build: Callable[[Cells, Context], ImportRow]
    aliases: Mapping[str, str] = field(default_factory=dict)  # other header -> column

    def header_names(self) -> dict[str, str]:
        names = {normalize_header(column): column for column in self.columns}
        names.update({normalize_header(alias): column for alias, column in self.aliases.items()})
        return names


def _toggl(cells: Cells, context: Context) -> ImportRow:
    return _timed(cells, context, ("Start date", "Start time", "End date", "End time"))


def _clockify(cells: Cells, context: Context) -> ImportRow:
    return _timed(cells, context, ("Start Date", "Start Time", "End Date", "End Time"))


def _timed(cells: Cells, context: Context, names: tuple[str, str, str, str]) -> ImportRow:
    start_date, start_time, end_date, end_time = names
    person = context.share(_person(cells))
    start_at = _local(cells, context, start_date, start_time)
    end_at = _local(cells, context, end_date, end_time)
    _check_span(start_at, end_at, end_time, context)
    return ImportRow(
        row=cells.row,
        person=person,
        client=cells.name("Client"),
        project=cells.name("Project"),
        task=cells.name("Task"),
        description=cells.get("Description"),
        tags=context.share(split_tags(cells.get("Tags"), ",")),
        billable=_billable(cells, "Billable"),
        start_at=start_at,
        end_at=end_at,
    )


def _person(cells: Cells) -> Person:
    email, full_name = cells.name("Email"), cells.name("User")
    if email is None and full_name is None:
        column = "Email" if cells.has("Email") else "User"
        raise CellError(column, "no person: both 'Email' and 'User' are empty")
    return Person(email, full_name)


def _local(cells: Cells, context: Context, date_column: str, time_column: str) -> datetime:
    day = _cell(cells, date_column, lambda text: parse_date(text, context.order))
    clock = _cell(cells, time_column, parse_time)
    try:
        return to_utc(datetime.combine(day, clock), context.zone)
    except ValueError as error:
        raise CellError(time_column, str(error)) from None


def _cell(cells: Cells, column: str, parse: Callable[[str], T]) -> T:
    try:
        return parse(cells.required(column))
    except CellError:
        raise
    except ValueError as error:
        raise CellError(column, str(error)) from None


def _check_span(start_at: datetime, end_at: datetime, column: str, context: Context) -> None:
    if end_at <= start_at:
        start, end = (moment.astimezone(context.zone) for moment in (start_at, end_at))
        raise CellError(
            column,
            f"the entry ends ({end:%Y-%m-%d %H:%M}) before it starts ({start:%Y-%m-%d %H:%M})",
        )
    if end_at - start_at > MAX_ENTRY:
        raise CellError(
            column, f"the entry is {_hours(end_at - start_at)} long; at most 24 hours are allowed"
        )


def _hours(span: timedelta) -> str:
    minutes = int(span.total_seconds()) // 60
    return f"{minutes // 60}:{minutes % 60:02d} h"


def _billable(cells: Cells, column: str) -> bool:
    value = cells.get(column)
    try:
        return _BOOLEANS[value.casefold()]
    except KeyError:
        raise CellError(column, f"'{value}' is not yes or no") from None


def split_tags(value: str, separator: str) -> tuple[str, ...]:
    tags: dict[str, str] = {}
    for tag in value.split(separator):
        name = tag.strip()
        if name:
            tags.setdefault(name.casefold(), sys.intern(name))
    return tuple(tags.values())


def _harvest(cells: Cells, context: Context) -> ImportRow:
    day = _cell(cells, "Date", lambda text: parse_date(text, context.order))
    hours = _cell(cells, "Hours", parse_hours)
    if hours <= timedelta(0):
        raise CellError("Hours", f"'{cells.get('Hours')}' hours: an entry must last some time")
    if hours > MAX_ENTRY:
        raise CellError("Hours", f"{_hours(hours)} in one entry; at most 24 hours are allowed")
    name = " ".join(part for part in (cells.get("First Name"), cells.get("Last Name")) if part)
    if not name:
        raise CellError("First Name", "no person: both 'First Name' and 'Last Name' are empty")
    key = (name.casefold(), day)
    start_at = context.next_start_at.get(key)
    if start_at is None:
        start_at = _day_start(day, context)
    context.next_start_at[key] = start_at + hours
    return ImportRow(
        row=cells.row,
        person=context.share(Person(None, sys.intern(name))),
        client=cells.name("Client"),
        project=cells.name("Project"),
        task=cells.name("Task"),
        description=cells.get("Notes"),
        tags=(),
        billable=_billable(cells, "Billable?"),
        start_at=start_at,
        end_at=start_at + hours,
    )


def _day_start(day: date, context: Context) -> datetime:
    try:
        return to_utc(datetime.combine(day, HARVEST_DAY_START), context.zone)
    except ValueError as error:  # a zone whose clocks skip 09:00
        raise CellError("Date", str(error)) from None


def _generic(cells: Cells, context: Context) -> ImportRow:
    def moment(text: str) -> datetime:
        return parse_date_time(text, context.order, context.zone)

    start_at = _cell(cells, "start", moment)
    end_at = _cell(cells, "end", moment)
    _check_span(start_at, end_at, "end", context)
    return ImportRow(
        row=cells.row,
        person=context.share(Person(sys.intern(cells.required("user_email")), None)),
        client=cells.name("client"),
        project=cells.name("project"),
        task=cells.name("task"),
        description=cells.get("description"),
        tags=context.share(split_tags(cells.get("tags"), ";")),
        billable=_billable(cells, "billable"),
        start_at=start_at,
        end_at=end_at,
    )


def _one_each(*columns: str) -> tuple[tuple[str, ...], ...]:
    return tuple((column,) for column in columns)


SOURCES: dict[str, Source] = {
    "toggl_csv": Source(
        label="Toggl Track",
        columns=(
            "User",
            "Email",
            "Client",
            "Project",
            "Task",
            "Description",
            "Billable",
            "Start date",
            "Start time",
            "End date",
            "End time",
            "Duration",
            "Tags",
        ),  # fmt: skip
        required=(
            ("Email", "User"),
            ("Start date",),
            ("Start time",),
            ("End date",),
            ("End time",),
        ),
        date_columns=("Start date", "End date"),
        build=_toggl,
    ),
    "clockify_csv": Source(
        label="Clockify",
        columns=(
            "Project",
            "Client",
            "Description",
            "Task",
            "User",
            "Group",
            "Email",
            "Tags",
            "Billable",
            "Start Date",
            "Start Time",
            "End Date",
            "End Time",
            "Duration (h)",
            "Duration (decimal)",
        ),  # fmt: skip
        required=(
            ("Email", "User"),
            ("Start Date",),
            ("Start Time",),
            ("End Date",),
            ("End Time",),
        ),
        date_columns=("Start Date", "End Date"),
        build=_clockify,
        aliases={"Activity": "Task"},
    ),
    "harvest_csv": Source(
        label="Harvest",
        columns=(
            "Date",
            "Client",
            "Project",
            "Task",
            "Notes",
            "Hours",
            "Billable?",
            "First Name",
            "Last Name",
        ),  # fmt: skip
        required=(("Date",), ("Hours",), ("First Name",), ("Last Name",)),
        date_columns=("Date",),
        build=_harvest,
        aliases={"Billable": "Billable?"},
    ),
    "generic_csv": Source(
        label="generic",
        columns=(
            "start",
            "end",
            "user_email",
            "project",
            "client",
            "task",
            "description",
            "tags",
            "billable",
        ),  # fmt: skip
        required=(("start",), ("end",), ("user_email",)),
        date_columns=("start", "end"),
        build=_generic,
    ),
}
