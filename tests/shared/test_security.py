"""Access tokens: a verified token is remembered, and its time window still holds."""

from __future__ import annotations

import uuid

import jwt
import pytest
from pydantic import SecretStr

from shared import security
from shared.config import Settings
from shared.errors import UnauthorizedError
from shared.security import create_access_token, decode_access_token

SETTINGS = Settings(secret_key=SecretStr("s" * 40), access_token_ttl_seconds=60)


def test_a_token_verified_once_is_not_verified_again(monkeypatch: pytest.MonkeyPatch) -> None:
    user_id = uuid.uuid4()
    token = create_access_token(user_id, SETTINGS)
    assert decode_access_token(token, SETTINGS).user_id == user_id

    def no_second_verification(*args: object, **kwargs: object) -> None:
        raise AssertionError("verified again")

    monkeypatch.setattr(jwt, "decode", no_second_verification)
    assert decode_access_token(token, SETTINGS).user_id == user_id


def test_a_remembered_token_still_expires() -> None:
    token = create_access_token(uuid.uuid4(), SETTINGS)
    # The instants come from the token itself: a clock read here may be a second late.
    issued = jwt.decode(token, options={"verify_signature": False})["iat"]
    decode_access_token(token, SETTINGS, now=issued)
    decode_access_token(token, SETTINGS, now=issued + 59)
    with pytest.raises(UnauthorizedError):
        decode_access_token(token, SETTINGS, now=issued + 60)


def test_a_token_is_remembered_only_for_the_key_that_verified_it() -> None:
    token = create_access_token(uuid.uuid4(), SETTINGS)
    decode_access_token(token, SETTINGS)
    other = Settings(secret_key=SecretStr("t" * 40))
    with pytest.raises(UnauthorizedError):
        decode_access_token(token, other)


def test_a_forged_token_is_refused_and_not_remembered() -> None:
    token = create_access_token(uuid.uuid4(), SETTINGS)
    header, claims, signature = token.split(".")
    forged = f"{header}.{claims}.{signature[::-1]}"
    for _ in range(2):
        with pytest.raises(UnauthorizedError):
            decode_access_token(forged, SETTINGS)


def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(security, "VERIFIED_CACHE_SIZE", 3)
    monkeypatch.setattr(security, "_VERIFIED", {})
    for _ in range(10):
        decode_access_token(create_access_token(uuid.uuid4(), SETTINGS), SETTINGS)
        assert len(security._VERIFIED) <= 3
