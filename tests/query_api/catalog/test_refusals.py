"""Refusals: strangers and other organizations' ids are 404s, bad parameters 422s naming
the parameter, no credentials 401."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import Engine

from tests.factories import OrgHandle, add_member, make_org, make_user
from tests.query_api.catalog.helpers import Reader, Writer

ORG_ENDPOINTS = (
    "",
    "/members",
    "/teams",
    "/clients",
    "/projects",
    "/tags",
    "/timer",
)


def _catalog(writer: Writer, org: OrgHandle) -> dict[str, uuid.UUID]:
    project = writer.create(org, "/projects", {"name": "P"})
    return {
        "project": project,
        "task": writer.create(org, f"/projects/{project}/tasks", {"name": "T"}),
        "client": writer.create(org, "/clients", {"name": "C"}),
        "team": writer.create(org, "/teams", {"name": "Team"}),
    }


def _assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error_code"] == "NOT_FOUND"


def test_a_non_member_gets_404_everywhere_in_the_organization(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    org = make_org(db)
    stranger = make_user(db)
    make_org(db, owner=stranger)  # an owner elsewhere is still a stranger here
    ids = _catalog(writer, org)  # the last write's token covers the stranger too
    for suffix in (
        *ORG_ENDPOINTS,
        f"/projects/{ids['project']}",
        f"/projects/{ids['project']}/tasks",
    ):
        _assert_not_found(reader.get(org.path(suffix), stranger))
    _assert_not_found(reader.get(f"/organizations/{uuid.uuid4()}", stranger))


def test_another_organizations_ids_are_404(db: Engine, writer: Writer, reader: Reader) -> None:
    mine = make_org(db)
    member = add_member(db, mine, "member")
    theirs = make_org(db)
    mine_ids = _catalog(writer, mine)
    their_ids = _catalog(writer, theirs)
    project = their_ids["project"]

    for user in (mine.owner, member):
        _assert_not_found(reader.get(mine.path(f"/projects/{project}"), user))
        _assert_not_found(reader.get(mine.path(f"/projects/{project}/tasks"), user))
        _assert_not_found(reader.get(mine.path("/projects"), user, client_id=their_ids["client"]))
        _assert_not_found(reader.get(mine.path("/members"), user, team_id=their_ids["team"]))
        _assert_not_found(reader.get(mine.path(f"/projects/{uuid.uuid4()}"), user))
    # The same ids in their own organization are fine for its owner.
    assert reader.get(theirs.path(f"/projects/{project}/tasks"), theirs.owner).status_code == 200
    ok = reader.get(mine.path("/projects"), member, client_id=mine_ids["client"])
    assert ok.status_code == 200, ok.text


BAD_PARAMETERS: list[tuple[str, dict[str, Any], str]] = [
    ("/organizations", {"page_size": 0}, "page_size"),
    ("/organizations", {"page_size": 10000}, "page_size"),
    ("/organizations", {"page": 0}, "page"),
    ("/organizations", {"page": "first"}, "page"),
    ("/organizations/not-a-uuid", {}, "org_id"),
    ("{org}/members", {"page_size": 0}, "page_size"),
    ("{org}/members", {"team_id": "nope"}, "team_id"),
    ("{org}/members", {"role": "boss"}, "role"),
    ("{org}/teams", {"page_size": 10000}, "page_size"),
    ("{org}/clients", {"archived": "perhaps"}, "archived"),
    ("{org}/clients", {"page_size": 10000}, "page_size"),
    ("{org}/projects", {"client_id": "12345"}, "client_id"),
    ("{org}/projects", {"archived": "perhaps"}, "archived"),
    ("{org}/projects", {"search": "x" * 201}, "search"),
    ("{org}/projects", {"page_size": 0}, "page_size"),
    ("{org}/projects/not-a-uuid", {}, "project_id"),
    ("{org}/projects/not-a-uuid/tasks", {}, "project_id"),
    ("{org}/projects/{project}/tasks", {"done": "perhaps"}, "done"),
    ("{org}/projects/{project}/tasks", {"page_size": 10000}, "page_size"),
    ("{org}/tags", {"page_size": 0}, "page_size"),
    ("{org}/tags", {"page_size": 10000}, "page_size"),
]


def test_bad_parameters_are_422_naming_the_parameter(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    org = make_org(db)
    project = writer.create(org, "/projects", {"name": "P"})
    for template, params, field in BAD_PARAMETERS:
        path = template.format(org=org.path(), project=project)
        response = reader.get(path, org.owner, **params)
        assert response.status_code == 422, (path, params, response.text)
        body = response.json()
        assert body["error_code"] == "VALIDATION_ERROR", path
        assert field in [detail["field"] for detail in body["details"]], (path, body)


def test_no_credentials_is_401(qapi: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    for path in ("/me", "/organizations", org.path("/projects"), org.path("/timer")):
        response = qapi.get(path)
        assert response.status_code == 401, path
        assert response.json()["error_code"] == "UNAUTHORIZED"
