"""SQL of the time entries module. Never commits; bulk paths are one statement per table."""

from __future__ import annotations

import typing
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Row,
    RowMapping,
    Select,
    String,
    Table,
    Text,
    Uuid,
    and_,
    any_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    not_,
    null,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Session

from command_api.modules.organizations.models import Organization
from command_api.modules.time_entries.models import TimeEntry, TimeEntryTag
from command_api.modules.time_entries.views import EntryView
from command_api.modules.users.models import User
from shared.changes import (
    CURRENT_XID,
    ChangeOp,
    ChangeRecord,
    change_row_params,
    changes_recorded,
    insert_changes_from,
    with_change_rows,
)
from shared.db import UUIDS, copy_rows, uuid_array
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


ENTRIES = typing.cast(Table, TimeEntry.__table__)
ENTRY_TAGS = typing.cast(Table, TimeEntryTag.__table__)

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


_COPY_ENTRIES = f"COPY time_entries ({', '.join(_NEW_ENTRY_COLUMNS)}) FROM STDIN (FORMAT BINARY)"


def _policy_cte() -> CTE:
    """The organization's write policy FOR SHARE, as `lock_policy` reads it (one row, none
    when the organization is gone)."""
    orgs = Organization.__table__
    return (
        select(orgs.c.prevent_overlaps, orgs.c.lock_before)
        .where(orgs.c.id == bindparam("org_id", type_=Uuid), orgs.c.deleted_at.is_(None))
        .with_for_update(read=True)
        .cte("policy")
    )


def _writer_cte(*conditions: ColumnElement[bool]) -> CTE:
    """`:user_id`'s row FOR NO KEY UPDATE (see `lock_users`), where `conditions` hold."""
    users = User.__table__
    return (
        select(users.c.id)
        .where(users.c.id == bindparam("user_id", type_=Uuid), *conditions)
        .with_for_update(key_share=True)
        .cte("writer")
    )


def _insert_tags(entry: CTE, org_id: ColumnElement[Any]) -> CTE:
    """The `:tag_ids` links of the entry an insert CTE returned (none when it returned none)."""
    tag = func.unnest(bindparam("tag_ids", type_=UUIDS)).table_valued("tag_id").render_derived()
    return (
        insert(ENTRY_TAGS)
        .from_select(
            ["entry_id", "tag_id", "org_id"],
            select(entry.c.id, tag.c.tag_id, org_id).select_from(entry.join(tag, true())),
        )
        .cte("tagged")
    )


