"""A webhook as an organization's admins list it: never its secret."""

from __future__ import annotations

import uuid

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
