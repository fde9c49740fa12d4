"""Every projection, in the order a full rebuild runs them: the one list the runner, rebuild,
verify, status, the worker and the CLI read."""

from __future__ import annotations

from notifications.service import create_notifications
from projections.catalog import CatalogProjection
from projections.entries import EntriesProjection
from projections.notifications import NotificationsProjection
from projections.projection import Projection
from projections.sync import SyncProjection

# Notifications read the stats of the entries projection: they come after it. The sync feed
# reads only the normalized tables.
PROJECTIONS: tuple[Projection, ...] = (
    CatalogProjection(),
    EntriesProjection(),
    NotificationsProjection(notify=create_notifications),
    SyncProjection(),
)


def by_name(name: str) -> Projection:
    for projection in PROJECTIONS:
        if projection.name == name:
            return projection
    known = ", ".join(p.name for p in PROJECTIONS)
    raise KeyError(f"unknown projection '{name}' (known: {known})")
