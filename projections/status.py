"""Where every projection stands: checkpoint, watermark, lag, dead letters, last error."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from projections.registry import PROJECTIONS
from shared.changes import projection_lag


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    checkpoint_tx: int
    checkpoint_change_id: int
    applied_watermark: int
    watermark: int
    lag_changes: int
    lag_seconds: float
    dead_letters: int
    last_error: str | None
    last_error_at: datetime | None
    updated_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def projection_status(session: Session, names: list[str] | None = None) -> list[ProjectionStatus]:
    names = names or [p.name for p in PROJECTIONS]
    rows = projection_lag(session, names)
    return [
        ProjectionStatus(
            name=row["name"],
            checkpoint_tx=int(row["tx"]),
            checkpoint_change_id=int(row["change_id"]),
            applied_watermark=int(row["applied_watermark"]),
            watermark=int(row["watermark"]),
            lag_changes=int(row["lag_changes"]),
            lag_seconds=float(row["lag_seconds"]),
            dead_letters=int(row["dead_letters"]),
            last_error=row["last_error"],
            last_error_at=row["last_error_at"],
            updated_at=row["updated_at"],
        )
        for row in rows
    ]


def retry_dead_letters(session: Session, projection: str | None = None) -> int:
    """Resolve open dead letters so the runner applies those changes again.

    The changes sit behind the checkpoint, so they are re-applied here, one at a time
    through the projector; one that fails again stays dead-lettered with its new error.
    """
    from projections.registry import by_name
    from projections.runner import ChangeRow, apply_isolating_poison, lock_projection

    rows = (
        session.execute(
            text(
                "SELECT d.id AS dead_id, d.projection, c.id, c.tx::text AS tx, c.org_id, c.entity,"
                " c.entity_id, c.op, c.payload, c.created_at"
                " FROM projection_dead_letters d JOIN changes c ON c.id = d.change_id"
                " WHERE d.resolved_at IS NULL AND (CAST(:p AS text) IS NULL OR d.projection = :p)"
                " ORDER BY c.tx, c.id"
            ),
            {"p": projection},
        )
        .mappings()
        .all()
    )
    for name in sorted({row["projection"] for row in rows}):
        lock_projection(session, name)  # the runner must not interleave
    resolved = 0
    for row in rows:
        change = ChangeRow(
            id=row["id"],
            tx=int(row["tx"]),
            org_id=row["org_id"],
            entity=row["entity"],
            entity_id=row["entity_id"],
            op=row["op"],
            payload=row["payload"],
            created_at=row["created_at"],
        )
        failures = apply_isolating_poison(session, by_name(row["projection"]), [change])
        if failures:
            session.execute(
                text(
                    "UPDATE projection_dead_letters SET attempts = attempts + 1, error = :e"
                    " WHERE id = :id"
                ),
                {"id": row["dead_id"], "e": f"{type(failures[0][1]).__name__}: {failures[0][1]}"},
            )
            continue
        session.execute(
            text("UPDATE projection_dead_letters SET resolved_at = now() WHERE id = :id"),
            {"id": row["dead_id"]},
        )
        resolved += 1
    return resolved
