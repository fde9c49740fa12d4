"""Small helpers shared by the projects module's tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.factories import OrgHandle, UserHandle


def unique_name(prefix: str = "Name") -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["success"] is True
    assert response.headers["X-Consistency-Token"]
    data: dict[str, Any] = body["data"]
    return data


def refused(response: httpx.Response, status: int, error_code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False
    assert body["error_code"] == error_code
    return body


def invalid_fields(response: httpx.Response) -> set[str]:
    body = refused(response, 422, "VALIDATION_ERROR")
    return {detail["field"] for detail in body["details"]}


def post(
    api: httpx.Client,
    org: OrgHandle,
    suffix: str,
    body: dict[str, Any],
    user: UserHandle | None = None,
) -> httpx.Response:
    return api.post(org.path(suffix), json=body, headers=(user or org.owner).headers)


def make_client(api: httpx.Client, org: OrgHandle, name: str | None = None) -> dict[str, Any]:
    return created(post(api, org, "/clients", {"name": name or unique_name("Client")}))


def make_project(api: httpx.Client, org: OrgHandle, **body: Any) -> dict[str, Any]:
    body.setdefault("name", unique_name("Project"))
    return created(post(api, org, "/projects", body))


def make_task(api: httpx.Client, org: OrgHandle, project_id: str, **body: Any) -> dict[str, Any]:
    body.setdefault("name", unique_name("Task"))
    return created(post(api, org, f"/projects/{project_id}/tasks", body))


def make_tag(api: httpx.Client, org: OrgHandle, name: str | None = None) -> dict[str, Any]:
    return created(post(api, org, "/tags", {"name": name or unique_name("Tag")}))
