"""What every query endpoint needs: a read-only session, the caller (JWT or API token,
resolved from projections), the consistency wait, their membership and what they may see.

The order matters: the credential is checked first (a JWT needs no database, an API token
one short query), so a forged or missing one is a 401 at once, whatever
`X-Consistency-Token` it brings; only then does the request wait for the projections.

Read only projection tables: the query API never touches the write side's tables.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import ColumnElement, exists, select, true
from sqlalchemy.engine import RowMapping

from projections.models import (
    proj_api_tokens,
    proj_members,
    proj_organizations,
    proj_team_closure,
    proj_team_members,
    proj_users,
)
from shared.checkpoints import ProjectionCheckpoint
from shared.config import get_settings
from shared.consistency import TOKEN_PREFIX, decode_consistency_token
from shared.db import ReadSession, read_engine, read_session
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

# --- Authentication ----------------------------------------------------------------------

bearer_scheme = HTTPBearer(auto_error=False, description="JWT access token or API token")


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


def authenticate(session: ReadSession, token: str | None) -> uuid.UUID:
    """Who the bearer token names, checked before anything waits: a 401 costs no wait.

    An API token unknown to the read side is a 401 even when it was created a moment ago:
    waiting for it would let any made-up token wait too."""
    if not token:
        raise UnauthorizedError("Authentication required")
    return _user_id_for(session, token)


def authenticated_user_id(
    session: ReadSessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> uuid.UUID:
    return authenticate(session, None if credentials is None else credentials.credentials)


AuthenticatedUserId = Annotated[uuid.UUID, Depends(authenticated_user_id)]


# --- The consistency wait ----------------------------------------------------------------


_WATERMARKS = select(ProjectionCheckpoint.name, ProjectionCheckpoint.watermark)


def _read_watermarks() -> dict[str, int]:
    # Its own short connection, back to the pool at once: no request holds one to wait.
    with read_engine().connect() as connection:
        rows = connection.execute(_WATERMARKS).all()
    return {name: watermark for name, watermark in rows}


def _all_passed(watermarks: dict[str, int], names: tuple[str, ...], xid: int) -> bool:
    """A watermark above `xid` covers it and every write that committed before it began."""
    return all(watermarks.get(name, 0) > xid for name in names)


@dataclass
class _WatermarkPoll:
    """The watermarks of one event loop's waiters: at most one query per poll interval,
    shared by every request that waits meanwhile."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    watermarks: dict[str, int] = field(default_factory=dict)
    fetched_at: float = float("-inf")

    async def fresh(self) -> dict[str, int]:
        async with self.lock:
            if time.monotonic() - self.fetched_at >= _POLL_SECONDS:
                self.watermarks = await run_in_threadpool(_read_watermarks)
                self.fetched_at = time.monotonic()
            return self.watermarks


class ConsistencyWaits:
    """Every consistency wait of this process.

    A waiting request holds no database connection and no worker thread: it sleeps on the
    event loop and reads watermarks that one short query fetched for every waiter of the
    last poll interval. So the waits' total cost is bounded whatever their number (one
    query per 20 ms), and waiting requests cannot starve the others of connections or
    threads; that is why their number needs no cap of its own. `waiting` counts them (for
    tests and operators)."""

    def __init__(self) -> None:
        self.waiting = 0
        self._count_lock = threading.Lock()
        self._polls: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _WatermarkPoll] = (
            weakref.WeakKeyDictionary()
        )

    def _poll(self) -> _WatermarkPoll:
        # One poll per event loop: an asyncio lock belongs to the loop it first waits in.
        return self._polls.setdefault(asyncio.get_running_loop(), _WatermarkPoll())

    def _count(self, delta: int) -> None:
        with self._count_lock:
            self.waiting += delta

    async def until_passed(self, names: tuple[str, ...], xid: int, deadline: float) -> None:
        """Return once every projection in `names` has a watermark above `xid`; past
        `deadline` (monotonic), 503 PROJECTION_LAG with Retry-After."""
        poll = self._poll()
        self._count(+1)
        try:
            while not _all_passed(await poll.fresh(), names, xid):
                if time.monotonic() >= deadline:
                    raise ProjectionLagError(retry_after_seconds=1)
                await asyncio.sleep(_POLL_SECONDS)
        finally:
            self._count(-1)


consistency_waits = ConsistencyWaits()


