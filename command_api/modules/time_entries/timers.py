"""Timers: start now, stop, restart the latest entry. A user has one running timer across
every organization; starting one stops the other at the same instant."""

from __future__ import annotations

from command_api.modules.organizations.context import OrgContext
from command_api.modules.time_entries.schemas import TimerStart
from command_api.modules.time_entries.service import (
    EntryWriter,
    change,
    ensure_unlocked,
    new_entry,
)
from command_api.modules.time_entries.views import EntryView
from shared.changes import ChangeOp, ChangeRecord, record_changes
from shared.errors import NotFoundError


class TimerService(EntryWriter):
    def start(self, ctx: OrgContext, data: TimerStart) -> EntryView:
        """Start a timer now; a timer running anywhere for this user stops at that instant."""
        user_id = ctx.user.id
        refs = self.references.resolve(
            ctx.org_id, user_id, data.project_id, data.task_id, data.tag_ids, for_new_entry=True
        )
        policy = self.repository.lock_policy(ctx.org_id, writer=user_id)
        now = self.repository.clock()
        ensure_unlocked(ctx, policy, now)
        changes: list[ChangeRecord] = []
        running = self.repository.running_timer(user_id)
        if running is not None:
            changes.append(change(ChangeOp.UPDATED, *self.stop(running, now)))
        rate = ctx.membership.hourly_rate_amount
        view = self.insert(new_entry(ctx, user_id, refs, data, rate, now, None), policy)
        changes.append(change(ChangeOp.CREATED, None, view))
        record_changes(self.session, changes)
        return view

    def stop_running(self, ctx: OrgContext) -> EntryView:
        user_id = ctx.user.id
        self.repository.lock_users([user_id])
        running = self.repository.running_timer(user_id, ctx.org_id)
        if running is None:
            raise NotFoundError("No timer is running in this organization")
        old, new = self.stop(running, self.repository.clock())
        record_changes(self.session, [change(ChangeOp.UPDATED, old, new)])
        return new

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
