"""World-building for the time entry tests: catalog rows straight into the database (the
projects and organizations endpoints have their own tests), entries through HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import Engine, text

from tests.factories import OrgHandle, UserHandle


def _insert(db: Engine, sql: str, **params: Any) -> uuid.UUID:
    params.setdefault("id", uuid.uuid4())
    with db.begin() as conn:
        conn.execute(text(sql), params)
    return uuid.UUID(str(params["id"]))


def make_project(
    db: Engine,
    org: OrgHandle,
    *,
    billable: bool = True,
    hourly_rate_amount: int | None = None,
    archived: bool = False,
) -> uuid.UUID:
    return _insert(
        db,
        "INSERT INTO projects (id, org_id, name, billable, hourly_rate_amount, archived)"
        " VALUES (:id, :org, :name, :billable, :rate, :archived)",
        org=org.id,
        name=f"Project {uuid.uuid4().hex[:8]}",
        billable=billable,
        rate=hourly_rate_amount,
        archived=archived,
    )


def make_task(
    db: Engine, org: OrgHandle, project_id: uuid.UUID, *, done: bool = False
) -> uuid.UUID:
    return _insert(
        db,
        "INSERT INTO tasks (id, org_id, project_id, name, done)"
        " VALUES (:id, :org, :project, :name, :done)",
        org=org.id,
        project=project_id,
        name=f"Task {uuid.uuid4().hex[:8]}",
        done=done,
    )


def make_tag(db: Engine, org: OrgHandle) -> uuid.UUID:
    return _insert(
        db,
        "INSERT INTO tags (id, org_id, name) VALUES (:id, :org, :name)",
        org=org.id,
        name=f"tag-{uuid.uuid4().hex[:8]}",
    )


def add_project_member(
    db: Engine, org: OrgHandle, project_id: uuid.UUID, user: UserHandle, rate: int | None
) -> None:
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO project_members (project_id, user_id, org_id, hourly_rate_amount)"
                " VALUES (:project, :user, :org, :rate)"
            ),
            {"project": project_id, "user": user.id, "org": org.id, "rate": rate},
        )


def make_team(db: Engine, org: OrgHandle, parent_id: uuid.UUID | None = None) -> uuid.UUID:
    return _insert(
        db,
        "INSERT INTO teams (id, org_id, name, parent_id) VALUES (:id, :org, :name, :parent)",
        org=org.id,
        name=f"Team {uuid.uuid4().hex[:8]}",
        parent=parent_id,
    )


def add_to_team(
    db: Engine, org: OrgHandle, team_id: uuid.UUID, user: UserHandle, *, lead: bool = False
) -> None:
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO team_members (team_id, user_id, org_id, is_lead)"
                " VALUES (:team, :user, :org, :lead)"
            ),
            {"team": team_id, "user": user.id, "org": org.id, "lead": lead},
        )


def entry_row(db: Engine, entry_id: str | uuid.UUID) -> dict[str, Any]:
    with db.connect() as conn:
        row = (
            conn.execute(text("SELECT * FROM time_entries WHERE id = :id"), {"id": entry_id})
            .mappings()
            .one()
        )
        return dict(row)


def entry_tags(db: Engine, entry_id: str | uuid.UUID) -> set[str]:
    with db.connect() as conn:
        rows = conn.execute(
            text("SELECT tag_id FROM time_entry_tags WHERE entry_id = :id"), {"id": entry_id}
        ).scalars()
        return {str(tag_id) for tag_id in rows}


def running_timers(db: Engine, user: UserHandle) -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT * FROM time_entries WHERE user_id = :user AND end_at IS NULL"
                " AND deleted_at IS NULL"
            ),
            {"user": user.id},
        ).mappings()
        return [dict(row) for row in rows]


def count_entries(db: Engine, org: OrgHandle) -> int:
    with db.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM time_entries WHERE org_id = :org AND deleted_at IS NULL"
                ),
                {"org": org.id},
            ).scalar_one()
        )


def ok_data(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is True
    assert response.headers["X-Consistency-Token"].startswith("ct1.")
    data: dict[str, Any] = body["data"]
    return data


def refused(response: httpx.Response, status: int, error_code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False
    assert body["error_code"] == error_code
    assert "X-Consistency-Token" not in response.headers
    return body


def invalid_fields(response: httpx.Response) -> set[str]:
    body = refused(response, 422, "VALIDATION_ERROR")
    return {detail["field"] for detail in body["details"]}


def create_entry(
    api: httpx.Client, org: OrgHandle, user: UserHandle | None = None, /, **body: Any
) -> httpx.Response:
    """POST an entry (one hour on 2 March 2026 unless told otherwise; `end_at=None` omits
    the end, starting a timer)."""
    body.setdefault("start_at", "2026-03-02T09:00:00Z")
    if "end_at" not in body:
        body["end_at"] = "2026-03-02T10:00:00Z"
    elif body["end_at"] is None:
        del body["end_at"]
    return api.post(org.path("/time-entries"), json=body, headers=(user or org.owner).headers)
