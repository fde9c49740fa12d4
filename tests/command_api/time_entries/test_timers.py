"""POST /organizations/{org_id}/timer/start, /stop and /restart."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, text

from tests.command_api.time_entries.helpers import (
    create_entry,
    entry_row,
    entry_tags,
    make_project,
    make_tag,
    make_task,
    ok_data,
    refused,
    running_timers,
)
from tests.factories import OrgHandle, UserHandle, add_member, change_rows, make_org


def timer(
    api: httpx.Client,
    org: OrgHandle,
    action: str,
    user: UserHandle | None = None,
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    return api.post(org.path(f"/timer/{action}"), json=body, headers=(user or org.owner).headers)


def test_start_creates_a_running_timer_now(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    project = make_project(db, org, hourly_rate_amount=4200)
    task = make_task(db, org, project)
    tag = str(make_tag(db, org))
    before = datetime.now(UTC)
    data = ok_data(
        timer(
            api,
            org,
            "start",
            body={
                "project_id": str(project),
                "task_id": str(task),
                "description": "focus",
                "tag_ids": [tag],
            },
        )
    )
    started = datetime.fromisoformat(data["start_at"])
    assert before - timedelta(seconds=5) < started < datetime.now(UTC) + timedelta(seconds=5)
    assert data["end_at"] is None
    assert data["amount"] is None
    assert data["hourly_rate"] == 4200
    assert data["billable"] is True
    assert data["tag_ids"] == [tag]
    assert data["description"] == "focus"
    (change,) = change_rows(db, uuid.UUID(data["id"]))
    assert change["op"] == "created"
    assert change["payload"]["new"]["end_at"] is None


def test_start_without_a_body(api: httpx.Client, org: OrgHandle) -> None:
    response = api.post(org.path("/timer/start"), headers=org.owner.headers)
    data = ok_data(response)
    assert data["project_id"] is None
    assert data["billable"] is False


def test_start_stops_the_running_timer_at_the_same_instant_in_any_organization(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    other = make_org(db, owner=org.owner)
    first = ok_data(timer(api, other, "start"))
    second = ok_data(timer(api, org, "start"))
    stopped = entry_row(db, first["id"])
    assert stopped["end_at"] is not None
    assert stopped["end_at"] == datetime.fromisoformat(second["start_at"])
    assert [row["id"] for row in running_timers(db, org.owner)] == [uuid.UUID(second["id"])]
    # change rows for both, the stop one in the other organization
    created, updated = change_rows(db, uuid.UUID(first["id"]))
    assert updated["op"] == "updated"
    assert updated["org_id"] == other.id
    assert updated["payload"]["old"]["end_at"] is None
    assert updated["payload"]["new"]["end_at"] == second["start_at"]
    assert change_rows(db, uuid.UUID(second["id"]))[0]["op"] == "created"


def test_a_timer_left_running_is_capped_at_24_hours(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    old = ok_data(create_entry(api, org, end_at=None, start_at=three_days_ago.isoformat()))
    ok_data(timer(api, org, "start"))
    row = entry_row(db, old["id"])
    assert row["end_at"] - row["start_at"] == timedelta(hours=24)


def test_stop(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    started = ok_data(timer(api, org, "start", body={"description": "x"}))
    data = ok_data(timer(api, org, "stop"), 200)
    assert data["id"] == started["id"]
    assert data["end_at"] is not None
    assert data["duration_seconds"] is not None
    assert data["duration_seconds"] >= 0
    assert data["amount"] == 0
    assert running_timers(db, org.owner) == []
    assert [row["op"] for row in change_rows(db, uuid.UUID(data["id"]))] == ["created", "updated"]
    body = refused(timer(api, org, "stop"), 404, "NOT_FOUND")
    assert "No timer" in body["error"]


def test_stop_only_sees_this_organizations_timer(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    other = make_org(db, owner=org.owner)
    ok_data(timer(api, other, "start"))
    refused(timer(api, org, "stop"), 404, "NOT_FOUND")
    assert len(running_timers(db, org.owner)) == 1


def test_restart_copies_the_latest_entry(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    project = make_project(db, org, billable=True, hourly_rate_amount=100)
    task = make_task(db, org, project)
    tags = sorted([str(make_tag(db, org)), str(make_tag(db, org))])
    ok_data(create_entry(api, org, start_at="2026-01-01T09:00:00Z", end_at="2026-01-01T10:00:00Z"))
    latest = ok_data(
        create_entry(
            api,
            org,
            project_id=str(project),
            task_id=str(task),
            description="again",
            billable=False,
            tag_ids=tags,
            start_at="2026-02-01T09:00:00Z",
            end_at="2026-02-01T10:00:00Z",
        )
    )
    data = ok_data(timer(api, org, "restart"))
    assert data["id"] != latest["id"]
    assert data["end_at"] is None
    for field in ("project_id", "task_id", "description", "billable"):
        assert data[field] == latest[field]
    assert sorted(data["tag_ids"]) == tags


def test_restart_leaves_out_deleted_tags(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    kept, deleted = str(make_tag(db, org)), str(make_tag(db, org))
    ok_data(create_entry(api, org, tag_ids=[kept, deleted], description="tagged"))
    with db.begin() as conn:
        conn.execute(text("UPDATE tags SET deleted_at = now() WHERE id = :id"), {"id": deleted})

    data = ok_data(timer(api, org, "restart"))

    assert data["description"] == "tagged"
    assert data["tag_ids"] == [kept]
    assert entry_tags(db, data["id"]) == {kept}


def test_restart_ignores_entries_dated_in_the_future(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    past, future = make_project(db, org), make_project(db, org)
    now = datetime.now(UTC)
    ok_data(
        create_entry(
            api,
            org,
            project_id=str(past),
            start_at=(now - timedelta(hours=3)).isoformat(),
            end_at=(now - timedelta(hours=2)).isoformat(),
        )
    )
    ok_data(
        create_entry(
            api,
            org,
            project_id=str(future),
            start_at=(now + timedelta(days=2)).isoformat(),
            end_at=(now + timedelta(days=2, hours=1)).isoformat(),
        )
    )

    assert ok_data(timer(api, org, "restart"))["project_id"] == str(past)


def test_restart_picks_the_entry_written_last_among_equal_starts(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    first, second = make_project(db, org), make_project(db, org)
    times = {"start_at": "2026-02-01T09:00:00Z", "end_at": "2026-02-01T10:00:00Z"}
    ok_data(create_entry(api, org, project_id=str(first), **times))
    ok_data(create_entry(api, org, project_id=str(second), **times))

    assert ok_data(timer(api, org, "restart"))["project_id"] == str(second)


def test_restart_stops_a_running_timer_first(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    first = ok_data(timer(api, org, "start", body={"description": "copy me"}))
    data = ok_data(timer(api, org, "restart"))
    assert data["description"] == "copy me"
    assert entry_row(db, first["id"])["end_at"] is not None
    assert [row["id"] for row in running_timers(db, org.owner)] == [uuid.UUID(data["id"])]


def test_restart_without_any_entry_is_not_found(api: httpx.Client, org: OrgHandle) -> None:
    refused(timer(api, org, "restart"), 404, "NOT_FOUND")


def test_restart_refuses_an_archived_project(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    project = make_project(db, org)
    ok_data(create_entry(api, org, project_id=str(project)))
    with db.begin() as conn:
        conn.execute(text("UPDATE projects SET archived = true WHERE id = :id"), {"id": project})
    refused(timer(api, org, "restart"), 400, "BUSINESS_RULE")
    refused(timer(api, org, "start", body={"project_id": str(project)}), 400, "BUSINESS_RULE")


def test_start_checks_the_rules(api: httpx.Client, db: Engine) -> None:
    future_lock = make_org(db, lock_before=date.today() + timedelta(days=2))
    member = add_member(db, future_lock, "member")
    refused(timer(api, future_lock, "start", member), 400, "BUSINESS_RULE")
    ok_data(timer(api, future_lock, "start"))  # the owner may
    org = make_org(db)
    refused(timer(api, org, "start", body={"tag_ids": [str(uuid.uuid4())]}), 404, "NOT_FOUND")
    refused(timer(api, org, "start", body={"user_id": str(org.owner.id)}), 422, "VALIDATION_ERROR")


def test_start_in_an_organization_that_forbids_overlaps(api: httpx.Client, db: Engine) -> None:
    org = make_org(db, prevent_overlaps=True)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    ok_data(
        create_entry(
            api,
            org,
            start_at=tomorrow.isoformat(),
            end_at=(tomorrow + timedelta(hours=1)).isoformat(),
        )
    )
    # a running timer from now on would cover tomorrow's entry
    refused(timer(api, org, "start"), 409, "CONFLICT")
    assert running_timers(db, org.owner) == []


def test_a_running_timer_in_the_future_cannot_be_stopped_by_a_new_start(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    later = datetime.now(UTC) + timedelta(hours=2)
    future = ok_data(create_entry(api, org, end_at=None, start_at=later.isoformat()))
    refused(timer(api, org, "start"), 409, "CONFLICT")
    assert entry_row(db, future["id"])["end_at"] is None
