"""What parsing hands on: normalized rows and errors a person can act on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

MAX_ERRORS = 100


@dataclass(frozen=True, slots=True)
class Person:
    """Who the row belongs to, as the file names them; matching to members comes later
    (by email, then full name, then `user_map`)."""

    email: str | None
    full_name: str | None


@dataclass(frozen=True, slots=True)
class ImportRow:
    row: int  # the record's number in the file, the header being 1
    person: Person
    client: str | None
    project: str | None
    task: str | None
    description: str
    tags: tuple[str, ...]
    billable: bool
    start_at: datetime  # aware, UTC
    end_at: datetime  # aware, UTC

    @property
    def duration_seconds(self) -> int:
        return int((self.end_at - self.start_at).total_seconds())


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem: `row` and `column` are None when it is about the whole file
    (`column` may then name the parameter at fault, such as `date_format`)."""

    row: int | None
    column: str | None
    message: str


@dataclass(slots=True)
class ParseResult:
    rows: list[ImportRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)  # the first MAX_ERRORS
    error_count: int = 0
    rows_total: int = 0  # data records read, good or bad

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def add_error(self, row: int | None, column: str | None, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(RowError(row, column, message))
