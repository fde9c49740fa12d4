"""What a public read of a shared report needs, in this order: the rate limit of its client
address (before anything touches the database), the consistency wait, the link, and its
creator as the organization's member they are now.

Unknown, revoked and expired links, and links whose creator left the organization or is no
longer a manager, are one and the same 404: nothing tells them apart.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from sqlalchemy.engine import RowMapping

from query_api.dependencies import (
    ENTRIES,
    ROLE_RANKS,
    ConsistencyToken,
    OrgReader,
    ReadSessionDep,
    reader_for,
    visible_users,
    wait_for_projections,
)
from query_api.modules.shared_reports.queries import (
    MAX_UNAPPLIED,
    creator_membership,
    link_by_hash,
)
from shared.config import get_settings
from shared.db import ReadSession
from shared.errors import NotFoundError, ProjectionLagError, RateLimitedError
from shared.redis_client import hit_rate_limit
from shared.security import hash_opaque_token

# PUBLIC_REPORT_RATE_LIMIT_PER_IP counts the reads of one address in windows of a minute.
RATE_LIMIT_WINDOW_SECONDS = 60
# The least role that may share a report, and so that a link's creator must still hold.
SHARING_ROLE = "manager"


def now() -> datetime:
    """The clock links expire by (tests move it)."""
    return datetime.now(UTC)


def link_not_found() -> NotFoundError:
    return NotFoundError("Shared report not found")


def limit_public_reads(request: Request) -> None:
    """At most PUBLIC_REPORT_RATE_LIMIT_PER_IP reads a minute from one client address (a
    plain `def`: the count is a blocking Redis call, run in the thread pool)."""
    address = request.client.host if request.client else "unknown"
    limit = get_settings().public_report_rate_limit_per_ip
    wait_seconds = hit_rate_limit(f"public_report:ip:{address}", limit, RATE_LIMIT_WINDOW_SECONDS)
    if wait_seconds is not None:
        raise RateLimitedError(wait_seconds, "Too many reads of shared reports; try again later")


async def wait_for_shared_reports(
    request: Request,
    session: ReadSessionDep,
    _: Annotated[None, Depends(limit_public_reads)],
    consistency_token: ConsistencyToken = None,
) -> None:
    """The consistency wait, once the read is counted: a link read right after it was made
    (or revoked) with that command's token sees it."""
    await wait_for_projections(request, session, consistency_token, ENTRIES)


@dataclass(frozen=True)
class OpenedLink:
    """A live link and its creator, as the member they are now."""

    id: uuid.UUID
    name: str
    kind: str
    params: dict[str, Any]
    creator: OrgReader


def _creator(session: ReadSession, link: RowMapping) -> OrgReader | None:
    org_id, user_id = uuid.UUID(str(link["org_id"])), uuid.UUID(str(link["created_by"]))
    organization = creator_membership(session, org_id, user_id)
    if organization is None or ROLE_RANKS[organization["role"]] < ROLE_RANKS[SHARING_ROLE]:
        return None
    role = str(organization["role"])
    return OrgReader(
        reader=reader_for(session, user_id),
        organization=organization,
        role=role,
        visible_user_ids=visible_users(session, org_id, user_id, role),
    )


def open_link(
    session: ReadSessionDep,
    _: Annotated[None, Depends(wait_for_shared_reports)],
    token: Annotated[str, Path(description="The token of the link, as it was shown once")],
) -> OpenedLink:
    """The link `token` opens, or the one 404."""
    link = link_by_hash(session, hash_opaque_token(token))
    if link is None or link["change_pending"]:
        raise link_not_found()
    if link["unapplied_changes"] > MAX_UNAPPLIED:
        raise ProjectionLagError("Shared reports wait for the projections to catch up")
    expires_at = link["expires_at"]
    if expires_at is not None and expires_at <= now():
        raise link_not_found()
    creator = _creator(session, link)
    if creator is None:
        raise link_not_found()
    return OpenedLink(
        id=uuid.UUID(str(link["id"])),
        name=link["name"],
        kind=link["kind"],
        params=dict(link["params"]),
        creator=creator,
    )


OpenedLinkDep = Annotated[OpenedLink, Depends(open_link)]
