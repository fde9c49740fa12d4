"""Every projection, in the order a full rebuild runs them."""

from __future__ import annotations

from projections.catalog import CatalogProjector
from projections.entries import EntriesProjector
from projections.notifications import NotificationsProjector
from projections.runner import Projector

# Notifications read the stats of the entries projection: they come after it.
PROJECTIONS: list[Projector] = [CatalogProjector(), EntriesProjector(), NotificationsProjector()]


def by_name(name: str) -> Projector:
    for projection in PROJECTIONS:
        if projection.name == name:
            return projection
    known = ", ".join(p.name for p in PROJECTIONS)
    raise KeyError(f"unknown projection '{name}' (known: {known})")
