"""What every query endpoint needs: a read-only session, the consistency wait, the caller
(JWT or API token, resolved from projections), their membership and what they may see.

Read only projection tables: the query API never touches the write side's tables.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import ColumnElement, select, text, true
from sqlalchemy.engine import RowMapping

from projections.models import (
    proj_api_tokens,
    proj_members,
    proj_organizations,
    proj_team_closure,
    proj_team_members,
    proj_users,
)
from shared.changes import decode_consistency_token
from shared.config import get_settings
from shared.db import ReadSession, read_session
from shared.errors import (
    ForbiddenError,
    NotFoundError,
    ProjectionLagError,
    UnauthorizedError,
    ValidationFailedError,
)
from shared.security import decode_access_token, hash_opaque_token, is_api_token

ReadSessionDep = Annotated[ReadSession, Depends(read_session)]

ROLE_RANKS = {"member": 0, "manager": 1, "admin": 2, "owner": 3}
CATALOG = ("catalog",)
ENTRIES = ("catalog", "entries")

_POLL_SECONDS = 0.02


def _watermarks_pass(session: ReadSession, names: tuple[str, ...], xid: int) -> bool:
    passed = session.execute(
        text(
            "SELECT count(*) FILTER (WHERE watermark > CAST(:x AS xid8)) = count(*)"
            " AND count(*) = :n FROM projection_checkpoints WHERE name = ANY(:names)"
        ),
        {"x": str(xid), "names": list(names), "n": len(names)},
    ).scalar_one()
    return bool(passed)


def wait_for_projections(session: ReadSession, token: str | None, names: tuple[str, ...]) -> None:
    """Answer only once the projections `names` include the write behind `token`.

    Bounded by CONSISTENCY_WAIT_SECONDS; past it, 503 PROJECTION_LAG with Retry-After:
    never silently stale data."""
    if token is None:
        return
    xid = decode_consistency_token(token)
    if xid is None:
        raise ValidationFailedError(
            "X-Consistency-Token is not a token this service issued",
            details=[
                {
                    "field": "X-Consistency-Token",
                    "location": "header",
                    "message": "malformed consistency token",
                    "type": "value_error",
                }
            ],
        )
    deadline = time.monotonic() + get_settings().consistency_wait_seconds
    while not _watermarks_pass(session, names, xid):
        if time.monotonic() >= deadline:
            raise ProjectionLagError(retry_after_seconds=1)
        time.sleep(_POLL_SECONDS)
    session.rollback()  # end the polling transaction: the reads below see the newest data


def consistent_with(names: tuple[str, ...]) -> Callable[..., None]:
    """A dependency that applies the consistency wait for the projections an endpoint reads."""

    def dependency(
        session: ReadSessionDep,
        x_consistency_token: Annotated[str | None, Header()] = None,
    ) -> None:
        wait_for_projections(session, x_consistency_token, names)

    return dependency


bearer_scheme = HTTPBearer(auto_error=False, description="JWT access token or API token")


@dataclass(frozen=True)
class Reader:
    id: uuid.UUID
    email: str
    full_name: str
    timezone: str


def _user_id_for(session: ReadSession, token: str) -> uuid.UUID:
    if not is_api_token(token):
        return decode_access_token(token).user_id
    row = session.execute(
        select(proj_api_tokens.c.user_id, proj_api_tokens.c.expires_at).where(
            proj_api_tokens.c.token_hash == hash_opaque_token(token)
        )
    ).one_or_none()
    if row is None or (row.expires_at is not None and row.expires_at <= datetime.now(UTC)):
        raise UnauthorizedError("Invalid or expired credentials")
    return uuid.UUID(str(row.user_id))


def get_reader(
    request: Request,
    session: ReadSessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    _: Annotated[None, Depends(consistent_with(CATALOG))],
) -> Reader:
    if credentials is None or not credentials.credentials:
        raise UnauthorizedError("Authentication required")
    user_id = _user_id_for(session, credentials.credentials)
    row = session.execute(select(proj_users).where(proj_users.c.id == user_id)).one_or_none()
    if row is None:
        # A valid token for an account the read side has not seen yet: it will, shortly.
        raise ProjectionLagError("Your account is not visible to the read side yet")
    return Reader(row.id, row.email, row.full_name, row.timezone)


CurrentReader = Annotated[Reader, Depends(get_reader)]


@dataclass(frozen=True)
class OrgReader:
    """The caller inside one organization: its settings, their role, what they may see."""

    reader: Reader
    organization: RowMapping
    role: str
    visible_user_ids: frozenset[uuid.UUID] | None  # None: the whole organization

    @property
    def org_id(self) -> uuid.UUID:
        return uuid.UUID(str(self.organization["id"]))

    def at_least(self, role: str) -> bool:
        return ROLE_RANKS[self.role] >= ROLE_RANKS[role]

    def require(self, role: str) -> None:
        if not self.at_least(role):
            raise ForbiddenError(f"This needs the {role} role or higher")

    def can_see(self, user_id: uuid.UUID) -> bool:
        return self.visible_user_ids is None or user_id in self.visible_user_ids

    def users_filter(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        """A WHERE clause limiting `column` (a user id) to what the caller may see."""
        if self.visible_user_ids is None:
            return true()
        return column.in_(list(self.visible_user_ids))

    def narrow_to(self, user_id: uuid.UUID | None) -> None:
        """A filter on someone outside the caller's scope is a 404, not an empty answer."""
        if user_id is not None and not self.can_see(user_id):
            raise NotFoundError.for_entity("User", user_id)


def visible_users(
    session: ReadSession, org_id: uuid.UUID, user_id: uuid.UUID, role: str
) -> frozenset[uuid.UUID] | None:
    """Members: themselves. Managers: also every member of the teams they lead and of all
    teams below them. Admins and owners: everyone (None)."""
    if ROLE_RANKS[role] >= ROLE_RANKS["admin"]:
        return None
    if role == "member":
        return frozenset({user_id})
    lead = proj_team_members.alias("lead")
    member = proj_team_members.alias("member")
    rows = session.execute(
        select(member.c.user_id)
        .select_from(lead)
        .join(proj_team_closure, proj_team_closure.c.ancestor_id == lead.c.team_id)
        .join(member, member.c.team_id == proj_team_closure.c.descendant_id)
        .where(lead.c.org_id == org_id, lead.c.user_id == user_id, lead.c.is_lead)
    ).scalars()
    return frozenset({user_id, *(uuid.UUID(str(r)) for r in rows)})


def get_org_reader(org_id: uuid.UUID, session: ReadSessionDep, reader: CurrentReader) -> OrgReader:
    row = session.execute(
        select(proj_organizations, proj_members.c.role)
        .join(proj_members, proj_members.c.org_id == proj_organizations.c.id)
        .where(proj_organizations.c.id == org_id, proj_members.c.user_id == reader.id)
    ).one_or_none()
    if row is None:
        raise NotFoundError.for_entity("Organization", org_id)
    mapping = row._mapping
    return OrgReader(
        reader=reader,
        organization=mapping,
        role=str(mapping["role"]),
        visible_user_ids=visible_users(session, org_id, reader.id, str(mapping["role"])),
    )


OrgReaderDep = Annotated[OrgReader, Depends(get_org_reader)]
