"""SQL of the time entries module. Never commits; bulk paths are one statement per table."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import any_, bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Session

from command_api.modules.organizations.models import Organization
from command_api.modules.time_entries.models import TimeEntry, TimeEntryTag
from command_api.modules.time_entries.views import EntryView
from command_api.modules.users.models import User
from shared.db import copy_rows, uuid_array
from shared.errors import NotFoundError


@dataclass(frozen=True)
class OverlapPolicy:
    """The organization's write policy, read under a share lock (see `lock_policy`)."""

    prevent_overlaps: bool
    lock_before: date | None


@dataclass(frozen=True)
class Interval:
    """One bulk item's interval, for the overlap check against stored entries."""

    index: int
    user_id: uuid.UUID
    start_at: datetime
    end_at: datetime | None


_INSERT_TAGS = text(
    "INSERT INTO time_entry_tags (entry_id, tag_id, org_id)"
    " SELECT entry_id, tag_id, :org_id FROM unnest(:entry_ids, :tag_ids) AS t(entry_id, tag_id)"
).bindparams(
    bindparam("entry_ids", type_=ARRAY(UUID(as_uuid=True))),
    bindparam("tag_ids", type_=ARRAY(UUID(as_uuid=True))),
)

# Uses the exclusion constraint's GiST index (org_id, user_id, tstzrange) for each item.
_OVERLAPPING_ITEMS = text(
    "SELECT DISTINCT i.idx FROM unnest(CAST(:idx AS int[]), CAST(:user_ids AS uuid[]),"
    " CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]))"
    " AS i(idx, user_id, start_at, end_at)"
    " JOIN time_entries e ON e.org_id = :org_id AND e.user_id = i.user_id"
    " AND e.no_overlap AND e.deleted_at IS NULL"
    " AND tstzrange(e.start_at, e.end_at, '[)') && tstzrange(i.start_at, i.end_at, '[)')"
)


# A new entry's columns and their PostgreSQL types (the types are what a binary COPY sends).
_NEW_ENTRY_TYPES = {
    "id": "uuid",
    "org_id": "uuid",
    "user_id": "uuid",
    "project_id": "uuid",
    "task_id": "uuid",
    "description": "text",
    "billable": "bool",
    "start_at": "timestamptz",
    "end_at": "timestamptz",
    "hourly_rate_amount": "int8",
    "no_overlap": "bool",
}
_NEW_ENTRY_COLUMNS = tuple(_NEW_ENTRY_TYPES)


def _entry_row(entry: EntryView, no_overlap: bool) -> tuple[Any, ...]:
    """The new entry's values in the order of _NEW_ENTRY_COLUMNS."""
    return (
        entry.id,
        entry.org_id,
        entry.user_id,
        entry.project_id,
        entry.task_id,
        entry.description,
        entry.billable,
        entry.start_at,
        entry.end_at,
        entry.hourly_rate,
        no_overlap,
    )


_INSERT_ENTRY = text(
    f"INSERT INTO time_entries ({', '.join(_NEW_ENTRY_COLUMNS)})"
    f" VALUES ({', '.join(':' + column for column in _NEW_ENTRY_COLUMNS)})"
    " RETURNING created_at, updated_at"
)

_COPY_ENTRIES = f"COPY time_entries ({', '.join(_NEW_ENTRY_COLUMNS)}) FROM STDIN (FORMAT BINARY)"

# `lock_policy` and `lock_users` in one statement (SQLAlchemy's select() takes one locking
# clause; this needs one per table).
_LOCK_POLICY_AND_WRITER = text(
    "SELECT o.prevent_overlaps, o.lock_before FROM organizations o, users u"
    " WHERE o.id = :org_id AND o.deleted_at IS NULL AND u.id = :user_id"
    " FOR SHARE OF o FOR NO KEY UPDATE OF u"
)


class TimeEntryRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # --- locks and the clock -----------------------------------------------------------

    def lock_policy(self, org_id: uuid.UUID, *, writer: uuid.UUID | None = None) -> OverlapPolicy:
        """Re-read the organization's policy FOR SHARE: an organization update that flips
        `prevent_overlaps` (and every entry's `no_overlap`) waits for this write, or this
        write waits for it and sees the new value. Entry writes do not block each other.
        An organization deleted meanwhile (after the membership check) answers 404.

        With `writer`, the same statement also takes that user's lock (see `lock_users`):
        a command writing one user's entries needs one round trip for both."""
        if writer is None:
            row = self.session.execute(
                select(Organization.prevent_overlaps, Organization.lock_before)
                .where(Organization.id == org_id, Organization.deleted_at.is_(None))
                .with_for_update(read=True)
            ).one_or_none()
        else:
            row = self.session.execute(
                _LOCK_POLICY_AND_WRITER, {"org_id": org_id, "user_id": writer}
            ).one_or_none()
        if row is None:
            raise NotFoundError.for_entity("Organization", org_id)
        return OverlapPolicy(prevent_overlaps=row[0], lock_before=row[1])

    def lock_users(self, user_ids: Collection[uuid.UUID]) -> None:
        """Serialize entry writes per user, always in id order (no deadlocks between two
        writers). FOR NO KEY UPDATE does not conflict with the KEY SHARE lock that inserting
        an entry takes through its foreign key, so it never deadlocks with that either."""
        if not user_ids:
            return
        self.session.execute(
            select(User.id)
            .where(User.id == any_(uuid_array(user_ids)))
            .order_by(User.id)
            .with_for_update(key_share=True)
        ).all()

    def clock(self) -> datetime:
        """The database's current instant (not the transaction's start: we may have waited)."""
        now: datetime = self.session.execute(select(func.clock_timestamp())).scalar_one()
        return now

    # --- reads ---------------------------------------------------------------------------

    def get(self, org_id: uuid.UUID, entry_id: uuid.UUID, *, for_update: bool) -> TimeEntry | None:
        statement = select(TimeEntry).where(
            TimeEntry.id == entry_id,
            TimeEntry.org_id == org_id,
            TimeEntry.deleted_at.is_(None),
        )
        if for_update:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        return self.session.scalars(statement).one_or_none()

    def running_timer(
        self, user_id: uuid.UUID, org_id: uuid.UUID | None = None
    ) -> TimeEntry | None:
        """The user's running timer (in `org_id`, or in any organization), locked."""
        statement = select(TimeEntry).where(
            TimeEntry.user_id == user_id,
            TimeEntry.end_at.is_(None),
            TimeEntry.deleted_at.is_(None),
        )
        if org_id is not None:
            statement = statement.where(TimeEntry.org_id == org_id)
        return self.session.scalars(
            statement.with_for_update().execution_options(populate_existing=True)
        ).one_or_none()

    def last_entry(self, org_id: uuid.UUID, user_id: uuid.UUID) -> TimeEntry | None:
        """The user's latest live entry that has started: an entry dated in the future is
        not "the last one". Equal starts: the one written last."""
        return self.session.scalars(
            select(TimeEntry)
            .where(
                TimeEntry.org_id == org_id,
                TimeEntry.user_id == user_id,
                TimeEntry.deleted_at.is_(None),
                TimeEntry.start_at <= func.now(),
            )
            .order_by(TimeEntry.start_at.desc(), TimeEntry.created_at.desc())
            .limit(1)
        ).one_or_none()

    def tag_ids(self, entry_id: uuid.UUID) -> tuple[uuid.UUID, ...]:
        rows = self.session.scalars(
            select(TimeEntryTag.tag_id).where(TimeEntryTag.entry_id == entry_id)
        )
        return tuple(sorted(rows))

    def users_with_running_timer(self, user_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        if not user_ids:
            return set()
        rows = self.session.scalars(
            select(TimeEntry.user_id).where(
                TimeEntry.user_id == any_(uuid_array(user_ids)),
                TimeEntry.end_at.is_(None),
                TimeEntry.deleted_at.is_(None),
            )
        )
        return set(rows)

    def overlapping_items(self, org_id: uuid.UUID, items: Sequence[Interval]) -> set[int]:
        """Indexes of the items that overlap a stored entry bound by `no_overlap`."""
        if not items:
            return set()
        rows = self.session.scalars(
            _OVERLAPPING_ITEMS,
            {
                "org_id": org_id,
                "idx": [item.index for item in items],
                "user_ids": [item.user_id for item in items],
                "starts": [item.start_at for item in items],
                "ends": [item.end_at for item in items],
            },
        )
        return set(rows)

    # --- writes --------------------------------------------------------------------------

    def add(self, entry: EntryView, *, no_overlap: bool) -> tuple[datetime, datetime]:
        """Insert a new entry in one Core statement (the ORM's unit of work costs several
        times more for one row); its created_at and updated_at."""
        values = dict(zip(_NEW_ENTRY_COLUMNS, _entry_row(entry, no_overlap), strict=True))
        row = self.session.execute(_INSERT_ENTRY, values).one()
        return row[0], row[1]

    def flush(self) -> None:
        self.session.flush()

    def insert_many(self, entries: Iterable[EntryView], *, no_overlap: bool) -> None:
        """The whole batch in one COPY (psycopg formats the rows in C; a multi-row VALUES
        was compiled anew for each batch, an INSERT of arrays dumps them in Python)."""
        rows = (_entry_row(entry, no_overlap) for entry in entries)
        copy_rows(self.session, _COPY_ENTRIES, rows, tuple(_NEW_ENTRY_TYPES.values()))

    def insert_tags(self, org_id: uuid.UUID, pairs: Iterable[tuple[uuid.UUID, uuid.UUID]]) -> None:
        """(entry_id, tag_id) pairs in one statement, whatever their number."""
        columns: dict[str, list[uuid.UUID]] = defaultdict(list)
        for entry_id, tag_id in pairs:
            columns["entry_ids"].append(entry_id)
            columns["tag_ids"].append(tag_id)
        if columns:
            self.session.execute(_INSERT_TAGS, {"org_id": org_id, **columns})

    def replace_tags(
        self, org_id: uuid.UUID, entry_id: uuid.UUID, tag_ids: Collection[uuid.UUID]
    ) -> None:
        self.session.execute(delete(TimeEntryTag).where(TimeEntryTag.entry_id == entry_id))
        self.insert_tags(org_id, ((entry_id, tag_id) for tag_id in tag_ids))
