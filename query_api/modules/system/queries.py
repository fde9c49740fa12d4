"""Where each projection stands, read from the checkpoints and the change log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from shared.db import ReadSession

_STATUS = text(
    """
    SELECT p.name,
           p.tx::text || ':' || p.change_id AS checkpoint,
           p.watermark::text AS applied_watermark,
           pg_snapshot_xmin(pg_current_snapshot())::text AS watermark,
           pending.count AS lag_changes,
           COALESCE(EXTRACT(EPOCH FROM now() - pending.oldest), 0)::float AS lag_seconds,
           (SELECT count(*) FROM projection_dead_letters d
             WHERE d.projection = p.name AND d.resolved_at IS NULL) AS dead_letters,
           p.last_error, p.last_error_at, p.updated_at
    FROM projection_checkpoints p
    CROSS JOIN LATERAL (
        SELECT count(*) AS count, min(c.created_at) AS oldest FROM changes c
        WHERE (c.tx, c.id) > (p.tx, p.change_id)
    ) pending
    ORDER BY p.name
    """
)


def projection_statuses(session: ReadSession) -> list[dict[str, Any]]:
    return [dict(row) for row in session.execute(_STATUS).mappings()]


def is_admin_anywhere(session: ReadSession, user_id: Any) -> bool:
    return bool(
        session.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM proj_members WHERE user_id = :u"
                " AND role IN ('admin', 'owner'))"
            ),
            {"u": user_id},
        ).scalar_one()
    )
