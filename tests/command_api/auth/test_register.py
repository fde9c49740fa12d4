"""POST /auth/register."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.factories import change_rows, make_user, unique_email

PASSWORD = "a long enough password"


def _register(api: httpx.Client, **body: Any) -> httpx.Response:
    payload = {"email": unique_email("reg"), "password": PASSWORD, "full_name": "Ada Lovelace"}
    payload.update(body)
    return api.post("/auth/register", json=payload)


def test_register_creates_the_user_and_its_change_row(api: httpx.Client, db: Engine) -> None:
    email = unique_email("reg").upper()
    response = _register(api, email=email, full_name="  Ada Lovelace ", timezone="Europe/Berlin")

    assert response.status_code == 201, response.text
    assert response.headers["x-consistency-token"]
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert set(data) == {"id", "email", "full_name", "timezone", "created_at"}
    assert data["email"] == email.lower()
    assert data["full_name"] == "Ada Lovelace"
    assert data["timezone"] == "Europe/Berlin"
    with db.connect() as conn:
        row = conn.execute(
            text("SELECT email, password_hash, is_active FROM users WHERE id = :id"),
            {"id": data["id"]},
        ).one()
    assert row.email == email.lower()
    assert row.password_hash.startswith("$argon2")
    assert PASSWORD not in row.password_hash
    assert row.is_active is True
    changes = change_rows(db, data["id"])
    assert [(c["entity"], c["op"], c["org_id"]) for c in changes] == [("user", "created", None)]
    assert changes[0]["payload"] == {
        "old": None,
        "new": {
            "id": data["id"],
            "email": email.lower(),
            "full_name": "Ada Lovelace",
            "timezone": "Europe/Berlin",
        },
    }


def test_register_defaults_to_utc(api: httpx.Client) -> None:
    response = _register(api)
    assert response.status_code == 201
    assert response.json()["data"]["timezone"] == "UTC"


def test_register_then_login_works(api: httpx.Client) -> None:
    email = unique_email("reglogin")
    assert _register(api, email=email).status_code == 201
    login = api.post("/auth/login", json={"email": email.upper(), "password": PASSWORD})
    assert login.status_code == 200, login.text


def test_emails_are_unique_whatever_their_case(api: httpx.Client, db: Engine) -> None:
    existing = make_user(db)
    response = _register(api, email=existing.email.upper())
    assert response.status_code == 409
    body = response.json()
    assert body["error_code"] == "ALREADY_EXISTS"
    assert "email" in body["error"]
    with db.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM users WHERE lower(email) = :email"),
            {"email": existing.email.lower()},
        ).scalar_one()
    assert count == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "too short"}, "password"),
        ({"password": "x" * 129}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"full_name": "   "}, "full_name"),
        ({"full_name": "x" * 201}, "full_name"),
        ({"is_admin": True}, "is_admin"),
    ],
)
def test_register_rejects_bad_input(api: httpx.Client, body: dict[str, Any], field: str) -> None:
    response = _register(api, **body)
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["error_code"] == "VALIDATION_ERROR"
    assert field in [detail["field"] for detail in payload["details"]]


def test_register_requires_the_mandatory_fields(api: httpx.Client) -> None:
    response = api.post("/auth/register", json={})
    assert response.status_code == 422
    fields = {detail["field"] for detail in response.json()["details"]}
    assert fields == {"email", "password", "full_name"}


def test_malformed_json_is_a_422_envelope(api: httpx.Client) -> None:
    response = api.post(
        "/auth/register",
        content=b'{"email": "a@example.com", "password": ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["success"] is False
    assert body["error_code"] == "VALIDATION_ERROR"
    assert body["details"][0]["location"] == "body"
    assert body["details"][0]["type"] == "json_invalid"


def test_concurrent_registrations_of_one_email_create_one_user(
    api: httpx.Client, db: Engine
) -> None:
    email = unique_email("race")

    def attempt(index: int) -> int:
        with httpx.Client(base_url=api.base_url, timeout=30) as client:
            variant = email.upper() if index % 2 else email
            return _register(client, email=variant).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(attempt, range(6)))

    assert statuses == [201] + [409] * 5
    with db.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM users WHERE email = :email"), {"email": email}
        ).scalar_one()
    assert count == 1
