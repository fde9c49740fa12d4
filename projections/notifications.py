"""The notifications projection: the inbox read model (`proj_notifications`), and the
notifications the change log itself announces (member added, role changed, budget
thresholds crossed: see projections/budget_alerts.py).

Every notification is made through `create_notifications`, whoever makes it (this
projector, or a scheduled job of the worker): one INSERT … ON CONFLICT DO NOTHING on the
unique (org_id, dedup_key), so replayed changes, duplicate jobs and two schedulers never
make one twice. In the same transaction it appends the notifications' change rows and puts
them in the inbox, so a client holding the consistency token of the write that caused a
notification finds it there.

Every notification is in the inbox. A kind its recipient set to `in_app: false` arrives
read (`read_at` = when it was made): muted, no unread badge, still there to look up.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from command_api.modules.notifications.models import EmailStatus, Notification
from command_api.modules.users.models import NotificationSetting
from projections.budget_alerts import budget_threshold_drafts
from projections.entries import Tables
from projections.runner import ChangeRow
from shared.changes import ChangeOp, ChangeRecord, record_changes
from shared.notifications import NotificationDraft, NotificationKind, NotificationState

NAME = "notifications"
NOTIFICATION_ENTITY = "notification"
MEMBERSHIP_ENTITY = "membership"
ORGANIZATION_ENTITY = "organization"

TABLES = ("notifications",)
SCOPE_PREDICATES: dict[str, str] = {}

__all__ = [
    "NAME",
    "NotificationDraft",
    "NotificationsProjector",
    "create_notifications",
    "rebuild_statements",
]

# --- The inbox ---------------------------------------------------------------------------

_INBOX_COLUMNS = "id, org_id, user_id, kind, title, body, data, created_at, read_at"


def _inbox_source(where: str = "") -> str:
    """Notifications of live organizations, from the write side."""
    return f"""
        SELECT n.id, n.org_id, n.user_id, n.kind, n.title, n.body, n.data, n.created_at,
               n.read_at
        FROM notifications n
        JOIN organizations o ON o.id = n.org_id AND o.deleted_at IS NULL
        WHERE TRUE {where}
    """


def rebuild_statements(t: Tables, *, scoped: bool = False) -> list[str]:
    """The inbox from the write side; `scoped` limits it to the organizations in `:orgs`."""
    where = "AND n.org_id = ANY(:orgs)" if scoped else ""
    return [f"INSERT INTO {t.notifications} ({_INBOX_COLUMNS}) {_inbox_source(where)}"]


_REFRESH_INBOX = f"""
    INSERT INTO proj_notifications ({_INBOX_COLUMNS}) {_inbox_source("AND n.id = ANY(:ids)")}
    ON CONFLICT (id) DO UPDATE SET
        title = EXCLUDED.title, body = EXCLUDED.body, data = EXCLUDED.data,
        read_at = EXCLUDED.read_at
"""
_DROP_FROM_INBOX = f"""
    DELETE FROM proj_notifications WHERE id = ANY(:ids)
      AND id NOT IN (SELECT id FROM ({_inbox_source("AND n.id = ANY(:ids)")}) AS live)
