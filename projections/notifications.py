"""The notifications projection: the inbox read model (`proj_notifications`), and what the
change log itself announces (member added, role changed, budget thresholds crossed: see
projections/budget_alerts.py).

It writes only its own tables. The notifications it detects are made by the sink it is
given (`notifications.service.create_notifications`), in the batch's transaction; it then
puts those in the inbox along with every notification the batch changed, so a client
holding the consistency token of the write that caused a notification finds it there.

Every notification is in the inbox, a muted one already read (see notifications/service.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ARRAY, Executable, Table, and_, any_, cast, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from command_api.modules.notifications.models import Notification
from command_api.modules.organizations.models import Organization
from projections.budget_alerts import budget_threshold_drafts
from projections.models import proj_notifications
from projections.projection import IDS, ORGS, ChangeRow, Projection, Tables, among, fill
from shared.changes import Change, ChangeOp, Xid8
from shared.notifications import (
    NOTIFICATION_ENTITY,
    NotificationDraft,
    NotificationKind,
    NotificationSink,
)

MEMBERSHIP_ENTITY = "membership"
ORGANIZATION_ENTITY = "organization"

# --- The inbox ---------------------------------------------------------------------------

# Notifications of live organizations, from the write side.
_INBOX = select(
    Notification.id,
    Notification.org_id,
    Notification.user_id,
    Notification.kind,
    Notification.title,
    Notification.body,
    Notification.data,
    Notification.created_at,
    Notification.read_at,
).join(
    Organization,
    and_(Organization.id == Notification.org_id, Organization.deleted_at.is_(None)),
)
_IN_BATCH = among(Notification.id, IDS)

# What a refreshed inbox row takes from the write side; id, owner, kind and time never change.
_UPDATABLE = ("title", "body", "data", "read_at")


def _upsert_inbox() -> Executable:
    rows = _INBOX.where(_IN_BATCH)
    upsert = insert(proj_notifications).from_select([c.name for c in rows.selected_columns], rows)
    return upsert.on_conflict_do_update(
        index_elements=[proj_notifications.c.id],
        set_={name: upsert.excluded[name] for name in _UPDATABLE},
    )


_REFRESH_INBOX = _upsert_inbox()
_DROP_FROM_INBOX = delete(proj_notifications).where(
    among(proj_notifications.c.id, IDS),
    proj_notifications.c.id.not_in(_INBOX.where(_IN_BATCH).with_only_columns(Notification.id)),
)
# A deleted organization's notifications leave the inbox.
_DROP_DELETED_ORGS = delete(proj_notifications).where(
    among(proj_notifications.c.org_id, ORGS),
    proj_notifications.c.org_id.not_in(
        select(Organization.id).where(
            among(Organization.id, ORGS), Organization.deleted_at.is_(None)
        )
    ),
)


def refresh_inbox(session: Session, ids: Iterable[uuid.UUID]) -> None:
    """Re-derive the inbox rows of these notifications from the write side (idempotent)."""
    params = {"ids": list(set(ids))}
    if params["ids"]:
        session.execute(_DROP_FROM_INBOX, params)
        session.execute(_REFRESH_INBOX, params)


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
    txs = sorted({e.change.tx for e in events})
    rows = session.execute(
        select(Change.tx, Change.entity_id).where(
            Change.entity == ORGANIZATION_ENTITY,
            Change.op == ChangeOp.CREATED,
            Change.tx == any_(cast(txs, ARRAY(Xid8()))),
        )
    )
    return {(tx, uuid.UUID(str(org_id))) for tx, org_id in rows}


def _org_names(session: Session, org_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = session.execute(
        select(Organization.id, Organization.name).where(
            among(Organization.id, IDS), Organization.deleted_at.is_(None)
        ),
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


# --- The projection ----------------------------------------------------------------------


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


class NotificationsProjection(Projection):
    """The inbox, and the notifications announced by the change log, made through `notify`.
    Registered after the entries projection, whose project and task stats the budget
    checks read. `budget_alert_states` is its memory, not a read model: never rebuilt."""

    name = "notifications"
    tables = (proj_notifications,)

    def __init__(self, notify: NotificationSink) -> None:
        self.notify = notify

    def load(self, t: Tables, table: Table, *, scoped: bool = False) -> Executable:
        rows = _INBOX.where(among(Notification.org_id, ORGS)) if scoped else _INBOX
        return fill(t[table], rows)

    def apply(self, session: Session, changes: Sequence[ChangeRow]) -> None:
        if not changes:
            return
        drafts = member_drafts(session, changes) + budget_threshold_drafts(session, changes)
        made = self.notify(session, drafts)
        touched = _Touched.of(changes)
        refresh_inbox(session, [*made, *touched.notification_ids])
        if touched.org_ids:
            session.execute(_DROP_DELETED_ORGS, {"orgs": list(touched.org_ids)})
