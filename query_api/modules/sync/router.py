"""Delta sync (API.md, "Delta sync"): what changed since a cursor, for offline clients."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from projections.models import (
    SYNC_CLIENT,
    SYNC_MEMBER,
    SYNC_PROJECT,
    SYNC_TAG,
    SYNC_TASK,
    SYNC_TEAM,
    SYNC_TIME_ENTRY,
)
from query_api.dependencies import OrgReader, OrgReaderDep, ReadSessionDep
from query_api.modules.catalog import queries as catalog
from query_api.modules.catalog.schemas import (
    ClientRead,
    MemberRead,
    ProjectRead,
    TagRead,
    TaskRead,
    TeamRead,
)
from query_api.modules.entries.queries import entries_by_id
from query_api.modules.entries.schemas import TimeEntryRead
from query_api.modules.sync import queries
from query_api.modules.sync.dependencies import (
    START,
    Redo,
    SyncConsistent,
    SyncCursor,
    SyncRequest,
    SyncRequestDep,
    View,
    encode_sync_cursor,
)
from query_api.modules.sync.queries import FeedRow
from query_api.modules.sync.schemas import (
    EntityRead,
    SyncChangeRead,
    SyncEntity,
    SyncOp,
    SyncPageRead,
)
from shared.db import ReadSession
from shared.responses import Envelope, ok

router = APIRouter(prefix="/organizations/{org_id}", tags=["sync"])


@router.get("/sync", response_model=Envelope[SyncPageRead])
def get_sync_changes(
    org: OrgReaderDep, session: ReadSessionDep, request: SyncRequestDep, _: SyncConsistent
) -> Envelope[SyncPageRead]:
    """Everything you may see, then what changed since: for clients that keep a copy.

    Without a cursor, every entity comes as an `upsert`, page by page. Follow `next_cursor`
    while `has_more`; later, the same cursor returns what changed since, in commit order
    (never skipping a change that committed late). Apply each change in order: `upsert`
    replaces your copy of the entity with `data` (the shape of its list endpoint), `delete`
    removes it (deleted, or no longer yours to see). An entity changed several times comes
    once, as it is now. When whom you see changes (your role, your teams), the next pages
    bring the entries that entered or left your view. `reset` means start again without a
    cursor: yours is older than what the server keeps (or whom you see is too many users to
    follow in a cursor and changed).
    """
    view = View.of(org)
    bound = queries.readable_bound(session)
    horizon = queries.horizon(session, org.org_id)
    # A client starting now: the tombstones up to the bound predate its copy, and so do
    # those the horizon has already taken.
    fresh = SyncCursor(START, bound or (0, 0), horizon, request.kinds, view)
    cursor = request.cursor
    if cursor is None:
        cursor = fresh
    elif _must_start_over(cursor, view, horizon):
        page = SyncPageRead(
            changes=[], next_cursor=encode_sync_cursor(org, fresh), has_more=True, reset=True
        )
        return ok(page)
    elif cursor.view != view:
        cursor = _redo_for(cursor, view)
    if cursor.redo is not None:
        return ok(_redo_page(session, org, request, cursor))
    rows = [] if bound is None else _rows(session, org, request, cursor, bound)
    has_more = len(rows) > request.limit
    rows = rows[: request.limit]
    after = rows[-1].position if rows else cursor.after
    page = SyncPageRead(
        changes=_changes(session, org, rows, cursor.snapshot),
        next_cursor=encode_sync_cursor(org, replace(cursor, after=after)),
        has_more=has_more,
        reset=False,
    )
    return ok(page)


def _must_start_over(cursor: SyncCursor, view: View, horizon: tuple[int, int]) -> bool:
    """Whether tombstones the client may need are gone: the horizon moved on since the
    client started (pruning, a rebuild) and the cursor stands before it. Or whom the caller
    sees changed and one of the two views is too large to have travelled in a cursor."""
    if cursor.view != view and not (cursor.view.known and view.known):
        return True
    return horizon > cursor.origin and cursor.after.change < horizon


# The kinds whose data depends on whom the caller sees: entries, the totals of projects and
# tasks, members' rates (admins only).
_VIEWED_KINDS = (SYNC_TIME_ENTRY, SYNC_PROJECT, SYNC_TASK, SYNC_MEMBER)
_EVERYTHING = (2**62, 2**62)  # beyond every position


def _redo_for(cursor: SyncCursor, view: View) -> SyncCursor:
    """The cursor about to send what a change of view changes: the entries of the users who
    entered or left it (anyone's when either view is everyone, or a redo was under way), and
    the projects, tasks and members again."""
    owners = None if cursor.redo is not None else cursor.view.owners_changed(view)
    kinds = tuple(kind for kind in cursor.kinds if kind in _VIEWED_KINDS)
    if not kinds:  # a client of tags, say: nothing it holds depends on the view
        return replace(cursor, view=view, redo=None)
    return replace(cursor, view=view, redo=Redo(START, kinds, owners))


def _redo_page(
    session: ReadSession, org: OrgReader, request: SyncRequest, cursor: SyncCursor
) -> SyncPageRead:
    """A page of the redo: every row of its kinds and owners, however recent (a row that
    moves on later is served again by the feed), each as the new view has it. Then the
    feed goes on from where the cursor stood."""
    redo = cursor.redo
    assert redo is not None
    statement = queries.feed_statement(
        org.org_id, redo.kinds, redo.owners, redo.after, _EVERYTHING, request.limit + 1
    )
    rows = queries.feed_rows(session, statement)
    done = len(rows) <= request.limit
    rows = rows[: request.limit]
    if done:
        next_cursor = replace(cursor, redo=None)
    else:
        next_cursor = replace(cursor, redo=replace(redo, after=rows[-1].position))
    return SyncPageRead(
        changes=_changes(session, org, rows, snapshot=(-1, -1)),  # the copy may hold any
        next_cursor=encode_sync_cursor(org, next_cursor),
        has_more=True,
        reset=False,
    )


def _rows(
    session: ReadSession,
    org: OrgReader,
    request: SyncRequest,
    cursor: SyncCursor,
    bound: tuple[int, int],
) -> list[FeedRow]:
    """One more row than a page holds: whether there are more."""
    statement = queries.feed_statement(
        org.org_id, request.kinds, org.visible_user_ids, cursor.after, bound, request.limit + 1
    )
    return queries.feed_rows(session, statement)


def _changes(
    session: ReadSession, org: OrgReader, rows: list[FeedRow], snapshot: tuple[int, int]
) -> list[SyncChangeRead]:
    """The rows as changes, each as its entity is now: an `upsert` where it is there and
    the caller may see it, else a `delete`, except from before the caller's snapshot (its
    copy never held it). A row's own `gone` is not asked: an entry moved to another user
    has a tombstone under its former user and a live row under the new one, and both say
    the same. Such an entity comes once in a page."""
    data = _entities(session, org, rows)
    changes: list[SyncChangeRead] = []
    seen: set[tuple[str, uuid.UUID]] = set()
    for row in rows:
        key = (row.kind, row.entity_id)
        if key in seen:
            continue
        seen.add(key)
        entity = data.get(key)
        if entity is not None:
            changes.append(_upsert(row, entity))
        elif (row.tx, row.change_id) > snapshot:
            changes.append(
                SyncChangeRead(
                    entity=SyncEntity(row.kind),
                    id=row.entity_id,
                    op=SyncOp.DELETE,
                    version=None,
                    data=None,
                )
            )
    return changes


def _upsert(row: FeedRow, entity: EntityRead) -> SyncChangeRead:
    return SyncChangeRead(
        entity=SyncEntity(row.kind),
        id=row.entity_id,
        op=SyncOp.UPSERT,
        version=entity.version,
        data=entity,
    )


def _entities(
    session: ReadSession, org: OrgReader, rows: list[FeedRow]
) -> dict[tuple[str, uuid.UUID], EntityRead]:
    """Each row's entity as the caller may see it now, by (kind, id); absent when it is
    gone or not theirs to see."""
    ids: dict[str, list[uuid.UUID]] = defaultdict(list)
    for row in rows:
        ids[row.kind].append(row.entity_id)
    found: dict[tuple[str, uuid.UUID], EntityRead] = {}
    for kind, kind_ids in ids.items():
        for entity_id, entity in _READERS[kind](session, org, kind_ids).items():
            found[(kind, entity_id)] = entity
    return found


def _entries(session: ReadSession, org: OrgReader, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    now = datetime.now(UTC)
    rows = entries_by_id(session, org.org_id, ids)
    return {
        entry_id: TimeEntryRead.of(row, now)
        for entry_id, row in rows.items()
        if org.can_see(row.user_id)
    }


def _projects(session: ReadSession, org: OrgReader, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    return {row["id"]: ProjectRead.of(row) for row in catalog.projects_by_id(session, org, ids)}


def _tasks(session: ReadSession, org: OrgReader, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    return {row["id"]: TaskRead.of(row) for row in catalog.tasks_by_id(session, org, ids)}


def _clients(session: ReadSession, org: OrgReader, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    rows = catalog.clients_by_id(session, org.org_id, ids)
    return {row["id"]: ClientRead.model_validate(dict(row)) for row in rows}


def _tags(session: ReadSession, org: OrgReader, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    rows = catalog.tags_by_id(session, org.org_id, ids)
    return {row["id"]: TagRead.model_validate(dict(row)) for row in rows}


def _members(session: ReadSession, org: OrgReader, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    rows = catalog.members_by_id(session, org.org_id, ids)
    teams = catalog.teams_of_members(session, org.org_id, [row["user_id"] for row in rows])
    show_rate = org.at_least("admin")
    return {
        row["user_id"]: MemberRead.of(row, teams.get(row["user_id"], []), show_rate=show_rate)
        for row in rows
    }


def _teams(session: ReadSession, org: OrgReader, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    rows = catalog.teams_by_id(session, org.org_id, ids)
    leads = catalog.leads_of_teams(session, org.org_id, [row["id"] for row in rows])
    return {row["id"]: TeamRead.of(row, leads.get(row["id"], [])) for row in rows}


_READERS = {
    SYNC_TIME_ENTRY: _entries,
    SYNC_PROJECT: _projects,
    SYNC_TASK: _tasks,
    SYNC_CLIENT: _clients,
    SYNC_TAG: _tags,
    SYNC_MEMBER: _members,
    SYNC_TEAM: _teams,
}
