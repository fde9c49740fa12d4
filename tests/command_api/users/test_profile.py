"""PATCH /users/me."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.command_api.locks import race
from tests.factories import change_rows, make_user


def test_update_changes_the_profile_and_records_the_change(api: httpx.Client, db: Engine) -> None:
    user = make_user(db, full_name="Old Name")

    response = api.patch(
        "/users/me",
        json={"full_name": "  New Name ", "timezone": "America/New_York"},
        headers=user.headers,
    )

    assert response.status_code == 200, response.text
    assert response.headers["x-consistency-token"]
    data = response.json()["data"]
    assert data["id"] == str(user.id)
    assert data["email"] == user.email
    assert data["full_name"] == "New Name"
    assert data["timezone"] == "America/New_York"
    assert data["created_at"]
    with db.connect() as conn:
        row = conn.execute(
            text("SELECT full_name, timezone FROM users WHERE id = :id"), {"id": user.id}
        ).one()
    assert tuple(row) == ("New Name", "America/New_York")
    changes = change_rows(db, user.id)
    assert [(c["entity"], c["op"], c["org_id"]) for c in changes] == [("user", "updated", None)]
    assert changes[0]["payload"] == {
        "old": {
            "id": str(user.id),
            "email": user.email,
            "full_name": "Old Name",
            "timezone": "UTC",
        },
        "new": {
            "id": str(user.id),
            "email": user.email,
            "full_name": "New Name",
            "timezone": "America/New_York",
        },
    }


def test_omitted_fields_keep_their_value(api: httpx.Client, db: Engine) -> None:
    user = make_user(db, full_name="Keep Me")
    response = api.patch("/users/me", json={"timezone": "Asia/Tokyo"}, headers=user.headers)
    assert response.status_code == 200
    assert response.json()["data"]["full_name"] == "Keep Me"
    assert response.json()["data"]["timezone"] == "Asia/Tokyo"


def test_an_update_that_changes_nothing_records_nothing(api: httpx.Client, db: Engine) -> None:
    user = make_user(db, full_name="Same")
    for body in ({}, {"full_name": "Same", "timezone": "UTC"}):
        response = api.patch("/users/me", json=body, headers=user.headers)
        assert response.status_code == 200
    assert change_rows(db, user.id) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"timezone": None}, "timezone"),
        ({"full_name": ""}, "full_name"),
        ({"full_name": None}, "full_name"),
        ({"full_name": 42}, "full_name"),
        ({"email": "new@example.com"}, "email"),
    ],
)
def test_update_rejects_bad_input(
    api: httpx.Client, db: Engine, body: dict[str, Any], field: str
) -> None:
    user = make_user(db)
    response = api.patch("/users/me", json=body, headers=user.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert field in [d["field"] for d in response.json()["details"]]
    assert change_rows(db, user.id) == []


def test_update_needs_authentication(api: httpx.Client) -> None:
    response = api.patch("/users/me", json={"full_name": "Nobody"})
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHORIZED"


def test_a_concurrent_update_is_waited_for_and_seen(api: httpx.Client, db: Engine) -> None:
    """The user row is locked before the change row's `old` is read: it names what the
    concurrent update committed, and `new` is what this transaction commits."""
    user = make_user(db, full_name="Before")
    response = race(
        db,
        "UPDATE users SET full_name = 'Concurrent' WHERE id = :u",
        {"u": user.id},
        lambda: api.patch("/users/me", json={"timezone": "Asia/Tokyo"}, headers=user.headers),
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["full_name"] == "Concurrent"
    [change] = change_rows(db, user.id)
    assert change["payload"]["old"]["full_name"] == "Concurrent"
    assert change["payload"]["new"]["full_name"] == "Concurrent"
    assert change["payload"]["old"]["timezone"] == "UTC"
    assert change["payload"]["new"]["timezone"] == "Asia/Tokyo"
    with db.connect() as conn:
        row = conn.execute(
            text("SELECT full_name, timezone FROM users WHERE id = :id"), {"id": user.id}
        ).one()
    assert tuple(row) == ("Concurrent", "Asia/Tokyo")
