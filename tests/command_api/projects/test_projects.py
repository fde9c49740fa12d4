from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.command_api.projects.helpers import (
    created,
    invalid_fields,
    make_client,
    make_project,
    post,
    refused,
    unique_name,
)
from tests.factories import OrgHandle, UserHandle, change_rows


def _project_row(db: Engine, project_id: str) -> dict[str, Any]:
    with db.connect() as conn:
        return dict(
            conn.execute(text("SELECT * FROM projects WHERE id = :id"), {"id": project_id})
            .mappings()
            .one()
        )


def test_manager_creates_a_project_with_every_field(api, db, org: OrgHandle, manager: UserHandle):
    client = make_client(api, org)
    name = unique_name("Website")
    body = {
        "name": name,
        "client_id": client["id"],
        "color": "#1A2b3C",
        "billable": False,
        "hourly_rate": 12_500,
        "budget_seconds": 36_000,
        "budget_amount": 500_000,
    }

    data = created(post(api, org, "/projects", body, manager))

    assert {k: data[k] for k in body} == body
    assert data["archived"] is False
    assert {"id", "created_at", "updated_at"} <= set(data)
    row = _project_row(db, data["id"])
    assert row["org_id"] == org.id
    assert row["client_id"] == uuid.UUID(client["id"])
    assert row["hourly_rate_amount"] == 12_500
    assert row["budget_amount"] == 500_000
    [change] = change_rows(db, uuid.UUID(data["id"]))
    assert (change["entity"], change["op"], change["org_id"]) == ("project", "created", org.id)
    assert change["payload"] == {
        "old": None,
        "new": {
            "name": name,
            "client_id": client["id"],
            "color": "#1A2b3C",
            "billable": False,
            "hourly_rate_amount": 12_500,
            "budget_seconds": 36_000,
            "budget_amount": 500_000,
            "archived": False,
        },
    }


def test_defaults_of_a_new_project(api, org: OrgHandle):
    data = make_project(api, org)
    assert data["billable"] is True
    for field in ("client_id", "color", "hourly_rate", "budget_seconds", "budget_amount"):
        assert data[field] is None


def test_a_member_may_not_create_a_project(api, org: OrgHandle, member: UserHandle):
    refused(post(api, org, "/projects", {"name": "Nope"}, member), 403, "FORBIDDEN")


def test_a_client_of_another_org_or_deleted_is_not_found(api, org: OrgHandle, other_org: OrgHandle):
    foreign = make_client(api, other_org)
    gone = make_client(api, org)
    api.delete(org.path(f"/clients/{gone['id']}"), headers=org.owner.headers)

    for client_id in (foreign["id"], gone["id"], str(uuid.uuid4())):
        body = refused(
            post(api, org, "/projects", {"name": "P", "client_id": client_id}), 404, "NOT_FOUND"
        )
        assert client_id in body["error"]


def test_duplicate_project_names_are_409(api, org: OrgHandle):
    project = make_project(api, org)
    refused(post(api, org, "/projects", {"name": project["name"].lower()}), 409, "ALREADY_EXISTS")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": " \t "}, "name"),
        ({"name": "P", "color": "red"}, "color"),
        ({"name": "P", "color": "#12345"}, "color"),
        ({"name": "P", "color": "#GGGGGG"}, "color"),
        ({"name": "P", "budget_seconds": -1}, "budget_seconds"),
        ({"name": "P", "budget_seconds": 0}, "budget_seconds"),
        ({"name": "P", "budget_amount": -5}, "budget_amount"),
        ({"name": "P", "hourly_rate": -1}, "hourly_rate"),
        ({"name": "P", "hourly_rate": "lots"}, "hourly_rate"),
        ({"name": "P", "billable": "maybe"}, "billable"),
        ({"name": "P", "client_id": "not-a-uuid"}, "client_id"),
        ({"name": "P", "archived": True}, "archived"),
        ({"name": "P", "owner": "me"}, "owner"),
    ],
)
def test_malformed_project_bodies_are_422(api, org: OrgHandle, body, field):
    assert invalid_fields(post(api, org, "/projects", body)) == {field}


