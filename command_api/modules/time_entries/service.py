"""The write rules of time entries (API.md, "Rules every write checks").

PostgreSQL enforces what concurrent requests could otherwise break: one running timer per
user (partial unique index) and no overlap where the organization forbids it (exclusion
constraint). The services check everything else, write the rows, and append one change
row per entry. Every write to a user's entries first locks that user's row, so writes of
one user queue up instead of deadlocking inside the exclusion constraint.

This module holds what every entry command shares (the entry as it is shown and logged,
the rules, `EntryWriter`) and the single-entry commands; timers live in `timers.py`, bulk
create in `bulk.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from command_api.conditional import ANY_VERSION, IfMatch, ensure_version
from command_api.modules.organizations.context import OrgContext
from command_api.modules.organizations.models import Role
from command_api.modules.organizations.scope import MemberScopeService
from command_api.modules.projects.references import EntryReferences, EntryReferenceService
from command_api.modules.time_entries.models import MAX_ENTRY_SECONDS, TimeEntry
from command_api.modules.time_entries.repository import (
    OverlapPolicy,
    TimeEntryRepository,
    create_entry_statement,
)
from command_api.modules.time_entries.schemas import (
    TimeEntryCreate,
    TimeEntryRead,
    TimeEntryUpdate,
    TimerStart,
)
from command_api.modules.time_entries.views import EntryView
from shared.changes import ChangeOp, ChangeRecord, json_text, record_changes
from shared.errors import (
    BusinessRuleError,
    ConflictError,
    EvoTrackError,
    ForbiddenError,
    NotFoundError,
    ValidationFailedError,
)

ENTITY = "time_entry"
ENTRY = "Time entry"  # in messages
MAX_ENTRY_DURATION = timedelta(seconds=MAX_ENTRY_SECONDS)
_MAX_DURATION_MESSAGE = f"An entry may not be longer than 24 hours ({MAX_ENTRY_SECONDS} seconds)"


def change(op: ChangeOp, old: EntryView | None, new: EntryView | None) -> ChangeRecord:
    entry = new or old
    assert entry is not None
    return ChangeRecord(
        entity=ENTITY,
        entity_id=entry.id,
        op=op,
        org_id=entry.org_id,
        payload={
            "old": old.payload() if old else None,
            "new": new.payload() if new else None,
        },
    )


# --- Rules ---------------------------------------------------------------------------------


def invalid_field(field: str, message: str, problem: str) -> ValidationFailedError:
    """A 422 shaped like the framework's own: details name the field."""
    details = [{"field": field, "location": "body", "message": problem, "type": "value_error"}]
    return ValidationFailedError(message, details=details)


def ensure_valid_interval(start_at: datetime, end_at: datetime | None) -> None:
    if end_at is None:
        return
    if end_at <= start_at:
        raise invalid_field("end_at", "end_at must be after start_at", "must be after start_at")
    if end_at - start_at > MAX_ENTRY_DURATION:
        raise BusinessRuleError(
            _MAX_DURATION_MESSAGE,
            details={"field": "end_at", "max_duration_seconds": MAX_ENTRY_SECONDS},
        )


def local_day(ctx: OrgContext, instant: datetime) -> date:
    """The organization's calendar day of an instant."""
    return instant.astimezone(ZoneInfo(ctx.organization.timezone)).date()


def ensure_unlocked(ctx: OrgContext, policy: OverlapPolicy, start_at: datetime) -> None:
    """Entries starting before `lock_before` (a local date) are read-only below admin."""
    lock_before = policy.lock_before
    if lock_before is None or ctx.role.at_least(Role.ADMIN):
        return
    if local_day(ctx, start_at) < lock_before:
        raise BusinessRuleError(
            f"Entries before {lock_before.isoformat()} are locked; only admins may change them",
            details={"field": "start_at", "lock_before": lock_before.isoformat()},
        )


def stop_instant(start_at: datetime, now: datetime) -> datetime:
    """Where a running timer stops at `now`: capped at 24 h; 409 when it starts later."""
    end_at = min(now, start_at + MAX_ENTRY_DURATION)
    if end_at <= start_at:
        raise ConflictError("The running timer starts in the future; edit or delete it")
    return end_at


