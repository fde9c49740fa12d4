"""The shapes of delta sync (API.md, "Delta sync")."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, Field

from projections.models import (
    SYNC_CLIENT,
    SYNC_MEMBER,
    SYNC_PROJECT,
    SYNC_TAG,
    SYNC_TASK,
    SYNC_TEAM,
    SYNC_TIME_ENTRY,
)
from query_api.modules.catalog.schemas import (
    ClientRead,
    MemberRead,
    ProjectRead,
    TagRead,
    TaskRead,
    TeamRead,
)
from query_api.modules.entries.schemas import TimeEntryRead


class SyncEntity(StrEnum):
    TIME_ENTRY = SYNC_TIME_ENTRY
    PROJECT = SYNC_PROJECT
    CLIENT = SYNC_CLIENT
    TASK = SYNC_TASK
    TAG = SYNC_TAG
    MEMBER = SYNC_MEMBER
    TEAM = SYNC_TEAM


EntityRead = TimeEntryRead | ProjectRead | ClientRead | TaskRead | TagRead | MemberRead | TeamRead


class SyncOp(StrEnum):
    UPSERT = "upsert"  # replace your copy of the entity with `data`
    DELETE = "delete"  # remove it: deleted, or no longer yours to see


class SyncChangeRead(BaseModel):
    entity: SyncEntity
    id: uuid.UUID = Field(description="The entity's id (a member's: their user id)")
    op: SyncOp
    version: int | None = Field(description="The entity's version; null for a delete")
    data: EntityRead | None = Field(
        description="The entity as its list endpoint shows it to you; null for a delete"
    )


class SyncPageRead(BaseModel):
    changes: list[SyncChangeRead] = Field(description="In commit order; apply them in order")
    next_cursor: str = Field(description="Send it back as `cursor` for what comes next")
    has_more: bool = Field(description="More changes are ready now: ask again at once")
    reset: bool = Field(
        description="Your cursor is older than what the server keeps, or what you may see "
        "changed (a role, a team): drop your copy and start again from `next_cursor`"
    )
