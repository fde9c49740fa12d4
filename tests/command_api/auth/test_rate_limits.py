"""Login, token, refresh and register are rate limited per client IP (and all but
register per account), with Redis or, while it is down, in the process.

The suite runs with huge limits; these tests serve a second app under small ones and
restore the settings afterwards. Each test uses its own emails and its own client IPs
(X-Forwarded-For, which uvicorn trusts from 127.0.0.1), so no two tests share a counter.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

import shared.redis_client
from evotrack.embedded import EmbeddedRedis
from shared.config import get_settings
from shared.redis_client import redis_client
from tests.command_api.auth.helpers import login, refresh_rows
from tests.conftest import LiveServer
from tests.factories import make_user, unique_email

PER_IP = 5
PER_ACCOUNT = 3
# Long enough that a test never straddles two fixed windows.
WINDOW_SECONDS = 10**7


@contextlib.contextmanager
def _serve_limited(**environment: str) -> Iterator[httpx.Client]:
    """The command API under small limits (served on its own port), with `environment`
    on top; the suite's settings and Redis client come back afterwards."""
    from command_api.main import create_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTH_RATE_LIMIT_PER_IP", str(PER_IP))
        patch.setenv("AUTH_RATE_LIMIT_PER_ACCOUNT", str(PER_ACCOUNT))
        patch.setenv("AUTH_RATE_LIMIT_WINDOW_SECONDS", str(WINDOW_SECONDS))
        for name, value in environment.items():
            patch.setenv(name, value)
        get_settings.cache_clear()
        redis_client.cache_clear()
        try:
            with (
                LiveServer(create_app()) as server,
                httpx.Client(base_url=f"{server.url}/api/v1", timeout=30) as client,
            ):
                yield client
        finally:
            patch.undo()
            get_settings.cache_clear()
            redis_client.cache_clear()
            # An outage of the test's own Redis tripped the breaker; the suite's is fine.
            shared.redis_client._breaker_open_until = 0.0
    assert get_settings().auth_rate_limit_per_account > PER_ACCOUNT


@pytest.fixture
def limited_api(environment: None) -> Iterator[httpx.Client]:
    """The command API under small limits, on the suite's Redis."""
    with _serve_limited() as client:
        yield client


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of the test's own, to stop: never the suite's."""
    redis = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture
def limited_api_on_own_redis(environment: None, own_redis: EmbeddedRedis) -> Iterator[httpx.Client]:
    """The command API under small limits, counting in the test's own Redis."""
    with _serve_limited(REDIS_URL=own_redis.url) as client:
        yield client


def _new_ip() -> dict[str, str]:
    return {
        "X-Forwarded-For": f"10.{random.randrange(256)}.{random.randrange(256)}."
        f"{random.randrange(1, 255)}"
    }


def _assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error_code"] == "RATE_LIMITED"
    assert response.json()["success"] is False
    assert 0 < int(response.headers["retry-after"]) <= WINDOW_SECONDS


