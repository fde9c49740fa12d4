"""The caller's inbox, from `proj_notifications`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import RowMapping

from projections.models import proj_notifications
from shared.db import ReadSession
from shared.pagination import PageParams

n = proj_notifications.c


@dataclass(frozen=True)
class InboxPage:
    rows: Sequence[RowMapping]
    total: int


def inbox_page(
    session: ReadSession, user_id: uuid.UUID, *, unread: bool | None, page: PageParams
) -> InboxPage:
    """Newest first (ties by id). `unread` true: unread only; false: read only."""
    where = [n.user_id == user_id]
    if unread is not None:
        where.append(n.read_at.is_(None) if unread else n.read_at.is_not(None))
    rows = (
        session.execute(
            select(proj_notifications)
            .where(*where)
            .order_by(n.created_at.desc(), n.id.desc())
            .limit(page.page_size)
            .offset(page.offset)
        )
        .mappings()
        .all()
    )
    total = session.execute(select(func.count()).select_from(proj_notifications).where(*where))
    return InboxPage(rows=rows, total=int(total.scalar_one()))