def create_entry_statement(references: CTE, entity: str) -> Select[Any]:
    """Create one entry in one statement: the checks, the locks and the writes.

    `references` is the projects module's one-row CTE of the entry's references (see
    `EntryReferenceService.locked_for_new_entry`). Around it: the organization's policy
    FOR SHARE (as `lock_policy`), the writer's lock where the organization forbids
    overlaps (two writes of one user could otherwise deadlock inside the exclusion
    constraint; without it their rows are outside the constraint), and the lock date
    (`:local_day`, the start's day in the organization's timezone, unless `:lock_exempt`).
    The entry, its tags and its change row are written only when every check passes, so a
    refusal writes nothing and the row tells which check failed. The rate and the billable
    flag are resolved here as `pick_rate` and `new_entry` resolve them (the service
    compares the two); the change row's payload is the service's (`:new_payload`), with the
    four values resolved here set in it.

    One round trip, and locks held from this statement to the commit only: PostgreSQL
    waited on the API between a write's round trips most of the time (issue 15's profile).
    """
    entries = ENTRIES
    org_id, user_id = bindparam("org_id", type_=Uuid), bindparam("user_id", type_=Uuid)
    policy = _policy_cte()
    writer = _writer_cte(select(policy.c.prevent_overlaps).scalar_subquery())
    locked = and_(
        not_(bindparam("lock_exempt", type_=Boolean)),
        policy.c.lock_before.is_not(None),
        bindparam("local_day", type_=Date) < policy.c.lock_before,
    )
    org_found = policy.c.prevent_overlaps.is_not(None)
    verdict = (
        select(
            references,
            policy.c.prevent_overlaps,
            policy.c.lock_before,
            org_found.label("org_found"),
            select(func.count()).select_from(writer).scalar_subquery().label("writer_locked"),
            and_(references.c.ok, org_found, not_(locked)).label("writable"),
        )
        .select_from(references.outerjoin(policy, true()))
        .cte("verdict")
    )
    rate = func.coalesce(
        verdict.c.member_rate,
        verdict.c.project_hourly_rate_amount,
        cast(bindparam("member_rate"), BigInteger),
        cast(bindparam("org_rate"), BigInteger),
        0,
    )
    billable = func.coalesce(
        cast(bindparam("billable"), Boolean), verdict.c.project_billable, False
    )
    values = {
        "id": cast(bindparam("id"), Uuid),
        "org_id": org_id,
        "user_id": user_id,
        "project_id": verdict.c.project_id,
        "task_id": verdict.c.task_id,
        "description": cast(bindparam("description"), Text),
        "billable": billable,
        "start_at": cast(bindparam("start_at"), DateTime(timezone=True)),
        "end_at": cast(bindparam("end_at"), DateTime(timezone=True)),
        "hourly_rate_amount": rate,
        "no_overlap": verdict.c.prevent_overlaps,
    }
    entry = (
        insert(entries)
        .from_select(list(values), select(*values.values()).where(verdict.c.writable))
        .returning(
            entries.c.id,
            entries.c.project_id,
            entries.c.billable,
            entries.c.hourly_rate_amount,
            entries.c.created_at,
            entries.c.updated_at,
        )
        .cte("entry")
    )
    tagged = _insert_tags(entry, org_id)
    # billed_amount(): round half up of duration × rate / 3600; 0 when not billable.
    duration = cast(bindparam("duration_seconds"), BigInteger)
    amount = case(
        (duration.is_(None), null()),
        (entry.c.billable, (duration * entry.c.hourly_rate_amount + 1800) // 3600),
        else_=0,
    )
    resolved = func.jsonb_build_object(
        literal_column("'project_id'"), entry.c.project_id,
        literal_column("'billable'"), entry.c.billable,
        literal_column("'hourly_rate'"), entry.c.hourly_rate_amount,
        literal_column("'amount'"), amount,
    )  # fmt: skip
    payload = func.jsonb_build_object(
        literal_column("'old'"),
        cast(null(), JSONB),
        literal_column("'new'"),
        cast(bindparam("new_payload"), JSONB).op("||")(resolved),
    )
    logged = insert_changes_from(
        select(
            org_id,
            cast(literal_column(f"'{entity}'"), String),
            entry.c.id,
            cast(literal_column(f"'{ChangeOp.CREATED.value}'"), String),
            payload,
        ).select_from(entry)
    ).cte("logged")
    return (
        select(
            verdict,
            entry.c.project_id.label("entry_project_id"),
            entry.c.billable.label("entry_billable"),
            entry.c.hourly_rate_amount.label("entry_hourly_rate"),
            entry.c.created_at.label("entry_created_at"),
            entry.c.updated_at.label("entry_updated_at"),
            select(logged.c.tx).scalar_subquery().label("tx"),
        )
        .select_from(verdict.outerjoin(entry, true()))
        .add_cte(tagged)
    )


def timer_locks_statement(references: CTE) -> Select[Any]:
    """A new timer's first statement: its references checked and locked as for a new entry
    (`references`, see `create_entry_statement`), the organization's policy FOR SHARE and
    the writer's lock (always: a timer start stops the user's running timer, in any
    organization, and two starts must queue). The running timer is read in the next
    statement, whose snapshot is taken once this one has every lock."""
    policy, writer = _policy_cte(), _writer_cte()
    return select(
        references,
        policy.c.prevent_overlaps,
        policy.c.lock_before,
        policy.c.prevent_overlaps.is_not(None).label("org_found"),
        select(func.count()).select_from(writer).scalar_subquery().label("writer_locked"),
    ).select_from(references.outerjoin(policy, true()))


def _running_timer(in_org: bool) -> Select[Any]:
    """The user's running timer (in `:org_id`, or anywhere) locked FOR UPDATE, its tags, and
    the database's instant once the lock is held (the outer SELECT runs after the CTE)."""
    entries, entry_tags = ENTRIES, ENTRY_TAGS
    running = select(entries).where(
        entries.c.user_id == bindparam("user_id", type_=Uuid),
        entries.c.end_at.is_(None),
        entries.c.deleted_at.is_(None),
    )
    if in_org:
        running = running.where(entries.c.org_id == bindparam("org_id", type_=Uuid))
    timer = running.with_for_update().cte("running")
    tag_ids = (
        select(func.array_agg(entry_tags.c.tag_id))
        .where(entry_tags.c.entry_id == timer.c.id)
        .scalar_subquery()
    )
    one_row = select(literal_column("1").label("one")).subquery("one_row")
    return select(func.clock_timestamp().label("now"), timer, tag_ids.label("tag_ids")).select_from(
        one_row.outerjoin(timer, true())
    )


_RUNNING_ANYWHERE, _RUNNING_IN_ORG = _running_timer(False), _running_timer(True)


def _stop_statement() -> tuple[Select[Any], Select[Any]]:
    """Stop a timer (`:stop_id`, none when NULL) at `:stop_at`, with its change rows; and the
    same followed by a new entry (`_NEW_ENTRY_COLUMNS` as parameters) and its tags. The
    insert waits for the update (its WHERE reads the update's rows): the partial unique
    index of running timers must no longer see the stopped one."""
    entries = ENTRIES
    stopped = (
        update(entries)
        .where(entries.c.id == bindparam("stop_id", type_=Uuid))
        .values(
            end_at=bindparam("stop_at", type_=DateTime(timezone=True)),
            version=entries.c.version + 1,
        )
        .returning(entries.c.updated_at, entries.c.version)
        .cte("stopped")
    )
    stopped_at = select(stopped.c.updated_at).scalar_subquery().label("stopped_updated_at")
    stopped_version = select(stopped.c.version).scalar_subquery().label("stopped_version")
    stop = with_change_rows(select(stopped_at, stopped_version, CURRENT_XID.label("tx")))
    after_stop = select(func.count()).select_from(stopped).scalar_subquery() >= 0
    values = {
        column: cast(bindparam(f"new_{column}"), entries.c[column].type)
        for column in _NEW_ENTRY_COLUMNS
    }
    created = (
        insert(entries)
        .from_select(list(values), select(*values.values()).where(after_stop))
        .returning(entries.c.id, entries.c.created_at, entries.c.updated_at)
        .cte("created")
    )
    tagged = _insert_tags(created, bindparam("new_org_id", type_=Uuid))
    stop_and_start = with_change_rows(
        select(
            stopped_at,
            stopped_version,
            created.c.created_at,
            created.c.updated_at,
            CURRENT_XID.label("tx"),
        ).add_cte(tagged)
    )
    return stop, stop_and_start


_STOP, _STOP_AND_START = _stop_statement()


class TimeEntryRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # --- locks and the clock -----------------------------------------------------------

    def lock_policy(self, org_id: uuid.UUID) -> OverlapPolicy:
        """Re-read the organization's policy FOR SHARE: an organization update that flips
        `prevent_overlaps` (and every entry's `no_overlap`) waits for this write, or this
        write waits for it and sees the new value. Entry writes do not block each other.
        An organization deleted meanwhile (after the membership check) answers 404."""
        row = self.session.execute(
            select(Organization.prevent_overlaps, Organization.lock_before)
            .where(Organization.id == org_id, Organization.deleted_at.is_(None))
            .with_for_update(read=True)
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

    def create_checked(self, statement: Select[Any], params: dict[str, Any]) -> RowMapping:
        """Run a `create_entry_statement`; its one row (see there). A created entry's
        change row counts for the consistency token and the doorbell."""
        row = self.session.execute(statement, params).mappings().one()
        if row["tx"] is not None:
            changes_recorded(self.session, row["tx"])
        return row

    def timer_locks(self, statement: Select[Any], params: dict[str, Any]) -> RowMapping:
        """Run a `timer_locks_statement`; its one row."""
        return self.session.execute(statement, params).mappings().one()

    def running_timer_now(self, user_id: uuid.UUID, org_id: uuid.UUID | None = None) -> Row[Any]:
        """The database's instant, and the user's running timer (in `org_id`, or anywhere)
        locked, with its `tag_ids`: its columns are NULL when none runs."""
        statement = _RUNNING_ANYWHERE if org_id is None else _RUNNING_IN_ORG
        return self.session.execute(statement, {"user_id": user_id, "org_id": org_id}).one()

    def stop_and_start(
        self,
        stop: tuple[uuid.UUID, datetime] | None,
        start: tuple[EntryView, bool] | None,
        changes: list[ChangeRecord],
    ) -> Row[Any]:
        """Stop a timer (its id, its end) and/or write a new entry (its view and its
        `no_overlap`), with their change rows, in one statement. The row holds
        `stopped_updated_at` and `stopped_version`, and the new entry's `created_at` and
        `updated_at`."""
        params: dict[str, Any] = {
            "stop_id": stop[0] if stop else None,
            "stop_at": stop[1] if stop else None,
            **change_row_params(changes),
        }
        if start is None:
            row = self.session.execute(_STOP, params).one()
        else:
            entry, no_overlap = start
            new = zip(_NEW_ENTRY_COLUMNS, _entry_row(entry, no_overlap), strict=True)
            params.update({f"new_{column}": value for column, value in new})
            params["tag_ids"] = list(entry.tag_ids)
            row = self.session.execute(_STOP_AND_START, params).one()
        changes_recorded(self.session, row.tx)
        return row

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
