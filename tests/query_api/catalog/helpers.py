"""Writes through the command API, reads through the query API with the last write's
consistency token: how a client reads its own writes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.factories import OrgHandle, UserHandle


@dataclass
class Writer:
    """Sends commands as `user` and remembers the consistency token of the last write."""

    api: httpx.Client
    token: str = ""

    def send(
        self, method: str, path: str, user: UserHandle, json: Any = None, status: int = 201
    ) -> dict[str, Any]:
        response = self.api.request(method, path, json=json, headers=user.headers)
        assert response.status_code == status, response.text
        self.token = response.headers["X-Consistency-Token"]
        return response.json()["data"] if response.content else {}

    def create(self, org: OrgHandle, suffix: str, body: dict[str, Any]) -> uuid.UUID:
        return uuid.UUID(self.send("POST", org.path(suffix), org.owner, body)["id"])


@dataclass
class Reader:
    """Reads the query API, waiting for the writes of `writer`."""

    qapi: httpx.Client
    writer: Writer
    headers_extra: dict[str, str] = field(default_factory=dict)

    def get(self, path: str, user: UserHandle, **params: Any) -> httpx.Response:
        headers = {**user.headers, **self.headers_extra}
        if self.writer.token:
            headers["X-Consistency-Token"] = self.writer.token
        return self.qapi.get(path, params=params, headers=headers)

    def data(self, path: str, user: UserHandle, **params: Any) -> Any:
        response = self.get(path, user, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["success"] is True
        return body["data"]


def entry(
    writer: Writer,
    org: OrgHandle,
    user: UserHandle,
    start_at: str,
    end_at: str | None,
    **fields: Any,
) -> uuid.UUID:
    """An entry for `user`, written by the owner (who may write for anyone)."""
    body = {"start_at": start_at, "end_at": end_at, "user_id": str(user.id), **fields}
    return writer.create(org, "/time-entries", body)


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]
