"""Parameters of the entry listings (time entries, detailed report): who and what they cover,
their order, and the keyset cursor.

A cursor is the sort key `(start_at, entry_id)` of the last entry of a page plus the sort
it was issued for, signed for one organization's entries: a forged, garbled or foreign
cursor is a 422 naming `cursor`, never a read from somewhere else.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Query

from query_api.dependencies import OrgReader, OrgReaderDep, ReadSessionDep
from query_api.filters import EntryFilters, EntryFiltersDep, ReportFiltersDep, covered_users
from shared.config import get_settings
from shared.db import ReadSession
from shared.errors import ValidationFailedError
from shared.pagination import InvalidCursorError, decode_cursor, encode_cursor

MAX_SEARCH_LENGTH = 200
MAX_CURSOR_LENGTH = 1000


class TimeEntrySort(StrEnum):
    newest_first = "-start_at"
    oldest_first = "start_at"

    @property
    def descending(self) -> bool:
        return self is TimeEntrySort.newest_first


@dataclass(frozen=True)
class Keyset:
    """Where a page ends: the next page starts strictly after this sort key."""

    start_at: datetime
    entry_id: uuid.UUID


@dataclass(frozen=True)
class EntryQuery:
    """Which entries a request covers: the organization, the users the caller may see
    (narrowed by the user and team filters; None: everyone), the other filters."""

    org_id: uuid.UUID
    users: frozenset[uuid.UUID] | None
    filters: EntryFilters
    running: bool | None
    search: str | None


@dataclass(frozen=True)
class Listing:
    """How a listing is walked: its order, and the cursor to continue from (if any)."""

    sort: TimeEntrySort
    after: Keyset | None


def _invalid(field: str, message: str) -> ValidationFailedError:
    return ValidationFailedError(
        f"Invalid parameter '{field}': {message}",
        details=[{"field": field, "location": "query", "message": message, "type": "value_error"}],
    )


def _purpose(org_id: uuid.UUID) -> str:
    return f"entries:{org_id}"


def encode_entry_cursor(org_id: uuid.UUID, sort: TimeEntrySort, last: Keyset) -> str:
    values: list[Any] = [last.start_at.isoformat(), str(last.entry_id), sort.value]
    secret = get_settings().secret_key.get_secret_value()
    return encode_cursor(values, secret=secret, purpose=_purpose(org_id))


def decode_entry_cursor(org_id: uuid.UUID, sort: TimeEntrySort, cursor: str) -> Keyset:
    secret = get_settings().secret_key.get_secret_value()
    try:
        values = decode_cursor(cursor, secret=secret, purpose=_purpose(org_id))
        start_iso, entry_id, issued_for = values
        keyset = Keyset(datetime.fromisoformat(start_iso), uuid.UUID(entry_id))
    except InvalidCursorError as exc:
        raise _invalid("cursor", f"not a cursor of this listing ({exc})") from exc
    except (ValueError, TypeError, AttributeError) as exc:
        raise _invalid("cursor", "malformed cursor") from exc
    if keyset.start_at.tzinfo is None:
        raise _invalid("cursor", "malformed cursor")
    if issued_for != sort.value:
        raise _invalid("cursor", f"issued for sort '{issued_for}', not '{sort.value}'")
    return keyset


RunningParam = Annotated[
    bool | None, Query(description="true: only running timers; false: only finished entries")
]
SearchParam = Annotated[
    str | None,
    Query(
        max_length=MAX_SEARCH_LENGTH,
        pattern=r"^[^\x00]*$",  # PostgreSQL text holds no NUL
        description="Case-insensitive substring of the description",
    ),
]


def _entry_query(
    session: ReadSession,
    org: OrgReader,
    filters: EntryFilters,
    running: bool | None,
    search: str | None,
) -> EntryQuery:
    users = covered_users(session, org, filters)
    search = search.strip() if search else None
    return EntryQuery(org.org_id, users, filters, running, search or None)


def entry_query(
    session: ReadSessionDep,
    org: OrgReaderDep,
    filters: EntryFiltersDep,
    running: RunningParam = None,
    search: SearchParam = None,
) -> EntryQuery:
    """The entries of a listing: `from` and `to` are optional."""
    return _entry_query(session, org, filters, running, search)


def report_entry_query(
    session: ReadSessionDep,
    org: OrgReaderDep,
    filters: ReportFiltersDep,
    running: RunningParam = None,
    search: SearchParam = None,
) -> EntryQuery:
    """The entries of a report: `from` and `to` are required."""
    return _entry_query(session, org, filters, running, search)


def listing(
    org_id: uuid.UUID,
    sort: Annotated[
        TimeEntrySort, Query(description="start_at (oldest first) or -start_at (newest first)")
    ] = TimeEntrySort.newest_first,
    cursor: Annotated[
        str | None,
        Query(
            max_length=MAX_CURSOR_LENGTH,
            description="pagination.next_cursor of the previous page (keyset pagination)",
        ),
    ] = None,
) -> Listing:
    after = decode_entry_cursor(org_id, sort, cursor) if cursor else None
    return Listing(sort, after)


EntryQueryDep = Annotated[EntryQuery, Depends(entry_query)]
ReportEntryQueryDep = Annotated[EntryQuery, Depends(report_entry_query)]
ListingDep = Annotated[Listing, Depends(listing)]
