"""POST /auth/api-tokens and DELETE /auth/api-tokens/{token_id}."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, text

from shared.security import API_TOKEN_PREFIX, hash_opaque_token
from tests.command_api.auth.helpers import assert_unauthorized, probe
from tests.factories import UserHandle, make_user


def _create(api: httpx.Client, user: UserHandle, **body: Any) -> httpx.Response:
    return api.post("/auth/api-tokens", json={"name": "ci script", **body}, headers=user.headers)


def _stored(db: Engine, token_id: str) -> Any:
    with db.connect() as conn:
        return conn.execute(
            text(
                "SELECT user_id, name, token_hash, expires_at, revoked_at"
                " FROM api_tokens WHERE id = :id"
            ),
            {"id": token_id},
        ).one()


def test_create_shows_the_token_once_and_stores_its_hash(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    expires_at = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)

    response = _create(api, user, name="  nightly export ", expires_at=expires_at.isoformat())

    assert response.status_code == 201, response.text
    assert response.headers["x-consistency-token"]
    data = response.json()["data"]
    assert set(data) == {"id", "name", "token", "expires_at", "created_at"}
    assert data["name"] == "nightly export"
    assert data["token"].startswith(API_TOKEN_PREFIX)
    assert datetime.fromisoformat(data["expires_at"]) == expires_at
    row = _stored(db, data["id"])
    assert row.user_id == user.id
    assert row.token_hash == hash_opaque_token(data["token"])
    assert data["token"] not in row.token_hash
    assert row.revoked_at is None


def test_an_api_token_authenticates_like_a_jwt(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    token = _create(api, user).json()["data"]["token"]

    response = api.patch(
        "/users/me", json={"full_name": "Scripted"}, headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["id"] == str(user.id)
    assert response.json()["data"]["full_name"] == "Scripted"


def test_a_token_without_expiry_never_expires(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    data = _create(api, user).json()["data"]
    assert data["expires_at"] is None
    assert probe(api, data["token"]).status_code == 200


def test_revoked_tokens_no_longer_authenticate(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    data = _create(api, user).json()["data"]

    response = api.delete(f"/auth/api-tokens/{data['id']}", headers=user.headers)

    assert response.status_code == 204
    assert response.content == b""
    assert _stored(db, data["id"]).revoked_at is not None
    assert_unauthorized(probe(api, data["token"]))
    # A second delete finds nothing live.
    again = api.delete(f"/auth/api-tokens/{data['id']}", headers=user.headers)
    assert again.status_code == 404
    assert again.json()["error_code"] == "NOT_FOUND"


def test_expired_tokens_no_longer_authenticate(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    expires_at = datetime.now(UTC) + timedelta(hours=1)
    data = _create(api, user, expires_at=expires_at.isoformat()).json()["data"]
    assert probe(api, data["token"]).status_code == 200
    with db.begin() as conn:
        conn.execute(
            text("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": data["id"]},
        )
    assert_unauthorized(probe(api, data["token"]))


def test_unknown_api_tokens_are_refused(api: httpx.Client) -> None:
    assert_unauthorized(probe(api, f"{API_TOKEN_PREFIX}not-a-real-token"))


def test_only_the_owner_can_revoke_a_token(api: httpx.Client, db: Engine) -> None:
    owner, intruder = make_user(db), make_user(db)
    data = _create(api, owner).json()["data"]

    response = api.delete(f"/auth/api-tokens/{data['id']}", headers=intruder.headers)

    assert response.status_code == 404
    assert response.json()["error_code"] == "NOT_FOUND"
    assert _stored(db, data["id"]).revoked_at is None
    assert probe(api, data["token"]).status_code == 200
    unknown = api.delete(f"/auth/api-tokens/{uuid.uuid4()}", headers=owner.headers)
    assert unknown.status_code == 404


def test_api_token_endpoints_need_authentication(api: httpx.Client) -> None:
    assert_unauthorized(api.post("/auth/api-tokens", json={"name": "x"}))
    assert_unauthorized(api.delete(f"/auth/api-tokens/{uuid.uuid4()}"))


def test_create_rejects_bad_input(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    cases = [
        ({"expires_at": past}, "expires_at"),
        ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),  # no offset
        ({"expires_at": "9999-01-01T00:00:00Z"}, "expires_at"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"scope": "all"}, "scope"),
    ]
    for body, field in cases:
        response = _create(api, user, **body)
        assert response.status_code == 422, (body, response.text)
        assert field in [d["field"] for d in response.json()["details"]], body
    bad_id = api.delete("/auth/api-tokens/not-a-uuid", headers=user.headers)
    assert bad_id.status_code == 422
    assert bad_id.json()["details"][0]["field"] == "token_id"


def test_api_token_creation_is_idempotent(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    headers = {**user.headers, "Idempotency-Key": f"key-{uuid.uuid4()}"}
    first = api.post("/auth/api-tokens", json={"name": "once"}, headers=headers)
    second = api.post("/auth/api-tokens", json={"name": "once"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    with db.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM api_tokens WHERE user_id = :id"), {"id": user.id}
        ).scalar_one()
    assert count == 1
