"""What a time entry is outside the ORM: for responses, change rows and the repository's
bulk writes (a module of its own, so that the service and the repository both import it
and not each other)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row

from command_api.modules.time_entries.models import TimeEntry

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class EntryView:
    id: uuid.UUID
    org_id: uuid.UUID
    user_id: uuid.UUID
    project_id: uuid.UUID | None
    task_id: uuid.UUID | None
    description: str
    billable: bool
    start_at: datetime
    end_at: datetime | None
    hourly_rate: int
    tag_ids: tuple[uuid.UUID, ...]
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def of(cls, entry: TimeEntry | Row[Any], tag_ids: Sequence[uuid.UUID]) -> EntryView:
        """An entry's view, of its ORM object or of a row of its table's columns."""
        return cls(
            id=entry.id,
            org_id=entry.org_id,
            user_id=entry.user_id,
            project_id=entry.project_id,
            task_id=entry.task_id,
            description=entry.description,
            billable=entry.billable,
            start_at=entry.start_at,
            end_at=entry.end_at,
            hourly_rate=entry.hourly_rate_amount,
            tag_ids=tuple(sorted(tag_ids)),
            version=entry.version,
            created_at=entry.created_at,
            updated_at=entry.updated_at,
        )

    @property
    def duration_seconds(self) -> int | None:
        if self.end_at is None:
            return None
        return (self.end_at - self.start_at) // timedelta(seconds=1)

    @property
    def amount(self) -> int | None:
        duration = self.duration_seconds
        if duration is None:
            return None
        return billed_amount(duration, self.hourly_rate, self.billable)

    def payload(self) -> dict[str, Any]:
        """What projections group by or display. Ids and instants stay objects: the change
        log serializes them in pydantic-core (RFC 3339 in UTC with "Z", as the API writes
        them), which is several times cheaper than str() and isoformat() here."""
        return {
            "user_id": self.user_id,
            "project_id": self.project_id,
            "task_id": self.task_id,
            "billable": self.billable,
            "start_at": self.start_at,
            "end_at": self.end_at,
            "duration_seconds": self.duration_seconds,
            "hourly_rate": self.hourly_rate,
            "amount": self.amount,
            "tag_ids": self.tag_ids,
            "description": self.description,
        }


def billed_amount(duration_seconds: int, hourly_rate: int, billable: bool) -> int:
    """round_half_up(duration × rate / 3600) in integer arithmetic; 0 when not billable."""
    if not billable:
        return 0
    return (duration_seconds * hourly_rate + SECONDS_PER_HOUR // 2) // SECONDS_PER_HOUR
