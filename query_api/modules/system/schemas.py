from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


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
