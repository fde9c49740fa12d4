"""Bearer authentication: JWT access tokens are checked strictly (alg, iss, aud, exp)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import Engine

from shared.config import get_settings
from shared.security import new_opaque_token
from tests.command_api.auth.helpers import assert_unauthorized, probe
from tests.factories import make_user


def _forge(
    user_id: uuid.UUID, *, algorithm: str | None = None, key: str | None = None, **overrides: Any
) -> str:
    settings = get_settings()
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "typ": "access",
    }
    claims.update(overrides)
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(
        claims,
        key if key is not None else settings.secret_key.get_secret_value(),
        algorithm=algorithm or settings.jwt_algorithm,
    )


def test_a_well_formed_token_is_accepted(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    assert probe(api, _forge(user.id)).status_code == 200


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "someone-else"},
        {"iss": "not-evotrack"},
        {"exp": datetime.now(UTC) - timedelta(seconds=5)},
        {"exp": None},
        {"iat": None},
        {"typ": "refresh"},
        {"sub": "not-a-uuid"},
        {"key": "another-secret-key-of-sufficient-length-0123456789"},
        {"algorithm": "HS512"},
    ],
    ids=["audience", "issuer", "expired", "no-exp", "no-iat", "type", "subject", "key", "alg"],
)
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_tokens_with_a_wrong_claim_or_signature_are_refused(
    api: httpx.Client, db: Engine, overrides: dict[str, Any]
) -> None:
    user = make_user(db)
    response = probe(api, _forge(user.id, **overrides))
    assert_unauthorized(response)
    assert response.json()["details"] is None


def test_unsigned_tokens_are_refused(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    token = _forge(user.id, algorithm="none", key="")
    assert_unauthorized(probe(api, token))


def test_a_token_of_an_unknown_user_is_refused(api: httpx.Client) -> None:
    assert_unauthorized(probe(api, _forge(uuid.uuid4())))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcg=="},
        {"Authorization": "Bearer garbage"},
        {"Authorization": f"Bearer {new_opaque_token()}"},
    ],
    ids=["missing", "empty", "no-token", "basic", "garbage", "refresh-token"],
)
def test_missing_or_malformed_authorization_is_a_401_envelope(
    api: httpx.Client, headers: dict[str, str]
) -> None:
    response = api.patch("/users/me", json={}, headers=headers)
    assert_unauthorized(response)
    assert response.json()["success"] is False
