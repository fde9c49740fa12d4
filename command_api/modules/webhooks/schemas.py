"""Bodies and answers of the webhook commands (API.md, "Webhooks")."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from shared.responses import Version
from shared.webhooks import matches

# The events a webhook may ask for (API.md); `*` stands for any entity or any action.
EVENTS = frozenset(
    {
        *(f"time_entry.{action}" for action in ("created", "updated", "deleted")),
        "timer.started",
        "timer.stopped",
        *(
            f"{entity}.{action}"
            for entity in ("project", "client", "task", "tag")
            for action in ("created", "updated", "deleted")
        ),
        *(f"member.{action}" for action in ("added", "updated", "removed")),
        *(f"approval.{action}" for action in ("submitted", "approved", "rejected", "withdrawn")),
        "import.finished",
        "ping",
    }
)
MIN_SECRET_LENGTH, MAX_SECRET_LENGTH = 16, 200
_PATTERN = re.compile(r"^(\*|[a-z_]+)(\.(\*|[a-z_]+))?$")  # entity.action, * or ping


def _known_patterns(patterns: list[str]) -> list[str]:
    unknown = [
        p for p in patterns if not _PATTERN.match(p) or not any(matches(p, e) for e in EVENTS)
    ]
    if unknown:
        raise ValueError(
            f"unknown event {', '.join(unknown)}: use entity.action, with * for either "
            f"(events: {', '.join(sorted(EVENTS))})"
        )
    return sorted(set(patterns))


Events = Annotated[
    list[str],
    Field(min_length=1, max_length=50, examples=[["time_entry.*", "project.deleted"]]),
    AfterValidator(_known_patterns),
]
Url = Annotated[str, Field(min_length=1, max_length=2048, examples=["https://example.com/hooks"])]
Description = Annotated[str, Field(max_length=500)]


class _Write(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookCreate(_Write):
    url: Url
    events: Events
    secret: str | None = Field(
        default=None,
        min_length=MIN_SECRET_LENGTH,
        max_length=MAX_SECRET_LENGTH,
        description="Yours to choose; generated when left out. Shown once.",
    )
    description: Description = ""


class WebhookUpdate(_Write):
    url: Url | None = None
    events: Events | None = None
    enabled: bool | None = None
    description: Description | None = None

    @field_validator("url", "events", "enabled", "description")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out, not null")
        return value


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    version: Version
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(description="Shown this once: keep it to verify signatures")


class SecretRotated(BaseModel):
    secret: str = Field(description="The new secret, shown this once")
    previous_secret_expires_at: datetime = Field(
        description="Until then deliveries are signed with both secrets"
    )


class DeliveryAccepted(BaseModel):
    """A delivery on its way: GET …/webhooks/{id}/deliveries shows how it goes."""

    delivery_id: uuid.UUID
