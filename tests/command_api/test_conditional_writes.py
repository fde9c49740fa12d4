"""Versions and conditional writes (API.md): every write moves an entity's `version` by one,
and PATCH or DELETE with `If-Match` writes only over the version it names."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.conftest import LiveServer
from tests.factories import OrgHandle, make_org

CONCURRENCY = 12


@dataclass(frozen=True)
class Kind:
    """How to create one entity of a kind, where it lives, and an edit of it."""

    table: str
    create: Callable[[httpx.Client, OrgHandle], tuple[str, dict[str, Any]]]  # (its path, body)
    edit: Callable[[int], dict[str, Any]]


def _post(api: httpx.Client, org: OrgHandle, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(org.path(path), json=body, headers=org.owner.headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _name() -> str:
    return f"Name {uuid.uuid4().hex[:8]}"


def _client(api: httpx.Client, org: OrgHandle) -> tuple[str, dict[str, Any]]:
    data = _post(api, org, "/clients", {"name": _name()})
    return f"/clients/{data['id']}", data


def _project(api: httpx.Client, org: OrgHandle) -> tuple[str, dict[str, Any]]:
    data = _post(api, org, "/projects", {"name": _name()})
    return f"/projects/{data['id']}", data


def _task(api: httpx.Client, org: OrgHandle) -> tuple[str, dict[str, Any]]:
    project = _post(api, org, "/projects", {"name": _name()})
    data = _post(api, org, f"/projects/{project['id']}/tasks", {"name": _name()})
    return f"/projects/{project['id']}/tasks/{data['id']}", data


def _tag(api: httpx.Client, org: OrgHandle) -> tuple[str, dict[str, Any]]:
    data = _post(api, org, "/tags", {"name": _name()})
    return f"/tags/{data['id']}", data


def _entry(api: httpx.Client, org: OrgHandle) -> tuple[str, dict[str, Any]]:
    body = {"start_at": "2026-03-02T09:00:00Z", "end_at": "2026-03-02T10:00:00Z"}
    data = _post(api, org, "/time-entries", body)
    return f"/time-entries/{data['id']}", data


KINDS = {
    "client": Kind("clients", _client, lambda n: {"name": f"Client, edit {n}"}),
    "project": Kind("projects", _project, lambda n: {"name": f"Project, edit {n}"}),
    "task": Kind("tasks", _task, lambda n: {"name": f"Task, edit {n}"}),
    "tag": Kind("tags", _tag, lambda n: {"name": f"tag edit {n}"}),
    "time_entry": Kind("time_entries", _entry, lambda n: {"description": f"Edit {n}"}),
}


def _patch(
    api: httpx.Client, org: OrgHandle, path: str, body: dict[str, Any], if_match: str | None
) -> httpx.Response:
    headers = dict(org.owner.headers)
    if if_match is not None:
        headers["If-Match"] = if_match
    return api.patch(org.path(path), json=body, headers=headers)


def _stored(db: Engine, table: str, entity_id: str) -> dict[str, Any]:
    with db.connect() as conn:
        row = conn.execute(
            text(f"SELECT * FROM {table} WHERE id = :id"), {"id": entity_id}
        ).mappings()
        return dict(row.one())


@pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS.keys())
def test_a_write_moves_the_version_by_one_and_if_match_guards_it(
    api: httpx.Client, db: Engine, kind: Kind
) -> None:
    org = make_org(db)
    path, created = kind.create(api, org)
    assert created["version"] == 1

    edited = _patch(api, org, path, kind.edit(1), None)
    assert edited.status_code == 200, edited.text
    current = edited.json()["data"]
    assert current["version"] == 2

    # A client that read version 1 edits: refused with what the entity is now.
    stale = _patch(api, org, path, kind.edit(2), "1")
    assert stale.status_code == 412, stale.text
    body = stale.json()
    assert body["error_code"] == "PRECONDITION_FAILED"
    assert body["details"]["current"] == current
    assert _stored(db, kind.table, created["id"])["version"] == 2  # nothing written

    # The same edit over the current version goes through, in the forms HTTP writes it.
    for n, if_match in enumerate(("2", '"3"', 'W/"4"', '"1", "5"'), start=3):
        response = _patch(api, org, path, kind.edit(n), if_match)
        assert response.status_code == 200, (if_match, response.text)
        assert response.json()["data"]["version"] == n

    # DELETE: a stale version is refused and deletes nothing; the current one deletes.
    headers = dict(org.owner.headers)
    refused = api.delete(org.path(path), headers={**headers, "If-Match": "5"})
    assert refused.status_code == 412, refused.text
    assert refused.json()["details"]["current"]["version"] == 6
    assert _stored(db, kind.table, created["id"])["deleted_at"] is None
    deleted = api.delete(org.path(path), headers={**headers, "If-Match": "6"})
    assert deleted.status_code == 204, deleted.text
    stored = _stored(db, kind.table, created["id"])
    assert stored["deleted_at"] is not None
    assert stored["version"] == 7


def test_if_match_star_and_no_header_write_over_any_version(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    path, _ = _client(api, org)
    assert _patch(api, org, path, {"name": "A"}, "*").json()["data"]["version"] == 2
    assert _patch(api, org, path, {"name": "B"}, None).json()["data"]["version"] == 3


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", '"x"', "1,,2", "", "1e3"])
def test_a_malformed_if_match_is_a_422_naming_the_header(
    api: httpx.Client, db: Engine, value: str
) -> None:
    org = make_org(db)
    path, created = _tag(api, org)
    response = _patch(api, org, path, {"name": "renamed"}, value)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error_code"] == "VALIDATION_ERROR"
    assert [detail["field"] for detail in body["details"]] == ["If-Match"]
    assert _stored(db, "tags", created["id"])["version"] == 1


def test_an_unknown_entity_is_a_404_whatever_if_match_says(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    response = _patch(api, org, f"/tags/{uuid.uuid4()}", {"name": "x"}, "1")
    assert response.status_code == 404, response.text


def test_a_change_of_tags_only_is_a_new_version_of_the_entry(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    tag = _post(api, org, "/tags", {"name": _name()})
    path, created = _entry(api, org)
    response = _patch(api, org, path, {"tag_ids": [tag["id"]]}, "1")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["tag_ids"] == [tag["id"]]
    assert data["version"] == 2
    assert datetime.fromisoformat(data["updated_at"]) > datetime.fromisoformat(
        created["updated_at"]
    )
    assert _stored(db, "time_entries", created["id"])["version"] == 2


def test_an_edit_that_changes_nothing_keeps_the_version(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    path, created = _client(api, org)
    response = _patch(api, org, path, {"name": created["name"]}, "1")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["version"] == 1


def test_stopping_a_timer_is_a_new_version_of_its_entry(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    started = _post(api, org, "/timer/start", {})
    assert started["version"] == 1
    stopped = api.post(org.path("/timer/stop"), headers=org.owner.headers)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["data"]["version"] == 2
    assert _stored(db, "time_entries", started["id"])["version"] == 2
    # Starting a timer over a running one stops it: the same count.
    second = _post(api, org, "/timer/start", {})
    _post(api, org, "/timer/start", {})
    assert _stored(db, "time_entries", second["id"])["version"] == 2


def test_forbidding_overlaps_leaves_the_entries_versions_alone(
    api: httpx.Client, db: Engine
) -> None:
    org = make_org(db)
    _, entry = _entry(api, org)
    before = _stored(db, "time_entries", entry["id"])
    response = api.patch(org.path(), json={"prevent_overlaps": True}, headers=org.owner.headers)
    assert response.status_code == 200, response.text
    after = _stored(db, "time_entries", entry["id"])
    assert after["no_overlap"] is True
    assert (after["version"], after["updated_at"]) == (before["version"], before["updated_at"])


@pytest.mark.parametrize("kind", ["time_entry", "project"])
def test_concurrent_conditional_edits_of_one_version_exactly_one_wins(
    command_server: LiveServer, api: httpx.Client, db: Engine, kind: str
) -> None:
    org = make_org(db)
    path, _ = KINDS[kind].create(api, org)
    barrier = threading.Barrier(CONCURRENCY)

    def edit(n: int) -> httpx.Response:
        with httpx.Client(base_url=f"{command_server.url}/api/v1", timeout=60) as client:
            barrier.wait()
            return _patch(client, org, path, KINDS[kind].edit(n), "1")

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        responses = list(pool.map(edit, range(CONCURRENCY)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [412] * (CONCURRENCY - 1), [r.text for r in responses]
    winner = next(r.json()["data"] for r in responses if r.status_code == 200)
    assert winner["version"] == 2
    for response in responses:
        if response.status_code == 412:
            assert response.json()["details"]["current"] == winner
