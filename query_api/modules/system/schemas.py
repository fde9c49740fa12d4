from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

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


class ProjectionStatusResponse(Envelope[list[ProjectionStatusRead]]):
    """The projections in `data`; beside them the replica's own replay, null on a primary.
    On a replica both figures count: the projections' lag is as of what it has replayed."""

    replica: ReplicaStatusRead | None
