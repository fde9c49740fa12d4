"""POST /organizations/{org_id}/members, PATCH and DELETE …/members/{user_id}."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.command_api.organizations.helpers import (
    invalid_fields,
    ok_data,
    race,
    refused,
    row,
    rows,
)
from tests.factories import OrgHandle, UserHandle, add_member, change_rows, make_user


def membership(db: Engine, org: OrgHandle, user: UserHandle) -> dict[str, Any] | None:
    return row(
        db,
        "SELECT id, role, hourly_rate_amount, deleted_at FROM memberships"
        " WHERE org_id = :o AND user_id = :u",
        o=org.id,
        u=user.id,
    )


def owner_count(db: Engine, org: OrgHandle) -> int:
    found = row(
        db,
        "SELECT count(*) AS n FROM memberships"
        " WHERE org_id = :o AND role = 'owner' AND deleted_at IS NULL",
        o=org.id,
    )
    assert found is not None
    return int(found["n"])


# --- Add -------------------------------------------------------------------------------


def test_admin_adds_an_existing_user(
    api: httpx.Client, db: Engine, org: OrgHandle, admin: UserHandle
) -> None:
    user = make_user(db, full_name="New Person")
    data = ok_data(
        api.post(
            org.path("/members"),
            json={"email": user.email.upper(), "role": "manager", "hourly_rate": 4200},
            headers=admin.headers,
        ),
        201,
    )

    assert data["user_id"] == str(user.id)
    assert data["email"] == user.email
    assert data["full_name"] == "New Person"
    assert data["role"] == "manager"
    assert data["hourly_rate"] == 4200
    stored = membership(db, org, user)
    assert stored is not None
    assert stored["role"] == "manager"
    assert stored["hourly_rate_amount"] == 4200
    assert data["id"] == str(stored["id"])
    [change] = change_rows(db, stored["id"])
    assert change["entity"] == "membership"
    assert change["op"] == "created"
    assert change["org_id"] == org.id
    assert change["payload"] == {
        "old": None,
        "new": {
            "user_id": str(user.id),
            "role": "manager",
            "hourly_rate": 4200,
            "full_name": "New Person",
            "email": user.email,
        },
    }


def test_adding_an_unknown_email_is_not_found(api: httpx.Client, org: OrgHandle) -> None:
    refused(
        api.post(
            org.path("/members"),
            json={"email": "nobody-here@example.com", "role": "member"},
            headers=org.owner.headers,
        ),
        404,
        "NOT_FOUND",
    )


def test_adding_a_member_twice_is_already_exists(
    api: httpx.Client, db: Engine, org: OrgHandle, member: UserHandle
) -> None:
    refused(
        api.post(
            org.path("/members"),
            json={"email": member.email, "role": "admin"},
            headers=org.owner.headers,
        ),
        409,
        "ALREADY_EXISTS",
    )
    stored = membership(db, org, member)
    assert stored is not None
    assert stored["role"] == "member"


def test_only_an_owner_adds_an_owner(
    api: httpx.Client, db: Engine, org: OrgHandle, admin: UserHandle
) -> None:
    user = make_user(db)
    body = {"email": user.email, "role": "owner"}
    refused(api.post(org.path("/members"), json=body, headers=admin.headers), 403, "FORBIDDEN")
    assert membership(db, org, user) is None

    data = ok_data(api.post(org.path("/members"), json=body, headers=org.owner.headers), 201)
    assert data["role"] == "owner"


@pytest.mark.parametrize("role", ["manager", "member"])
def test_adding_members_needs_admin(
    api: httpx.Client, db: Engine, org: OrgHandle, role: str, request: pytest.FixtureRequest
) -> None:
    caller: UserHandle = request.getfixturevalue(role)
    user = make_user(db)
    refused(
        api.post(
            org.path("/members"),
            json={"email": user.email, "role": "member"},
            headers=caller.headers,
        ),
        403,
        "FORBIDDEN",
    )
    assert membership(db, org, user) is None


def test_adding_to_an_organization_you_are_not_in_is_not_found(
    api: httpx.Client, db: Engine, org: OrgHandle, other_org: OrgHandle
) -> None:
    user = make_user(db)
    refused(
        api.post(
            other_org.path("/members"),
            json={"email": user.email, "role": "member"},
            headers=org.owner.headers,
        ),
        404,
        "NOT_FOUND",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "role": "member"}, "email"),
        ({"email": "a@example.com", "role": "boss"}, "role"),
        ({"email": "a@example.com"}, "role"),
        ({"email": "a@example.com", "role": "member", "hourly_rate": -5}, "hourly_rate"),
        ({"email": "a@example.com", "role": "member", "user_id": "x"}, "user_id"),
    ],
)
def test_adding_refuses_malformed_bodies(
    api: httpx.Client, org: OrgHandle, body: dict[str, Any], field: str
) -> None:
    response = api.post(org.path("/members"), json=body, headers=org.owner.headers)
    assert field in invalid_fields(response)


def test_a_removed_member_is_revived(
    api: httpx.Client, db: Engine, org: OrgHandle, member: UserHandle
) -> None:
    before = membership(db, org, member)
    assert before is not None
    assert (
        api.delete(org.path(f"/members/{member.id}"), headers=org.owner.headers).status_code == 204
    )

    data = ok_data(
        api.post(
            org.path("/members"),
            json={"email": member.email, "role": "admin"},
            headers=org.owner.headers,
        ),
        201,
    )

    after = membership(db, org, member)
    assert after is not None
    assert after["id"] == before["id"]
    assert after["deleted_at"] is None
    assert after["role"] == "admin"
    assert data["role"] == "admin"
    assert [c["op"] for c in change_rows(db, before["id"])] == ["deleted", "created"]


# --- Update ----------------------------------------------------------------------------


def test_admin_changes_role_and_rate(
    api: httpx.Client, db: Engine, org: OrgHandle, admin: UserHandle, member: UserHandle
) -> None:
    data = ok_data(
        api.patch(
            org.path(f"/members/{member.id}"),
            json={"role": "manager", "hourly_rate": 900},
            headers=admin.headers,
        )
    )

    assert data["role"] == "manager"
    assert data["hourly_rate"] == 900
    assert data["user_id"] == str(member.id)
    stored = membership(db, org, member)
    assert stored is not None
    assert stored["role"] == "manager"
    [change] = change_rows(db, stored["id"])
    assert change["op"] == "updated"
    assert change["payload"]["old"]["role"] == "member"
    assert change["payload"]["old"]["hourly_rate"] is None
    assert change["payload"]["new"]["role"] == "manager"
    assert change["payload"]["new"]["hourly_rate"] == 900
    assert change["payload"]["new"]["email"] == member.email


def test_null_rate_clears_it_and_absent_fields_stay(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    user = add_member(db, org, "manager", hourly_rate_amount=700)
    data = ok_data(
        api.patch(
            org.path(f"/members/{user.id}"), json={"hourly_rate": None}, headers=org.owner.headers
        )
    )
    assert data["hourly_rate"] is None
    assert data["role"] == "manager"


def test_role_cannot_be_null(api: httpx.Client, org: OrgHandle, member: UserHandle) -> None:
    response = api.patch(
        org.path(f"/members/{member.id}"), json={"role": None}, headers=org.owner.headers
    )
    assert "role" in invalid_fields(response)


def test_only_an_owner_makes_owners(
    api: httpx.Client, db: Engine, org: OrgHandle, admin: UserHandle, member: UserHandle
) -> None:
    path = org.path(f"/members/{member.id}")
    refused(api.patch(path, json={"role": "owner"}, headers=admin.headers), 403, "FORBIDDEN")
    refused(
        api.patch(org.path(f"/members/{admin.id}"), json={"role": "owner"}, headers=admin.headers),
        403,
        "FORBIDDEN",
    )
    assert (
        ok_data(api.patch(path, json={"role": "owner"}, headers=org.owner.headers))["role"]
        == "owner"
    )
    assert owner_count(db, org) == 2


def test_only_an_owner_changes_an_owner(
    api: httpx.Client, db: Engine, org: OrgHandle, admin: UserHandle
) -> None:
    path = org.path(f"/members/{org.owner.id}")
    refused(api.patch(path, json={"role": "member"}, headers=admin.headers), 403, "FORBIDDEN")
    refused(api.patch(path, json={"hourly_rate": 1}, headers=admin.headers), 403, "FORBIDDEN")
    stored = membership(db, org, org.owner)
    assert stored is not None
    assert stored["role"] == "owner"
    assert stored["hourly_rate_amount"] is None


def test_the_last_owner_cannot_be_demoted(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    body = refused(
        api.patch(
            org.path(f"/members/{org.owner.id}"), json={"role": "admin"}, headers=org.owner.headers
        ),
        400,
        "BUSINESS_RULE",
    )
    assert "last owner" in body["error"]
    assert owner_count(db, org) == 1


def test_an_owner_steps_down_when_another_owner_remains(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    add_member(db, org, "owner")
    data = ok_data(
        api.patch(
            org.path(f"/members/{org.owner.id}"), json={"role": "admin"}, headers=org.owner.headers
        )
    )
    assert data["role"] == "admin"
    assert owner_count(db, org) == 1


@pytest.mark.parametrize("role", ["manager", "member"])
def test_changing_members_needs_admin(
    api: httpx.Client,
    org: OrgHandle,
    admin: UserHandle,
    role: str,
    request: pytest.FixtureRequest,
) -> None:
    caller: UserHandle = request.getfixturevalue(role)
    refused(
        api.patch(
            org.path(f"/members/{admin.id}"), json={"role": "member"}, headers=caller.headers
        ),
        403,
        "FORBIDDEN",
    )


def test_changing_someone_who_is_not_a_member_is_not_found(
    api: httpx.Client, db: Engine, org: OrgHandle, other_org: OrgHandle, outsider: UserHandle
) -> None:
    for user_id in (outsider.id, other_org.owner.id, uuid.uuid4()):
        refused(
            api.patch(
                org.path(f"/members/{user_id}"), json={"role": "member"}, headers=org.owner.headers
            ),
            404,
            "NOT_FOUND",
        )
    refused(
        api.patch(
            other_org.path(f"/members/{other_org.owner.id}"),
            json={"role": "member"},
            headers=org.owner.headers,
        ),
        404,
        "NOT_FOUND",
    )


def test_concurrent_owners_stepping_down_leave_one_owner(
    db: Engine, org: OrgHandle, command_server: Any
) -> None:
    owners = [org.owner, *(add_member(db, org, "owner") for _ in range(3))]

    statuses = race(
        command_server.url,
        [("PATCH", org.path(f"/members/{user.id}"), {"role": "admin"}, user) for user in owners],
    )

    assert statuses == [200, 200, 200, 400]
    assert owner_count(db, org) == 1


# --- Remove ----------------------------------------------------------------------------


def test_admin_removes_a_member_and_their_team_links(
    api: httpx.Client,
    db: Engine,
    org: OrgHandle,
    other_org: OrgHandle,
    admin: UserHandle,
    member: UserHandle,
) -> None:
    team = ok_data(api.post(org.path("/teams"), json={"name": "Core"}, headers=admin.headers), 201)
    ok_data(
        api.put(
            org.path(f"/teams/{team['id']}/members/{member.id}"),
            json={"is_lead": True},
            headers=admin.headers,
        )
    )
    # A link in another organization stays.
    add_member(db, other_org, "member", user=member)
    other_team = ok_data(
        api.post(
            other_org.path("/teams"), json={"name": "Elsewhere"}, headers=other_org.owner.headers
        ),
        201,
    )
    ok_data(
        api.put(
            other_org.path(f"/teams/{other_team['id']}/members/{member.id}"),
            headers=other_org.owner.headers,
        )
    )
    before = membership(db, org, member)
    assert before is not None

    response = api.delete(org.path(f"/members/{member.id}"), headers=admin.headers)

    assert response.status_code == 204, response.text
    assert response.headers["X-Consistency-Token"]
    stored = membership(db, org, member)
    assert stored is not None
    assert stored["deleted_at"] is not None
    links = rows(db, "SELECT org_id FROM team_members WHERE user_id = :u", u=member.id)
    assert links == [{"org_id": other_org.id}]
    change = change_rows(db, before["id"])[-1]
    assert change["op"] == "deleted"
    assert change["payload"]["old"]["role"] == "member"
    assert change["payload"]["new"] is None
    team_change = change_rows(db, uuid.UUID(team["id"]))[-1]
    assert team_change["entity"] == "team_member"
    assert team_change["op"] == "deleted"
    assert team_change["payload"]["old"] == {
        "team_id": team["id"],
        "user_id": str(member.id),
        "is_lead": True,
    }
    # The removed member is out: their own commands in the organization answer 404.
    refused(
        api.post(org.path("/teams"), json={"name": "X"}, headers=member.headers), 404, "NOT_FOUND"
    )


def test_a_member_leaves_on_their_own(
    api: httpx.Client, db: Engine, org: OrgHandle, member: UserHandle
) -> None:
    response = api.delete(org.path(f"/members/{member.id}"), headers=member.headers)
    assert response.status_code == 204, response.text
    stored = membership(db, org, member)
    assert stored is not None
    assert stored["deleted_at"] is not None


@pytest.mark.parametrize("role", ["manager", "member"])
def test_removing_someone_else_needs_admin(
    api: httpx.Client,
    db: Engine,
    org: OrgHandle,
    admin: UserHandle,
    role: str,
    request: pytest.FixtureRequest,
) -> None:
    caller: UserHandle = request.getfixturevalue(role)
    refused(api.delete(org.path(f"/members/{admin.id}"), headers=caller.headers), 403, "FORBIDDEN")
    stored = membership(db, org, admin)
    assert stored is not None
    assert stored["deleted_at"] is None


def test_an_admin_cannot_remove_an_owner(
    api: httpx.Client, db: Engine, org: OrgHandle, admin: UserHandle
) -> None:
    add_member(db, org, "owner")
    refused(
        api.delete(org.path(f"/members/{org.owner.id}"), headers=admin.headers), 403, "FORBIDDEN"
    )
    assert owner_count(db, org) == 2


def test_the_last_owner_cannot_leave(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    body = refused(
        api.delete(org.path(f"/members/{org.owner.id}"), headers=org.owner.headers),
        400,
        "BUSINESS_RULE",
    )
    assert "last owner" in body["error"]
    assert owner_count(db, org) == 1


def test_an_owner_removes_another_owner(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    second = add_member(db, org, "owner")
    response = api.delete(org.path(f"/members/{second.id}"), headers=org.owner.headers)
    assert response.status_code == 204, response.text
    assert owner_count(db, org) == 1


def test_removing_a_non_member_is_not_found(
    api: httpx.Client, db: Engine, org: OrgHandle, other_org: OrgHandle, member: UserHandle
) -> None:
    refused(
        api.delete(org.path(f"/members/{other_org.owner.id}"), headers=org.owner.headers),
        404,
        "NOT_FOUND",
    )
    api.delete(org.path(f"/members/{member.id}"), headers=org.owner.headers)
    refused(
        api.delete(org.path(f"/members/{member.id}"), headers=org.owner.headers), 404, "NOT_FOUND"
    )
    with db.connect() as conn:
        live = conn.execute(
            text("SELECT count(*) FROM memberships WHERE user_id = :u AND deleted_at IS NULL"),
            {"u": other_org.owner.id},
        ).scalar_one()
    assert live == 1
