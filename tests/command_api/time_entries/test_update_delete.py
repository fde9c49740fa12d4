"""PATCH and DELETE /organizations/{org_id}/time-entries/{entry_id}."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
from sqlalchemy import Engine, text

from tests.command_api.time_entries.helpers import (
    add_project_member,
    add_to_team,
    create_entry,
    entry_row,
    entry_tags,
    invalid_fields,
    make_project,
    make_tag,
    make_task,
    make_team,
    ok_data,
    refused,
)
from tests.factories import OrgHandle, UserHandle, add_member, change_rows, make_org


def patch(
    api: httpx.Client, org: OrgHandle, entry_id: str, user: UserHandle | None = None, **body: Any
) -> httpx.Response:
    return api.patch(
        org.path(f"/time-entries/{entry_id}"), json=body, headers=(user or org.owner).headers
    )


def delete(
    api: httpx.Client, org: OrgHandle, entry_id: str, user: UserHandle | None = None
) -> httpx.Response:
    return api.delete(org.path(f"/time-entries/{entry_id}"), headers=(user or org.owner).headers)


def test_edit_times_and_description(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    project = make_project(db, org, hourly_rate_amount=6000)
    entry = ok_data(create_entry(api, org, project_id=str(project)))
    data = ok_data(
        patch(api, org, entry["id"], end_at="2026-03-02T11:00:00Z", description=" more "), 200
    )
    assert data["duration_seconds"] == 7200
    assert data["amount"] == 12000
    assert data["description"] == "more"
    assert data["project_id"] == str(project)
    row = entry_row(db, entry["id"])
    assert row["end_at"].isoformat().startswith("2026-03-02T11:00:00")
    created, updated = change_rows(db, uuid.UUID(entry["id"]))
    assert updated["op"] == "updated"
    assert updated["payload"]["old"]["amount"] == 6000
    assert updated["payload"]["new"]["amount"] == 12000
    assert updated["payload"]["old"]["description"] == ""
    assert updated["payload"]["new"]["description"] == "more"


def test_changing_the_project_resolves_rate_and_billable_again(
    api: httpx.Client, db: Engine
) -> None:
    org = make_org(db, hourly_rate_amount=100)
    worker = add_member(db, org, "member", hourly_rate_amount=200)
    first = make_project(db, org, hourly_rate_amount=3000, billable=False)
    second = make_project(db, org, hourly_rate_amount=5000)
    add_project_member(db, org, second, worker, 8000)
    task = make_task(db, org, first)
    entry = ok_data(create_entry(api, org, worker, project_id=str(first), task_id=str(task)))
    assert (entry["hourly_rate"], entry["billable"], entry["amount"]) == (3000, False, 0)

    moved = ok_data(patch(api, org, entry["id"], worker, project_id=str(second)), 200)
    assert moved["hourly_rate"] == 8000
    assert moved["billable"] is True
    assert moved["amount"] == 8000
    assert moved["task_id"] is None  # the old task belonged to the old project

    cleared = ok_data(patch(api, org, entry["id"], worker, project_id=None), 200)
    assert cleared["project_id"] is None
    assert cleared["hourly_rate"] == 200
    assert cleared["billable"] is False


def test_a_rate_change_elsewhere_does_not_rewrite_history(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    project = make_project(db, org, hourly_rate_amount=1000)
    entry = ok_data(create_entry(api, org, project_id=str(project)))
    with db.begin() as conn:
        conn.execute(
            text("UPDATE projects SET hourly_rate_amount = 9999 WHERE id = :id"), {"id": project}
        )
    # An edit that changes neither user nor project keeps the stored rate.
    data = ok_data(patch(api, org, entry["id"], description="still 1000"), 200)
    assert data["hourly_rate"] == 1000


def test_changing_the_user_resolves_the_rate_for_them(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    admin = add_member(db, org, "admin", hourly_rate_amount=1111)
    other = add_member(db, org, "member", hourly_rate_amount=2222)
    entry = ok_data(create_entry(api, org, admin))
    assert entry["hourly_rate"] == 1111
    data = ok_data(patch(api, org, entry["id"], admin, user_id=str(other.id)), 200)
    assert data["user_id"] == str(other.id)
    assert data["hourly_rate"] == 2222
    refused(patch(api, org, entry["id"], admin, user_id=str(uuid.uuid4())), 404, "NOT_FOUND")


def test_tags_are_replaced(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    one, two, three = (str(make_tag(db, org)) for _ in range(3))
    entry = ok_data(create_entry(api, org, tag_ids=[one, two]))
    data = ok_data(patch(api, org, entry["id"], tag_ids=[three, two, three]), 200)
    assert sorted(data["tag_ids"]) == sorted([two, three])
    assert entry_tags(db, entry["id"]) == {two, three}
    _, updated = change_rows(db, uuid.UUID(entry["id"]))
    assert sorted(updated["payload"]["old"]["tag_ids"]) == sorted([one, two])
    assert sorted(updated["payload"]["new"]["tag_ids"]) == sorted([two, three])
    refused(
        patch(api, org, entry["id"], tag_ids=[str(make_tag(db, make_org(db)))]), 404, "NOT_FOUND"
    )


def test_an_entry_keeps_a_tag_deleted_since_through_an_edit_that_does_not_name_tags(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    kept, gone = str(make_tag(db, org)), str(make_tag(db, org))
    other = add_member(db, org, "member")
    entry = ok_data(create_entry(api, org, tag_ids=[kept, gone]))
    with db.begin() as conn:
        conn.execute(text("UPDATE tags SET deleted_at = now() WHERE id = :t"), {"t": gone})
    moved = ok_data(patch(api, org, entry["id"], user_id=str(other.id)), 200)
    assert moved["user_id"] == str(other.id)
    assert sorted(moved["tag_ids"]) == sorted([kept, gone])
    assert entry_tags(db, entry["id"]) == {kept, gone}
    # Naming tags again checks every one of them: a deleted tag cannot be put back.
    refused(patch(api, org, entry["id"], tag_ids=[kept, gone]), 404, "NOT_FOUND")
    assert sorted(ok_data(patch(api, org, entry["id"], tag_ids=[kept]), 200)["tag_ids"]) == [kept]


def test_setting_end_at_stops_a_running_timer(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    entry = ok_data(create_entry(api, org, end_at=None))
    data = ok_data(patch(api, org, entry["id"], end_at="2026-03-02T09:45:00Z"), 200)
    assert data["duration_seconds"] == 2700
    assert entry_row(db, entry["id"])["end_at"] is not None
    # a finished entry cannot become a running timer again
    assert invalid_fields(patch(api, org, entry["id"], end_at=None)) == {"end_at"}


def test_an_empty_edit_changes_nothing(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    entry = ok_data(create_entry(api, org))
    data = ok_data(patch(api, org, entry["id"]), 200)
    assert data["id"] == entry["id"]
    assert len(change_rows(db, uuid.UUID(entry["id"]))) == 1


def test_edits_check_the_rules(api: httpx.Client, db: Engine) -> None:
    org = make_org(db, prevent_overlaps=True)
    entry = ok_data(create_entry(api, org))
    later = ok_data(
        create_entry(api, org, start_at="2026-03-02T11:00:00Z", end_at="2026-03-02T12:00:00Z")
    )
    assert invalid_fields(patch(api, org, entry["id"], end_at="2026-03-02T08:00:00Z")) == {"end_at"}
    refused(patch(api, org, entry["id"], end_at="2026-03-03T09:00:01Z"), 400, "BUSINESS_RULE")
    refused(patch(api, org, entry["id"], end_at="2026-03-02T11:30:00Z"), 409, "CONFLICT")
    ok_data(patch(api, org, entry["id"], end_at="2026-03-02T11:00:00Z"), 200)
    refused(
        patch(api, org, later["id"], project_id=str(make_project(db, org, archived=True))),
        400,
        "BUSINESS_RULE",
    )
    refused(
        patch(api, org, later["id"], project_id=str(make_project(db, make_org(db)))),
        404,
        "NOT_FOUND",
    )
    # nulls where a value is required
    fields = invalid_fields(patch(api, org, later["id"], start_at=None, billable=None))
    assert fields == {"start_at", "billable"}


def test_editing_an_entry_of_an_archived_project_is_still_allowed(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    project = make_project(db, org)
    entry = ok_data(create_entry(api, org, project_id=str(project)))
    with db.begin() as conn:
        conn.execute(text("UPDATE projects SET archived = true WHERE id = :id"), {"id": project})
    ok_data(patch(api, org, entry["id"], description="late note"), 200)


def test_a_second_running_timer_cannot_come_from_an_edit(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    ok_data(create_entry(api, org, end_at=None, start_at="2026-03-05T09:00:00Z"))
    colleague = add_member(db, org, "member")
    theirs = ok_data(create_entry(api, org, colleague, end_at=None))
    body = refused(patch(api, org, theirs["id"], user_id=str(org.owner.id)), 409, "CONFLICT")
    assert "already running" in body["error"]
    assert entry_row(db, theirs["id"])["user_id"] == colleague.id


def test_scope_of_edits_and_deletes(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    member = add_member(db, org, "member")
    colleague = add_member(db, org, "member")
    manager = add_member(db, org, "manager")
    team = make_team(db, org)
    add_to_team(db, org, team, manager, lead=True)
    add_to_team(db, org, team, member)
    mine = ok_data(create_entry(api, org, member))
    theirs = ok_data(create_entry(api, org, colleague))

    ok_data(patch(api, org, mine["id"], member, description="mine"), 200)
    refused(patch(api, org, theirs["id"], member, description="no"), 403, "FORBIDDEN")
    refused(delete(api, org, theirs["id"], member), 403, "FORBIDDEN")
    # a member cannot hand their entry to someone else
    refused(patch(api, org, mine["id"], member, user_id=str(colleague.id)), 403, "FORBIDDEN")
    ok_data(patch(api, org, mine["id"], manager, description="by my lead"), 200)
    refused(patch(api, org, theirs["id"], manager, description="no"), 403, "FORBIDDEN")
    ok_data(patch(api, org, theirs["id"], org.owner, description="owner may"), 200)


def test_entries_of_another_organization_are_not_found(api: httpx.Client, db: Engine) -> None:
    org, elsewhere = make_org(db), make_org(db)
    foreign = ok_data(create_entry(api, elsewhere))
    # the same owner cannot reach the entry through another organization's path
    add_member(db, org, "admin", user=elsewhere.owner)
    refused(patch(api, org, foreign["id"], elsewhere.owner, description="x"), 404, "NOT_FOUND")
    refused(delete(api, org, foreign["id"], elsewhere.owner), 404, "NOT_FOUND")
    refused(patch(api, org, str(uuid.uuid4()), org.owner, description="x"), 404, "NOT_FOUND")


def test_delete_is_soft_and_logged(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    entry = ok_data(create_entry(api, org))
    response = delete(api, org, entry["id"])
    assert response.status_code == 204, response.text
    assert response.headers["X-Consistency-Token"]
    assert entry_row(db, entry["id"])["deleted_at"] is not None
    created, deleted = change_rows(db, uuid.UUID(entry["id"]))
    assert deleted["op"] == "deleted"
    assert deleted["payload"]["new"] is None
    assert deleted["payload"]["old"]["user_id"] == str(org.owner.id)
    refused(delete(api, org, entry["id"]), 404, "NOT_FOUND")
    refused(patch(api, org, entry["id"], description="gone"), 404, "NOT_FOUND")


def test_a_deleted_entry_frees_its_slot(api: httpx.Client, db: Engine) -> None:
    org = make_org(db, prevent_overlaps=True)
    entry = ok_data(create_entry(api, org))
    refused(create_entry(api, org), 409, "CONFLICT")
    assert delete(api, org, entry["id"]).status_code == 204
    ok_data(create_entry(api, org))


def test_locked_entries_cannot_be_edited_or_deleted_below_admin(
    api: httpx.Client, db: Engine
) -> None:
    org = make_org(db, lock_before=date(2026, 3, 1))
    member = add_member(db, org, "member")
    admin = add_member(db, org, "admin")
    old = ok_data(
        create_entry(
            api,
            org,
            admin,
            user_id=str(member.id),
            start_at="2026-02-27T09:00:00Z",
            end_at="2026-02-27T10:00:00Z",
        )
    )
    fresh = ok_data(create_entry(api, org, member))
    refused(patch(api, org, old["id"], member, description="x"), 400, "BUSINESS_RULE")
    refused(delete(api, org, old["id"], member), 400, "BUSINESS_RULE")
    # nor moved into the locked period
    refused(
        patch(api, org, fresh["id"], member, start_at="2026-02-28T09:00:00Z"), 400, "BUSINESS_RULE"
    )
    ok_data(patch(api, org, old["id"], admin, description="fixed by admin"), 200)
    assert delete(api, org, old["id"], admin).status_code == 204
