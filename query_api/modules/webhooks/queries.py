"""SQL of the webhooks list, on proj_webhooks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.engine import RowMapping

from projections.models import proj_webhooks
from shared.db import ReadSession
from shared.pagination import PageParams


def webhooks_page(
    session: ReadSession, org_id: uuid.UUID, page: PageParams
) -> tuple[Sequence[RowMapping], int]:
    """A page of the organization's webhooks, oldest first, and how many there are."""
    mine = proj_webhooks.c.org_id == org_id
    total = int(session.execute(select(func.count()).where(mine)).scalar_one())
    rows = session.execute(
        select(proj_webhooks)
        .where(mine)
        .order_by(proj_webhooks.c.created_at, proj_webhooks.c.id)
        .limit(page.page_size)
        .offset(page.offset)
    ).mappings()
    return rows.all(), total