def pick_rate(refs: EntryReferences, member_rate: int | None, org_rate: int | None) -> int:
    """The most specific rate wins: project member > project > member > organization."""
    for rate in (refs.project_member_rate_amount, refs.project_rate_amount, member_rate, org_rate):
        if rate is not None:
            return rate
    return 0


# What each constraint's violation means. end_after_start is malformed input (422), as the
# same rule is when the service checks it first.
_CONSTRAINT_ERRORS: dict[str, Callable[[], EvoTrackError]] = {
    "uq_time_entries_one_running_timer": lambda: ConflictError(
        "A timer is already running for this user", details={"field": "end_at"}
    ),
    "ex_time_entries_no_overlap": lambda: ConflictError(
        "The entry overlaps another entry of this user and the organization forbids overlaps",
        details={"field": "start_at"},
    ),
    "ck_time_entries_max_duration": lambda: BusinessRuleError(
        _MAX_DURATION_MESSAGE, details={"field": "end_at"}
    ),
    "ck_time_entries_end_after_start": lambda: invalid_field(
        "end_at", "end_at must be after start_at", "must be after start_at"
    ),
}
_DEADLOCK = "40P01"
_FOREIGN_KEY_VIOLATION = "23503"


def translate_db_error(exc: DBAPIError) -> EvoTrackError | None:
    """The domain error for a violation PostgreSQL reported, or None for a real fault."""
    orig = exc.orig
    constraint = getattr(getattr(orig, "diag", None), "constraint_name", None)
    if constraint in _CONSTRAINT_ERRORS:
        return _CONSTRAINT_ERRORS[constraint]()
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate == _DEADLOCK:
        return ConflictError("A concurrent write to the same entries won; retry")
    if sqlstate == _FOREIGN_KEY_VIOLATION:
        return NotFoundError("A referenced record no longer exists")
    return None


# --- The services ----------------------------------------------------------------------


class EntryWriter:
    """What every entry command needs: guarded writes, scope checks, rates, change rows."""

    def __init__(
        self,
        session: Session,
        references: EntryReferenceService,
        scope: MemberScopeService,
    ) -> None:
        self.session = session
        self.repository = TimeEntryRepository(session)
        self.references = references
        self.scope = scope

    @contextmanager
    def guarded(self) -> Iterator[None]:
        """Turn the constraint violations of these writes into domain errors.

        No SAVEPOINT: a violation fails the command, and the request's transaction rolls
        back as a whole (`CommandRoute`); nothing runs in it after the error. A savepoint
        cost two round trips and ~5 % of a create's CPU."""
        try:
            yield
        except DBAPIError as exc:
            error = translate_db_error(exc)
            if error is None:
                raise
            raise error from exc

    def writable_member_rate(self, ctx: OrgContext, user_id: uuid.UUID) -> int | None:
        """The member rate of `user_id`; 404 when not a member, 403 when out of scope."""
        if user_id == ctx.user.id:
            return ctx.membership.hourly_rate_amount
        rate = self.scope.member_rate(ctx.org_id, user_id)
        if not self.scope.can_write_for(ctx, user_id):
            raise ForbiddenError("You may not write entries for this member")
        return rate


# A new entry's checks, locks and writes in one statement (see `create_entry_statement`).
_CREATE_ENTRY = create_entry_statement(EntryReferenceService.locked_for_new_entry(), ENTITY)


