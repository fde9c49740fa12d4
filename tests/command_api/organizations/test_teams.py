"""The team tree: POST …/teams, PATCH and DELETE …/teams/{team_id}, and team members."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.command_api.organizations.helpers import (
    invalid_fields,
    ok_data,
    race,
    refused,
    row,
    team_member_rows,
)
from tests.factories import OrgHandle, UserHandle, change_rows


def make_team(
    api: httpx.Client, org: OrgHandle, name: str = "Team", parent_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if parent_id is not None:
        body["parent_id"] = parent_id
    return ok_data(api.post(org.path("/teams"), json=body, headers=org.owner.headers), 201)


def parent_of(db: Engine, team_id: str) -> str | None:
    found = row(db, "SELECT parent_id FROM teams WHERE id = :id", id=uuid.UUID(team_id))
    assert found is not None
    return None if found["parent_id"] is None else str(found["parent_id"])


# --- Create ----------------------------------------------------------------------------


def test_admin_creates_root_and_child_teams(
    api: httpx.Client, db: Engine, org: OrgHandle, admin: UserHandle
) -> None:
    root = ok_data(
        api.post(org.path("/teams"), json={"name": " Engineering "}, headers=admin.headers), 201
    )
    child = ok_data(
        api.post(
            org.path("/teams"),
            json={"name": "Backend", "parent_id": root["id"]},
            headers=admin.headers,
        ),
        201,
    )

    assert root["name"] == "Engineering"
    assert root["parent_id"] is None
    assert child["parent_id"] == root["id"]
    stored = row(db, "SELECT org_id, name FROM teams WHERE id = :id", id=uuid.UUID(child["id"]))
    assert stored == {"org_id": org.id, "name": "Backend"}
    [change] = change_rows(db, uuid.UUID(child["id"]))
    assert change["entity"] == "team"
    assert change["op"] == "created"
    assert change["org_id"] == org.id
    assert change["payload"] == {"old": None, "new": {"name": "Backend", "parent_id": root["id"]}}


def test_a_parent_from_another_organization_is_not_found(
    api: httpx.Client, org: OrgHandle, other_org: OrgHandle
) -> None:
    foreign = make_team(api, other_org)
    refused(
        api.post(
            org.path("/teams"),
            json={"name": "X", "parent_id": foreign["id"]},
            headers=org.owner.headers,
        ),
        404,
        "NOT_FOUND",
    )


@pytest.mark.parametrize("role", ["manager", "member"])
def test_creating_teams_needs_admin(
    api: httpx.Client, org: OrgHandle, role: str, request: pytest.FixtureRequest
) -> None:
    caller: UserHandle = request.getfixturevalue(role)
    refused(
        api.post(org.path("/teams"), json={"name": "X"}, headers=caller.headers), 403, "FORBIDDEN"
    )


def test_creating_in_an_organization_you_are_not_in_is_not_found(
    api: httpx.Client, org: OrgHandle, outsider: UserHandle
) -> None:
    refused(
        api.post(org.path("/teams"), json={"name": "X"}, headers=outsider.headers), 404, "NOT_FOUND"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({}, "name"),
        ({"name": "A", "parent_id": "nope"}, "parent_id"),
        ({"name": "A", "color": "red"}, "color"),
    ],
)
def test_creating_refuses_malformed_bodies(
    api: httpx.Client, org: OrgHandle, body: dict[str, Any], field: str
) -> None:
    assert field in invalid_fields(
        api.post(org.path("/teams"), json=body, headers=org.owner.headers)
    )


# --- Update ----------------------------------------------------------------------------


def test_rename_and_move_a_team(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    first = make_team(api, org, "First")
    second = make_team(api, org, "Second")

    moved = ok_data(
        api.patch(
            org.path(f"/teams/{second['id']}"),
            json={"name": "Second, renamed", "parent_id": first["id"]},
            headers=org.owner.headers,
        )
    )

    assert moved == {
        "id": second["id"],
        "name": "Second, renamed",
        "parent_id": first["id"],
        "version": 2,  # one more, for one command that changed two fields
        "updated_at": moved["updated_at"],
    }
    assert datetime.fromisoformat(moved["updated_at"]) > datetime.fromisoformat(
        second["updated_at"]
    )
    assert parent_of(db, second["id"]) == first["id"]
    change = change_rows(db, uuid.UUID(second["id"]))[-1]
    assert change["op"] == "updated"
    assert change["payload"] == {
        "old": {"name": "Second", "parent_id": None},
        "new": {"name": "Second, renamed", "parent_id": first["id"]},
    }

    back = ok_data(
        api.patch(
            org.path(f"/teams/{second['id']}"), json={"parent_id": None}, headers=org.owner.headers
        )
    )
    assert back["parent_id"] is None
    assert back["name"] == "Second, renamed"


def test_a_team_cannot_move_under_itself_or_its_descendants(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    top = make_team(api, org, "Top")
    middle = make_team(api, org, "Middle", top["id"])
    bottom = make_team(api, org, "Bottom", middle["id"])

    for new_parent in (top["id"], middle["id"], bottom["id"]):
        body = refused(
            api.patch(
                org.path(f"/teams/{top['id']}"),
                json={"parent_id": new_parent},
                headers=org.owner.headers,
            ),
            400,
            "BUSINESS_RULE",
        )
        assert "sub-teams" in body["error"]
    assert parent_of(db, top["id"]) is None
    assert len(change_rows(db, uuid.UUID(top["id"]))) == 1

    # Moving a descendant up (or sideways) is fine.
    ok_data(
        api.patch(
            org.path(f"/teams/{bottom['id']}"),
            json={"parent_id": top["id"]},
            headers=org.owner.headers,
        )
    )
    assert parent_of(db, bottom["id"]) == top["id"]


def test_concurrent_moves_cannot_make_a_cycle(
    api: httpx.Client, db: Engine, org: OrgHandle, command_server: Any
) -> None:
    for _ in range(3):
        a, b = make_team(api, org, "A"), make_team(api, org, "B")

        statuses = race(
            command_server.url,
            [
                ("PATCH", org.path(f"/teams/{a['id']}"), {"parent_id": b["id"]}, org.owner),
                ("PATCH", org.path(f"/teams/{b['id']}"), {"parent_id": a["id"]}, org.owner),
            ],
        )

        assert statuses == [200, 400]
        assert [parent_of(db, a["id"]), parent_of(db, b["id"])].count(None) == 1


def test_updating_a_team_of_another_organization_is_not_found(
    api: httpx.Client, org: OrgHandle, other_org: OrgHandle
) -> None:
    foreign = make_team(api, other_org)
    mine = make_team(api, org)
    refused(
        api.patch(
            org.path(f"/teams/{foreign['id']}"), json={"name": "X"}, headers=org.owner.headers
        ),
        404,
        "NOT_FOUND",
    )
    refused(
        api.patch(
            org.path(f"/teams/{mine['id']}"),
            json={"parent_id": foreign["id"]},
            headers=org.owner.headers,
        ),
        404,
        "NOT_FOUND",
    )
    refused(
        api.patch(
            other_org.path(f"/teams/{foreign['id']}"), json={"name": "X"}, headers=org.owner.headers
        ),
        404,
        "NOT_FOUND",
    )


@pytest.mark.parametrize("role", ["manager", "member"])
def test_updating_teams_needs_admin(
    api: httpx.Client, org: OrgHandle, role: str, request: pytest.FixtureRequest
) -> None:
    caller: UserHandle = request.getfixturevalue(role)
    team = make_team(api, org)
    refused(
        api.patch(org.path(f"/teams/{team['id']}"), json={"name": "X"}, headers=caller.headers),
        403,
        "FORBIDDEN",
    )


def test_team_name_cannot_be_null(api: httpx.Client, org: OrgHandle) -> None:
    team = make_team(api, org)
    response = api.patch(
        org.path(f"/teams/{team['id']}"), json={"name": None}, headers=org.owner.headers
    )
    assert "name" in invalid_fields(response)


# --- Delete ----------------------------------------------------------------------------


def test_deleting_a_team_moves_its_children_up_and_drops_its_links(
    api: httpx.Client, db: Engine, org: OrgHandle, member: UserHandle
) -> None:
    top = make_team(api, org, "Top")
    middle = make_team(api, org, "Middle", top["id"])
    left = make_team(api, org, "Left", middle["id"])
    right = make_team(api, org, "Right", middle["id"])
    ok_data(
        api.put(
            org.path(f"/teams/{middle['id']}/members/{member.id}"),
            json={"is_lead": True},
            headers=org.owner.headers,
        )
    )

    response = api.delete(org.path(f"/teams/{middle['id']}"), headers=org.owner.headers)

    assert response.status_code == 204, response.text
    stored = row(db, "SELECT deleted_at FROM teams WHERE id = :id", id=uuid.UUID(middle["id"]))
    assert stored is not None
    assert stored["deleted_at"] is not None
    assert parent_of(db, left["id"]) == top["id"]
    assert parent_of(db, right["id"]) == top["id"]
    assert team_member_rows(db, uuid.UUID(middle["id"])) == []
    # A child moved up is a change of the child: its version moves too.
    moved = row(db, "SELECT version FROM teams WHERE id = :id", id=uuid.UUID(left["id"]))
    assert moved == {"version": 2}

    middle_changes = change_rows(db, uuid.UUID(middle["id"]))
    deleted = [c for c in middle_changes if c["entity"] == "team"][-1]
    assert deleted["op"] == "deleted"
    assert deleted["payload"] == {"old": {"name": "Middle", "parent_id": top["id"]}, "new": None}
    unlinked = [c for c in middle_changes if c["entity"] == "team_member"][-1]
    assert unlinked["op"] == "deleted"
    assert unlinked["payload"]["old"] == {
        "team_id": middle["id"],
        "user_id": str(member.id),
        "is_lead": True,
    }
    moved = change_rows(db, uuid.UUID(left["id"]))[-1]
    assert moved["op"] == "updated"
    assert moved["payload"] == {
        "old": {"name": "Left", "parent_id": middle["id"]},
        "new": {"name": "Left", "parent_id": top["id"]},
    }

    # The deleted team is gone for every command.
    refused(
        api.delete(org.path(f"/teams/{middle['id']}"), headers=org.owner.headers), 404, "NOT_FOUND"
    )
    refused(
        api.post(
            org.path("/teams"),
            json={"name": "X", "parent_id": middle["id"]},
            headers=org.owner.headers,
        ),
        404,
        "NOT_FOUND",
    )


def test_deleting_a_root_team_makes_its_children_roots(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    root = make_team(api, org, "Root")
    child = make_team(api, org, "Child", root["id"])
    assert (
        api.delete(org.path(f"/teams/{root['id']}"), headers=org.owner.headers).status_code == 204
    )
    assert parent_of(db, child["id"]) is None


def test_deleting_teams_needs_admin_and_your_organization(
    api: httpx.Client, org: OrgHandle, other_org: OrgHandle, manager: UserHandle
) -> None:
    team = make_team(api, org)
    foreign = make_team(api, other_org)
    refused(api.delete(org.path(f"/teams/{team['id']}"), headers=manager.headers), 403, "FORBIDDEN")
    refused(
        api.delete(org.path(f"/teams/{foreign['id']}"), headers=org.owner.headers), 404, "NOT_FOUND"
    )


# --- Team members ----------------------------------------------------------------------


def test_put_team_member_inserts_then_updates(
    api: httpx.Client, db: Engine, org: OrgHandle, admin: UserHandle, member: UserHandle
) -> None:
    team = make_team(api, org)
    path = org.path(f"/teams/{team['id']}/members/{member.id}")
    team_id = uuid.UUID(team["id"])

    added = ok_data(api.put(path, headers=admin.headers))
    assert added == {"team_id": team["id"], "user_id": str(member.id), "is_lead": False}
    assert team_member_rows(db, team_id) == [{"user_id": member.id, "is_lead": False}]

    lead = ok_data(api.put(path, json={"is_lead": True}, headers=admin.headers))
    assert lead["is_lead"] is True
    # Without is_lead the flag stays as it is; nothing changes, nothing is recorded.
    assert ok_data(api.put(path, json={}, headers=admin.headers))["is_lead"] is True
    assert team_member_rows(db, team_id) == [{"user_id": member.id, "is_lead": True}]

    links = [c for c in change_rows(db, team_id) if c["entity"] == "team_member"]
    assert [c["op"] for c in links] == ["created", "updated"]
    assert links[0]["payload"] == {
        "old": None,
        "new": {"team_id": team["id"], "user_id": str(member.id), "is_lead": False},
    }
    assert links[1]["payload"]["old"]["is_lead"] is False
    assert links[1]["payload"]["new"]["is_lead"] is True


def test_only_members_of_the_organization_join_its_teams(
    api: httpx.Client, org: OrgHandle, other_org: OrgHandle, outsider: UserHandle
) -> None:
    team = make_team(api, org)
    for user_id in (outsider.id, other_org.owner.id, uuid.uuid4()):
        refused(
            api.put(org.path(f"/teams/{team['id']}/members/{user_id}"), headers=org.owner.headers),
            404,
            "NOT_FOUND",
        )
    foreign = make_team(api, other_org)
    refused(
        api.put(
            org.path(f"/teams/{foreign['id']}/members/{org.owner.id}"), headers=org.owner.headers
        ),
        404,
        "NOT_FOUND",
    )


@pytest.mark.parametrize("role", ["manager", "member"])
def test_team_membership_needs_admin(
    api: httpx.Client,
    org: OrgHandle,
    member: UserHandle,
    role: str,
    request: pytest.FixtureRequest,
) -> None:
    caller: UserHandle = request.getfixturevalue(role)
    team = make_team(api, org)
    path = org.path(f"/teams/{team['id']}/members/{member.id}")
    refused(api.put(path, json={"is_lead": True}, headers=caller.headers), 403, "FORBIDDEN")
    ok_data(api.put(path, headers=org.owner.headers))
    refused(api.delete(path, headers=caller.headers), 403, "FORBIDDEN")


def test_is_lead_must_be_a_boolean(api: httpx.Client, org: OrgHandle, member: UserHandle) -> None:
    team = make_team(api, org)
    response = api.put(
        org.path(f"/teams/{team['id']}/members/{member.id}"),
        json={"is_lead": "maybe"},
        headers=org.owner.headers,
    )
    assert "is_lead" in invalid_fields(response)


def test_remove_a_team_member(
    api: httpx.Client, db: Engine, org: OrgHandle, member: UserHandle
) -> None:
    team = make_team(api, org)
    path = org.path(f"/teams/{team['id']}/members/{member.id}")
    ok_data(api.put(path, json={"is_lead": True}, headers=org.owner.headers))

    response = api.delete(path, headers=org.owner.headers)

    assert response.status_code == 204, response.text
    assert team_member_rows(db, uuid.UUID(team["id"])) == []
    change = change_rows(db, uuid.UUID(team["id"]))[-1]
    assert change["entity"] == "team_member"
    assert change["op"] == "deleted"
    assert change["payload"] == {
        "old": {"team_id": team["id"], "user_id": str(member.id), "is_lead": True},
        "new": None,
    }
    refused(api.delete(path, headers=org.owner.headers), 404, "NOT_FOUND")
