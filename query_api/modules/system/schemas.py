from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from shared.responses import Envelope


class ProjectionStatusRead(BaseModel):
    name: str
    checkpoint: str
    applied_watermark: str
    watermark: str
    lag_changes: int
    lag_seconds: float
    dead_letters: int
    last_error: str | None
    last_error_at: datetime | None
    updated_at: datetime


class ReplicaStatusRead(BaseModel):
    """The replay of the streaming replica the query API reads (see `replica_lag`)."""

    in_recovery: bool
    replay_paused: bool
    lag_bytes: int | None
    lag_seconds: float | None
    last_replayed_at: datetime | None


class DeliveriesStatusRead(BaseModel):
    """Webhook deliveries across organizations, as the `webhooks` projection's log has them."""

    pending: int
    retrying: int = Field(description="Pending deliveries that failed at least once")
    failed: int = Field(description="Given up after 3 days of failed attempts")
    disabled_webhooks: int


class ProjectionStatusResponse(Envelope[list[ProjectionStatusRead]]):
    """The projections in `data`; beside them the replica's own replay, null on a primary.
    On a replica both figures count: the projections' lag is as of what it has replayed.
    `webhook_deliveries`: what the webhook senders have yet to deliver, and what failed."""

    replica: ReplicaStatusRead | None
    webhook_deliveries: DeliveriesStatusRead
