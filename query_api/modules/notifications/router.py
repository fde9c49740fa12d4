"""The caller's notification inbox."""

from __future__ import annotations

from fastapi import APIRouter

from query_api.dependencies import CurrentReader, ReadSessionDep
from query_api.modules.notifications.dependencies import InboxConsistent, UnreadFilter
from query_api.modules.notifications.queries import inbox_page
from query_api.modules.notifications.schemas import NotificationRead
from shared.pagination import PageDep, PaginationMeta
from shared.responses import PageEnvelope

router = APIRouter(tags=["notifications"])


@router.get("/notifications", response_model=PageEnvelope[NotificationRead])
def list_notifications(
    reader: CurrentReader,
    session: ReadSessionDep,
    params: PageDep,
    _: InboxConsistent,
    unread: UnreadFilter = None,
) -> PageEnvelope[NotificationRead]:
    """Your notifications from every organization, newest first; `unread=true` for the
    unread ones only. Each has its kind, title, body, data and read time."""
    page = inbox_page(session, reader.id, unread=unread, page=params)
    return PageEnvelope(
        data=[NotificationRead.model_validate(row) for row in page.rows],
        pagination=PaginationMeta.for_page(
            total=page.total, page=params.page, page_size=params.page_size
        ),
    )
