"""Timers: start now, stop, restart the latest entry. A user has one running timer across
every organization; starting one stops the other at the same instant."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from command_api.modules.organizations.context import OrgContext
from command_api.modules.projects.references import EntryReferenceService
from command_api.modules.time_entries.repository import OverlapPolicy, timer_locks_statement
from command_api.modules.time_entries.schemas import TimerStart
from command_api.modules.time_entries.service import (
    EntryWriter,
    change,
    ensure_unlocked,
    new_entry,
    stop_instant,
)
from command_api.modules.time_entries.views import EntryView
from shared.changes import ChangeOp, ChangeRecord
from shared.errors import NotFoundError

# A new timer's references, the organization's policy and the writer's lock, in one
# statement (see `timer_locks_statement`).
_TIMER_LOCKS = timer_locks_statement(EntryReferenceService.locked_for_new_entry())


class TimerService(EntryWriter):
    """Three statements a command: the locks (with the references' checks), the running
    timer with the database's instant, and the writes with their change rows."""

    def start(self, ctx: OrgContext, data: TimerStart) -> EntryView:
        """Start a timer now; a timer running anywhere for this user stops at that instant."""
        user_id = ctx.user.id
        tag_ids = tuple(dict.fromkeys(data.tag_ids))
        locks = self.repository.timer_locks(
            _TIMER_LOCKS,
            {
                "org_id": ctx.org_id,
                "user_id": user_id,
                "project_id": data.project_id,
                "task_id": data.task_id,
                "tag_ids": list(tag_ids),
            },
        )
        refs = self.references.checked(locks, (user_id, data.project_id, data.task_id, tag_ids))
        if not locks["org_found"]:
            raise NotFoundError.for_entity("Organization", ctx.org_id)
        policy = OverlapPolicy(locks["prevent_overlaps"], locks["lock_before"])
        running = self.repository.running_timer_now(user_id)
        now = running.now
        ensure_unlocked(ctx, policy, now)
        changes: list[ChangeRecord] = []
        stop = None
        if running.id is not None:
            old, new, end_at = self._stopped(running, now)
            changes.append(change(ChangeOp.UPDATED, old, new))
            stop = (old.id, end_at)
        rate = ctx.membership.hourly_rate_amount
        entry = new_entry(ctx, user_id, refs, data, rate, now, None)
        changes.append(change(ChangeOp.CREATED, None, entry))
        with self.guarded():
            row = self.repository.stop_and_start(stop, (entry, policy.prevent_overlaps), changes)
        return replace(entry, created_at=row.created_at, updated_at=row.updated_at)

    def stop_running(self, ctx: OrgContext) -> EntryView:
        user_id = ctx.user.id
        self.repository.lock_users([user_id])
        running = self.repository.running_timer_now(user_id, ctx.org_id)
        if running.id is None:
            raise NotFoundError("No timer is running in this organization")
        old, new, end_at = self._stopped(running, running.now)
        with self.guarded():
            row = self.repository.stop_and_start(
                (old.id, end_at), None, [change(ChangeOp.UPDATED, old, new)]
            )
        return replace(new, version=row.stopped_version, updated_at=row.stopped_updated_at)

    @staticmethod
    def _stopped(running: Row[Any], now: datetime) -> tuple[EntryView, EntryView, datetime]:
        """A running timer (a `running_timer_now` row) before and after stopping it at
        `now`, and its end (see `stop_instant`: capped at 24 h; a future start is a 409)."""
        old = EntryView.of(running, running.tag_ids or ())
        end_at = stop_instant(old.start_at, now)
        return old, replace(old, end_at=end_at), end_at

    def restart(self, ctx: OrgContext) -> EntryView:
        """Start a timer copying the caller's latest entry in this organization.

        Tags deleted since are left out (they take no new entries); an archived project or
        a done task still refuses the copy, as it would a new timer."""
        last = self.repository.last_entry(ctx.org_id, ctx.user.id)
        if last is None:
            raise NotFoundError("There is no previous time entry to restart")
        tag_ids = self.references.live_tag_ids(ctx.org_id, self.repository.tag_ids(last.id))
        copy = TimerStart(
            project_id=last.project_id,
            task_id=last.task_id,
            description=last.description,
            billable=last.billable,
            tag_ids=list(tag_ids),
        )
        return self.start(ctx, copy)
