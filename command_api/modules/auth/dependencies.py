"""Who is calling: a JWT access token or a personal API token, both as `Bearer`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import ColumnElement, select

from command_api.modules.auth.models import ApiToken
from command_api.modules.auth.service import (
    ApiTokenService,
    AuthRateLimiter,
    AuthService,
    SessionService,
)
from command_api.modules.users.dependencies import UserServiceDep
from command_api.modules.users.models import User
from command_api.transaction import SessionDep, claim_idempotency_key
from shared.db import WriteSession
from shared.errors import UnauthorizedError
from shared.security import decode_access_token, hash_opaque_token, is_api_token

bearer_scheme = HTTPBearer(auto_error=False, description="JWT access token or API token")


def _api_token_user(token: str) -> ColumnElement[uuid.UUID]:
    """The user of a live personal API token, as a scalar subquery (NULL when none)."""
    now = datetime.now(UTC)
    return (
        select(ApiToken.user_id)
        .where(
            ApiToken.token_hash == hash_opaque_token(token),
            ApiToken.revoked_at.is_(None),
            (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now),
        )
        .scalar_subquery()
    )


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def get_current_user(session: SessionDep, credentials: Credentials) -> User:
    return authenticate(session, credentials)


def authenticate(session: WriteSession, credentials: HTTPAuthorizationCredentials | None) -> User:
    """The active user the bearer token names (401 otherwise)."""
    user = session.execute(select(User).where(caller(credentials))).scalar_one_or_none()
    return active_caller(user)


def caller(credentials: HTTPAuthorizationCredentials | None) -> ColumnElement[bool]:
    """Which user the bearer token names, as a condition on `users`, to load the caller in
    the same query as what a command needs with it (401 when there is no usable token)."""
    if credentials is None or not credentials.credentials:
        raise UnauthorizedError("Authentication required")
    token = credentials.credentials
    if is_api_token(token):
        return User.id == _api_token_user(token)
    return User.id == decode_access_token(token).user_id


def active_caller(user: User | None) -> User:
    """The user a `caller` condition found, when active (401 otherwise)."""
    if user is None or not user.is_active:
        raise UnauthorizedError("Invalid or expired credentials")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


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
