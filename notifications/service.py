"""Making notifications, whoever asks: the notifications projection (what the change log
announces) or a scheduled job of the worker (long-running timers, weekly summaries).

One INSERT … ON CONFLICT DO NOTHING on the unique (org_id, dedup_key), so replayed changes,
duplicate jobs and two schedulers never make one twice. In the same transaction it appends
the notifications' change rows, from which the notifications projection fills the inbox.

A kind its recipient set to `in_app: false` is made read (`read_at` = when it was made):
muted, no unread badge, still in the inbox to look up.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from command_api.modules.notifications.models import EmailStatus, Notification
from command_api.modules.users.models import NotificationSetting
from shared.changes import ChangeOp, ChangeRecord, record_changes
from shared.notifications import NOTIFICATION_ENTITY, NotificationDraft, NotificationState

# (in_app, email) of a kind the user never set. `in_app` false: made read (muted).
DEFAULT_CHANNELS = (True, False)

Channels = dict[tuple[uuid.UUID, str], tuple[bool, bool]]


def _channels(session: Session, drafts: Sequence[NotificationDraft]) -> Channels:
    rows = session.execute(
        select(
            NotificationSetting.user_id,
            NotificationSetting.kind,
            NotificationSetting.in_app,
            NotificationSetting.email,
        ).where(
            NotificationSetting.user_id.in_({d.user_id for d in drafts}),
            NotificationSetting.kind.in_({d.kind for d in drafts}),
        )
    )
    return {(user_id, kind): (in_app, email) for user_id, kind, in_app, email in rows}


def _row(
    draft: NotificationDraft, channels: Channels, made_at: datetime, due_at: datetime
) -> dict[str, Any]:
    """The notifications row of a draft, with the channels its recipient chose."""
    in_app, email = channels.get((draft.user_id, draft.kind), DEFAULT_CHANNELS)
    created_at = draft.created_at or made_at
    return {
        "id": uuid.uuid4(),
        "org_id": draft.org_id,
        "user_id": draft.user_id,
        "kind": draft.kind,
        "dedup_key": draft.dedup_key,
        "title": draft.title[:300],
        "body": draft.body,
        "data": draft.data,
        "in_app": in_app,
        "created_at": created_at,
        "read_at": None if in_app else created_at,
        "email_status": EmailStatus.PENDING if email else EmailStatus.SKIPPED,
        "next_attempt_at": due_at if email else None,
    }


def _created(row: Row[*tuple[Any, ...]]) -> ChangeRecord:
    new = NotificationState(user_id=row.user_id, kind=row.kind, read_at=row.read_at)
    return ChangeRecord(
        entity=NOTIFICATION_ENTITY,
        entity_id=row.id,
        op=ChangeOp.CREATED,
        org_id=row.org_id,
        payload={"old": None, "new": new.payload()},
    )


def create_notifications(
    session: Session, drafts: Sequence[NotificationDraft], *, now: datetime | None = None
) -> list[uuid.UUID]:
    """Make the drafts that were not made before, with the channels each recipient chose;
    return the ids of those made now. Runs in the caller's transaction.

    `now` (an injectable clock) is when their emails become due."""
    unique = list({(d.org_id, d.dedup_key): d for d in drafts}.values())
    if not unique:
        return []
    channels = _channels(session, unique)
    made_at = session.execute(select(func.now())).scalar_one()
    due_at = now or datetime.now(UTC)
    made = session.execute(
        insert(Notification)
        .values([_row(draft, channels, made_at, due_at) for draft in unique])
        .on_conflict_do_nothing(constraint="uq_notifications_org_id_dedup_key")
        .returning(
            Notification.id,
            Notification.org_id,
            Notification.user_id,
            Notification.kind,
            Notification.read_at,
        )
    ).all()
    record_changes(session, [_created(row) for row in made])
    return [row.id for row in made]