"""


def refresh_inbox(session: Session, ids: Iterable[uuid.UUID]) -> None:
    """Re-derive the inbox rows of these notifications from the write side (idempotent)."""
    params = {"ids": list(set(ids))}
    if params["ids"]:
        session.execute(text(_DROP_FROM_INBOX), params)
        session.execute(text(_REFRESH_INBOX), params)


# --- Making notifications ----------------------------------------------------------------

# (in_app, email) of a kind the user never set. `in_app` false: made read (muted).
DEFAULT_CHANNELS = (True, False)


def _channels(
    session: Session, drafts: Sequence[NotificationDraft]
) -> dict[tuple[uuid.UUID, str], tuple[bool, bool]]:
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
    due_at = now or datetime.now(UTC)
    made_at = session.execute(select(func.now())).scalar_one()
    rows = []
    for draft in unique:
        in_app, email = channels.get((draft.user_id, draft.kind), DEFAULT_CHANNELS)
        created_at = draft.created_at or made_at
        rows.append(
            {
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
        )
    made = session.execute(
        insert(Notification)
        .values(rows)
        .on_conflict_do_nothing(constraint="uq_notifications_org_id_dedup_key")
        .returning(
            Notification.id,
            Notification.org_id,
            Notification.user_id,
            Notification.kind,
            Notification.read_at,
        )
    ).all()
    record_changes(
        session,
        [
            ChangeRecord(
                entity=NOTIFICATION_ENTITY,
                entity_id=row.id,
                op=ChangeOp.CREATED,
                org_id=row.org_id,
                payload={
                    "old": None,
                    "new": NotificationState(
                        user_id=row.user_id, kind=row.kind, read_at=row.read_at
                    ).payload(),
                },
            )
            for row in made
        ],
    )
    ids = [row.id for row in made]
    refresh_inbox(session, ids)
    return ids


# --- Membership events -------------------------------------------------------------------


@dataclass(frozen=True)
class _MemberEvent:
    change: ChangeRow
    old: dict[str, Any] | None
    new: dict[str, Any] | None


def _member_events(changes: Sequence[ChangeRow]) -> list[_MemberEvent]:
    """Membership changes whose payload says what changed (rows seeded without old/new
    values, as test factories write them, announce nothing)."""
    events = []
    for change in changes:
        payload = change.payload or {}
        if change.entity != MEMBERSHIP_ENTITY or "new" not in payload:
            continue
        events.append(_MemberEvent(change, payload.get("old"), payload.get("new")))
    return events


def _founding_memberships(session: Session, events: Sequence[_MemberEvent]) -> set[Any]:
    """(tx, org) of the memberships made with their organization: its creator is not told
    they were added to the organization they just created."""
    txs = sorted({str(e.change.tx) for e in events})
    rows = session.execute(
        text(
            "SELECT tx::text, entity_id FROM changes WHERE entity = :org_entity"
            " AND op = 'created' AND tx = ANY(CAST(:txs AS xid8[]))"
        ),
        {"org_entity": ORGANIZATION_ENTITY, "txs": txs},
    )
    return {(int(tx), uuid.UUID(str(org_id))) for tx, org_id in rows}


def _org_names(session: Session, org_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = session.execute(
        text("SELECT id, name FROM organizations WHERE id = ANY(:ids) AND deleted_at IS NULL"),
        {"ids": list(set(org_ids))},
    )
    return {uuid.UUID(str(org_id)): str(name) for org_id, name in rows}


def _member_draft(event: _MemberEvent, org_name: str) -> NotificationDraft | None:
    change, old, new = event.change, event.old, event.new
    if new is None:
        return None
    org_id = uuid.UUID(str(change.org_id))
    user_id = uuid.UUID(str(new["user_id"]))
    data = {"org_id": str(org_id), "membership_id": str(change.entity_id), "role": new["role"]}
    if old is None:
        return NotificationDraft(
            org_id=org_id,
            user_id=user_id,
            kind=NotificationKind.MEMBER_ADDED,
            dedup_key=f"member_added:{change.entity_id}:{change.id}",
            title=f"You were added to {org_name}",
            body=f"You are now a member of {org_name}, with the role {new['role']}.",
            data=data,
            created_at=change.created_at,
        )
    if old.get("role") == new.get("role"):
        return None
    return NotificationDraft(
        org_id=org_id,
        user_id=user_id,
        kind=NotificationKind.ROLE_CHANGED,
        dedup_key=f"role_changed:{change.entity_id}:{change.id}",
        title=f"Your role in {org_name} changed",
        body=f"Your role in {org_name} changed from {old.get('role')} to {new['role']}.",
        data={**data, "old_role": old.get("role")},
        created_at=change.created_at,
    )


def member_drafts(session: Session, changes: Sequence[ChangeRow]) -> list[NotificationDraft]:
    """member_added and role_changed, to the member. Dedup keys name the change: a member
    removed and added again is told again, a change applied twice tells once."""
    events = _member_events(changes)
    if not events:
        return []
    founding = _founding_memberships(session, [e for e in events if e.old is None])
    names = _org_names(session, (uuid.UUID(str(e.change.org_id)) for e in events))
    drafts = []
    for event in events:
        org_id = uuid.UUID(str(event.change.org_id))
        if org_id not in names or (event.old is None and (event.change.tx, org_id) in founding):
            continue
        draft = _member_draft(event, names[org_id])
        if draft is not None:
            drafts.append(draft)
    return drafts


# --- The projector -----------------------------------------------------------------------


@dataclass
class _Touched:
    notification_ids: set[uuid.UUID] = field(default_factory=set)
    org_ids: set[uuid.UUID] = field(default_factory=set)

    @classmethod
    def of(cls, changes: Iterable[ChangeRow]) -> _Touched:
        touched = cls()
        for change in changes:
            if change.entity == NOTIFICATION_ENTITY:
                touched.notification_ids.add(uuid.UUID(str(change.entity_id)))
            elif change.entity == ORGANIZATION_ENTITY:
                touched.org_ids.add(uuid.UUID(str(change.entity_id)))
        return touched


class NotificationsProjector:
    """The inbox, and the notifications announced by the change log. Registered after the
    entries projection, whose project and task stats the budget checks read."""

    name = NAME

    def apply(self, session: Session, changes: Sequence[ChangeRow]) -> None:
        if not changes:
            return
        drafts = member_drafts(session, changes) + budget_threshold_drafts(session, changes)
        create_notifications(session, drafts)
        touched = _Touched.of(changes)
        refresh_inbox(session, touched.notification_ids)
        if touched.org_ids:
            # A deleted organization's notifications leave the inbox.
            session.execute(
                text(
                    "DELETE FROM proj_notifications WHERE org_id = ANY(:ids) AND org_id NOT IN"
                    " (SELECT id FROM organizations WHERE id = ANY(:ids) AND deleted_at IS NULL)"
                ),
                {"ids": list(touched.org_ids)},
            )