class TimeEntryService(EntryWriter):
    def create(self, ctx: OrgContext, data: TimeEntryCreate) -> EntryView:
        """One round trip when the caller writes for themselves: the database checks the
        references, the organization's policy and the lock date while it takes the locks,
        and writes the entry, its tags and its change row only when all of them pass. A
        refusal is then explained by the same rules, in the same order, as before."""
        user_id = data.user_id or ctx.user.id
        member_rate = self.writable_member_rate(ctx, user_id)
        ensure_valid_interval(data.start_at, data.end_at)
        tag_ids = tuple(dict.fromkeys(data.tag_ids))
        item = (user_id, data.project_id, data.task_id, tag_ids)
        # The entry as far as Python knows it before the statement resolves its references.
        unresolved = EntryReferences(data.project_id, None, None, None, data.task_id, tag_ids)
        draft = new_entry(ctx, user_id, unresolved, data, member_rate, data.start_at, data.end_at)
        with self.guarded():
            row = self.repository.create_checked(
                _CREATE_ENTRY,
                {
                    "org_id": ctx.org_id,
                    "user_id": user_id,
                    "project_id": data.project_id,
                    "task_id": data.task_id,
                    "tag_ids": list(tag_ids),
                    "lock_exempt": ctx.role.at_least(Role.ADMIN),
                    "local_day": local_day(ctx, data.start_at),
                    "member_rate": member_rate,
                    "org_rate": ctx.organization.hourly_rate_amount,
                    "id": draft.id,
                    "description": draft.description,
                    "billable": data.billable,
                    "start_at": data.start_at,
                    "end_at": data.end_at,
                    "duration_seconds": draft.duration_seconds,
                    # project_id, billable, hourly_rate and amount: set by the statement
                    "new_payload": json_text(draft.payload()),
                },
            )
        refs = self.references.checked(row, item)
        if row["entry_created_at"] is None:
            if not row["org_found"]:
                raise NotFoundError.for_entity("Organization", ctx.org_id)
            policy = OverlapPolicy(row["prevent_overlaps"], row["lock_before"])
            ensure_unlocked(ctx, policy, data.start_at)
            raise RuntimeError("The database refused an entry that every rule accepts")
        entry = new_entry(ctx, user_id, refs, data, member_rate, data.start_at, data.end_at)
        written = (row["entry_project_id"], row["entry_billable"], row["entry_hourly_rate"])
        if written != (entry.project_id, entry.billable, entry.hourly_rate):
            raise RuntimeError(f"The entry was written with {written}, the rules give {entry}")
        return replace(
            entry,
            id=draft.id,
            created_at=row["entry_created_at"],
            updated_at=row["entry_updated_at"],
        )

    def update(
        self,
        ctx: OrgContext,
        entry_id: uuid.UUID,
        data: TimeEntryUpdate,
        condition: IfMatch = ANY_VERSION,
    ) -> EntryView:
        entry = self._writable_entry(ctx, entry_id)
        new_user = data.user_id or entry.user_id
        policy = self.repository.lock_policy(ctx.org_id)
        self.repository.lock_users({entry.user_id, new_user})
        locked = self.repository.get(ctx.org_id, entry_id, for_update=True)
        if locked is None or locked.user_id != entry.user_id:
            raise ConflictError("The entry changed while this edit waited; retry")
        old = EntryView.of(locked, self.repository.tag_ids(entry_id))
        ensure_version(condition, old, TimeEntryRead, ENTRY)
        ensure_unlocked(ctx, policy, old.start_at)
        new = self._edited(ctx, policy, old, data)
        if new == old and locked.no_overlap == policy.prevent_overlaps:
            return old
        self._apply(locked, old, new, policy)
        record_changes(self.session, [change(ChangeOp.UPDATED, old, new)])
        return EntryView.of(locked, new.tag_ids)

    def delete(
        self, ctx: OrgContext, entry_id: uuid.UUID, condition: IfMatch = ANY_VERSION
    ) -> None:
        policy = self.repository.lock_policy(ctx.org_id)
        entry = self.repository.get(ctx.org_id, entry_id, for_update=True)
        if entry is None:
            raise NotFoundError.for_entity(ENTRY, entry_id)
        self._ensure_scope(ctx, entry)
        old = EntryView.of(entry, self.repository.tag_ids(entry_id))
        ensure_version(condition, old, TimeEntryRead, ENTRY)
        ensure_unlocked(ctx, policy, entry.start_at)
        entry.deleted_at = func.now()
        self.repository.flush()
        record_changes(self.session, [change(ChangeOp.DELETED, old, None)])

    def _writable_entry(self, ctx: OrgContext, entry_id: uuid.UUID) -> TimeEntry:
        entry = self.repository.get(ctx.org_id, entry_id, for_update=False)
        if entry is None:
            raise NotFoundError.for_entity(ENTRY, entry_id)
        self._ensure_scope(ctx, entry)
        return entry

    def _ensure_scope(self, ctx: OrgContext, entry: TimeEntry) -> None:
        if not self.scope.can_write_for(ctx, entry.user_id):
            raise ForbiddenError("You may not change this member's entries")

    def _edited(
        self, ctx: OrgContext, policy: OverlapPolicy, old: EntryView, data: TimeEntryUpdate
    ) -> EntryView:
        """The entry as the edit would leave it, every rule checked."""
        sent = data.model_fields_set
        start_at = data.start_at or old.start_at
        end_at = data.end_at if "end_at" in sent else old.end_at
        if end_at is None and old.end_at is not None:
            raise invalid_field(
                "end_at", "end_at cannot be cleared; start a timer instead", "may not be null"
            )
        ensure_valid_interval(start_at, end_at)
        ensure_unlocked(ctx, policy, start_at)
        edited = replace(
            old,
            start_at=start_at,
            end_at=end_at,
            description=old.description if data.description is None else data.description,
            billable=old.billable if data.billable is None else data.billable,
        )
        if sent & {"user_id", "project_id", "task_id", "tag_ids"}:
            edited = self._re_resolved(ctx, old, edited, data)
        return edited

    def _re_resolved(
        self, ctx: OrgContext, old: EntryView, edited: EntryView, data: TimeEntryUpdate
    ) -> EntryView:
        """New references; the rate again when the user or the project changes."""
        sent = data.model_fields_set
        user_id = data.user_id or old.user_id
        project_id = data.project_id if "project_id" in sent else old.project_id
        project_changed = project_id != old.project_id
        # A task belongs to its project: moving the entry drops a task that was not resent.
        task_id = data.task_id if "task_id" in sent else None if project_changed else old.task_id
        member_rate = self.writable_member_rate(ctx, user_id) if user_id != old.user_id else None
        # Tags not sent stay as they are, deleted ones too (past entries keep theirs): only
        # tags the edit names must be live.
        refs = self.references.resolve(
            ctx.org_id,
            user_id,
            project_id,
            task_id,
            () if data.tag_ids is None else data.tag_ids,
            for_new_entry=project_changed or task_id != old.task_id,
        )
        edited = replace(
            edited,
            user_id=user_id,
            project_id=refs.project_id,
            task_id=refs.task_id,
            tag_ids=old.tag_ids if data.tag_ids is None else tuple(sorted(refs.tag_ids)),
        )
        if refs.project_id != old.project_id and data.billable is None:
            edited = replace(edited, billable=bool(refs.project_billable))
        if user_id != old.user_id or refs.project_id != old.project_id:
            if user_id == old.user_id:
                member_rate = self._member_rate(ctx, user_id)
            org_rate = ctx.organization.hourly_rate_amount
            edited = replace(edited, hourly_rate=pick_rate(refs, member_rate, org_rate))
        return edited

    def _member_rate(self, ctx: OrgContext, user_id: uuid.UUID) -> int | None:
        if user_id == ctx.user.id:
            return ctx.membership.hourly_rate_amount
        return self.scope.member_rate(ctx.org_id, user_id)

    def _apply(
        self, entry: TimeEntry, old: EntryView, new: EntryView, policy: OverlapPolicy
    ) -> None:
        with self.guarded():
            entry.user_id = new.user_id
            entry.project_id = new.project_id
            entry.task_id = new.task_id
            entry.description = new.description
            entry.billable = new.billable
            entry.start_at = new.start_at
            entry.end_at = new.end_at
            entry.hourly_rate_amount = new.hourly_rate
            entry.no_overlap = policy.prevent_overlaps
            entry.touch()  # a change of tags only is a change of the entry too
            self.repository.flush()
            if new.tag_ids != old.tag_ids:
                self.repository.replace_tags(entry.org_id, entry.id, new.tag_ids)


def new_entry(
    ctx: OrgContext,
    user_id: uuid.UUID,
    refs: EntryReferences,
    data: TimerStart | TimeEntryCreate,
    member_rate: int | None,
    start_at: datetime,
    end_at: datetime | None,
) -> EntryView:
    """A new entry (not written yet) with its billable flag and resolved rate."""
    billable = data.billable if data.billable is not None else bool(refs.project_billable)
    return EntryView(
        id=uuid.uuid4(),
        org_id=ctx.org_id,
        user_id=user_id,
        project_id=refs.project_id,
        task_id=refs.task_id,
        description=data.description or "",
        billable=billable,
        start_at=start_at,
        end_at=end_at,
        hourly_rate=pick_rate(refs, member_rate, ctx.organization.hourly_rate_amount),
        tag_ids=tuple(sorted(refs.tag_ids)),
    )
