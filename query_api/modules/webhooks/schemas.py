"""A webhook as an organization's admins list it: never its secret."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, Field

from query_api.schemas import UtcTimestamp
from shared.responses import Version


class WebhookRead(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None = Field(description="Why it was disabled, when it was")
    last_delivery_at: UtcTimestamp | None = Field(
        default=None, description="When a delivery last reached it; null before the first"
    )
    created_at: UtcTimestamp
    version: Version
    updated_at: UtcTimestamp


class DeliveryStatusFilter(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class DeliveryRead(BaseModel):
    """One event on its way to a webhook, or delivered, or given up."""

    id: uuid.UUID
    event_id: uuid.UUID = Field(description="The same on every attempt and redelivery")
    event: str = Field(description="The event's type, e.g. time_entry.created")
    status: DeliveryStatusFilter
    attempts: int
    last_status_code: int | None = Field(description="The receiver's last answer")
    last_error: str | None = Field(description="Why the last attempt failed, in words")
    next_attempt_at: UtcTimestamp | None = Field(description="When it is tried next (pending)")
    delivered_at: UtcTimestamp | None
    created_at: UtcTimestamp
