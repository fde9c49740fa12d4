"""Every projection, in the order a full rebuild runs them: the one list the runner, rebuild,
verify, status, the worker and the CLI read."""

from __future__ import annotations

from notifications.service import create_notifications
from projections.catalog import CatalogProjection
from projections.entries import EntriesProjection
from projections.notifications import NotificationsProjection
from projections.projection import Projection
from projections.sync import SyncProjection
from projections.webhooks import WebhooksProjection
from webhooks.service import create_deliveries

# Notifications read the stats of the entries projection: they come after it. The sync feed
# reads only the normalized tables. Webhook events read the catalog and entries: after them.
PROJECTIONS: tuple[Projection, ...] = (
    CatalogProjection(),
    EntriesProjection(),
    NotificationsProjection(notify=create_notifications),
    SyncProjection(),
    WebhooksProjection(deliver=create_deliveries),
)


def by_name(name: str) -> Projection:
    for projection in PROJECTIONS:
        if projection.name == name:
            return projection
    known = ", ".join(p.name for p in PROJECTIONS)
    raise KeyError(f"unknown projection '{name}' (known: {known})")
