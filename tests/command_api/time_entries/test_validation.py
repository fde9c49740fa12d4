"""Bad input answers a 422 envelope naming the field, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from command_api.modules.time_entries.service import translate_db_error
from shared.errors import BusinessRuleError, ValidationFailedError
from tests.command_api.time_entries.helpers import (
    count_entries,
    create_entry,
    invalid_fields,
    ok_data,
    refused,
)
from tests.factories import OrgHandle


def post_raw(api: httpx.Client, org: OrgHandle, content: bytes) -> httpx.Response:
    headers = {**org.owner.headers, "Content-Type": "application/json"}
    return api.post(org.path("/time-entries"), content=content, headers=headers)


def test_malformed_json(api: httpx.Client, org: OrgHandle) -> None:
    body = refused(
        post_raw(api, org, b'{"start_at": "2026-03-02T09:00:00Z",'), 422, "VALIDATION_ERROR"
    )
    assert body["details"]
    refused(post_raw(api, org, b"[1, 2"), 422, "VALIDATION_ERROR")
    refused(post_raw(api, org, b"\xff\xfe"), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"start_at": 12}, {"start_at"}),
        ({"start_at": "1772442000"}, {"start_at"}),
        ({"start_at": "yesterday"}, {"start_at"}),
        ({"billable": "perhaps"}, {"billable"}),
        ({"project_id": "not-a-uuid"}, {"project_id"}),
        ({"tag_ids": "a-tag"}, {"tag_ids"}),
        ({"tag_ids": ["not-a-uuid"]}, {"tag_ids.0"}),
        ({"description": 5}, {"description"}),
        ({"user_id": 7}, {"user_id"}),
        ({"start_at": "0000-01-01T00:00:00Z"}, {"start_at"}),
        (
            {"start_at": "9999-12-31T00:00:00Z", "end_at": "9999-12-31T01:00:00Z"},
            {"start_at", "end_at"},
        ),
        ({"start_at": "2026-03-02T09:00:00"}, {"start_at"}),
        ({"end_at": "2026-03-02T10:00:00"}, {"end_at"}),
        ({"end_at": "2026-03-02T08:00:00Z"}, {"end_at"}),
        ({"color": "red"}, {"color"}),
        ({"description": "x" * 3001}, {"description"}),
    ],
)
def test_wrong_fields_are_named(
    api: httpx.Client, db: Engine, org: OrgHandle, fields: dict[str, Any], expected: set[str]
) -> None:
    assert invalid_fields(create_entry(api, org, **fields)) == expected
    assert count_entries(db, org) == 0


def test_start_at_is_required(api: httpx.Client, org: OrgHandle) -> None:
    response = api.post(org.path("/time-entries"), json={}, headers=org.owner.headers)
    assert invalid_fields(response) == {"start_at"}


def test_a_one_megabyte_description(api: httpx.Client, org: OrgHandle) -> None:
    response = create_entry(api, org, description="x" * 1_000_000)
    body = refused(response, 422, "VALIDATION_ERROR")
    assert [d["field"] for d in body["details"]] == ["description"]
    assert len(response.content) < 2000  # the input is not echoed back


def test_descriptions_at_the_limit_are_kept(api: httpx.Client, org: OrgHandle) -> None:
    assert ok_data(create_entry(api, org, description="é" * 3000))["description"] == "é" * 3000


def test_an_invalid_uuid_in_the_path(api: httpx.Client, org: OrgHandle) -> None:
    headers = org.owner.headers
    patch = api.patch(org.path("/time-entries/not-a-uuid"), json={}, headers=headers)
    assert invalid_fields(patch) == {"entry_id"}
    delete = api.delete(org.path("/time-entries/123"), headers=headers)
    assert invalid_fields(delete) == {"entry_id"}
    bad_org = api.post("/organizations/nope/timer/start", headers=headers)
    assert invalid_fields(bad_org) == {"org_id"}


def test_update_validation(api: httpx.Client, org: OrgHandle) -> None:
    entry = ok_data(create_entry(api, org))
    path = org.path(f"/time-entries/{entry['id']}")
    headers = org.owner.headers
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"start_at": "2026-03-02T09:00:00"}, {"start_at"}),
        ({"start_at": "2026-03-02T11:00:00Z", "end_at": "2026-03-02T10:00:00Z"}, {"end_at"}),
        ({"start_at": "2026-03-02T11:00:00Z"}, {"end_at"}),  # after the stored end
        ({"surprise": 1}, {"surprise"}),
        ({"user_id": None}, {"user_id"}),
        ({"tag_ids": None}, {"tag_ids"}),
        ({"description": None}, {"description"}),
        ({"description": "y" * 1_000_000}, {"description"}),
    ]
    for body, expected in cases:
        assert invalid_fields(api.patch(path, json=body, headers=headers)) == expected, body


def test_timer_validation(api: httpx.Client, org: OrgHandle) -> None:
    headers = org.owner.headers
    start = org.path("/timer/start")
    assert invalid_fields(
        api.post(start, json={"start_at": "2026-03-02T09:00:00Z"}, headers=headers)
    ) == {"start_at"}
    assert invalid_fields(api.post(start, json={"billable": []}, headers=headers)) == {"billable"}
    assert invalid_fields(api.post(start, json=[], headers=headers)) == {"body"}


def _violation(db: Engine, org: OrgHandle, start_at: str, end_at: str) -> DBAPIError:
    """The error PostgreSQL really raises for an entry row with these times."""
    try:
        with db.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO time_entries (id, org_id, user_id, start_at, end_at,"
                    " description, billable, hourly_rate_amount, no_overlap)"
                    " VALUES (gen_random_uuid(), :org, :user, :start, :end, '', false, 0, false)"
                ),
                {"org": org.id, "user": org.owner.id, "start": start_at, "end": end_at},
            )
    except DBAPIError as exc:
        return exc
    raise AssertionError("the row was accepted")


def test_a_database_end_before_start_is_a_422_naming_end_at(db: Engine, org: OrgHandle) -> None:
    """If a write ever reaches the check constraint, the answer is the same 422 as when the
    service sees the rule first (never a 409)."""
    error = translate_db_error(_violation(db, org, "2026-03-02T10:00Z", "2026-03-02T09:00Z"))

    assert isinstance(error, ValidationFailedError)
    assert (error.status_code, error.error_code) == (422, "VALIDATION_ERROR")
    assert error.message == "end_at must be after start_at"
    assert isinstance(error.details, list)
    assert [detail["field"] for detail in error.details] == ["end_at"]


def test_a_database_duration_over_24_hours_is_a_400(db: Engine, org: OrgHandle) -> None:
    error = translate_db_error(_violation(db, org, "2026-03-02T09:00Z", "2026-03-03T09:01Z"))

    assert isinstance(error, BusinessRuleError)
    assert "24 hours" in error.message
    assert error.details == {"field": "end_at"}
