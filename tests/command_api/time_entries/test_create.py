"""POST /organizations/{org_id}/time-entries: success paths, amounts, rates and every rule."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.command_api.time_entries.helpers import (
    add_project_member,
    add_to_team,
    count_entries,
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


def test_a_finished_entry_is_stored_with_its_change_row(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    project = make_project(db, org, hourly_rate_amount=12000)
    task = make_task(db, org, project)
    tags = sorted([str(make_tag(db, org)), str(make_tag(db, org))])
    data = ok_data(
        create_entry(
            api,
            org,
            project_id=str(project),
            task_id=str(task),
            tag_ids=tags,
            description="  Writing the spec  ",
            start_at="2026-03-02T09:00:00+01:00",
            end_at="2026-03-02T10:30:00+01:00",
        )
    )
    assert data["user_id"] == str(org.owner.id)
    assert data["project_id"] == str(project)
    assert data["task_id"] == str(task)
    assert data["description"] == "Writing the spec"
    assert data["billable"] is True
    assert data["start_at"].startswith("2026-03-02T08:00:00")
    assert data["end_at"].startswith("2026-03-02T09:30:00")
    assert data["duration_seconds"] == 5400
    assert data["hourly_rate"] == 12000
    assert data["amount"] == 18000
    assert sorted(data["tag_ids"]) == tags
    assert data["created_at"]
    assert data["updated_at"]

    row = entry_row(db, data["id"])
    assert row["org_id"] == org.id
    assert row["hourly_rate_amount"] == 12000
    assert row["no_overlap"] is False
    assert entry_tags(db, data["id"]) == set(tags)
    (change,) = change_rows(db, uuid.UUID(data["id"]))
    assert change["entity"] == "time_entry"
    assert change["op"] == "created"
    assert change["org_id"] == org.id
    assert change["payload"]["old"] is None
    new = change["payload"]["new"]
    assert new["user_id"] == str(org.owner.id)
    assert new["project_id"] == str(project)
    assert new["task_id"] == str(task)
    assert new["billable"] is True
    assert new["hourly_rate"] == 12000
    assert new["amount"] == 18000
    assert new["duration_seconds"] == 5400
    assert sorted(new["tag_ids"]) == tags
    assert new["start_at"].startswith("2026-03-02T08:00:00")
    assert new["end_at"].startswith("2026-03-02T09:30:00")
    assert new["description"] == "Writing the spec"


def test_no_end_starts_a_running_timer(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    data = ok_data(create_entry(api, org, end_at=None))
    assert data["end_at"] is None
    assert data["duration_seconds"] is None
    assert data["amount"] is None
    assert entry_row(db, data["id"])["end_at"] is None
    assert change_rows(db, uuid.UUID(data["id"]))[0]["payload"]["new"]["end_at"] is None


def test_a_task_alone_brings_its_project(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    project = make_project(db, org)
    task = make_task(db, org, project)
    data = ok_data(create_entry(api, org, task_id=str(task)))
    assert data["project_id"] == str(project)


@pytest.mark.parametrize(
    ("project_billable", "sent", "expected"),
    [(True, None, True), (False, None, False), (True, False, False), (False, True, True)],
)
def test_billable_defaults_to_the_projects_flag(
    api: httpx.Client,
    db: Engine,
    org: OrgHandle,
    project_billable: bool,
    sent: bool | None,
    expected: bool,
) -> None:
    project = make_project(db, org, billable=project_billable)
    body: dict[str, object] = {"project_id": str(project)}
    if sent is not None:
        body["billable"] = sent
    data = ok_data(create_entry(api, org, **body))
    assert data["billable"] is expected
    assert_logged_as_answered(db, data)


def test_without_a_project_an_entry_is_not_billable_by_default(
    api: httpx.Client, org: OrgHandle
) -> None:
    data = ok_data(create_entry(api, org))
    assert data["billable"] is False
    assert data["amount"] == 0


def test_the_most_specific_rate_wins(api: httpx.Client, db: Engine) -> None:
    org = make_org(db, hourly_rate_amount=1000)
    worker = add_member(db, org, "member", hourly_rate_amount=2000)
    plain = make_project(db, org)
    rated = make_project(db, org, hourly_rate_amount=3000)
    add_project_member(db, org, rated, worker, 4000)
    unrated_member_project = make_project(db, org, hourly_rate_amount=3000)
    add_project_member(db, org, unrated_member_project, worker, None)

    def rate(user: UserHandle, project: uuid.UUID | None) -> int:
        body = {"project_id": str(project)} if project else {}
        data = ok_data(create_entry(api, org, user, **body))
        assert_logged_as_answered(db, data)
        return int(data["hourly_rate"])

    assert rate(worker, rated) == 4000  # project member
    assert rate(worker, unrated_member_project) == 3000  # project
    assert rate(org.owner, rated) == 3000  # project (the owner is no project member)
    assert rate(worker, plain) == 2000  # member
    assert rate(worker, None) == 2000
    assert rate(org.owner, plain) == 1000  # organization


def test_no_rate_anywhere_is_zero(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    data = ok_data(create_entry(api, org, project_id=str(make_project(db, org))))
    assert data["hourly_rate"] == 0
    assert data["amount"] == 0


@pytest.mark.parametrize(
    ("seconds", "rate", "amount"),
    [(3600, 10000, 10000), (1, 1800, 1), (1, 1799, 0), (5399, 3, 4), (86400, 12345, 296280)],
)
def test_amounts_round_half_up(
    api: httpx.Client, db: Engine, org: OrgHandle, seconds: int, rate: int, amount: int
) -> None:
    project = make_project(db, org, hourly_rate_amount=rate)
    end = "2026-03-03T00:00:00Z" if seconds == 86400 else None
    start = "2026-03-02T00:00:00Z"
    if end is None:
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        end = f"2026-03-02T{hours:02}:{minutes:02}:{secs:02}Z"
    data = ok_data(create_entry(api, org, project_id=str(project), start_at=start, end_at=end))
    assert data["duration_seconds"] == seconds
    assert data["amount"] == amount
    assert_logged_as_answered(db, data)


def assert_logged_as_answered(db: Engine, data: dict[str, Any]) -> None:
    """The change row carries the project, flag, rate and amount the answer shows: the
    statement that writes an entry resolves them in SQL, the answer in Python."""
    (change,) = change_rows(db, uuid.UUID(data["id"]))
    new = change["payload"]["new"]
    for field in ("project_id", "billable", "hourly_rate", "amount", "duration_seconds"):
        assert new[field] == data[field], field
    row = entry_row(db, data["id"])
    assert (row["billable"], row["hourly_rate_amount"]) == (data["billable"], data["hourly_rate"])


# --- rules ---------------------------------------------------------------------------------


def test_longer_than_24_hours_is_refused_naming_the_limit(
    api: httpx.Client, org: OrgHandle
) -> None:
    body = refused(
        create_entry(api, org, start_at="2026-03-02T00:00:00Z", end_at="2026-03-03T00:00:01Z"),
        400,
        "BUSINESS_RULE",
    )
    assert "24 hours" in body["error"]
    assert body["details"]["max_duration_seconds"] == 86400


def test_end_before_start_is_a_validation_error(api: httpx.Client, org: OrgHandle) -> None:
    response = create_entry(
        api, org, start_at="2026-03-02T10:00:00Z", end_at="2026-03-02T09:00:00Z"
    )
    assert invalid_fields(response) == {"end_at"}
    equal = create_entry(api, org, start_at="2026-03-02T10:00:00Z", end_at="2026-03-02T10:00:00Z")
    assert invalid_fields(equal) == {"end_at"}


def test_one_running_timer_per_user(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    ok_data(create_entry(api, org, end_at=None))
    body = refused(
        create_entry(api, org, end_at=None, start_at="2026-03-05T09:00:00Z"), 409, "CONFLICT"
    )
    assert "already running" in body["error"]
    # ... in any organization
    other = make_org(db, owner=org.owner)
    refused(create_entry(api, other, end_at=None), 409, "CONFLICT")


def test_overlaps_are_refused_only_where_the_organization_forbids_them(
    api: httpx.Client, db: Engine
) -> None:
    strict = make_org(db, prevent_overlaps=True)
    first = ok_data(create_entry(api, strict))
    assert entry_row(db, first["id"])["no_overlap"] is True
    overlapping = {"start_at": "2026-03-02T09:30:00Z", "end_at": "2026-03-02T11:00:00Z"}
    refused(create_entry(api, strict, **overlapping), 409, "CONFLICT")
    # Touching intervals are fine: [start, end) is half-open.
    ok_data(
        create_entry(api, strict, start_at="2026-03-02T10:00:00Z", end_at="2026-03-02T11:00:00Z")
    )
    # A running timer covers everything after its start.
    ok_data(create_entry(api, strict, start_at="2026-03-02T12:00:00Z", end_at=None))
    refused(
        create_entry(api, strict, start_at="2026-03-09T12:00:00Z", end_at="2026-03-09T13:00:00Z"),
        409,
        "CONFLICT",
    )

    relaxed = make_org(db)
    ok_data(create_entry(api, relaxed))
    ok_data(create_entry(api, relaxed, **overlapping))


def test_another_members_overlap_is_no_conflict(api: httpx.Client, db: Engine) -> None:
    strict = make_org(db, prevent_overlaps=True)
    colleague = add_member(db, strict, "member")
    ok_data(create_entry(api, strict))
    ok_data(create_entry(api, strict, colleague))


def test_locked_period_is_read_only_below_admin(api: httpx.Client, db: Engine) -> None:
    # 2026-03-01T23:30Z is already 2 March in Berlin: the local date decides.
    org = make_org(db, lock_before=date(2026, 3, 2), timezone="Europe/Berlin")
    member = add_member(db, org, "member")
    manager = add_member(db, org, "manager")
    admin = add_member(db, org, "admin")
    before = {"start_at": "2026-03-01T22:30:00Z", "end_at": "2026-03-01T22:45:00Z"}
    after = {"start_at": "2026-03-01T23:30:00Z", "end_at": "2026-03-01T23:45:00Z"}
    body = refused(create_entry(api, org, member, **before), 400, "BUSINESS_RULE")
    assert "2026-03-02" in body["error"]
    refused(create_entry(api, org, manager, **before), 400, "BUSINESS_RULE")
    ok_data(create_entry(api, org, member, **after))
    ok_data(create_entry(api, org, admin, **before))
    ok_data(create_entry(api, org, org.owner, **before))


def test_archived_projects_and_done_tasks_take_no_new_entries(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    archived = make_project(db, org, archived=True)
    body = refused(create_entry(api, org, project_id=str(archived)), 400, "BUSINESS_RULE")
    assert "archived" in body["error"]
    project = make_project(db, org)
    done = make_task(db, org, project, done=True)
    refused(
        create_entry(api, org, project_id=str(project), task_id=str(done)), 400, "BUSINESS_RULE"
    )


def test_references_of_another_organization_are_not_found(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    elsewhere = make_org(db)
    project = make_project(db, elsewhere)
    task = make_task(db, elsewhere, project)
    tag = make_tag(db, elsewhere)
    refused(create_entry(api, org, project_id=str(project)), 404, "NOT_FOUND")
    refused(create_entry(api, org, task_id=str(task)), 404, "NOT_FOUND")
    refused(create_entry(api, org, tag_ids=[str(tag)]), 404, "NOT_FOUND")
    refused(create_entry(api, org, project_id=str(uuid.uuid4())), 404, "NOT_FOUND")
    # and a task of another project of this organization
    mine = make_project(db, org)
    theirs = make_task(db, org, make_project(db, org))
    refused(create_entry(api, org, project_id=str(mine), task_id=str(theirs)), 404, "NOT_FOUND")


def test_an_organization_i_am_not_in_is_not_found(api: httpx.Client, db: Engine) -> None:
    stranger = make_org(db)
    mine = make_org(db)
    refused(create_entry(api, stranger, mine.owner), 404, "NOT_FOUND")


def test_nothing_is_written_when_a_rule_refuses(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    archived = make_project(db, org, archived=True)
    refused(create_entry(api, org, project_id=str(archived)), 400, "BUSINESS_RULE")
    assert count_entries(db, org) == 0


# --- writing for someone else ------------------------------------------------------------------


def test_members_write_only_for_themselves(
    api: httpx.Client, db: Engine, org: OrgHandle, member: UserHandle
) -> None:
    colleague = add_member(db, org, "member")
    ok_data(create_entry(api, org, member, user_id=str(member.id)))
    refused(create_entry(api, org, member, user_id=str(colleague.id)), 403, "FORBIDDEN")


def test_managers_write_for_their_teams_and_the_teams_below(
    api: httpx.Client, db: Engine, org: OrgHandle, manager: UserHandle
) -> None:
    led = make_team(db, org)
    below = make_team(db, org, parent_id=led)
    further_below = make_team(db, org, parent_id=below)
    unrelated = make_team(db, org)
    add_to_team(db, org, led, manager, lead=True)
    direct, deep, outsider, plain_member_team = (add_member(db, org) for _ in range(4))
    add_to_team(db, org, led, direct)
    add_to_team(db, org, further_below, deep)
    add_to_team(db, org, unrelated, outsider)
    # a manager who is only a plain member of a team does not lead it
    add_to_team(db, org, unrelated, manager)

    for user in (direct, deep):
        data = ok_data(create_entry(api, org, manager, user_id=str(user.id)))
        assert data["user_id"] == str(user.id)
    refused(create_entry(api, org, manager, user_id=str(outsider.id)), 403, "FORBIDDEN")
    refused(create_entry(api, org, manager, user_id=str(plain_member_team.id)), 403, "FORBIDDEN")


def test_admins_write_for_any_member_at_that_members_rate(api: httpx.Client, db: Engine) -> None:
    org = make_org(db, hourly_rate_amount=500)
    admin = add_member(db, org, "admin", hourly_rate_amount=9000)
    worker = add_member(db, org, "member", hourly_rate_amount=7000)
    data = ok_data(create_entry(api, org, admin, user_id=str(worker.id)))
    assert data["user_id"] == str(worker.id)
    assert data["hourly_rate"] == 7000
    assert change_rows(db, uuid.UUID(data["id"]))[0]["payload"]["new"]["user_id"] == str(worker.id)


def test_writing_for_a_non_member_is_not_found(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    outsider = make_org(db).owner
    refused(create_entry(api, org, user_id=str(outsider.id)), 404, "NOT_FOUND")
    refused(create_entry(api, org, user_id=str(uuid.uuid4())), 404, "NOT_FOUND")
