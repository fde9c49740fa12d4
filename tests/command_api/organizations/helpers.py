"""Small helpers shared by the organizations module's tests."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import Engine, text

from tests.factories import UserHandle


def ok_data(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The `data` of a successful enveloped response (which carries a consistency token)."""
    assert response.status_code == status, response.text
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


def row(db: Engine, sql: str, **params: Any) -> dict[str, Any] | None:
    with db.connect() as conn:
        found = conn.execute(text(sql), params).mappings().first()
        return None if found is None else dict(found)


def rows(db: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with db.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def insert_entry(
    db: Engine,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    start_at: datetime,
    end_at: datetime | None,
    *,
    deleted: bool = False,
) -> uuid.UUID:
    """A time entry written straight to the table (the entries API is another module's)."""
    entry_id = uuid.uuid4()
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO time_entries (id, org_id, user_id, start_at, end_at, description,"
                " billable, hourly_rate_amount, no_overlap, deleted_at)"
                " VALUES (:id, :org, :user, :start, :end, '', false, 0, false,"
                " CASE WHEN :deleted THEN now() END)"
            ),
            {
                "id": entry_id,
                "org": org_id,
                "user": user_id,
                "start": start_at,
                "end": end_at,
                "deleted": deleted,
            },
        )
    return entry_id


def team_member_rows(db: Engine, team_id: uuid.UUID) -> list[dict[str, Any]]:
    return rows(
        db,
        "SELECT user_id, is_lead FROM team_members WHERE team_id = :t ORDER BY user_id",
        t=team_id,
    )


def race(base_url: str, calls: list[tuple[str, str, dict[str, Any], UserHandle]]) -> list[int]:
    """Send (method, path, body, user) requests at the same moment; their status codes."""
    barrier = threading.Barrier(len(calls))
    statuses: list[int] = []

    def send(method: str, path: str, body: dict[str, Any], user: UserHandle) -> None:
        with httpx.Client(base_url=f"{base_url}/api/v1", timeout=60) as client:
            barrier.wait()
            statuses.append(
                client.request(method, path, json=body, headers=user.headers).status_code
            )

    threads = [threading.Thread(target=send, args=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)
