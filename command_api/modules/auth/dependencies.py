"""Who is calling: a JWT access token or a personal API token, both as `Bearer`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import ColumnElement, bindparam, select

from command_api.modules.auth.models import ApiToken
from command_api.modules.auth.service import (
    ApiTokenService,
    AuthRateLimiter,
    AuthService,
    SessionService,
)
from command_api.modules.users.dependencies import UserServiceDep
from command_api.modules.users.models import User
from command_api.transaction import SessionDep, claim_idempotency_key, claims_idempotency_key
from shared.db import WriteSession
from shared.errors import UnauthorizedError
from shared.security import decode_access_token, hash_opaque_token, is_api_token

bearer_scheme = HTTPBearer(auto_error=False, description="JWT access token or API token")


# The user of a live personal API token, as a scalar subquery (NULL when none).
_API_TOKEN_USER = (
    select(ApiToken.user_id)
    .where(
        ApiToken.token_hash == bindparam("token_hash"),
        ApiToken.revoked_at.is_(None),
        (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > bindparam("now")),
    )
    .scalar_subquery()
)


# Which user a token names, as a condition on `users` with bind parameters, by whether it
# is a personal API token. Built once: a statement built on one (once, at import) runs as
# is, its cache key is not computed again for every request.
CALLER_CONDITIONS: dict[bool, ColumnElement[bool]] = {
    False: User.id == bindparam("caller_id"),
    True: User.id == _API_TOKEN_USER,
}


@dataclass(frozen=True)
class Caller:
    """Who a bearer token names: `CALLER_CONDITIONS[by_api_token]` with these values."""

    by_api_token: bool
    params: dict[str, Any]


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def get_current_user(session: SessionDep, credentials: Credentials) -> User:
    return authenticate(session, credentials)


def authenticate(session: WriteSession, credentials: HTTPAuthorizationCredentials | None) -> User:
    """The active user the bearer token names (401 otherwise)."""
    found = caller(credentials)
    user = session.execute(_USER_OF[found.by_api_token], found.params).scalar_one_or_none()
    return active_caller(user)


def caller(credentials: HTTPAuthorizationCredentials | None) -> Caller:
    """Which user the bearer token names, to load the caller in the same query as what a
    command needs with it (401 when there is no usable token)."""
    if credentials is None or not credentials.credentials:
        raise UnauthorizedError("Authentication required")
    token = credentials.credentials
    if is_api_token(token):
        return Caller(True, {"token_hash": hash_opaque_token(token), "now": datetime.now(UTC)})
    return Caller(False, {"caller_id": decode_access_token(token).user_id})


_USER_OF = {kind: select(User).where(condition) for kind, condition in CALLER_CONDITIONS.items()}


def active_caller(user: User | None) -> User:
    """The user a `caller` condition found, when active (401 otherwise)."""
    if user is None or not user.is_active:
        raise UnauthorizedError("Invalid or expired credentials")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


@claims_idempotency_key
async def get_command_user(request: Request, session: SessionDep, user: CurrentUser) -> User:
    """The caller of a command; claims the request's Idempotency-Key when it has one."""
    await claim_idempotency_key(request, session, user.id)
    return user


CommandUser = Annotated[User, Depends(get_command_user)]


# --- Services ---------------------------------------------------------------------------


async def get_auth_service(session: SessionDep, users: UserServiceDep) -> AuthService:
    return AuthService(users, SessionService(session), AuthRateLimiter())


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


async def get_api_token_service(session: SessionDep) -> ApiTokenService:
    return ApiTokenService(session)


ApiTokenServiceDep = Annotated[ApiTokenService, Depends(get_api_token_service)]


async def get_client_ip(request: Request) -> str | None:
    """The caller's address (uvicorn resolves X-Forwarded-For from trusted proxies)."""
    return request.client.host if request.client else None


ClientIP = Annotated[str | None, Depends(get_client_ip)]
