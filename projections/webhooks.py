"""The webhooks projection: the events the change log announces, handed to the webhooks
service to make deliveries of (webhooks.service.create_deliveries), and the delivery log
its admins read (`proj_webhook_deliveries`).

It follows the catalog and entries projections (`follows`): it reads a batch only once
they have applied it, so an event's `data` is the entity as the query API shows it then,
read from their tables. An entity gone by then is sent as `{id}`.

Event ids are uuid5 of the change and the type (shared.webhooks.event_id), so a change
applied again (a retried batch, a rebuild's catch-up) makes no second delivery. A rebuild
of this projection rebuilds the log from the deliveries; it sends nothing again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, Row, Table, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from command_api.modules.webhooks.models import Webhook, WebhookDelivery
from projections.models import (
    proj_clients,
    proj_entries,
    proj_members,
    proj_projects,
    proj_tags,
    proj_tasks,
    proj_webhook_deliveries,
)
from projections.projection import IDS, ORGS, ChangeRow, Projection, Tables, among, fill
from shared.changes import ChangeOp
from shared.webhooks import DELIVERY_ENTITY, DeliverySink, EventDraft, event_id

# --- What each entity's events carry ----------------------------------------------------


def _ref(id_: Any, name: Any, **more: Any) -> dict[str, Any] | None:
    return None if id_ is None else {"id": id_, "name": name or "", **more}


def _entry(row: Row[Any], at: datetime) -> dict[str, Any]:
    """As GET /time-entries shows it (a running entry's duration up to the event)."""
    duration = row.duration_seconds
    if row.end_at is None:
        duration = max(0, int((at - row.start_at).total_seconds()))
    return {
        "id": row.entry_id,
        "user": {"id": row.user_id, "full_name": row.user_name},
        "project": _ref(row.project_id, row.project_name, color=row.project_color),
        "client": _ref(row.client_id, row.client_name),
        "task": _ref(row.task_id, row.task_name),
        "tags": [{"id": i, "name": n} for i, n in zip(row.tag_ids, row.tag_names, strict=False)],
        "description": row.description,
        "start_at": row.start_at,
        "end_at": row.end_at,
        "duration_seconds": duration,
        "billable": row.billable,
        "amount": row.amount,
        "version": row.version,
        "updated_at": row.updated_at,
    }


def _project(row: Row[Any], _: datetime) -> dict[str, Any]:
    """As GET /projects shows it to an admin, without the totals (they are a report's)."""
    return {
        "id": row.id,
        "name": row.name,
        "client": _ref(row.client_id, row.client_name),
        "color": row.color,
        "billable": row.billable,
        "hourly_rate": row.hourly_rate_amount,
        "budget_seconds": row.budget_seconds,
        "budget_amount": row.budget_amount,
        "archived": row.archived,
        "version": row.version,
        "updated_at": row.updated_at,
    }


def _columns(*names: str) -> Callable[[Row[Any], datetime], dict[str, Any]]:
    def shape(row: Row[Any], _: datetime) -> dict[str, Any]:
        return {name: getattr(row, name) for name in names}

    return shape


def _member(row: Row[Any], _: datetime) -> dict[str, Any]:
    return {
        "user_id": row.user_id,
        "email": row.email,
        "full_name": row.full_name,
        "role": row.role,
        "hourly_rate": row.hourly_rate_amount,
        "joined_at": row.joined_at,
        "version": row.version,
        "updated_at": row.updated_at,
    }


@dataclass(frozen=True)
class _Kind:
    """How the events of one entity of the change log are named and filled."""

    event: str  # the entity's name in event types
    table: Table
    key: str  # the column the entity is found by
    shape: Callable[[Row[Any], datetime], dict[str, Any]]
    actions: dict[str, str]  # change op -> action
    id_field: str = "id"  # what names the entity in the data of an event it is gone from

    def key_of(self, change: ChangeRow) -> Any:
        return change.entity_id


_CRUD: dict[str, str] = {
    ChangeOp.CREATED: "created",
    ChangeOp.UPDATED: "updated",
    ChangeOp.DELETED: "deleted",
}
_MEMBER_ACTIONS: dict[str, str] = {
    ChangeOp.CREATED: "added",
    ChangeOp.UPDATED: "updated",
    ChangeOp.DELETED: "removed",
}
_VERSIONED = ("version", "updated_at")


class _MemberKind(_Kind):
    def key_of(self, change: ChangeRow) -> Any:
        side = (change.payload or {}).get("new") or (change.payload or {}).get("old") or {}
        return side.get("user_id")


KINDS: dict[str, _Kind] = {
    "time_entry": _Kind("time_entry", proj_entries, "entry_id", _entry, _CRUD),
    "project": _Kind("project", proj_projects, "id", _project, _CRUD),
    "client": _Kind(
        "client", proj_clients, "id", _columns("id", "name", "archived", *_VERSIONED), _CRUD
    ),
    "task": _Kind(
        "task",
        proj_tasks,
        "id",
        _columns("id", "project_id", "name", "budget_seconds", "done", *_VERSIONED),
        _CRUD,
    ),
    "tag": _Kind("tag", proj_tags, "id", _columns("id", "name", *_VERSIONED), _CRUD),
    "membership": _MemberKind(
        "member",
        proj_members,
        "user_id",
        _member,
        _MEMBER_ACTIONS,
        id_field="user_id",
    ),
}


def _timer_event(change: ChangeRow) -> str | None:
    """`timer.started` for an entry made running, `timer.stopped` for one that stops."""
    payload = change.payload or {}
    old, new = payload.get("old"), payload.get("new")
    if new is not None and new.get("end_at") is None and (old is None or old.get("end_at")):
        return "timer.started"
    if old is not None and old.get("end_at") is None and new is not None and new.get("end_at"):
        return "timer.stopped"
    return None


def _types(change: ChangeRow) -> list[str]:
    kind = KINDS.get(change.entity)
    action = None if kind is None else kind.actions.get(change.op)
    if kind is None or action is None:
        return []
    types = [f"{kind.event}.{action}"]
    if change.entity == "time_entry" and (timer := _timer_event(change)) is not None:
        types.append(timer)
    return types


def _uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(str(value))


def _rows(session: Session, kind: _Kind, changes: Iterable[ChangeRow]) -> dict[Any, Row[Any]]:
    """The entities' rows in the read model, by (org, key)."""
    keys = {(_uuid(change.org_id), _uuid(kind.key_of(change))) for change in changes}
    table = kind.table
    found = session.execute(
        select(table).where(among(table.c.org_id, ORGS), among(table.c[kind.key], IDS)),
        {"orgs": list({o for o, _ in keys}), "ids": list({k for _, k in keys if k is not None})},
    )
    return {(row.org_id, getattr(row, kind.key)): row for row in found}


def _subscribed_orgs(session: Session, org_ids: set[Any]) -> set[uuid.UUID]:
    """The organizations among these with an enabled webhook: only their events are read."""
    if not org_ids:
        return set()
    rows = session.execute(
        select(Webhook.org_id)
        .distinct()
        .where(among(Webhook.org_id, ORGS), Webhook.enabled, Webhook.deleted_at.is_(None)),
        {"orgs": [_uuid(org_id) for org_id in org_ids]},
    )
    return set(rows.scalars())


def events_of(session: Session, changes: Sequence[ChangeRow]) -> list[EventDraft]:
    """The events of a batch of changes, in change order, for the organizations that have
    a webhook (most batches of most deployments read nothing more than that)."""
    typed = [(change, _types(change)) for change in changes]
    typed = [(change, types) for change, types in typed if types]
    subscribed = _subscribed_orgs(session, {change.org_id for change, _ in typed})
    typed = [(change, types) for change, types in typed if _uuid(change.org_id) in subscribed]
    rows: dict[str, dict[Any, Row[Any]]] = {}
    for entity in {change.entity for change, _ in typed}:
        rows[entity] = _rows(session, KINDS[entity], (c for c, _ in typed if c.entity == entity))
    events = []
    for change, types in typed:
        kind = KINDS[change.entity]
        key = _uuid(kind.key_of(change))
        org_id = uuid.UUID(str(change.org_id))
        row = rows[change.entity].get((org_id, key))
        if row is None or change.op == ChangeOp.DELETED:
            data: dict[str, Any] = {kind.id_field: key}
        else:
            data = kind.shape(row, change.created_at)
        for type_ in types:
            events.append(
                EventDraft(
                    id=event_id(change.id, type_),
                    org_id=org_id,
                    type=type_,
                    created_at=change.created_at,
                    data=data,
                )
            )
    return events


# --- The delivery log -------------------------------------------------------------------

_LOG = select(
    WebhookDelivery.id,
    WebhookDelivery.org_id,
    WebhookDelivery.webhook_id,
    WebhookDelivery.seq,
    WebhookDelivery.event_id,
    WebhookDelivery.event_type.label("event"),
    WebhookDelivery.status,
    WebhookDelivery.attempts,
    WebhookDelivery.last_status_code,
    WebhookDelivery.last_error,
    WebhookDelivery.next_attempt_at,
    WebhookDelivery.delivered_at,
    WebhookDelivery.created_at,
)
# What moves of a delivery; the rest is fixed when it is made.
_UPDATABLE = (
    "status",
    "attempts",
    "last_status_code",
    "last_error",
    "next_attempt_at",
    "delivered_at",
)


def _refresh_log() -> Executable:
    rows = _LOG.where(among(WebhookDelivery.id, IDS))
    upsert = insert(proj_webhook_deliveries).from_select(
        [c.name for c in rows.selected_columns], rows
    )
    return upsert.on_conflict_do_update(
        index_elements=[proj_webhook_deliveries.c.id],
        set_={name: upsert.excluded[name] for name in _UPDATABLE},
    )


_REFRESH_LOG = _refresh_log()
_DROP_FROM_LOG = delete(proj_webhook_deliveries).where(
    among(proj_webhook_deliveries.c.id, IDS),
    proj_webhook_deliveries.c.id.not_in(
        select(WebhookDelivery.id).where(among(WebhookDelivery.id, IDS))
    ),
)


def refresh_log(session: Session, ids: Iterable[uuid.UUID]) -> None:
    """Re-derive these deliveries' rows of the log from the deliveries (idempotent)."""
    params = {"ids": list(set(ids))}
    if params["ids"]:
        session.execute(_DROP_FROM_LOG, params)
        session.execute(_REFRESH_LOG, params)


class WebhooksProjection(Projection):
    """Events to deliveries (made through `deliver`), and the delivery log."""

    name = "webhooks"
    tables = (proj_webhook_deliveries,)
    follows = ("catalog", "entries")

    def __init__(self, deliver: DeliverySink) -> None:
        self.deliver = deliver

    def apply(self, session: Session, changes: Sequence[ChangeRow]) -> None:
        made = self.deliver(session, events_of(session, changes))
        moved = {uuid.UUID(str(c.entity_id)) for c in changes if c.entity == DELIVERY_ENTITY}
        refresh_log(session, [*made, *moved])

    def load(self, t: Tables, table: Table, *, scoped: bool = False) -> Executable:
        rows = _LOG.where(among(WebhookDelivery.org_id, ORGS)) if scoped else _LOG
        return fill(t[table], rows)
