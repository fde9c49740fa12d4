"""A delta sync client as an offline app would write one: it keeps a copy of what it may see,
pulls pages until `has_more` is false, applies each change in order, and starts over on
`reset`. And what the query API's lists show, to compare the copy with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.factories import OrgHandle, UserHandle
from tests.query_api.catalog.helpers import Reader

Key = tuple[str, str]  # (entity, id)

# The lists a client's copy must equal: (entity, path, the key of an item's id).
LISTS = (
    ("project", "/projects", "id"),
    ("client", "/clients", "id"),
    ("tag", "/tags", "id"),
    ("member", "/members", "user_id"),
    ("team", "/teams", "id"),
)


@dataclass
class SyncClient:
    reader: Reader
    org: OrgHandle
    user: UserHandle
    entities: str | None = None
    limit: int = 500
    cursor: str | None = None
    copy: dict[Key, dict[str, Any]] = field(default_factory=dict)
    resets: int = 0
    pages: int = 0

    def pull(self) -> None:
        """Until the server has nothing more now."""
        resets_in_a_row = 0
        while True:
            body = self.page()
            if body["reset"]:
                assert body["changes"] == []
                resets_in_a_row += 1
                assert resets_in_a_row < 3, "the server starts this client over and over"
                self.resets += 1
                self.copy.clear()
            else:
                resets_in_a_row = 0
            for change in body["changes"]:
                key = (change["entity"], change["id"])
                if change["op"] == "upsert":
                    assert change["data"]["version"] == change["version"]
                    self.copy[key] = change["data"]
                else:
                    assert change["data"] is None
                    self.copy.pop(key, None)
            self.cursor = body["next_cursor"]
            if not body["has_more"]:
                return

    def page(self) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": self.limit}
        if self.cursor is not None:
            params["cursor"] = self.cursor
        if self.entities is not None:
            params["entities"] = self.entities
        self.pages += 1
        data: dict[str, Any] = self.reader.data(self.org.path("/sync"), self.user, **params)
        return data


def listed(reader: Reader, org: OrgHandle, user: UserHandle) -> dict[Key, dict[str, Any]]:
    """Everything the query API's lists show `user` (small worlds: one page of 200 each)."""
    shown: dict[Key, dict[str, Any]] = {}
    for entity, path, key in LISTS:
        for item in _all(reader, org, user, path):
            shown[(entity, item[key])] = item
    for project in [item for (kind, _), item in shown.items() if kind == "project"]:
        for task in _all(reader, org, user, f"/projects/{project['id']}/tasks"):
            shown[("task", task["id"])] = task
    for entry in _all(reader, org, user, "/time-entries"):
        shown[("time_entry", entry["id"])] = entry
    return shown


def _all(reader: Reader, org: OrgHandle, user: UserHandle, path: str) -> list[dict[str, Any]]:
    response = reader.get(org.path(path), user, page_size=200)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pagination"]["has_next"] is False, f"{path}: more than one page"
    items: list[dict[str, Any]] = body["data"]
    return items


def sync_page(reader: Reader, org: OrgHandle, user: UserHandle, **params: Any) -> httpx.Response:
    return reader.get(org.path("/sync"), user, **params)
