"""Races the database decides: duplicate names and project-member upserts never give a 500;
updates and deletes log what a concurrent change committed."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.command_api.locks import race
from tests.command_api.projects.helpers import (
    make_client,
    make_project,
    make_tag,
    make_task,
    unique_name,
)
from tests.factories import OrgHandle, UserHandle

PARALLEL = 12


def _in_parallel(
    base_url: str, calls: list[tuple[str, str, dict[str, Any], dict[str, str]]]
) -> list[int]:
    def run(call: tuple[str, str, dict[str, Any], dict[str, str]]) -> int:
        method, path, body, headers = call
        with httpx.Client(base_url=base_url, timeout=60) as client:
            return client.request(method, path, json=body, headers=headers).status_code

    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(run, calls))


def test_concurrent_creates_of_one_name_make_one_client(api, db, org: OrgHandle):
    name = unique_name("Race")
    calls = [("POST", org.path("/clients"), {"name": name}, org.owner.headers)] * PARALLEL

    statuses = Counter(_in_parallel(str(api.base_url), calls))

    assert statuses == {201: 1, 409: PARALLEL - 1}
    with db.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM clients WHERE org_id = :org AND name = :name"),
            {"org": org.id, "name": name},
        ).scalar_one()
    assert count == 1


def test_concurrent_project_member_puts_make_one_link(api, db, org: OrgHandle, member: UserHandle):
    project = make_project(api, org)
    path = org.path(f"/projects/{project['id']}/members/{member.id}")
    calls = [("PUT", path, {"hourly_rate": i}, org.owner.headers) for i in range(PARALLEL)]

    statuses = _in_parallel(str(api.base_url), calls)

    assert set(statuses) == {200}
    with db.connect() as conn:
        links = conn.execute(
            text("SELECT count(*) FROM project_members WHERE project_id = :p"), {"p": project["id"]}
        ).scalar_one()
        created = conn.execute(
            text(
                "SELECT count(*) FROM changes WHERE entity = 'project_member'"
                " AND entity_id = :p AND op = 'created'"
            ),
            {"p": project["id"]},
        ).scalar_one()
    assert (links, created) == (1, 1)


def test_an_idempotent_retry_creates_one_tag(api, db, org: OrgHandle, member: UserHandle):
    headers = {**member.headers, "Idempotency-Key": unique_name("key")}
    body = {"name": unique_name("once")}

    first = api.post(org.path("/tags"), json=body, headers=headers)
    again = api.post(org.path("/tags"), json=body, headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    with db.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM tags WHERE org_id = :org"), {"org": org.id}
        ).scalar_one()
    assert count == 1


def _records(api: httpx.Client, org: OrgHandle) -> dict[str, tuple[str, str, str]]:
    """(table, record id, path) of a client, a project, a task and a tag."""
    client = make_client(api, org)
    project = make_project(api, org)
    task = make_task(api, org, project["id"])
    tag = make_tag(api, org)
    return {
        "client": ("clients", client["id"], f"/clients/{client['id']}"),
        "project": ("projects", project["id"], f"/projects/{project['id']}"),
        "task": ("tasks", task["id"], f"/projects/{project['id']}/tasks/{task['id']}"),
        "tag": ("tags", tag["id"], f"/tags/{tag['id']}"),
    }


# An edit per entity; only tags have nothing to change but their name.
_EDITS: dict[str, dict[str, Any]] = {
    "client": {"archived": True},
    "project": {"billable": False},
    "task": {"done": True},
    "tag": {"name": "Edited tag"},
}


@pytest.mark.parametrize("entity", sorted(_EDITS))
def test_an_update_waits_for_a_concurrent_rename_and_logs_it(
    api: httpx.Client, db: Engine, org: OrgHandle, entity: str
) -> None:
    """The record is locked before its old values are read: the change row's `old` is what
    the concurrent rename committed, and `new` is what this transaction commits."""
    table, record_id, suffix = _records(api, org)[entity]
    renamed = unique_name("Renamed")
    edit = _EDITS[entity]
    response = race(
        db,
        f"UPDATE {table} SET name = :name WHERE id = :id",
        {"name": renamed, "id": record_id},
        lambda: api.patch(org.path(suffix), json=edit, headers=org.owner.headers),
    )

    assert response.status_code == 200, response.text
    old, new = _last_change(db, record_id)
    assert old["name"] == renamed
    assert new == {**old, **edit}
    assert response.json()["data"]["name"] == new["name"]


@pytest.mark.parametrize("entity", sorted(_EDITS))
def test_a_delete_waits_for_a_concurrent_rename_and_logs_it(
    api: httpx.Client, db: Engine, org: OrgHandle, entity: str
) -> None:
    table, record_id, suffix = _records(api, org)[entity]
    renamed = unique_name("Renamed")
    response = race(
        db,
        f"UPDATE {table} SET name = :name WHERE id = :id",
        {"name": renamed, "id": record_id},
        lambda: api.delete(org.path(suffix), headers=org.owner.headers),
    )

    assert response.status_code == 204, response.text
    old, new = _last_change(db, record_id)
    assert (old["name"], new) == (renamed, None)


def _last_change(db: Engine, record_id: str) -> tuple[Any, Any]:
    with db.connect() as conn:
        payload = (
            conn.execute(
                text("SELECT payload FROM changes WHERE entity_id = :id ORDER BY tx DESC, id DESC"),
                {"id": record_id},
            )
            .scalars()
            .first()
        )
    assert payload is not None
    return payload["old"], payload["new"]
