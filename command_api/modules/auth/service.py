"""Signing in and staying signed in: credentials, rotating refresh tokens, API tokens.

Refresh tokens are opaque random strings stored as SHA-256. Each login starts a family;
each refresh spends the presented token and issues the next one in the same family. A
spent or revoked token presented again means it leaked: the whole family is revoked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from command_api.modules.auth.models import ApiToken, RefreshToken
from command_api.modules.auth.repository import ApiTokenRepository, RefreshTokenRepository
from command_api.modules.auth.schemas import ApiTokenCreate, RegisterRequest
from command_api.modules.users.models import User
from command_api.modules.users.service import UserService, normalize_email
from shared.changes import ChangeOp, ChangeRecord, record_change
from shared.config import get_settings
from shared.db import WriteSession
from shared.errors import NotFoundError, RateLimitedError, UnauthorizedError
from shared.redis_client import hit_rate_limit
from shared.security import (
    API_TOKEN_PREFIX,
    create_access_token,
    hash_opaque_token,
    new_opaque_token,
)

INVALID_CREDENTIALS = "Incorrect email or password"
INVALID_REFRESH_TOKEN = "Invalid or expired refresh token"


class RefreshTokenReusedError(UnauthorizedError):
    """A spent or revoked refresh token came back. The family's revocation is committed
    even though the request fails."""

    persist_changes = True
    default_message = INVALID_REFRESH_TOKEN


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int


def _now() -> datetime:
    return datetime.now(UTC)


class AuthRateLimiter:
    """Attempts at login, token and refresh, counted per client IP and per account; and
    at registration, counted against the same per-IP budget (an address cannot spend one
    budget signing in and another probing which emails exist)."""

    def check_ip(self, client_ip: str | None) -> None:
        settings = get_settings()
        if client_ip:
            self._hit(f"auth:ip:{client_ip}", settings.auth_rate_limit_per_ip)

    def check_account(self, email: str) -> None:
        # Hashed: Redis needs no email addresses, and the key length stays bounded.
        account = hash_opaque_token(normalize_email(email))
        self._hit(f"auth:account:{account}", get_settings().auth_rate_limit_per_account)

    def _hit(self, key: str, limit: int) -> None:
        window = get_settings().auth_rate_limit_window_seconds
        wait_seconds = hit_rate_limit(key, limit, window)
        if wait_seconds is not None:
            raise RateLimitedError(wait_seconds, "Too many attempts; try again later")


class SessionService:
    """Refresh-token families: one per login, rotated on every refresh."""

    def __init__(self, session: WriteSession) -> None:
        self.tokens = RefreshTokenRepository(session)

    def start(self, user_id: uuid.UUID) -> IssuedTokens:
        return self._issue(user_id, family_id=uuid.uuid4())

    def rotate(self, token: RefreshToken) -> IssuedTokens:
        """Spend a token (locked by the caller) and issue its successor in the family."""
        now = _now()
        if token.spent_at is not None or token.revoked_at is not None:
            self.tokens.revoke_family(token.family_id, now)
            raise RefreshTokenReusedError()
        if token.expires_at <= now:
            raise UnauthorizedError(INVALID_REFRESH_TOKEN)
        self.tokens.mark_spent(token, now)
        return self._issue(token.user_id, family_id=token.family_id)

    def lock(self, refresh_token: str) -> RefreshToken:
        token = self.tokens.lock_by_hash(hash_opaque_token(refresh_token))
        if token is None:
            raise UnauthorizedError(INVALID_REFRESH_TOKEN)
        return token

    def end(self, refresh_token: str) -> None:
        """Log out: revoke the family of this token; an unknown token changes nothing."""
        self.tokens.revoke_family_of(hash_opaque_token(refresh_token), _now())

    def revoke_all_sessions(self, user_id: uuid.UUID) -> None:
        self.tokens.revoke_all_of_user(user_id, _now())

    def _issue(self, user_id: uuid.UUID, *, family_id: uuid.UUID) -> IssuedTokens:
        settings = get_settings()
        refresh_token = new_opaque_token()
        self.tokens.add(
            user_id=user_id,
            family_id=family_id,
            token_hash=hash_opaque_token(refresh_token),
            expires_at=_now() + timedelta(seconds=settings.refresh_token_ttl_seconds),
        )
        return IssuedTokens(
            access_token=create_access_token(user_id, settings),
            refresh_token=refresh_token,
            expires_in=settings.access_token_ttl_seconds,
        )


class AuthService:
    def __init__(
        self, users: UserService, sessions: SessionService, limiter: AuthRateLimiter
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.limiter = limiter

    def register(self, data: RegisterRequest, client_ip: str | None) -> User:
        self.limiter.check_ip(client_ip)
        return self.users.register(
            email=str(data.email),
            password=data.password,
            full_name=data.full_name,
            timezone=data.timezone,
        )

    def login(self, email: str, password: str, client_ip: str | None) -> IssuedTokens:
        """Check the credentials and start a session (a new refresh-token family)."""
        user = self._authenticate(email, password, client_ip)
        return self.sessions.start(user.id)

    def access_token(self, email: str, password: str, client_ip: str | None) -> str:
        """An access token alone, for the OAuth2 password flow (/docs "Authorize")."""
        user = self._authenticate(email, password, client_ip)
        return create_access_token(user.id)

    def refresh(self, refresh_token: str, client_ip: str | None) -> IssuedTokens:
        self.limiter.check_ip(client_ip)
        token = self.sessions.lock(refresh_token)
        user = self.users.get_active(token.user_id)
        if user is None:
            raise UnauthorizedError(INVALID_REFRESH_TOKEN)
        self.limiter.check_account(user.email)
        return self.sessions.rotate(token)

    def logout(self, refresh_token: str) -> None:
        self.sessions.end(refresh_token)

    def _authenticate(self, email: str, password: str, client_ip: str | None) -> User:
        self.limiter.check_ip(client_ip)
        self.limiter.check_account(email)
        user = self.users.authenticate(email, password)
        if user is None:
            raise UnauthorizedError(INVALID_CREDENTIALS)
        return user


class ApiTokenService:
    """Personal tokens for scripts: shown once at creation, stored as SHA-256."""

    def __init__(self, session: WriteSession) -> None:
        self.session = session
        self.tokens = ApiTokenRepository(session)

    def create(self, user: User, data: ApiTokenCreate) -> tuple[ApiToken, str]:
        secret = new_opaque_token(API_TOKEN_PREFIX)
        token = self.tokens.add(
            user_id=user.id,
            name=data.name,
            token_hash=hash_opaque_token(secret),
            expires_at=data.expires_at,
        )
        self._record(token, ChangeOp.CREATED)
        return token, secret

    def revoke(self, user: User, token_id: uuid.UUID) -> None:
        token = self.tokens.get_live_of_user(token_id, user.id)
        if token is None:
            raise NotFoundError.for_entity("API token", token_id)
        self.tokens.revoke(token, _now())
        self._record(token, ChangeOp.DELETED)

    def _record(self, token: ApiToken, op: ChangeOp) -> None:
        # The query API authenticates API tokens from a projection: it must hear of them.
        # The payload never carries the token or its hash.
        record_change(
            self.session,
            ChangeRecord(
                entity="api_token",
                entity_id=token.id,
                op=op,
                org_id=None,
                payload={"user_id": str(token.user_id), "name": token.name},
            ),
        )
