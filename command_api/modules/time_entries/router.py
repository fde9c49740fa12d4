"""Time entries and timers: the heart of EvoTrack's write side."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from command_api.conditional import IfMatchDep
from command_api.modules.organizations.dependencies import OrgMember
from command_api.modules.time_entries.dependencies import (
    BulkEntryServiceDep,
    TimeEntryServiceDep,
    TimerServiceDep,
)
from command_api.modules.time_entries.schemas import (
    BulkCreatedRead,
    TimeEntryBulkCreate,
    TimeEntryCreate,
    TimeEntryRead,
    TimeEntryUpdate,
    TimerStart,
)
from command_api.transaction import CommandRoute
from shared.openapi import errors
from shared.responses import Envelope, ok

router = APIRouter(route_class=CommandRoute)

ENTRIES = "/organizations/{org_id}/time-entries"
TIMER = "/organizations/{org_id}/timer"

# The rules of API.md: 400 (longer than 24 h, before `lock_before`, an archived project, a
# done task), 403 (another member's entries, out of your scope), 409 (a second running
# timer, an overlap the organization forbids). Ids in bodies not in the organization: 404.
ENTRY_RULES = errors(400, 403, 409)
# The same, for a write that takes `If-Match` (412: the entry moved past that version).
CONDITIONAL_ENTRY_RULES = errors(400, 403, 409, 412)
TIMER_RULES = errors(400, 409)


@router.post(
    ENTRIES, status_code=201, response_model=Envelope[TimeEntryRead], responses=ENTRY_RULES
)
def create_time_entry(
    payload: TimeEntryCreate, ctx: OrgMember, service: TimeEntryServiceDep
) -> Envelope[TimeEntryRead]:
    """Record an entry; without `end_at` it starts a running timer.

    `user_id` writes for another member (managers for the teams they lead and below,
    admins for anyone). The hourly rate is resolved now and stored: project member >
    project > member > organization. `billable` defaults to the project's flag.
    """
    return ok(TimeEntryRead.model_validate(service.create(ctx, payload)))


@router.post(
    f"{ENTRIES}/bulk",
    status_code=201,
    response_model=Envelope[BulkCreatedRead],
    responses=errors(409),
)
def create_time_entries_in_bulk(
    payload: TimeEntryBulkCreate, ctx: OrgMember, service: BulkEntryServiceDep
) -> Envelope[BulkCreatedRead]:
    """Create up to 1000 entries, all or nothing.

    When any item fails, nothing is written and the 422's `details` list every failing
    item as `{index, field, error_code, message}`: malformed items (error_code
    VALIDATION_ERROR) and items breaking a rule, together. `ids` follow the order of the
    input. A 409 is a concurrent write that won (retry).
    """
    ids = service.create_many(ctx, payload.entries)
    return ok(BulkCreatedRead(created=len(ids), ids=ids))


@router.patch(
    f"{ENTRIES}/{{entry_id}}",
    response_model=Envelope[TimeEntryRead],
    responses=CONDITIONAL_ENTRY_RULES,
)
def update_time_entry(
    entry_id: uuid.UUID,
    payload: TimeEntryUpdate,
    ctx: OrgMember,
    service: TimeEntryServiceDep,
    condition: IfMatchDep,
) -> Envelope[TimeEntryRead]:
    """Change any field of an entry; setting `end_at` on a running timer stops it.

    Members edit their own entries, managers those of their teams, admins any. A new user
    or project resolves the hourly rate again. With `If-Match`, only over that version.
    """
    return ok(TimeEntryRead.model_validate(service.update(ctx, entry_id, payload, condition)))


@router.delete(f"{ENTRIES}/{{entry_id}}", status_code=204, responses=errors(400, 403, 412))
def delete_time_entry(
    entry_id: uuid.UUID, ctx: OrgMember, service: TimeEntryServiceDep, condition: IfMatchDep
) -> Response:
    """Delete an entry (soft: reports and audits still see that it existed). With
    `If-Match`, only if it is still at that version."""
    service.delete(ctx, entry_id, condition)
    return Response(status_code=204)


@router.post(
    f"{TIMER}/start", status_code=201, response_model=Envelope[TimeEntryRead], responses=TIMER_RULES
)
def start_timer(
    ctx: OrgMember, service: TimerServiceDep, payload: TimerStart | None = None
) -> Envelope[TimeEntryRead]:
    """Start a timer now. A timer already running for you, in any organization, stops at
    the same instant."""
    return ok(TimeEntryRead.model_validate(service.start(ctx, payload or TimerStart())))


@router.post(f"{TIMER}/stop", response_model=Envelope[TimeEntryRead], responses=errors(409))
def stop_timer(ctx: OrgMember, service: TimerServiceDep) -> Envelope[TimeEntryRead]:
    """Stop your timer running in this organization (404 when none runs here; 409 when it
    starts in the future: edit or delete it)."""
    return ok(TimeEntryRead.model_validate(service.stop_running(ctx)))


@router.post(
    f"{TIMER}/restart",
    status_code=201,
    response_model=Envelope[TimeEntryRead],
    responses=TIMER_RULES,
)
def restart_timer(ctx: OrgMember, service: TimerServiceDep) -> Envelope[TimeEntryRead]:
    """Start a new timer copying your latest entry here (project, task, description, tags,
    billable); a running timer stops first."""
    return ok(TimeEntryRead.model_validate(service.restart(ctx)))
