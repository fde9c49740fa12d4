from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Engine, text

from tests.command_api.projects.helpers import (
    created,
    invalid_fields,
    make_tag,
    post,
    refused,
    unique_name,
)
from tests.factories import OrgHandle, UserHandle, change_rows


def _tag_row(db: Engine, tag_id: str) -> dict[str, Any]:
    with db.connect() as conn:
        return dict(
            conn.execute(text("SELECT * FROM tags WHERE id = :id"), {"id": tag_id}).mappings().one()
        )


def test_any_member_creates_a_tag(api, db, org: OrgHandle, member: UserHandle):
    name = unique_name("urgent")
    data = created(post(api, org, "/tags", {"name": name}, member))

    assert data["name"] == name
    assert _tag_row(db, data["id"])["org_id"] == org.id
    [change] = change_rows(db, uuid.UUID(data["id"]))
    assert (change["entity"], change["op"], change["org_id"]) == ("tag", "created", org.id)
    assert change["payload"] == {"old": None, "new": {"name": name}}


def test_tag_creation_refusals(api, org: OrgHandle, other_org: OrgHandle):
    tag = make_tag(api, org)

    refused(post(api, org, "/tags", {"name": tag["name"].upper()}), 409, "ALREADY_EXISTS")
    refused(post(api, org, "/tags", {"name": "x"}, other_org.owner), 404, "NOT_FOUND")
    assert invalid_fields(post(api, org, "/tags", {"name": ""})) == {"name"}
    assert invalid_fields(post(api, org, "/tags", {"name": "x" * 101})) == {"name"}
    assert invalid_fields(post(api, org, "/tags", {"name": "x", "color": "#FFFFFF"})) == {"color"}
    make_tag(api, other_org, tag["name"])


def test_rename_a_tag(api, db, org: OrgHandle, manager: UserHandle):
    tag = make_tag(api, org)
    new_name = unique_name("renamed")

    response = api.patch(
        org.path(f"/tags/{tag['id']}"), json={"name": new_name}, headers=manager.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["name"] == new_name
    assert _tag_row(db, tag["id"])["name"] == new_name
    change = change_rows(db, uuid.UUID(tag["id"]))[-1]
    assert change["op"] == "updated"
    assert change["payload"] == {"old": {"name": tag["name"]}, "new": {"name": new_name}}


def test_tag_patch_refusals(api, org: OrgHandle, other_org: OrgHandle, member: UserHandle):
    tag = make_tag(api, org)
    taken = make_tag(api, org)
    foreign = make_tag(api, other_org)
    path = org.path(f"/tags/{tag['id']}")
    owner = org.owner.headers

    refused(api.patch(path, json={"name": "mine"}, headers=member.headers), 403, "FORBIDDEN")
    refused(api.patch(path, json={"name": taken["name"]}, headers=owner), 409, "ALREADY_EXISTS")
    refused(
        api.patch(org.path(f"/tags/{foreign['id']}"), json={"name": "x"}, headers=owner),
        404,
        "NOT_FOUND",
    )
    assert invalid_fields(api.patch(path, json={"name": None}, headers=owner)) == {"name"}
    assert invalid_fields(api.patch(path, json={"archived": True}, headers=owner)) == {"archived"}


def test_delete_a_tag(
    api, db, org: OrgHandle, other_org: OrgHandle, manager: UserHandle, member: UserHandle
):
    tag = make_tag(api, org)
    foreign = make_tag(api, other_org)
    path = org.path(f"/tags/{tag['id']}")

    refused(api.delete(path, headers=member.headers), 403, "FORBIDDEN")
    refused(
        api.delete(org.path(f"/tags/{foreign['id']}"), headers=manager.headers), 404, "NOT_FOUND"
    )
    assert api.delete(path, headers=manager.headers).status_code == 204

    assert _tag_row(db, tag["id"])["deleted_at"] is not None
    assert _tag_row(db, foreign["id"])["deleted_at"] is None
    last = change_rows(db, uuid.UUID(tag["id"]))[-1]
    assert last["payload"] == {"old": {"name": tag["name"]}, "new": None}
    assert last["op"] == "deleted"
    refused(api.delete(path, headers=manager.headers), 404, "NOT_FOUND")
    make_tag(api, org, tag["name"])
