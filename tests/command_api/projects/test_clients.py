from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Engine, text

from tests.command_api.projects.helpers import (
    created,
    invalid_fields,
    make_client,
    post,
    refused,
    unique_name,
)
from tests.factories import OrgHandle, UserHandle, change_rows


def _client_row(db: Engine, client_id: str) -> dict[str, Any]:
    with db.connect() as conn:
        return dict(
            conn.execute(
                text("SELECT org_id, name, archived, deleted_at FROM clients WHERE id = :id"),
                {"id": client_id},
            )
            .mappings()
            .one()
        )


def test_manager_creates_a_client(api, db, org: OrgHandle, manager: UserHandle):
    name = unique_name("Acme")
    data = created(post(api, org, "/clients", {"name": f"  {name} "}, manager))

    assert data["name"] == name
    assert data["archived"] is False
    assert set(data) == {"id", "name", "archived", "version", "created_at", "updated_at"}
    row = _client_row(db, data["id"])
    assert row["org_id"] == org.id
    assert row["name"] == name
    assert row["deleted_at"] is None
    [change] = change_rows(db, uuid.UUID(data["id"]))
    assert change["entity"] == "client"
    assert change["op"] == "created"
    assert change["org_id"] == org.id
    assert change["payload"] == {"old": None, "new": {"name": name, "archived": False}}


def test_a_member_may_not_create_a_client(api, org: OrgHandle, member: UserHandle):
    refused(post(api, org, "/clients", {"name": "Nope"}, member), 403, "FORBIDDEN")


def test_outsiders_and_anonymous_callers_are_refused(api, org: OrgHandle, other_org: OrgHandle):
    refused(post(api, org, "/clients", {"name": "X"}, other_org.owner), 404, "NOT_FOUND")
    refused(api.post(org.path("/clients"), json={"name": "X"}), 401, "UNAUTHORIZED")


def test_duplicate_names_are_refused_ignoring_case(api, org: OrgHandle, other_org: OrgHandle):
    name = unique_name("Globex")
    make_client(api, org, name)

    body = refused(post(api, org, "/clients", {"name": name.upper()}), 409, "ALREADY_EXISTS")
    assert name.upper() in body["error"]
    # Another organization may use the same name.
    make_client(api, other_org, name)


def test_a_deleted_clients_name_can_be_reused(api, org: OrgHandle):
    client = make_client(api, org)
    assert (
        api.delete(org.path(f"/clients/{client['id']}"), headers=org.owner.headers).status_code
        == 204
    )

    again = make_client(api, org, client["name"])
    assert again["id"] != client["id"]


def test_malformed_client_bodies_are_422(api, org: OrgHandle):
    assert invalid_fields(post(api, org, "/clients", {"name": ""})) == {"name"}
    assert invalid_fields(post(api, org, "/clients", {"name": "   "})) == {"name"}
    assert invalid_fields(post(api, org, "/clients", {"name": "x" * 201})) == {"name"}
    assert invalid_fields(post(api, org, "/clients", {})) == {"name"}
    assert invalid_fields(post(api, org, "/clients", {"name": "A", "colour": "red"})) == {"colour"}


def test_rename_and_archive_a_client(api, db, org: OrgHandle, manager: UserHandle):
    client = make_client(api, org)
    new_name = unique_name("Renamed")

    response = api.patch(
        org.path(f"/clients/{client['id']}"),
        json={"name": new_name, "archived": True},
        headers=manager.headers,
    )

    assert response.status_code == 200, response.text
    assert response.headers["X-Consistency-Token"]
    data = response.json()["data"]
    assert data["name"] == new_name
    assert data["archived"] is True
    assert _client_row(db, client["id"])["archived"] is True
    changes = change_rows(db, uuid.UUID(client["id"]))
    assert [c["op"] for c in changes] == ["created", "updated"]
    assert changes[1]["payload"] == {
        "old": {"name": client["name"], "archived": False},
        "new": {"name": new_name, "archived": True},
    }


def test_a_patch_that_changes_nothing_writes_no_change(api, db, org: OrgHandle):
    client = make_client(api, org)
    response = api.patch(
        org.path(f"/clients/{client['id']}"),
        json={"name": client["name"]},
        headers=org.owner.headers,
    )
    assert response.status_code == 200
    assert len(change_rows(db, uuid.UUID(client["id"]))) == 1


def test_patch_refusals(api, org: OrgHandle, other_org: OrgHandle, member: UserHandle):
    client = make_client(api, org)
    taken = make_client(api, org)
    foreign = make_client(api, other_org)
    path = org.path(f"/clients/{client['id']}")
    owner = org.owner.headers

    refused(api.patch(path, json={"name": taken["name"]}, headers=owner), 409, "ALREADY_EXISTS")
    refused(api.patch(path, json={"archived": True}, headers=member.headers), 403, "FORBIDDEN")
    refused(
        api.patch(org.path(f"/clients/{foreign['id']}"), json={"name": "X"}, headers=owner),
        404,
        "NOT_FOUND",
    )
    refused(
        api.patch(org.path(f"/clients/{uuid.uuid4()}"), json={"name": "X"}, headers=owner),
        404,
        "NOT_FOUND",
    )
    assert invalid_fields(api.patch(path, json={"name": None}, headers=owner)) == {"name"}
    assert invalid_fields(api.patch(path, json={"archived": None}, headers=owner)) == {"archived"}
    assert invalid_fields(api.patch(path, json={"deleted": True}, headers=owner)) == {"deleted"}
    assert invalid_fields(api.patch(org.path("/clients/not-a-uuid"), json={}, headers=owner)) == {
        "client_id"
    }


def test_delete_a_client(api, db, org: OrgHandle, manager: UserHandle, member: UserHandle):
    client = make_client(api, org)
    path = org.path(f"/clients/{client['id']}")

    refused(api.delete(path, headers=member.headers), 403, "FORBIDDEN")
    response = api.delete(path, headers=manager.headers)

    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["X-Consistency-Token"]
    assert _client_row(db, client["id"])["deleted_at"] is not None
    last = change_rows(db, uuid.UUID(client["id"]))[-1]
    assert last["op"] == "deleted"
    assert last["payload"] == {"old": {"name": client["name"], "archived": False}, "new": None}
    refused(api.delete(path, headers=manager.headers), 404, "NOT_FOUND")
    refused(api.patch(path, json={"name": "Back"}, headers=manager.headers), 404, "NOT_FOUND")


def test_another_orgs_client_cannot_be_deleted(api, db, org: OrgHandle, other_org: OrgHandle):
    foreign = make_client(api, other_org)
    refused(
        api.delete(org.path(f"/clients/{foreign['id']}"), headers=org.owner.headers),
        404,
        "NOT_FOUND",
    )
    assert _client_row(db, foreign["id"])["deleted_at"] is None
