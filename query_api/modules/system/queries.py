"""Where each projection stands, read from the checkpoints and the change log, and where
the replica the query API reads (if it reads one) stands in its replay."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from shared.changes import projection_lag, replica_lag
from shared.db import ReadSession


def projection_statuses(session: ReadSession) -> list[dict[str, Any]]:
    return [
        {**row, "checkpoint": f"{row['tx']}:{row['change_id']}"} for row in projection_lag(session)
    ]


def replica_status(session: ReadSession) -> dict[str, Any] | None:
    return replica_lag(session)


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
