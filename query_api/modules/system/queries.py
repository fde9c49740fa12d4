"""Where each projection stands, read from the checkpoints and the change log, and where
the replica the query API reads (if it reads one) stands in its replay."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import bindparam, exists, select

from projections.models import proj_members
from shared.checkpoints import projection_status, replica_lag
from shared.db import ReadSession


def projection_statuses(session: ReadSession) -> list[dict[str, Any]]:
    """Every projection that has a checkpoint, in the shape of `ProjectionStatusRead`: the
    position as `tx:change_id`, the watermarks as strings."""
    return [
        {
            **status.as_dict(),
            "checkpoint": f"{status.checkpoint_tx}:{status.checkpoint_change_id}",
            "applied_watermark": str(status.applied_watermark),
            "watermark": str(status.watermark),
        }
        for status in projection_status(session)
    ]


def replica_status(session: ReadSession) -> dict[str, Any] | None:
    return replica_lag(session)


_ADMIN_ANYWHERE = select(
    exists().where(
        proj_members.c.user_id == bindparam("user_id"),
        proj_members.c.role.in_(("admin", "owner")),
    )
)


def is_admin_anywhere(session: ReadSession, user_id: uuid.UUID) -> bool:
    return bool(session.execute(_ADMIN_ANYWHERE, {"user_id": user_id}).scalar_one())
