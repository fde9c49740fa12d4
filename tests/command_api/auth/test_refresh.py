"""POST /auth/refresh and POST /auth/logout: rotation, reuse detection, families."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import Engine, text

from shared.security import hash_opaque_token
from tests.command_api.auth.helpers import assert_unauthorized, login, probe, refresh_rows
from tests.factories import make_user


def _refresh(api: httpx.Client, refresh_token: str) -> httpx.Response:
    return api.post("/auth/refresh", json={"refresh_token": refresh_token})


def test_refresh_spends_the_token_and_issues_the_next_in_its_family(
    api: httpx.Client, db: Engine
) -> None:
    user = make_user(db)
    first = login(api, user)

    response = _refresh(api, first["refresh_token"])

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["token_type"] == "bearer"
    assert data["refresh_token"] != first["refresh_token"]
    assert probe(api, data["access_token"]).status_code == 200
    old, new = refresh_rows(db, user.id)
    assert old["token_hash"] == hash_opaque_token(first["refresh_token"])
    assert old["spent_at"] is not None
    assert old["revoked_at"] is None
    assert new["token_hash"] == hash_opaque_token(data["refresh_token"])
    assert new["family_id"] == old["family_id"]
    assert new["spent_at"] is None
    assert new["revoked_at"] is None
    # The chain goes on.
    assert _refresh(api, data["refresh_token"]).status_code == 200


def test_reusing_a_spent_token_revokes_the_whole_family(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    stolen = login(api, user)["refresh_token"]
    other_session = login(api, user)["refresh_token"]
    legit = _refresh(api, stolen).json()["data"]["refresh_token"]

    reuse = _refresh(api, stolen)

    assert_unauthorized(reuse)
    rows = refresh_rows(db, user.id)
    family = next(r["family_id"] for r in rows if r["token_hash"] == hash_opaque_token(stolen))
    family_rows = [row for row in rows if row["family_id"] == family]
    # The revocation was committed although the answer was 401.
    assert len(family_rows) == 2
    assert all(row["revoked_at"] is not None for row in family_rows)
    assert_unauthorized(_refresh(api, legit))
    # Another login's family is untouched.
    assert _refresh(api, other_session).status_code == 200


def test_unknown_and_expired_refresh_tokens_are_refused(api: httpx.Client, db: Engine) -> None:
    assert_unauthorized(_refresh(api, "not-a-token"))
    user = make_user(db)
    token = login(api, user)["refresh_token"]
    with db.begin() as conn:
        conn.execute(
            text(
                "UPDATE refresh_tokens SET expires_at = now() - interval '1 second'"
                " WHERE token_hash = :hash"
            ),
            {"hash": hash_opaque_token(token)},
        )
    assert_unauthorized(_refresh(api, token))
    # An expired token is not a sign of theft: nothing is revoked.
    assert refresh_rows(db, user.id)[0]["revoked_at"] is None


def test_refresh_rejects_malformed_bodies(api: httpx.Client) -> None:
    for body in ({}, {"refresh_token": ""}, {"refresh_token": "x" * 257}):
        response = api.post("/auth/refresh", json=body)
        assert response.status_code == 422
        assert response.json()["details"][0]["field"] == "refresh_token"


def test_concurrent_refreshes_with_one_token_succeed_once(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    token = login(api, user)["refresh_token"]

    def attempt(_: int) -> int:
        with httpx.Client(base_url=api.base_url, timeout=30) as client:
            return _refresh(client, token).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(attempt, range(8)))

    assert sorted(statuses) == [200] + [401] * 7
    # The losers saw a spent token: the family, the winner's new token included, is revoked.
    rows = refresh_rows(db, user.id)
    assert len(rows) == 2
    assert all(row["revoked_at"] is not None for row in rows)


def test_logout_revokes_the_family(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    first = login(api, user)["refresh_token"]
    second = _refresh(api, first).json()["data"]["refresh_token"]
    other_session = login(api, user)["refresh_token"]

    response = api.post("/auth/logout", json={"refresh_token": first})

    assert response.status_code == 204
    assert response.content == b""
    rows = {row["token_hash"]: row for row in refresh_rows(db, user.id)}
    assert rows[hash_opaque_token(first)]["revoked_at"] is not None
    assert rows[hash_opaque_token(second)]["revoked_at"] is not None
    assert rows[hash_opaque_token(other_session)]["revoked_at"] is None
    assert_unauthorized(_refresh(api, second))
    assert _refresh(api, other_session).status_code == 200


def test_logout_with_an_unknown_token_changes_nothing(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    login(api, user)
    assert api.post("/auth/logout", json={"refresh_token": "unknown"}).status_code == 204
    assert refresh_rows(db, user.id)[0]["revoked_at"] is None
