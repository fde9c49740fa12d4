"""SQL of the webhooks list, on proj_webhooks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Connection, and_, func, select
from sqlalchemy.engine import RowMapping

from projections.models import proj_webhook_deliveries, proj_webhooks
from shared.db import ReadSession
from shared.pagination import PageParams


def webhooks_page(
    session: ReadSession, org_id: uuid.UUID, page: PageParams
) -> tuple[Sequence[RowMapping], int]:
    """A page of the organization's webhooks, oldest first, and how many there are."""
    mine = proj_webhooks.c.org_id == org_id
    total = int(session.execute(select(func.count()).where(mine)).scalar_one())
    deliveries = proj_webhook_deliveries
    last_delivery = (
        select(func.max(deliveries.c.delivered_at))
        .where(deliveries.c.webhook_id == proj_webhooks.c.id)
        .scalar_subquery()
    )
    rows = session.execute(
        select(proj_webhooks, last_delivery.label("last_delivery_at"))
        .where(mine)
        .order_by(proj_webhooks.c.created_at, proj_webhooks.c.id)
        .limit(page.page_size)
        .offset(page.offset)
    ).mappings()
    return rows.all(), total


def webhook_exists(session: ReadSession, org_id: uuid.UUID, webhook_id: uuid.UUID) -> bool:
    return (
        session.execute(
            select(proj_webhooks.c.id).where(
                proj_webhooks.c.org_id == org_id, proj_webhooks.c.id == webhook_id
            )
        ).first()
        is not None
    )


def deliveries_page(
    session: ReadSession, webhook_id: uuid.UUID, status: str | None, page: PageParams
) -> tuple[Sequence[RowMapping], int]:
    """A page of a webhook's deliveries, newest first, and how many there are."""
    deliveries = proj_webhook_deliveries
    mine = [deliveries.c.webhook_id == webhook_id]
    if status is not None:
        mine.append(deliveries.c.status == status)
    total = int(session.execute(select(func.count()).where(*mine)).scalar_one())
    rows = session.execute(
        select(deliveries)
        .where(*mine)
        .order_by(deliveries.c.seq.desc())
        .limit(page.page_size)
        .offset(page.offset)
    ).mappings()
    return rows.all(), total


def delivery_counts(session: ReadSession | Connection) -> dict[str, int]:
    """Across organizations: deliveries pending (of which `retrying` failed at least once),
    given up (`failed`), and webhooks disabled. A deleted webhook's deliveries no longer
    count."""
    deliveries = proj_webhook_deliveries
    undelivered = and_(
        deliveries.c.status != "delivered", deliveries.c.webhook_id.in_(select(proj_webhooks.c.id))
    )
    row = session.execute(
        select(
            func.count().filter(deliveries.c.status == "pending").label("pending"),
            func.count()
            .filter(deliveries.c.status == "pending", deliveries.c.attempts > 0)
            .label("retrying"),
            func.count().filter(deliveries.c.status == "failed").label("failed"),
        ).where(undelivered)
    ).one()
    disabled = session.execute(
        select(func.count()).where(proj_webhooks.c.enabled.is_(False))
    ).scalar_one()
    return {**row._asdict(), "disabled_webhooks": int(disabled)}
