"""World-building for the entries tests: every write through the command API, every read
through the query API with the consistency token of the last write."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.factories import OrgHandle, UserHandle


def at(day: str, hour: int = 9, minute: int = 0) -> datetime:
    """A UTC instant on `day` (YYYY-MM-DD)."""
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


def span(date_from: str | None = None, date_to: str | None = None, **more: Any) -> dict[str, Any]:
    """Query parameters `from` (a Python keyword) and `to`, plus any others."""
    return {"from": date_from, "to": date_to, **more}


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@dataclass
class Client:
    """Writes through the command API and reads what it wrote through the query API."""

    api: httpx.Client
    qapi: httpx.Client
    org: OrgHandle
    token: str | None = None
    created: list[uuid.UUID] = field(default_factory=list)

    def write(
        self, method: str, path: str, json: Any = None, *, user: UserHandle | None = None
    ) -> dict[str, Any]:
        user = user or self.org.owner
        response = self.api.request(method, self.org.path(path), json=json, headers=user.headers)
        assert response.is_success, response.text
        self.token = response.headers["X-Consistency-Token"]
        return response.json()["data"] if response.content else {}

    def named(self, path: str, name: str | None = None, **fields: Any) -> uuid.UUID:
        data = self.write("POST", path, {"name": name or f"n-{uuid.uuid4().hex[:6]}", **fields})
        return uuid.UUID(data["id"])

    def entry(
        self,
        start_at: datetime,
        seconds: int | None = 3600,
        *,
        user: UserHandle | None = None,
        **fields: Any,
    ) -> uuid.UUID:
        body: dict[str, Any] = {"start_at": iso(start_at), **fields}
        if seconds is not None:
            body["end_at"] = iso(start_at + timedelta(seconds=seconds))
        if user is not None and user.id != self.org.owner.id:
            body["user_id"] = str(user.id)
        data = self.write("POST", "/time-entries", body)
        entry_id = uuid.UUID(data["id"])
        self.created.append(entry_id)
        return entry_id

    def bulk(self, entries: list[dict[str, Any]]) -> list[uuid.UUID]:
        data = self.write("POST", "/time-entries/bulk", {"entries": entries})
        ids = [uuid.UUID(i) for i in data["ids"]]
        self.created.extend(ids)
        return ids

    def get(self, path: str, *, user: UserHandle | None = None, **params: Any) -> httpx.Response:
        headers = dict((user or self.org.owner).headers)
        if self.token is not None:
            headers["X-Consistency-Token"] = self.token
        query = {k: _param(v) for k, v in params.items() if v is not None}
        return self.qapi.get(self.org.path(path), params=query, headers=headers)

    def entries(self, *, user: UserHandle | None = None, **params: Any) -> list[dict[str, Any]]:
        params.setdefault("page_size", 200)
        response = self.get("/time-entries", user=user, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["success"] is True
        return list(body["data"])

    def ids(self, *, user: UserHandle | None = None, **params: Any) -> list[uuid.UUID]:
        return [uuid.UUID(e["id"]) for e in self.entries(user=user, **params)]

    def walk(self, path: str = "/time-entries", **params: Any) -> list[uuid.UUID]:
        """Every page of a cursor walk, in order."""
        seen: list[uuid.UUID] = []
        cursor = None
        for _ in range(10_000):
            response = self.get(path, cursor=cursor, **params)
            assert response.status_code == 200, response.text
            body = response.json()
            data = body["data"]["entries"] if path.endswith("detailed") else body["data"]
            seen.extend(uuid.UUID(e["id"]) for e in data)
            cursor = body["pagination"]["next_cursor"]
            if cursor is None:
                return seen
        raise AssertionError("the walk never ended")


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def error_field(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error_code"] == "VALIDATION_ERROR"
    return str(body["details"][0]["field"])