@dataclass
class _RequestWait:
    """One request's wait: one deadline however many dependencies wait, and the
    projections it has already seen pass the token."""

    xid: int
    deadline: float
    passed: set[str] = field(default_factory=set)


# What `encode_consistency_token` writes: the prefix, then a transaction id in hex.
CONSISTENCY_TOKEN_PATTERN = rf"^{re.escape(TOKEN_PREFIX)}[0-9a-fA-F]+$"


def _parse_token(token: str) -> int:
    issued = re.fullmatch(CONSISTENCY_TOKEN_PATTERN, token) is not None
    xid = decode_consistency_token(token) if issued else None
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
    return xid


def _request_wait(request: Request, token: str) -> _RequestWait:
    wait: _RequestWait | None = getattr(request.state, "consistency_wait", None)
    if wait is None:
        deadline = time.monotonic() + get_settings().consistency_wait_seconds
        wait = _RequestWait(_parse_token(token), deadline)
        request.state.consistency_wait = wait
    return wait


async def wait_for_projections(
    request: Request, session: ReadSession, token: str | None, names: tuple[str, ...]
) -> None:
    """Answer only once the projections `names` include the write behind `token`.

    Call it after authentication. Bounded by CONSISTENCY_WAIT_SECONDS per request (several
    dependencies share the bound); past it, 503 PROJECTION_LAG with Retry-After: never
    silently stale data. The request's session ends its transaction first, so its
    connection goes back to the pool while it waits and the reads after it see the newest
    data."""
    if token is None:
        return
    wait = _request_wait(request, token)
    missing = tuple(name for name in names if name not in wait.passed)
    if not missing:
        return
    if session.in_transaction():
        await run_in_threadpool(session.rollback)
    await consistency_waits.until_passed(missing, wait.xid, wait.deadline)
    wait.passed.update(missing)


ConsistencyToken = Annotated[
    str | None,
    Header(
        alias="X-Consistency-Token",
        # Opaque in the document: `_parse_token` checks it (once per request, however many
        # dependencies wait). A pattern would have fuzzers send well-formed tokens of writes
        # that never happened, each waiting out the bound to a 503.
        description="The X-Consistency-Token header of a command's answer, as it came: this "
        "read answers once that write is visible, or after CONSISTENCY_WAIT_SECONDS with 503 "
        "PROJECTION_LAG; a token not in the form this service issues is a 422",
    ),
]


def consistent_with(names: tuple[str, ...]) -> Callable[..., Awaitable[None]]:
    """A dependency that applies the consistency wait for the projections an endpoint
    reads, after the caller is authenticated."""

    async def dependency(
        request: Request,
        session: ReadSessionDep,
        _: AuthenticatedUserId,
        consistency_token: ConsistencyToken = None,
    ) -> None:
        await wait_for_projections(request, session, consistency_token, names)

    return dependency


# --- The caller --------------------------------------------------------------------------


@dataclass(frozen=True)
class Reader:
    id: uuid.UUID
    email: str
    full_name: str
    timezone: str


def reader_for(session: ReadSession, user_id: uuid.UUID) -> Reader:
    """The authenticated user as the read side knows them (after the consistency wait)."""
    row = session.execute(select(proj_users).where(proj_users.c.id == user_id)).one_or_none()
    if row is None:
        # A valid token for an account the read side has not seen yet: it will, shortly.
        raise ProjectionLagError("Your account is not visible to the read side yet")
    return Reader(row.id, row.email, row.full_name, row.timezone)


def get_reader(
    session: ReadSessionDep,
    user_id: AuthenticatedUserId,
    _: Annotated[None, Depends(consistent_with(CATALOG))],
) -> Reader:
    return reader_for(session, user_id)


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

    def narrow_to(self, session: ReadSession, user_id: uuid.UUID | None) -> None:
        """A filter on someone outside the caller's scope is a 404, not an empty answer
        (API.md): outside the teams they see, outside the organization, or no one at all.
        Admins see the whole organization, not every user id there is."""
        if user_id is None or user_id == self.reader.id:
            return
        if not (self.can_see(user_id) and is_member(session, self.org_id, user_id)):
            raise NotFoundError.for_entity("User", user_id)


def is_member(session: ReadSession, org_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    member = exists().where(proj_members.c.org_id == org_id, proj_members.c.user_id == user_id)
    return bool(session.execute(select(member)).scalar_one())


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
