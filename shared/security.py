"""JWT access tokens, password hashing and opaque-token hashing."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
from passlib.context import CryptContext

from shared.config import Settings, get_settings
from shared.errors import UnauthorizedError

API_TOKEN_PREFIX = "evo_"


@lru_cache
def _password_context() -> CryptContext:
    settings = get_settings()
    return CryptContext(
        schemes=["argon2"],
        argon2__memory_cost=settings.argon2_memory_cost_kib,
        argon2__rounds=settings.argon2_time_cost,
        argon2__parallelism=settings.argon2_parallelism,
    )


def hash_password(password: str) -> str:
    return str(_password_context().hash(password))


def verify_password(password: str, password_hash: str) -> bool:
    return bool(_password_context().verify(password, password_hash))


# A real hash to verify against when the email is unknown, so that a failed login
# costs the same time whether or not the account exists.
@lru_cache
def dummy_password_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    issued_at: datetime


def create_access_token(user_id: uuid.UUID, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(seconds=settings.access_token_ttl_seconds),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "jti": secrets.token_hex(8),
        "typ": "access",
    }
    return jwt.encode(
        claims, settings.secret_key.get_secret_value(), algorithm=settings.jwt_algorithm
    )


@dataclass(frozen=True)
class _Verified:
    claims: AccessClaims
    not_before: float
    expires: float


# Tokens whose signature and claims were verified: a client sends the same token for its
# lifetime, and verifying it (HMAC, JSON, claim checks) again on every request is wasted.
# A hit checks only the time window again. Bounded: emptied when full.
_VERIFIED: dict[tuple[str, tuple[str, ...]], _Verified] = {}
VERIFIED_CACHE_SIZE = 10_000


def decode_access_token(
    token: str, settings: Settings | None = None, *, now: float | None = None
) -> AccessClaims:
    """The claims of a valid access token (401 otherwise). `now` (seconds since the epoch)
    is for tests."""
    settings = settings or get_settings()
    instant = time.time() if now is None else now
    key = (token, _verifier(settings))
    verified = _VERIFIED.get(key)
    if verified is None:
        verified = _verify(token, settings, instant)
        if len(_VERIFIED) >= VERIFIED_CACHE_SIZE:
            _VERIFIED.clear()
        _VERIFIED[key] = verified
    if not verified.not_before <= instant < verified.expires:
        raise UnauthorizedError("Invalid or expired access token")
    return verified.claims


def _verifier(settings: Settings) -> tuple[str, ...]:
    """What a token is verified against: a cached verdict holds for these settings only."""
    return (
        settings.secret_key.get_secret_value(),
        settings.jwt_algorithm,
        settings.jwt_issuer,
        settings.jwt_audience,
    )


def _verify(token: str, settings: Settings, now: float) -> _Verified:
    try:
        claims = jwt.decode(
            token,
            settings.secret_key.get_secret_value(),
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
        if claims.get("typ") != "access":
            raise UnauthorizedError("Not an access token")
        return _Verified(
            AccessClaims(
                user_id=uuid.UUID(claims["sub"]),
                issued_at=datetime.fromtimestamp(claims["iat"], UTC),
            ),
            not_before=float(claims.get("nbf", claims["iat"])),
            expires=float(claims["exp"]),
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise UnauthorizedError("Invalid or expired access token") from exc


def new_opaque_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_opaque_token(token: str) -> str:
    """Opaque tokens carry 256 random bits: a plain SHA-256 is enough and allows an index lookup."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_api_token(token: str) -> bool:
    return token.startswith(API_TOKEN_PREFIX)