def test_update_a_project(api, db, org: OrgHandle, manager: UserHandle):
    client = make_client(api, org)
    project = make_project(api, org, hourly_rate=100, color="#000000")
    new_name = unique_name("Renamed")

    response = api.patch(
        org.path(f"/projects/{project['id']}"),
        json={
            "name": new_name,
            "client_id": client["id"],
            "billable": False,
            "hourly_rate": 250,
            "budget_seconds": 3600,
            "budget_amount": 9000,
            "archived": True,
        },
        headers=manager.headers,
    )

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["name"] == new_name
    assert data["client_id"] == client["id"]
    assert data["hourly_rate"] == 250
    assert data["archived"] is True
    assert data["color"] == "#000000"
    row = _project_row(db, project["id"])
    assert (row["name"], row["billable"], row["archived"]) == (new_name, False, True)
    change = change_rows(db, uuid.UUID(project["id"]))[-1]
    assert change["op"] == "updated"
    old, new = change["payload"]["old"], change["payload"]["new"]
    assert (old["name"], old["client_id"], old["hourly_rate_amount"]) == (
        project["name"],
        None,
        100,
    )
    assert (new["name"], new["client_id"], new["hourly_rate_amount"]) == (
        new_name,
        client["id"],
        250,
    )
    assert (old["archived"], new["archived"]) == (False, True)
    assert (old["billable"], new["billable"]) == (True, False)


def test_null_clears_nullable_project_fields(api, db, org: OrgHandle):
    client = make_client(api, org)
    project = make_project(
        api, org, client_id=client["id"], color="#FFFFFF", hourly_rate=1, budget_seconds=60
    )

    response = api.patch(
        org.path(f"/projects/{project['id']}"),
        json={"client_id": None, "color": None, "hourly_rate": None, "budget_seconds": None},
        headers=org.owner.headers,
    )

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["client_id"] is None
    assert data["color"] is None
    assert data["hourly_rate"] is None
    assert data["budget_seconds"] is None
    assert _project_row(db, project["id"])["client_id"] is None


def test_project_patch_refusals(api, org: OrgHandle, other_org: OrgHandle, member: UserHandle):
    project = make_project(api, org)
    taken = make_project(api, org)
    foreign_client = make_client(api, other_org)
    foreign_project = make_project(api, other_org)
    path = org.path(f"/projects/{project['id']}")
    owner = org.owner.headers

    refused(api.patch(path, json={"name": taken["name"]}, headers=owner), 409, "ALREADY_EXISTS")
    refused(api.patch(path, json={"archived": True}, headers=member.headers), 403, "FORBIDDEN")
    refused(
        api.patch(path, json={"client_id": foreign_client["id"]}, headers=owner), 404, "NOT_FOUND"
    )
    refused(
        api.patch(
            org.path(f"/projects/{foreign_project['id']}"), json={"name": "X"}, headers=owner
        ),
        404,
        "NOT_FOUND",
    )
    assert invalid_fields(api.patch(path, json={"name": None}, headers=owner)) == {"name"}
    assert invalid_fields(api.patch(path, json={"billable": None}, headers=owner)) == {"billable"}
    assert invalid_fields(api.patch(path, json={"color": "blue"}, headers=owner)) == {"color"}
    assert invalid_fields(api.patch(path, json={"budget_amount": 0}, headers=owner)) == {
        "budget_amount"
    }
    assert invalid_fields(api.patch(path, json={"tasks": []}, headers=owner)) == {"tasks"}


def test_delete_a_project(api, db, org: OrgHandle, manager: UserHandle, member: UserHandle):
    project = make_project(api, org)
    path = org.path(f"/projects/{project['id']}")

    refused(api.delete(path, headers=member.headers), 403, "FORBIDDEN")
    assert api.delete(path, headers=manager.headers).status_code == 204

    assert _project_row(db, project["id"])["deleted_at"] is not None
    last = change_rows(db, uuid.UUID(project["id"]))[-1]
    assert last["op"] == "deleted"
    assert last["payload"]["new"] is None
    assert last["payload"]["old"]["name"] == project["name"]
    refused(api.delete(path, headers=manager.headers), 404, "NOT_FOUND")
    refused(api.patch(path, json={"name": "X"}, headers=manager.headers), 404, "NOT_FOUND")
    # The name is free again.
    make_project(api, org, name=project["name"])


def test_another_orgs_project_cannot_be_deleted(api, db, org: OrgHandle, other_org: OrgHandle):
    foreign = make_project(api, other_org)
    refused(
        api.delete(org.path(f"/projects/{foreign['id']}"), headers=org.owner.headers),
        404,
        "NOT_FOUND",
    )
    assert _project_row(db, foreign["id"])["deleted_at"] is None
