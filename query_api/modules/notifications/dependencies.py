"""Annotated aliases of the notifications queries."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from query_api.dependencies import consistent_with

NOTIFICATIONS = ("catalog", "notifications")

# Answer once the inbox includes the write behind X-Consistency-Token.
InboxConsistent = Annotated[None, Depends(consistent_with(NOTIFICATIONS))]

UnreadFilter = Annotated[
    bool | None,
    Query(description="true: unread notifications only; false: read ones only; omitted: all"),
]
