"""Login, token and refresh are rate limited per client IP and per account.

The suite runs with huge limits; these tests serve a second app under small ones and
restore the settings afterwards. Each test uses its own emails and its own client IPs
(X-Forwarded-For, which uvicorn trusts from 127.0.0.1), so no two tests share a counter.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine

from shared.config import get_settings
from tests.command_api.auth.helpers import login, refresh_rows
from tests.conftest import LiveServer
from tests.factories import make_user, unique_email

PER_IP = 5
PER_ACCOUNT = 3
# Long enough that a test never straddles two fixed windows.
WINDOW_SECONDS = 10**7


@pytest.fixture
def limited_api(environment: None) -> Iterator[httpx.Client]:
    """The command API under small limits (served on its own port)."""
    from command_api.main import create_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTH_RATE_LIMIT_PER_IP", str(PER_IP))
        patch.setenv("AUTH_RATE_LIMIT_PER_ACCOUNT", str(PER_ACCOUNT))
        patch.setenv("AUTH_RATE_LIMIT_WINDOW_SECONDS", str(WINDOW_SECONDS))
        get_settings.cache_clear()
        try:
            with (
                LiveServer(create_app()) as server,
                httpx.Client(base_url=f"{server.url}/api/v1", timeout=30) as client,
            ):
                yield client
        finally:
            patch.undo()
            get_settings.cache_clear()
    assert get_settings().auth_rate_limit_per_account > PER_ACCOUNT


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
