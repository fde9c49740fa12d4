"""POST /organizations, PATCH and DELETE /organizations/{org_id}."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from tests.command_api.organizations.helpers import (
    insert_entry,
    invalid_fields,
    ok_data,
    refused,
    row,
    rows,
)
from tests.factories import OrgHandle, UserHandle, change_rows, make_user

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def new_org_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "Acme", "timezone": "Europe/Berlin", "currency": "EUR"}
    body.update(overrides)
    return body


# --- Create ----------------------------------------------------------------------------


def test_create_organization_makes_the_caller_its_owner(
    api: httpx.Client, db: Engine, outsider: UserHandle
) -> None:
    body = new_org_body(
        name="  Acme GmbH ",
        week_start=7,
        hourly_rate=12_000,
        prevent_overlaps=True,
        lock_before="2026-01-01",
    )
    data = ok_data(api.post("/organizations", json=body, headers=outsider.headers), 201)

    org_id = uuid.UUID(data["id"])
    assert data["name"] == "Acme GmbH"
    assert data["timezone"] == "Europe/Berlin"
    assert data["currency"] == "EUR"
    assert data["week_start"] == 7
    assert data["hourly_rate"] == 12_000
    assert data["prevent_overlaps"] is True
    assert data["lock_before"] == "2026-01-01"
    assert data["created_at"]
    assert data["updated_at"]
    stored = row(db, "SELECT * FROM organizations WHERE id = :id", id=org_id)
    assert stored is not None
    assert stored["hourly_rate_amount"] == 12_000
    assert stored["deleted_at"] is None
    membership = row(
        db,
        "SELECT id, role FROM memberships WHERE org_id = :o AND user_id = :u",
        o=org_id,
        u=outsider.id,
    )
    assert membership is not None
    assert membership["role"] == "owner"

    [org_change] = change_rows(db, org_id)
    assert org_change["entity"] == "organization"
    assert org_change["op"] == "created"
    assert org_change["org_id"] == org_id
    assert org_change["payload"]["old"] is None
    assert org_change["payload"]["new"]["timezone"] == "Europe/Berlin"
    assert org_change["payload"]["new"]["lock_before"] == "2026-01-01"
    [member_change] = change_rows(db, membership["id"])
    assert member_change["entity"] == "membership"
    assert member_change["payload"]["new"] == {
        "user_id": str(outsider.id),
        "role": "owner",
        "hourly_rate": None,
        "full_name": outsider.full_name,
        "email": outsider.email,
    }


def test_create_organization_defaults(api: httpx.Client, outsider: UserHandle) -> None:
    data = ok_data(api.post("/organizations", json=new_org_body(), headers=outsider.headers), 201)
    assert data["week_start"] == 1
    assert data["hourly_rate"] is None
    assert data["prevent_overlaps"] is False
    assert data["lock_before"] is None
    assert data["long_running_timer_seconds"] == 8 * 3600


def test_create_organization_needs_credentials(api: httpx.Client) -> None:
    refused(api.post("/organizations", json=new_org_body()), 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"currency": "eur"}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "E1R"}, "currency"),
        ({"week_start": 8}, "week_start"),
        ({"week_start": 0}, "week_start"),
        ({"hourly_rate": -1}, "hourly_rate"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"lock_before": "0000-01-01"}, "lock_before"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_create_organization_refuses_malformed_settings(
    api: httpx.Client, outsider: UserHandle, overrides: dict[str, Any], field: str
) -> None:
    response = api.post("/organizations", json=new_org_body(**overrides), headers=outsider.headers)
    assert field in invalid_fields(response)


# --- Update ----------------------------------------------------------------------------


def test_admin_updates_settings_and_the_change_carries_old_and_new(
    api: httpx.Client, db: Engine, org: OrgHandle, admin: UserHandle
) -> None:
    body = {
        "name": "Renamed",
        "timezone": "America/New_York",
        "currency": "USD",
        "week_start": 7,
        "hourly_rate": 5000,
        "lock_before": "2026-06-30",
    }
    data = ok_data(api.patch(org.path(), json=body, headers=admin.headers))

    assert data["id"] == str(org.id)
    assert {k: data[k] for k in body} == body
    stored = row(db, "SELECT * FROM organizations WHERE id = :id", id=org.id)
    assert stored is not None
    assert stored["timezone"] == "America/New_York"
    assert stored["hourly_rate_amount"] == 5000
    [change] = change_rows(db, org.id)
    assert change["op"] == "updated"
    assert change["payload"]["old"]["timezone"] == "UTC"
    assert change["payload"]["new"]["timezone"] == "America/New_York"
    assert change["payload"]["old"]["hourly_rate"] is None
    assert change["payload"]["new"]["week_start"] == 7


def test_update_with_null_clears_nullable_settings(
    api: httpx.Client, db: Engine, outsider: UserHandle
) -> None:
    created = ok_data(
        api.post(
            "/organizations",
            json=new_org_body(hourly_rate=100, lock_before="2026-01-01"),
            headers=outsider.headers,
        ),
        201,
    )
    path = f"/organizations/{created['id']}"
    data = ok_data(
        api.patch(path, json={"hourly_rate": None, "lock_before": None}, headers=outsider.headers)
    )
    assert data["hourly_rate"] is None
    assert data["lock_before"] is None
    assert data["name"] == "Acme"


def test_update_without_changes_writes_no_change_row(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    ok_data(api.patch(org.path(), json={"timezone": "UTC"}, headers=org.owner.headers))
    assert change_rows(db, org.id) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"timezone": None}, "timezone"),
        ({"timezone": "Europe/Nowhere"}, "timezone"),
        ({"currency": "usd"}, "currency"),
        ({"week_start": 8}, "week_start"),
        ({"prevent_overlaps": None}, "prevent_overlaps"),
        ({"id": str(uuid.uuid4())}, "id"),
    ],
)
def test_update_refuses_malformed_settings(
    api: httpx.Client, org: OrgHandle, body: dict[str, Any], field: str
) -> None:
    assert field in invalid_fields(api.patch(org.path(), json=body, headers=org.owner.headers))


@pytest.mark.parametrize("role", ["manager", "member"])
def test_update_needs_admin(
    api: httpx.Client, db: Engine, org: OrgHandle, role: str, request: pytest.FixtureRequest
) -> None:
    user: UserHandle = request.getfixturevalue(role)
    refused(api.patch(org.path(), json={"name": "Nope"}, headers=user.headers), 403, "FORBIDDEN")
    stored = row(db, "SELECT name FROM organizations WHERE id = :id", id=org.id)
    assert stored is not None
    assert stored["name"] != "Nope"


def test_update_of_an_organization_you_are_not_in_is_not_found(
    api: httpx.Client, org: OrgHandle, other_org: OrgHandle, outsider: UserHandle
) -> None:
    refused(api.patch(org.path(), json={"name": "X"}, headers=outsider.headers), 404, "NOT_FOUND")
    refused(
        api.patch(other_org.path(), json={"name": "X"}, headers=org.owner.headers), 404, "NOT_FOUND"
    )
    refused(
        api.patch(f"/organizations/{uuid.uuid4()}", json={"name": "X"}, headers=org.owner.headers),
        404,
        "NOT_FOUND",
    )


def test_invalid_uuid_in_path_is_422(api: httpx.Client, org: OrgHandle) -> None:
    response = api.patch("/organizations/not-a-uuid", json={}, headers=org.owner.headers)
    assert "org_id" in invalid_fields(response)


# --- long_running_timer_seconds ---------------------------------------------------------


def test_admin_sets_the_timer_limit_and_the_change_log_says_so(
    api: httpx.Client, db: Engine, org: OrgHandle, admin: UserHandle
) -> None:
    body = {"long_running_timer_seconds": 900}
    data = ok_data(api.patch(org.path(), json=body, headers=admin.headers))
    assert data["long_running_timer_seconds"] == 900
    stored = row(db, "SELECT long_running_timer_seconds FROM organizations WHERE id = :i", i=org.id)
    assert stored == {"long_running_timer_seconds": 900}
    [change] = change_rows(db, org.id)
    assert change["payload"]["old"]["long_running_timer_seconds"] == 8 * 3600
    assert change["payload"]["new"]["long_running_timer_seconds"] == 900
    week = ok_data(
        api.patch(org.path(), json={"long_running_timer_seconds": 604800}, headers=admin.headers)
    )
    assert week["long_running_timer_seconds"] == 604800


def test_a_new_organization_may_choose_its_timer_limit(
    api: httpx.Client, outsider: UserHandle
) -> None:
    body = new_org_body(long_running_timer_seconds=4 * 3600)
    data = ok_data(api.post("/organizations", json=body, headers=outsider.headers), 201)
    assert data["long_running_timer_seconds"] == 4 * 3600


@pytest.mark.parametrize("value", [None, 0, -1, 899, 604801, 10**12, "8h", 3600.5, True])
def test_a_timer_limit_out_of_bounds_is_a_422_naming_it(
    api: httpx.Client, db: Engine, org: OrgHandle, value: Any
) -> None:
    response = api.patch(
        org.path(), json={"long_running_timer_seconds": value}, headers=org.owner.headers
    )
    assert invalid_fields(response) == {"long_running_timer_seconds"}
    stored = row(db, "SELECT long_running_timer_seconds FROM organizations WHERE id = :i", i=org.id)
    assert stored == {"long_running_timer_seconds": 8 * 3600}


@pytest.mark.parametrize("role", ["manager", "member"])
def test_only_admins_set_the_timer_limit(
    api: httpx.Client, org: OrgHandle, role: str, request: pytest.FixtureRequest
) -> None:
    user: UserHandle = request.getfixturevalue(role)
    body = {"long_running_timer_seconds": 3600}
    refused(api.patch(org.path(), json=body, headers=user.headers), 403, "FORBIDDEN")


def test_the_database_keeps_the_timer_limit_in_bounds(db: Engine, org: OrgHandle) -> None:
    with pytest.raises(IntegrityError, match="long_running_timer_range"), db.begin() as conn:
        conn.execute(
            text("UPDATE organizations SET long_running_timer_seconds = 60 WHERE id = :id"),
            {"id": org.id},
        )


# --- prevent_overlaps ------------------------------------------------------------------


def _no_overlap_flags(db: Engine, org_id: uuid.UUID) -> dict[uuid.UUID, bool]:
    found = rows(db, "SELECT id, no_overlap FROM time_entries WHERE org_id = :o", o=org_id)
    return {r["id"]: r["no_overlap"] for r in found}


def test_turning_prevent_overlaps_on_and_off_flags_the_entries(
    api: httpx.Client, db: Engine, org: OrgHandle, other_org: OrgHandle, member: UserHandle
) -> None:
    hour = timedelta(hours=1)
    first = insert_entry(db, org.id, member.id, T0, T0 + hour)
    second = insert_entry(db, org.id, member.id, T0 + hour, T0 + 2 * hour)  # touches, no overlap
    other_user = insert_entry(db, org.id, org.owner.id, T0, T0 + 2 * hour)
    elsewhere = insert_entry(db, other_org.id, other_org.owner.id, T0, T0 + hour)

    data = ok_data(
        api.patch(org.path(), json={"prevent_overlaps": True}, headers=org.owner.headers)
    )

    assert data["prevent_overlaps"] is True
    flags = _no_overlap_flags(db, org.id)
    assert flags == {first: True, second: True, other_user: True}
    assert _no_overlap_flags(db, other_org.id) == {elsewhere: False}
    [change] = change_rows(db, org.id)
    assert change["payload"]["old"]["prevent_overlaps"] is False
    assert change["payload"]["new"]["prevent_overlaps"] is True

    ok_data(api.patch(org.path(), json={"prevent_overlaps": False}, headers=org.owner.headers))
    assert set(_no_overlap_flags(db, org.id).values()) == {False}


def test_turning_prevent_overlaps_on_with_overlapping_entries_is_a_conflict(
    api: httpx.Client, db: Engine, org: OrgHandle, member: UserHandle
) -> None:
    insert_entry(db, org.id, member.id, T0, T0 + timedelta(hours=2))
    insert_entry(db, org.id, member.id, T0 + timedelta(hours=1), T0 + timedelta(hours=3))

    body = refused(
        api.patch(
            org.path(), json={"prevent_overlaps": True, "name": "Strict"}, headers=org.owner.headers
        ),
        409,
        "CONFLICT",
    )

    assert "existing entries overlap" in body["error"]
    stored = row(db, "SELECT name, prevent_overlaps FROM organizations WHERE id = :id", id=org.id)
    assert stored is not None
    assert stored["prevent_overlaps"] is False
    assert stored["name"] != "Strict"
    assert set(_no_overlap_flags(db, org.id).values()) == {False}
    assert change_rows(db, org.id) == []


def test_a_running_timer_overlaps_what_starts_after_it(
    api: httpx.Client, db: Engine, org: OrgHandle, member: UserHandle
) -> None:
    insert_entry(db, org.id, member.id, T0, None)
    insert_entry(db, org.id, member.id, T0 + timedelta(days=1), T0 + timedelta(days=1, hours=1))
    refused(
        api.patch(org.path(), json={"prevent_overlaps": True}, headers=org.owner.headers),
        409,
        "CONFLICT",
    )


def test_deleted_entries_do_not_block_prevent_overlaps(
    api: httpx.Client, db: Engine, org: OrgHandle, member: UserHandle
) -> None:
    live = insert_entry(db, org.id, member.id, T0, T0 + timedelta(hours=2))
    deleted = insert_entry(db, org.id, member.id, T0, T0 + timedelta(hours=2), deleted=True)
    ok_data(api.patch(org.path(), json={"prevent_overlaps": True}, headers=org.owner.headers))
    assert _no_overlap_flags(db, org.id) == {live: True, deleted: False}


# --- Delete ----------------------------------------------------------------------------


def test_owner_deletes_the_organization_softly(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    response = api.delete(org.path(), headers=org.owner.headers)

    assert response.status_code == 204, response.text
    assert response.headers["X-Consistency-Token"]
    stored = row(db, "SELECT deleted_at FROM organizations WHERE id = :id", id=org.id)
    assert stored is not None
    assert stored["deleted_at"] is not None
    [change] = change_rows(db, org.id)
    assert change["op"] == "deleted"
    assert change["payload"]["new"] is None
    assert change["payload"]["old"]["name"]
    # Gone for every command from now on.
    refused(api.patch(org.path(), json={"name": "X"}, headers=org.owner.headers), 404, "NOT_FOUND")
    refused(api.delete(org.path(), headers=org.owner.headers), 404, "NOT_FOUND")


@pytest.mark.parametrize("role", ["admin", "manager", "member"])
def test_only_the_owner_deletes_the_organization(
    api: httpx.Client, db: Engine, org: OrgHandle, role: str, request: pytest.FixtureRequest
) -> None:
    user: UserHandle = request.getfixturevalue(role)
    refused(api.delete(org.path(), headers=user.headers), 403, "FORBIDDEN")
    stored = row(db, "SELECT deleted_at FROM organizations WHERE id = :id", id=org.id)
    assert stored is not None
    assert stored["deleted_at"] is None


def test_deleting_another_organization_is_not_found(
    api: httpx.Client, db: Engine, org: OrgHandle, other_org: OrgHandle
) -> None:
    refused(api.delete(other_org.path(), headers=org.owner.headers), 404, "NOT_FOUND")
    stranger = make_user(db)
    refused(api.delete(org.path(), headers=stranger.headers), 404, "NOT_FOUND")
