"""Where each projection stands, read from the checkpoints and the change log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from shared.changes import projection_lag
from shared.db import ReadSession


def projection_statuses(session: ReadSession) -> list[dict[str, Any]]:
    return [
        {**row, "checkpoint": f"{row['tx']}:{row['change_id']}"} for row in projection_lag(session)
    ]


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
