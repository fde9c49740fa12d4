from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Engine, text

from tests.command_api.projects.helpers import invalid_fields, make_project, refused
from tests.factories import OrgHandle, UserHandle, add_member, change_rows, make_user


def _links(db: Engine, project_id: str) -> dict[uuid.UUID, int | None]:
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT user_id, hourly_rate_amount, org_id FROM project_members"
                " WHERE project_id = :id"
            ),
            {"id": project_id},
        )
        return {user_id: rate for user_id, rate, _ in rows}


def _member_changes(db: Engine, project_id: str) -> list[dict[str, Any]]:
    return [c for c in change_rows(db, uuid.UUID(project_id)) if c["entity"] == "project_member"]


def test_put_adds_then_updates_a_project_member(
    api, db, org: OrgHandle, manager: UserHandle, member: UserHandle
):
    project = make_project(api, org)
    path = org.path(f"/projects/{project['id']}/members/{member.id}")

    first = api.put(path, json={"hourly_rate": 4200}, headers=manager.headers)
    assert first.status_code == 200, first.text
    assert first.headers["X-Consistency-Token"]
    assert first.json()["data"] == {
        "project_id": project["id"],
        "user_id": str(member.id),
        "hourly_rate": 4200,
    }
    assert _links(db, project["id"]) == {member.id: 4200}

    second = api.put(path, json={"hourly_rate": 5000}, headers=manager.headers)
    assert second.status_code == 200
    assert second.json()["data"]["hourly_rate"] == 5000
    assert _links(db, project["id"]) == {member.id: 5000}

    # The same rate again changes nothing and writes no change row.
    assert api.put(path, json={"hourly_rate": 5000}, headers=manager.headers).status_code == 200

    changes = _member_changes(db, project["id"])
    assert [c["op"] for c in changes] == ["created", "updated"]
    assert changes[0]["org_id"] == org.id
    link = {"project_id": project["id"], "user_id": str(member.id)}
    assert changes[0]["payload"] == {"old": None, "new": {**link, "hourly_rate_amount": 4200}}
    assert changes[1]["payload"] == {
        "old": {**link, "hourly_rate_amount": 4200},
        "new": {**link, "hourly_rate_amount": 5000},
    }


def test_put_without_a_rate(api, db, org: OrgHandle, member: UserHandle):
    project = make_project(api, org)
    response = api.put(
        org.path(f"/projects/{project['id']}/members/{member.id}"),
        json={},
        headers=org.owner.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["hourly_rate"] is None
    assert _links(db, project["id"]) == {member.id: None}


def test_put_without_a_body(api, db, org: OrgHandle, member: UserHandle):
    project = make_project(api, org)
    path = org.path(f"/projects/{project['id']}/members/{member.id}")

    response = api.put(path, headers=org.owner.headers)

    assert response.status_code == 200, response.text
    assert response.json()["data"] == {
        "project_id": project["id"],
        "user_id": str(member.id),
        "hourly_rate": None,
    }
    assert _links(db, project["id"]) == {member.id: None}
    assert [c["op"] for c in _member_changes(db, project["id"])] == ["created"]
    # Like `{}`, no body on an existing link means no project-specific rate.
    assert api.put(path, json={"hourly_rate": 300}, headers=org.owner.headers).status_code == 200
    assert api.put(path, headers=org.owner.headers).status_code == 200
    assert _links(db, project["id"]) == {member.id: None}


def test_put_refusals(api, db, org: OrgHandle, other_org: OrgHandle, member: UserHandle):
    project = make_project(api, org)
    foreign_project = make_project(api, other_org)
    stranger = make_user(db)
    foreign_member = add_member(db, other_org, "member")
    owner = org.owner.headers

    def put(
        project_id: Any, user_id: Any, body: dict[str, Any] | None = None, headers: Any = owner
    ) -> Any:
        return api.put(
            org.path(f"/projects/{project_id}/members/{user_id}"), json=body or {}, headers=headers
        )

    refused(put(project["id"], member.id, headers=member.headers), 403, "FORBIDDEN")
    refused(put(project["id"], stranger.id), 404, "NOT_FOUND")
    refused(put(project["id"], foreign_member.id), 404, "NOT_FOUND")
    refused(put(project["id"], uuid.uuid4()), 404, "NOT_FOUND")
    refused(put(foreign_project["id"], member.id), 404, "NOT_FOUND")
    assert invalid_fields(put(project["id"], member.id, {"hourly_rate": -1})) == {"hourly_rate"}
    assert invalid_fields(put(project["id"], member.id, {"role": "lead"})) == {"role"}
    assert invalid_fields(put(project["id"], "nope")) == {"user_id"}
    assert _links(db, project["id"]) == {}
    assert _links(db, foreign_project["id"]) == {}


def test_a_removed_org_member_cannot_be_added(api, db, org: OrgHandle, member: UserHandle):
    project = make_project(api, org)
    with db.begin() as conn:
        conn.execute(
            text("UPDATE memberships SET deleted_at = now() WHERE org_id = :org AND user_id = :u"),
            {"org": org.id, "u": member.id},
        )
    refused(
        api.put(
            org.path(f"/projects/{project['id']}/members/{member.id}"),
            json={},
            headers=org.owner.headers,
        ),
        404,
        "NOT_FOUND",
    )


def test_delete_a_project_member(api, db, org: OrgHandle, manager: UserHandle, member: UserHandle):
    project = make_project(api, org)
    path = org.path(f"/projects/{project['id']}/members/{member.id}")
    api.put(path, json={"hourly_rate": 700}, headers=manager.headers)

    refused(api.delete(path, headers=member.headers), 403, "FORBIDDEN")
    response = api.delete(path, headers=manager.headers)

    assert response.status_code == 204
    assert response.headers["X-Consistency-Token"]
    assert _links(db, project["id"]) == {}
    last = _member_changes(db, project["id"])[-1]
    assert last["op"] == "deleted"
    assert last["payload"] == {
        "old": {"project_id": project["id"], "user_id": str(member.id), "hourly_rate_amount": 700},
        "new": None,
    }
    refused(api.delete(path, headers=manager.headers), 404, "NOT_FOUND")


def test_delete_through_another_org_is_not_found(api, db, org: OrgHandle, other_org: OrgHandle):
    foreign_project = make_project(api, other_org)
    foreign_member = add_member(db, other_org, "member")
    api.put(
        other_org.path(f"/projects/{foreign_project['id']}/members/{foreign_member.id}"),
        json={},
        headers=other_org.owner.headers,
    )
    refused(
        api.delete(
            org.path(f"/projects/{foreign_project['id']}/members/{foreign_member.id}"),
            headers=org.owner.headers,
        ),
        404,
        "NOT_FOUND",
    )
    assert _links(db, foreign_project["id"]) == {foreign_member.id: None}
