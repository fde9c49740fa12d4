"""POST /auth/login and POST /auth/token."""

from __future__ import annotations

import httpx
from sqlalchemy import Engine, text

from shared.config import get_settings
from shared.security import dummy_password_hash, hash_opaque_token
from tests.command_api.auth.helpers import assert_unauthorized, login, probe, refresh_rows
from tests.factories import make_user, unique_email


def test_login_returns_a_working_token_pair(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    response = api.post("/auth/login", json={"email": user.email, "password": user.password})

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert set(data) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert data["token_type"] == "bearer"
    assert data["expires_in"] == get_settings().access_token_ttl_seconds
    assert probe(api, data["access_token"]).status_code == 200
    rows = refresh_rows(db, user.id)
    assert len(rows) == 1
    # Only the hash is stored.
    assert rows[0]["token_hash"] == hash_opaque_token(data["refresh_token"])
    assert rows[0]["spent_at"] is None
    assert rows[0]["revoked_at"] is None


def test_login_ignores_the_email_case(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    response = api.post(
        "/auth/login", json={"email": f"  {user.email.upper()} ", "password": user.password}
    )
    assert response.status_code == 200, response.text


def test_each_login_starts_its_own_family(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    login(api, user)
    login(api, user)
    rows = refresh_rows(db, user.id)
    assert len({row["family_id"] for row in rows}) == 2


def test_failed_logins_do_not_reveal_whether_the_email_exists(
    api: httpx.Client, db: Engine
) -> None:
    user = make_user(db)
    wrong_password = api.post("/auth/login", json={"email": user.email, "password": "nope" * 4})
    dummy_before = dummy_password_hash.cache_info()
    unknown_email = api.post(
        "/auth/login", json={"email": unique_email("ghost"), "password": "nope" * 4}
    )
    dummy_after = dummy_password_hash.cache_info()

    assert_unauthorized(wrong_password)
    assert_unauthorized(unknown_email)
    assert wrong_password.json() == unknown_email.json()
    # The unknown email still verified a password (the dummy hash): the same work.
    assert dummy_after.hits + dummy_after.misses == dummy_before.hits + dummy_before.misses + 1
    assert refresh_rows(db, user.id) == []


def test_an_inactive_user_cannot_log_in(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    with db.begin() as conn:
        conn.execute(text("UPDATE users SET is_active = false WHERE id = :id"), {"id": user.id})
    response = api.post("/auth/login", json={"email": user.email, "password": user.password})
    assert_unauthorized(response)
    assert response.json()["error"] == "Incorrect email or password"


def test_login_rejects_malformed_bodies(api: httpx.Client) -> None:
    response = api.post("/auth/login", json={"email": "someone@example.com"})
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["details"]] == ["password"]


def test_oauth2_token_endpoint_answers_the_bare_oauth2_shape(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    response = api.post("/auth/token", data={"username": user.email, "password": user.password})

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type"}
    assert body["token_type"] == "bearer"
    assert probe(api, body["access_token"]).status_code == 200
    # The password flow hands out no refresh token.
    assert refresh_rows(db, user.id) == []


def test_oauth2_token_failure_uses_the_envelope(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    wrong = api.post("/auth/token", data={"username": user.email, "password": "wrong" * 3})
    assert_unauthorized(wrong)
    assert wrong.json()["error"] == "Incorrect email or password"
    missing = api.post("/auth/token", data={"username": user.email})
    assert missing.status_code == 422
    assert "password" in [d["field"] for d in missing.json()["details"]]
