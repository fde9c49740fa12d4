"""Races the database decides: duplicate names and project-member upserts never give a 500."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import text

from tests.command_api.projects.helpers import make_project, unique_name
from tests.factories import OrgHandle, UserHandle

PARALLEL = 12


def _in_parallel(
    base_url: str, calls: list[tuple[str, str, dict[str, Any], dict[str, str]]]
) -> list[int]:
    def run(call: tuple[str, str, dict[str, Any], dict[str, str]]) -> int:
        method, path, body, headers = call
        with httpx.Client(base_url=base_url, timeout=30) as client:
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
