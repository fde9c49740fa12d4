"""Bulk create: up to 1000 entries, all or nothing, every failing item reported by index."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from command_api.modules.organizations.context import OrgContext
from command_api.modules.projects.references import EntryReferences
from command_api.modules.time_entries.repository import Interval, OverlapPolicy
from command_api.modules.time_entries.schemas import TimeEntryCreate
from command_api.modules.time_entries.service import (
    EntryWriter,
    change,
    ensure_unlocked,
    ensure_valid_interval,
    new_entry,
)
from command_api.modules.time_entries.views import EntryView
from shared.changes import ChangeOp, ChangeRecord, record_changes
from shared.errors import (
    ConflictError,
    EvoTrackError,
    ForbiddenError,
    NotFoundError,
    ValidationFailedError,
)

FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class BulkItem:
    """A valid item and its position in the batch (failures are reported by position)."""

    index: int
    data: TimeEntryCreate


class ItemProblems:
    """Every failing item of a batch, reported together in one 422, each problem as
    `{index, field, error_code, message}` (`field` is null when the whole item is wrong)."""

    def __init__(self) -> None:
        self.details: list[dict[str, Any]] = []

    def add(self, index: int, error: EvoTrackError, field: str | None = None) -> None:
        self._add(index, field or _field_of(error), error.error_code, error.message)

    def add_schema_errors(self, index: int, error: ValidationError) -> None:
        for problem in error.errors(include_url=False):
            field = ".".join(str(part) for part in problem["loc"]) or None
            self._add(index, field, ValidationFailedError.error_code, problem["msg"])

    def _add(self, index: int, field: str | None, error_code: str, message: str) -> None:
        self.details.append(
            {"index": index, "field": field, "error_code": error_code, "message": message}
        )

    def raise_if_any(self, total: int) -> None:
        if self.details:
            failing = len({detail["index"] for detail in self.details})
            self.details.sort(key=lambda detail: int(detail["index"]))
            raise ValidationFailedError(
                f"{failing} of {total} entries are invalid; nothing was created",
                details=self.details,
            )


_ALL_ITEMS = TypeAdapter(list[TimeEntryCreate])


def parse_items(raw_items: Sequence[Any], problems: ItemProblems) -> list[BulkItem]:
    """Validate each raw item as the body of a single create would be; the valid ones, with
    their index in the batch (the others are listed in `problems`).

    The whole list is validated in one call first (one pass in pydantic-core); only a batch
    with a malformed item is validated item by item, to keep the valid ones."""
    try:
        parsed = _ALL_ITEMS.validate_python(raw_items)
    except ValidationError:
        pass
    else:
        return [BulkItem(index, data) for index, data in enumerate(parsed)]
    items: list[BulkItem] = []
    for index, raw in enumerate(raw_items):
        try:
            items.append(BulkItem(index, TimeEntryCreate.model_validate(raw)))
        except ValidationError as error:
            problems.add_schema_errors(index, error)
    return items


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
    def create_many(self, ctx: OrgContext, raw_items: Sequence[Any]) -> list[uuid.UUID]:
        """All or nothing. Items are validated here, not by the framework, so that one 422
        lists every failing item by index: malformed items and rule failures of the
        well-formed ones together. The checks take a fixed number of queries; then the
        entries, their tags and their change rows are written with one statement each."""
        problems = ItemProblems()
        items = parse_items(raw_items, problems)
        user_ids = {item.index: item.data.user_id or ctx.user.id for item in items}
        rates = self.scope.member_rates(ctx.org_id, set(user_ids.values()))
        writable = self.scope.writable_users(ctx, rates.keys())
        refs = self._references(ctx, items, user_ids)
        policy = self.repository.lock_policy(ctx.org_id)
        self.repository.lock_users(rates.keys())
        for item in items:
            user_id = user_ids[item.index]
            self._check_item(ctx, policy, problems, item, refs[item.index])
            if user_id not in rates:
                problems.add(item.index, NotFoundError.for_entity("Member", user_id), "user_id")
            elif user_id not in writable:
                error = ForbiddenError("You may not write for this member")
                problems.add(item.index, error, "user_id")
        intervals = [
            Interval(item.index, user_ids[item.index], item.data.start_at, item.data.end_at)
            for item in items
        ]
        self._check_conflicts(ctx, policy, problems, intervals)
        problems.raise_if_any(len(raw_items))
        views = (
            self._view(ctx, item.data, user_ids[item.index], refs[item.index], rates)
            for item in items
        )
        return [view.id for view in self._write(ctx, policy, views)]

    def _references(
        self, ctx: OrgContext, items: Sequence[BulkItem], user_ids: dict[int, uuid.UUID]
    ) -> dict[int, EntryReferences | EvoTrackError]:
        """Each item's references (or their error) by index, resolved in one batch."""
        resolved = self.references.resolve_many(
            ctx.org_id,
            [
                (user_ids[item.index], item.data.project_id, item.data.task_id, item.data.tag_ids)
                for item in items
            ],
        )
        return {item.index: refs for item, refs in zip(items, resolved, strict=True)}

    def _check_item(
        self,
        ctx: OrgContext,
        policy: OverlapPolicy,
        problems: ItemProblems,
        item: BulkItem,
        refs: EntryReferences | EvoTrackError,
    ) -> None:
        if isinstance(refs, EvoTrackError):
            problems.add(item.index, refs)
        try:
            ensure_valid_interval(item.data.start_at, item.data.end_at)
        except EvoTrackError as error:
            problems.add(item.index, error)
        try:
            ensure_unlocked(ctx, policy, item.data.start_at)
        except EvoTrackError as error:
            problems.add(item.index, error)

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
        item: TimeEntryCreate,
        user_id: uuid.UUID,
        refs: EntryReferences | EvoTrackError,
        rates: dict[uuid.UUID, int | None],
    ) -> EntryView:
        assert isinstance(refs, EntryReferences)
        return new_entry(ctx, user_id, refs, item, rates[user_id], item.start_at, item.end_at)

    def _write(
        self, ctx: OrgContext, policy: OverlapPolicy, views: Iterable[EntryView]
    ) -> list[EntryView]:
        """Write the entries, their tags and their change rows; the entries written.

        The views are built while COPY streams the rows before them: PostgreSQL checks
        and indexes those (~35 ms for 1000 entries) while Python builds the next views and
        their change rows, instead of one waiting for the other."""
        written: list[EntryView] = []
        changes: list[ChangeRecord] = []

        def streamed() -> Iterator[EntryView]:
            for view in views:
                written.append(view)
                changes.append(change(ChangeOp.CREATED, None, view))
                yield view

        with self.guarded():
            self.repository.insert_many(streamed(), no_overlap=policy.prevent_overlaps)
            self.repository.insert_tags(
                ctx.org_id, ((view.id, tag_id) for view in written for tag_id in view.tag_ids)
            )
        record_changes(self.session, changes)
        return written
