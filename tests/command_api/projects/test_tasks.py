from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Engine, text

from tests.command_api.projects.helpers import (
    created,
    invalid_fields,
    make_project,
    make_task,
    post,
    refused,
    unique_name,
)
from tests.factories import OrgHandle, UserHandle, change_rows


def _task_row(db: Engine, task_id: str) -> dict[str, Any]:
    with db.connect() as conn:
        return dict(
            conn.execute(text("SELECT * FROM tasks WHERE id = :id"), {"id": task_id})
            .mappings()
            .one()
        )


def test_manager_creates_a_task(api, db, org: OrgHandle, manager: UserHandle):
    project = make_project(api, org)
    name = unique_name("Design")

    data = created(
        post(
            api,
            org,
            f"/projects/{project['id']}/tasks",
            {"name": f" {name} ", "budget_seconds": 7200},
            manager,
        )
    )

    assert {k: data[k] for k in ("project_id", "name", "budget_seconds", "done")} == {
        "project_id": project["id"],
        "name": name,
        "budget_seconds": 7200,
        "done": False,
    }
    row = _task_row(db, data["id"])
    assert (row["org_id"], row["project_id"]) == (org.id, uuid.UUID(project["id"]))
    [change] = change_rows(db, uuid.UUID(data["id"]))
    assert (change["entity"], change["op"], change["org_id"]) == ("task", "created", org.id)
    assert change["payload"] == {
        "old": None,
        "new": {"project_id": project["id"], "name": name, "budget_seconds": 7200, "done": False},
    }


def test_task_creation_refusals(api, org: OrgHandle, other_org: OrgHandle, member: UserHandle):
    project = make_project(api, org)
    foreign = make_project(api, other_org)
    gone = make_project(api, org)
    api.delete(org.path(f"/projects/{gone['id']}"), headers=org.owner.headers)
    tasks = f"/projects/{project['id']}/tasks"

    refused(post(api, org, tasks, {"name": "T"}, member), 403, "FORBIDDEN")
    refused(post(api, org, f"/projects/{foreign['id']}/tasks", {"name": "T"}), 404, "NOT_FOUND")
    refused(post(api, org, f"/projects/{gone['id']}/tasks", {"name": "T"}), 404, "NOT_FOUND")
    assert invalid_fields(post(api, org, tasks, {"name": ""})) == {"name"}
    assert invalid_fields(post(api, org, tasks, {"name": "T", "budget_seconds": -60})) == {
        "budget_seconds"
    }
    assert invalid_fields(post(api, org, tasks, {"name": "T", "done": True})) == {"done"}


def test_update_a_task(api, db, org: OrgHandle, manager: UserHandle):
    project = make_project(api, org)
    task = make_task(api, org, project["id"])
    new_name = unique_name("Renamed")

    response = api.patch(
        org.path(f"/projects/{project['id']}/tasks/{task['id']}"),
        json={"name": new_name, "done": True, "budget_seconds": 60},
        headers=manager.headers,
    )

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["name"], data["done"], data["budget_seconds"]) == (new_name, True, 60)
    row = _task_row(db, task["id"])
    assert (row["name"], row["done"], row["budget_seconds"]) == (new_name, True, 60)
    change = change_rows(db, uuid.UUID(task["id"]))[-1]
    assert change["op"] == "updated"
    assert change["payload"]["old"] == {
        "project_id": project["id"],
        "name": task["name"],
        "budget_seconds": None,
        "done": False,
    }
    assert change["payload"]["new"] == {
        "project_id": project["id"],
        "name": new_name,
        "budget_seconds": 60,
        "done": True,
    }


def test_task_patch_refusals(api, org: OrgHandle, other_org: OrgHandle, member: UserHandle):
    project = make_project(api, org)
    sibling = make_project(api, org)
    task = make_task(api, org, project["id"])
    foreign_project = make_project(api, other_org)
    foreign_task = make_task(api, other_org, foreign_project["id"])
    owner = org.owner.headers
    path = org.path(f"/projects/{project['id']}/tasks/{task['id']}")

    refused(api.patch(path, json={"done": True}, headers=member.headers), 403, "FORBIDDEN")
    # A task through another project of the same organization.
    refused(
        api.patch(
            org.path(f"/projects/{sibling['id']}/tasks/{task['id']}"),
            json={"done": True},
            headers=owner,
        ),
        404,
        "NOT_FOUND",
    )
    refused(
        api.patch(
            org.path(f"/projects/{foreign_project['id']}/tasks/{foreign_task['id']}"),
            json={"done": True},
            headers=owner,
        ),
        404,
        "NOT_FOUND",
    )
    assert invalid_fields(api.patch(path, json={"done": None}, headers=owner)) == {"done"}
    assert invalid_fields(api.patch(path, json={"name": " "}, headers=owner)) == {"name"}
    assert invalid_fields(api.patch(path, json={"budget_seconds": 0}, headers=owner)) == {
        "budget_seconds"
    }
    assert invalid_fields(api.patch(path, json={"project_id": sibling["id"]}, headers=owner)) == {
        "project_id"
    }


def test_delete_a_task(api, db, org: OrgHandle, manager: UserHandle, member: UserHandle):
    project = make_project(api, org)
    task = make_task(api, org, project["id"])
    path = org.path(f"/projects/{project['id']}/tasks/{task['id']}")

    refused(api.delete(path, headers=member.headers), 403, "FORBIDDEN")
    assert api.delete(path, headers=manager.headers).status_code == 204

    assert _task_row(db, task["id"])["deleted_at"] is not None
    last = change_rows(db, uuid.UUID(task["id"]))[-1]
    assert last["op"] == "deleted"
    assert last["payload"]["old"]["name"] == task["name"]
    assert last["payload"]["new"] is None
    refused(api.delete(path, headers=manager.headers), 404, "NOT_FOUND")


def test_tasks_of_a_deleted_project_are_unreachable(api, org: OrgHandle):
    project = make_project(api, org)
    task = make_task(api, org, project["id"])
    api.delete(org.path(f"/projects/{project['id']}"), headers=org.owner.headers)

    refused(
        api.patch(
            org.path(f"/projects/{project['id']}/tasks/{task['id']}"),
            json={"done": True},
            headers=org.owner.headers,
        ),
        404,
        "NOT_FOUND",
    )
