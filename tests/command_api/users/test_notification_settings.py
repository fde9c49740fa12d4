"""PUT /users/me/notification-settings."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from command_api.modules.users.schemas import NotificationSettingsPut, NotificationSettingsRead
from shared.notifications import NotificationKind
from tests.command_api.locks import race
from tests.factories import change_rows, make_user

PATH = "/users/me/notification-settings"
DEFAULT = {"in_app": True, "email": False}
DEFAULTS = {kind.value: DEFAULT for kind in NotificationKind}


def _stored(db: Engine, user_id: Any) -> dict[str, dict[str, bool]]:
    with db.connect() as conn:
        rows = conn.execute(
            text("SELECT kind, in_app, email FROM notification_settings WHERE user_id = :u"),
            {"u": user_id},
        )
        return {kind: {"in_app": in_app, "email": email} for kind, in_app, email in rows}


def _settings(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["X-Consistency-Token"]
    body = response.json()
    assert body["success"] is True
    data: dict[str, Any] = body["data"]
    return data


def test_the_schemas_cover_every_kind() -> None:
    kinds = {kind.value for kind in NotificationKind}
    assert set(NotificationSettingsPut.model_fields) == kinds
    assert set(NotificationSettingsRead.model_fields) == kinds


def test_put_sets_the_given_kinds_and_answers_every_kind(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    body = {
        "budget_threshold": {"in_app": True, "email": True},
        "weekly_summary": {"in_app": False, "email": True},
    }

    data = _settings(api.put(PATH, json=body, headers=user.headers))

    assert data == {**DEFAULTS, **body}
    assert _stored(db, user.id) == body
    changes = change_rows(db, user.id)
    assert [(c["entity"], c["op"], c["org_id"]) for c in changes] == [
        ("notification_settings", "updated", None)
    ]
    assert changes[0]["payload"] == {"old": DEFAULTS, "new": {**DEFAULTS, **body}}


def test_kinds_left_out_keep_their_setting(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    first = {"member_added": {"in_app": False, "email": True}}
    _settings(api.put(PATH, json=first, headers=user.headers))
    second = {"member_added": {"in_app": True, "email": True}, "role_changed": DEFAULT}

    data = _settings(api.put(PATH, json=second, headers=user.headers))

    assert data == {**DEFAULTS, **second}
    assert _stored(db, user.id) == second
    payloads = [c["payload"] for c in change_rows(db, user.id)]
    assert payloads[-1] == {"old": {**DEFAULTS, **first}, "new": {**DEFAULTS, **second}}


def test_a_put_that_changes_nothing_records_nothing(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    assert _settings(api.put(PATH, json={}, headers=user.headers)) == DEFAULTS
    # Choosing the defaults explicitly changes nothing either.
    assert _settings(api.put(PATH, json={"weekly_summary": DEFAULT}, headers=user.headers)) == (
        DEFAULTS
    )
    assert change_rows(db, user.id) == []
    assert _stored(db, user.id) == {}

    chosen = {"long_running_timer": {"in_app": True, "email": True}}
    _settings(api.put(PATH, json=chosen, headers=user.headers))
    _settings(api.put(PATH, json=chosen, headers=user.headers))
    assert len(change_rows(db, user.id)) == 1


def test_settings_are_per_user(api: httpx.Client, db: Engine) -> None:
    ann, bob = make_user(db), make_user(db)
    _settings(
        api.put(PATH, json={"weekly_summary": DEFAULT | {"email": True}}, headers=ann.headers)
    )
    assert _settings(api.put(PATH, json={}, headers=bob.headers)) == DEFAULTS
    assert _stored(db, bob.id) == {}


def test_an_unknown_kind_is_refused_by_name(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    response = api.put(
        PATH,
        json={"weekly_summary": DEFAULT, "daily_digest": DEFAULT},
        headers=user.headers,
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error_code"] == "VALIDATION_ERROR"
    assert [d["field"] for d in body["details"]] == ["daily_digest"]
    assert _stored(db, user.id) == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"weekly_summary": None}, "weekly_summary"),
        ({"weekly_summary": {"in_app": True}}, "weekly_summary.email"),
        ({"weekly_summary": {"in_app": True, "email": "maybe"}}, "weekly_summary.email"),
        ({"weekly_summary": {"in_app": True, "email": False, "sms": True}}, "weekly_summary.sms"),
        ({"weekly_summary": True}, "weekly_summary"),
    ],
)
def test_malformed_settings_are_refused(
    api: httpx.Client, db: Engine, body: dict[str, Any], field: str
) -> None:
    user = make_user(db)
    response = api.put(PATH, json=body, headers=user.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert {d["field"] for d in response.json()["details"]} == {field}
    assert _stored(db, user.id) == {}


def test_put_needs_authentication(api: httpx.Client) -> None:
    response = api.put(PATH, json={})
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHORIZED"


def test_a_concurrent_change_is_waited_for_and_is_the_old_value(
    api: httpx.Client, db: Engine
) -> None:
    """Another change of the same user's settings holds the user row; this one waits, and
    its change row starts from what the other committed."""
    user = make_user(db)
    concurrent = {"in_app": False, "email": True}
    response = race(
        db,
        [
            "SELECT id FROM users WHERE id = :u FOR NO KEY UPDATE",
            "INSERT INTO notification_settings (user_id, kind, in_app, email)"
            " VALUES (:u, 'weekly_summary', false, true)",
        ],
        {"u": user.id},
        lambda: api.put(PATH, json={"member_added": concurrent}, headers=user.headers),
    )

    expected = {**DEFAULTS, "weekly_summary": concurrent, "member_added": concurrent}
    assert _settings(response) == expected
    [row] = change_rows(db, user.id)
    assert row["payload"] == {"old": {**DEFAULTS, "weekly_summary": concurrent}, "new": expected}