def test_login_is_limited_per_account(limited_api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    body = {"email": user.email, "password": "wrong password!"}
    for _ in range(PER_ACCOUNT):
        assert limited_api.post("/auth/login", json=body, headers=_new_ip()).status_code == 401

    # Over the limit even with the right password, whatever the IP and the email's case.
    right = {"email": user.email.upper(), "password": user.password}
    _assert_limited(limited_api.post("/auth/login", json=right, headers=_new_ip()))
    # The token endpoint counts against the same account.
    form = {"username": user.email, "password": user.password}
    _assert_limited(limited_api.post("/auth/token", data=form, headers=_new_ip()))
    # Other accounts are not affected.
    other = make_user(db)
    assert login(limited_api, other, **_new_ip())["access_token"]


def test_unknown_accounts_are_limited_too(limited_api: httpx.Client) -> None:
    body = {"email": unique_email("ghost"), "password": "wrong password!"}
    for _ in range(PER_ACCOUNT):
        assert limited_api.post("/auth/login", json=body, headers=_new_ip()).status_code == 401
    _assert_limited(limited_api.post("/auth/login", json=body, headers=_new_ip()))


def test_login_and_token_are_limited_per_ip(limited_api: httpx.Client, db: Engine) -> None:
    ip = _new_ip()
    for index in range(PER_IP):
        body = {"email": unique_email(f"ip{index}"), "password": "wrong password!"}
        endpoint_status = limited_api.post("/auth/login", json=body, headers=ip).status_code
        assert endpoint_status == 401

    user = make_user(db)
    _assert_limited(
        limited_api.post(
            "/auth/login", json={"email": user.email, "password": user.password}, headers=ip
        )
    )
    _assert_limited(
        limited_api.post(
            "/auth/token", data={"username": user.email, "password": user.password}, headers=ip
        )
    )
    # Another address signs in.
    assert login(limited_api, user, **_new_ip())["access_token"]


def test_refresh_is_limited_per_account(limited_api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    token = login(limited_api, user, **_new_ip())["refresh_token"]  # attempt 1
    for _ in range(PER_ACCOUNT - 1):  # attempts 2 and 3
        response = limited_api.post(
            "/auth/refresh", json={"refresh_token": token}, headers=_new_ip()
        )
        assert response.status_code == 200, response.text
        token = response.json()["data"]["refresh_token"]

    _assert_limited(
        limited_api.post("/auth/refresh", json={"refresh_token": token}, headers=_new_ip())
    )
    # The refused attempt wrote nothing: the token is still live.
    latest = refresh_rows(db, user.id)[-1]
    assert latest["spent_at"] is None
    assert latest["revoked_at"] is None


def test_refresh_is_limited_per_ip(limited_api: httpx.Client) -> None:
    ip = _new_ip()
    for _ in range(PER_IP):
        response = limited_api.post("/auth/refresh", json={"refresh_token": "junk"}, headers=ip)
        assert response.status_code == 401
    _assert_limited(limited_api.post("/auth/refresh", json={"refresh_token": "junk"}, headers=ip))


def _registration(prefix: str) -> dict[str, str]:
    return {"email": unique_email(prefix), "password": "a long password!", "full_name": "R"}


def test_register_is_limited_per_ip(limited_api: httpx.Client) -> None:
    ip = _new_ip()
    for index in range(PER_IP):
        response = limited_api.post("/auth/register", json=_registration(f"r{index}"), headers=ip)
        assert response.status_code == 201, response.text

    body = _registration("reg-over")
    _assert_limited(limited_api.post("/auth/register", json=body, headers=ip))
    # Another address registers.
    assert limited_api.post("/auth/register", json=body, headers=_new_ip()).status_code == 201


def test_login_stays_limited_while_redis_is_down(
    limited_api_on_own_redis: httpx.Client, own_redis: EmbeddedRedis, db: Engine
) -> None:
    api = limited_api_on_own_redis
    user = make_user(db)
    assert login(api, user, **_new_ip())["access_token"]  # counted in Redis
    own_redis.stop()

    # Per account: a fresh count in the process, and the limit holds, not fails open.
    body = {"email": user.email, "password": "wrong password!"}
    for _ in range(PER_ACCOUNT):
        assert api.post("/auth/login", json=body, headers=_new_ip()).status_code == 401
    right = {"email": user.email, "password": user.password}
    _assert_limited(api.post("/auth/login", json=right, headers=_new_ip()))

    # Per IP: unknown accounts, one address.
    ip = _new_ip()
    for index in range(PER_IP):
        body = {"email": unique_email(f"down{index}"), "password": "wrong password!"}
        assert api.post("/auth/login", json=body, headers=ip).status_code == 401
    other = make_user(db)
    _assert_limited(
        api.post("/auth/login", json={"email": other.email, "password": other.password}, headers=ip)
    )
    # Another address and account still sign in.
    assert login(api, other, **_new_ip())["access_token"]
