"""POST /users/me/password."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import Engine, text

from tests.command_api.auth.helpers import login, refresh_rows
from tests.factories import make_user

NEW_PASSWORD = "a brand new passphrase"


def _change(api: httpx.Client, headers: dict[str, str], current: str, new: str) -> httpx.Response:
    return api.post(
        "/users/me/password",
        json={"current_password": current, "new_password": new},
        headers=headers,
    )


def test_change_password_and_end_every_session(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    sessions = [login(api, user)["refresh_token"] for _ in range(2)]

    response = _change(api, user.headers, user.password, NEW_PASSWORD)

    assert response.status_code == 204, response.text
    assert response.content == b""
    assert all(row["revoked_at"] is not None for row in refresh_rows(db, user.id))
    for token in sessions:
        assert api.post("/auth/refresh", json={"refresh_token": token}).status_code == 401
    old = api.post("/auth/login", json={"email": user.email, "password": user.password})
    assert old.status_code == 401
    new = api.post("/auth/login", json={"email": user.email, "password": NEW_PASSWORD})
    assert new.status_code == 200


def test_a_wrong_current_password_is_refused(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    session = login(api, user)["refresh_token"]
    with db.connect() as conn:
        before = conn.execute(
            text("SELECT password_hash FROM users WHERE id = :id"), {"id": user.id}
        ).scalar_one()

    response = _change(api, user.headers, "not my password", NEW_PASSWORD)

    assert response.status_code == 400
    assert response.json()["error_code"] == "BUSINESS_RULE"
    assert response.json()["error"] == "The current password is incorrect"
    with db.connect() as conn:
        after = conn.execute(
            text("SELECT password_hash FROM users WHERE id = :id"), {"id": user.id}
        ).scalar_one()
    assert after == before
    assert api.post("/auth/refresh", json={"refresh_token": session}).status_code == 200


def test_the_new_password_must_differ(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    response = _change(api, user.headers, user.password, user.password)
    assert response.status_code == 400
    assert response.json()["error_code"] == "BUSINESS_RULE"


def test_the_new_password_must_be_long_enough(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    response = _change(api, user.headers, user.password, "short")
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["details"]] == ["new_password"]


def test_change_password_needs_authentication(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    response = _change(api, {}, user.password, NEW_PASSWORD)
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHORIZED"


def test_change_password_honours_the_idempotency_key(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    headers = {**user.headers, "Idempotency-Key": str(uuid.uuid4())}
    assert _change(api, headers, user.password, NEW_PASSWORD).status_code == 204
    # The retry replays the first answer instead of failing on the now-wrong current password.
    assert _change(api, headers, user.password, NEW_PASSWORD).status_code == 204
