"""Small helpers shared by the auth tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import Engine, text

from tests.factories import UserHandle


def login(api: httpx.Client, user: UserHandle, **headers: str) -> dict[str, Any]:
    response = api.post(
        "/auth/login", json={"email": user.email, "password": user.password}, headers=headers
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def probe(api: httpx.Client, token: str | None) -> httpx.Response:
    """An authenticated command that changes nothing: tells whether a token is accepted."""
    return api.patch("/users/me", json={}, headers=bearer(token) if token is not None else {})


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error_code"] == "UNAUTHORIZED"
    assert response.headers["www-authenticate"] == "Bearer"


def refresh_rows(db: Engine, user_id: uuid.UUID) -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, family_id, token_hash, spent_at, revoked_at, expires_at"
                " FROM refresh_tokens WHERE user_id = :user ORDER BY created_at, id"
            ),
            {"user": user_id},
        ).mappings()
        return [dict(row) for row in rows]
