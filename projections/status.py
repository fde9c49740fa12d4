"""Where every projection stands: checkpoint, watermark, lag, dead letters, last error."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from projections.registry import PROJECTIONS

_STATUS = text(
    """
    WITH names AS (SELECT unnest(CAST(:names AS text[])) AS name),
         snapshot AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
    SELECT n.name,
           COALESCE(p.tx, '0'::xid8)::text AS tx,
           COALESCE(p.change_id, 0) AS change_id,
           COALESCE(p.watermark, '0'::xid8)::text AS applied_watermark,
           s.xmin::text AS watermark,
           p.updated_at,
           p.last_error,
           p.last_error_at,
           pending.count AS lag_changes,
           COALESCE(EXTRACT(EPOCH FROM now() - pending.oldest), 0)::float AS lag_seconds,
           (SELECT count(*) FROM projection_dead_letters d
             WHERE d.projection = n.name AND d.resolved_at IS NULL) AS dead_letters
    FROM names n CROSS JOIN snapshot s
    LEFT JOIN projection_checkpoints p ON p.name = n.name
    CROSS JOIN LATERAL (
        SELECT count(*) AS count, min(c.created_at) AS oldest FROM changes c
        -- Every committed change not yet applied, including those a transaction still
        -- running elsewhere holds behind the watermark: they are lag all the same.
        WHERE (c.tx, c.id) > (COALESCE(p.tx, '0'::xid8), COALESCE(p.change_id, 0))
    ) pending
    ORDER BY n.name
    """
)


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
    rows = session.execute(_STATUS, {"names": names}).mappings()
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
    from projections.runner import ChangeRow, apply_isolating_poison

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
        # Hold the projection's writer lock: the runner must not interleave.
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('evotrack.projection.' || :n))"),
            {"n": name},
        )
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
