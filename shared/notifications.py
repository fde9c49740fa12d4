"""The notification contract: the kinds, a notification to make (drafted by the
notifications projection and the worker's jobs alike), what makes it (a `NotificationSink`:
the notifications service) and what its change rows say about it. Shared, like
shared/changes.py, so that the read side and the worker never import the command side's
schemas."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

# The entity of a notification's change rows.
NOTIFICATION_ENTITY = "notification"


class NotificationKind(StrEnum):
    """What a notification is about (API.md, "Notifications")."""

    BUDGET_THRESHOLD = "budget_threshold"
    LONG_RUNNING_TIMER = "long_running_timer"
    WEEKLY_SUMMARY = "weekly_summary"
    MEMBER_ADDED = "member_added"
    ROLE_CHANGED = "role_changed"
    WEBHOOK_DISABLED = "webhook_disabled"


class NotificationDraft(BaseModel):
    """A notification to make. `dedup_key` names it once and for all: (kind, subject,
    period, recipient); a draft whose key was made before is not made again."""

    model_config = ConfigDict(frozen=True)

    org_id: uuid.UUID
    user_id: uuid.UUID
    kind: NotificationKind
    dedup_key: str = Field(min_length=1, max_length=300)
    title: str = Field(min_length=1, max_length=300)
    body: str
    data: dict[str, Any] = Field(default_factory=dict)
    # When it happened (for a change of the log: when that change was written); None: now.
    created_at: datetime | None = None


class NotificationSink(Protocol):
    """Makes the drafts not made before, in the caller's transaction, and returns the ids
    of those made now: `notifications.service.create_notifications`, injected into the
    notifications projection so that it writes no write-side table itself."""

    def __call__(
        self, session: Session, drafts: Sequence[NotificationDraft], /
    ) -> list[uuid.UUID]: ...


class NotificationState(BaseModel):
    """A notification's fields in its change rows' `old` and `new`."""

    user_id: uuid.UUID
    kind: str
    read_at: datetime | None

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
