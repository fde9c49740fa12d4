"""Bulk create: up to 1000 entries, all or nothing, every failing item reported by index."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from command_api.modules.organizations.dependencies import OrgContext
from command_api.modules.projects.references import EntryReferences
from command_api.modules.time_entries.repository import Interval, OverlapPolicy
from command_api.modules.time_entries.schemas import TimeEntryCreate
from command_api.modules.time_entries.service import (
    EntryView,
    EntryWriter,
    change,
    ensure_unlocked,
    ensure_valid_interval,
    new_entry,
)
from shared.changes import ChangeOp, record_changes
from shared.errors import (
    ConflictError,
    EvoTrackError,
    ForbiddenError,
    NotFoundError,
    ValidationFailedError,
)

FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


class ItemProblems:
    """Every failing item of a batch, reported together in one 422."""

    def __init__(self) -> None:
        self.details: list[dict[str, Any]] = []

    def add(self, index: int, error: EvoTrackError, field: str | None = None) -> None:
        detail: dict[str, Any] = {"index": index}
        field = field or _field_of(error)
        if field:
            detail["field"] = field
        detail.update(error_code=error.error_code, message=error.message)
        self.details.append(detail)

    def raise_if_any(self, total: int) -> None:
        if self.details:
            failing = len({detail["index"] for detail in self.details})
            self.details.sort(key=lambda detail: int(detail["index"]))
            raise ValidationFailedError(
                f"{failing} of {total} entries are invalid; nothing was created",
                details=self.details,
            )


def _field_of(error: EvoTrackError) -> str | None:
    details = error.details
    if isinstance(details, dict):
        field = details.get("field")
        return str(field) if field else None
    if isinstance(details, list) and details and isinstance(details[0], dict):
        field = details[0].get("field")
        return str(field) if field else None
    return None


def _end(interval: Interval) -> datetime:
    return interval.end_at or FAR_FUTURE


def batch_conflicts(intervals: Sequence[Interval], no_overlap: bool) -> Iterator[tuple[int, str]]:
    """Items that clash with an earlier item of the same batch: a second running timer
    for one user, or (when the organization forbids it) an overlap."""
    by_user: dict[uuid.UUID, list[Interval]] = defaultdict(list)
    for interval in intervals:
        by_user[interval.user_id].append(interval)
    for group in by_user.values():
        running = [interval.index for interval in group if interval.end_at is None]
        for index in running[1:]:
            yield index, f"Item {running[0]} already starts a running timer for this user"
        if no_overlap:
            yield from _overlaps(group)


def _overlaps(group: list[Interval]) -> Iterator[tuple[int, str]]:
    reach: Interval | None = None  # the item reaching furthest so far
    for interval in sorted(group, key=lambda item: (item.start_at, item.index)):
        if reach is not None and interval.start_at < _end(reach):
            yield interval.index, f"Overlaps item {reach.index} of this batch"
        if reach is None or _end(interval) > _end(reach):
            reach = interval


class BulkEntryService(EntryWriter):
    def create_many(self, ctx: OrgContext, items: Sequence[TimeEntryCreate]) -> list[uuid.UUID]:
        """All or nothing: every item is checked first (a fixed number of queries), then
        the entries, their tags and their change rows are written with one statement each."""
        user_ids = [item.user_id or ctx.user.id for item in items]
        rates = self.scope.member_rates(ctx.org_id, set(user_ids))
        writable = self.scope.writable_users(ctx, rates.keys())
        resolved = self.references.resolve_many(
            ctx.org_id,
            [(u, i.project_id, i.task_id, i.tag_ids) for u, i in zip(user_ids, items, strict=True)],
        )
        policy = self.repository.lock_policy(ctx.org_id)
        self.repository.lock_users(rates.keys())
        problems = ItemProblems()
        for index, item in enumerate(items):
            user_id, refs = user_ids[index], resolved[index]
            self._check_item(ctx, policy, problems, index, item, refs)
            if user_id not in rates:
                problems.add(index, NotFoundError.for_entity("Member", user_id), "user_id")
            elif user_id not in writable:
                problems.add(index, ForbiddenError("You may not write for this member"), "user_id")
        intervals = [
            Interval(index, user_ids[index], item.start_at, item.end_at)
            for index, item in enumerate(items)
        ]
        self._check_conflicts(ctx, policy, problems, intervals)
        problems.raise_if_any(len(items))
        views = [
            self._view(ctx, policy, item, user_ids[index], resolved[index], rates)
            for index, item in enumerate(items)
        ]
        self._write(ctx, policy, views)
        return [view.id for view in views]

    def _check_item(
        self,
        ctx: OrgContext,
        policy: OverlapPolicy,
        problems: ItemProblems,
        index: int,
        item: TimeEntryCreate,
        refs: EntryReferences | EvoTrackError,
    ) -> None:
        if isinstance(refs, EvoTrackError):
            problems.add(index, refs)
        try:
            ensure_valid_interval(item.start_at, item.end_at)
        except EvoTrackError as error:
            problems.add(index, error)
        try:
            ensure_unlocked(ctx, policy, item.start_at)
        except EvoTrackError as error:
            problems.add(index, error)

    def _check_conflicts(
        self,
        ctx: OrgContext,
        policy: OverlapPolicy,
        problems: ItemProblems,
        intervals: Sequence[Interval],
    ) -> None:
        """Clashes inside the batch and with stored entries (the users are locked, so what
        these two queries see holds until commit)."""
        for index, message in batch_conflicts(intervals, policy.prevent_overlaps):
            problems.add(index, ConflictError(message), "start_at")
        timers = [interval for interval in intervals if interval.end_at is None]
        busy = self.repository.users_with_running_timer({t.user_id for t in timers})
        for timer in timers:
            if timer.user_id in busy:
                problems.add(
                    timer.index, ConflictError("A timer is already running for this user"), "end_at"
                )
        if policy.prevent_overlaps:
            for index in sorted(self.repository.overlapping_items(ctx.org_id, intervals)):
                message = "Overlaps a stored entry of this user; the organization forbids overlaps"
                problems.add(index, ConflictError(message), "start_at")

    @staticmethod
    def _view(
        ctx: OrgContext,
        policy: OverlapPolicy,
        item: TimeEntryCreate,
        user_id: uuid.UUID,
        refs: EntryReferences | EvoTrackError,
        rates: dict[uuid.UUID, int | None],
    ) -> EntryView:
        assert isinstance(refs, EntryReferences)
        entry = new_entry(ctx, policy, user_id, refs, item, rates[user_id])
        entry.start_at, entry.end_at = item.start_at, item.end_at
        return EntryView.of(entry, refs.tag_ids)

    def _write(self, ctx: OrgContext, policy: OverlapPolicy, views: Sequence[EntryView]) -> None:
        rows = [
            {
                "id": view.id,
                "org_id": view.org_id,
                "user_id": view.user_id,
                "project_id": view.project_id,
                "task_id": view.task_id,
                "description": view.description,
                "billable": view.billable,
                "start_at": view.start_at,
                "end_at": view.end_at,
                "hourly_rate_amount": view.hourly_rate,
                "no_overlap": policy.prevent_overlaps,
            }
            for view in views
        ]
        with self.guarded():
            self.repository.insert_many(rows)
            self.repository.insert_tags(
                ctx.org_id, ((view.id, tag_id) for view in views for tag_id in view.tag_ids)
            )
        record_changes(self.session, [change(ChangeOp.CREATED, None, view) for view in views])
