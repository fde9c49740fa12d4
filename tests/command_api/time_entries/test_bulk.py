"""POST /organizations/{org_id}/time-entries/bulk: all or nothing, failures by index."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, event, text

from tests.command_api.time_entries.helpers import (
    add_project_member,
    count_entries,
    create_entry,
    entry_row,
    entry_tags,
    invalid_fields,
    make_project,
    make_tag,
    make_task,
    ok_data,
    refused,
)
from tests.factories import OrgHandle, UserHandle, add_member, make_org

BASE = datetime(2026, 3, 2, tzinfo=UTC)


def item(hour: int, length_hours: float = 1.0, **fields: Any) -> dict[str, Any]:
    start = BASE + timedelta(hours=hour)
    return {
        "start_at": start.isoformat(),
        "end_at": (start + timedelta(hours=length_hours)).isoformat(),
        **fields,
    }


def bulk(
    api: httpx.Client, org: OrgHandle, entries: list[dict[str, Any]], user: UserHandle | None = None
) -> httpx.Response:
    return api.post(
        org.path("/time-entries/bulk"),
        json={"entries": entries},
        headers=(user or org.owner).headers,
    )


def test_bulk_creates_every_entry_in_input_order(api: httpx.Client, db: Engine) -> None:
    org = make_org(db, hourly_rate_amount=1000)
    worker = add_member(db, org, "member", hourly_rate_amount=2000)
    project = make_project(db, org, hourly_rate_amount=3600)
    task = make_task(db, org, project)
    tag = str(make_tag(db, org))
    entries = [
        item(0, project_id=str(project), task_id=str(task), tag_ids=[tag], description="a"),
        item(1),
        item(2, user_id=str(worker.id)),
        item(3, end_at=None),
    ]
    data = ok_data(bulk(api, org, entries))
    assert data["created"] == 4
    assert len(data["ids"]) == 4
    rows = [entry_row(db, entry_id) for entry_id in data["ids"]]
    assert [row["start_at"] for row in rows] == [BASE + timedelta(hours=h) for h in range(4)]
    assert rows[0]["hourly_rate_amount"] == 3600
    assert rows[0]["billable"] is True
    assert rows[0]["description"] == "a"
    assert rows[1]["hourly_rate_amount"] == 1000
    assert rows[2]["user_id"] == worker.id
    assert rows[2]["hourly_rate_amount"] == 2000
    assert rows[3]["end_at"] is None
    assert entry_tags(db, data["ids"][0]) == {tag}
    with db.connect() as conn:
        changes = conn.execute(
            text("SELECT entity_id, op, payload FROM changes WHERE entity_id = ANY(:ids)"),
            {"ids": [uuid.UUID(i) for i in data["ids"]]},
        ).all()
    assert len(changes) == 4
    assert {str(c.entity_id) for c in changes} == set(data["ids"])
    first = next(c for c in changes if str(c.entity_id) == data["ids"][0])
    assert first.payload["new"]["amount"] == 3600
    assert first.payload["new"]["tag_ids"] == [tag]


def test_bulk_resolves_each_members_own_project_rate(api: httpx.Client, db: Engine) -> None:
    """One lookup reads every project with its rated members: several members of one
    project, a member without a rate of their own, and a writer in no project at all."""
    org = make_org(db, hourly_rate_amount=1000)
    first = add_member(db, org, "member", hourly_rate_amount=2000)
    second = add_member(db, org, "member", hourly_rate_amount=2500)
    rated = make_project(db, org, hourly_rate_amount=3000)
    add_project_member(db, org, rated, first, 4000)
    add_project_member(db, org, rated, second, 5000)
    other = make_project(db, org, hourly_rate_amount=3500)
    add_project_member(db, org, other, first, None)
    entries = [
        item(0, user_id=str(first.id), project_id=str(rated)),
        item(1, user_id=str(second.id), project_id=str(rated)),
        item(2, project_id=str(rated)),  # the owner: no project member
        item(3, user_id=str(first.id), project_id=str(other)),  # a link without a rate
        item(4, user_id=str(second.id), project_id=str(other)),  # no link
        item(5, user_id=str(second.id)),  # no project: the member's rate
    ]
    ids = ok_data(bulk(api, org, entries))["ids"]
    rates = [entry_row(db, entry_id)["hourly_rate_amount"] for entry_id in ids]
    assert rates == [4000, 5000, 3000, 3500, 3500, 2500]


def test_any_failing_item_writes_nothing_and_every_failure_is_listed(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    archived = make_project(db, org, archived=True)
    foreign = make_project(db, make_org(db))
    colleague = add_member(db, org, "member")
    member = add_member(db, org, "member")
    entries = [
        item(0),
        item(1, project_id=str(archived)),
        item(2, length_hours=25),
        item(4, project_id=str(foreign)),
        item(5),
        item(6, tag_ids=[str(uuid.uuid4())]),
    ]
    body = refused(bulk(api, org, entries), 422, "VALIDATION_ERROR")
    assert "4 of 6" in body["error"]
    details = {d["index"]: d for d in body["details"]}
    assert set(details) == {1, 2, 3, 5}
    assert details[1]["error_code"] == "BUSINESS_RULE"
    assert details[1]["field"] == "project_id"
    assert details[2]["error_code"] == "BUSINESS_RULE"
    assert details[2]["field"] == "end_at"
    assert "24 hours" in details[2]["message"]
    assert details[3]["error_code"] == "NOT_FOUND"
    assert details[3]["field"] == "project_id"
    assert details[5]["field"] == "tag_ids"
    assert count_entries(db, org) == 0

    scoped = refused(
        bulk(
            api,
            org,
            [item(0, user_id=str(colleague.id)), item(1, user_id=str(uuid.uuid4()))],
            member,
        ),
        422,
        "VALIDATION_ERROR",
    )
    assert [(d["index"], d["error_code"], d["field"]) for d in scoped["details"]] == [
        (0, "FORBIDDEN", "user_id"),
        (1, "NOT_FOUND", "user_id"),
    ]


def test_overlaps_inside_the_batch_and_with_stored_entries(api: httpx.Client, db: Engine) -> None:
    org = make_org(db, prevent_overlaps=True)
    colleague = add_member(db, org, "member")
    ok_data(
        create_entry(
            api,
            org,
            start_at=(BASE + timedelta(hours=10)).isoformat(),
            end_at=(BASE + timedelta(hours=11)).isoformat(),
        )
    )
    entries = [
        item(0, length_hours=2),
        item(1),  # overlaps item 0
        item(2),  # touches item 0: fine
        item(1, user_id=str(colleague.id)),  # another user: fine
        item(10, length_hours=0.5),  # overlaps the stored entry
        item(20, end_at=None),
        item(21, end_at=None),  # a second running timer of the same user
    ]
    body = refused(bulk(api, org, entries), 422, "VALIDATION_ERROR")
    details = {d["index"]: d for d in body["details"]}
    assert set(details) == {1, 4, 6}
    assert all(d["error_code"] == "CONFLICT" for d in details.values())
    assert "item 0" in details[1]["message"]
    assert count_entries(db, org) == 1


def test_overlaps_are_fine_where_the_organization_allows_them(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    ok_data(bulk(api, org, [item(0, length_hours=2), item(1)]))


def test_a_running_timer_already_stored_is_a_conflict(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    ok_data(create_entry(api, org, end_at=None, start_at="2026-04-01T09:00:00Z"))
    body = refused(bulk(api, org, [item(0), item(1, end_at=None)]), 422, "VALIDATION_ERROR")
    assert [(d["index"], d["error_code"]) for d in body["details"]] == [(1, "CONFLICT")]


def test_locked_items_are_refused_below_admin(api: httpx.Client, db: Engine) -> None:
    org = make_org(db, lock_before=date(2026, 3, 2))
    member = add_member(db, org, "member")
    entries = [item(-2), item(1)]
    body = refused(bulk(api, org, entries, member), 422, "VALIDATION_ERROR")
    assert [(d["index"], d["error_code"], d["field"]) for d in body["details"]] == [
        (0, "BUSINESS_RULE", "start_at")
    ]
    ok_data(bulk(api, org, entries))


def test_a_thousand_entries_take_a_fixed_number_of_statements(
    api: httpx.Client, db: Engine, org: OrgHandle
) -> None:
    project = make_project(db, org, hourly_rate_amount=100)
    tags = [str(make_tag(db, org)) for _ in range(3)]
    entries = [
        {
            "start_at": (BASE + timedelta(minutes=30 * i)).isoformat(),
            "end_at": (BASE + timedelta(minutes=30 * i + 20)).isoformat(),
            "project_id": str(project),
            "tag_ids": tags,
        }
        for i in range(1000)
    ]
    statements: list[str] = []
    from shared.db import write_engine

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = write_engine()
    event.listen(engine, "before_cursor_execute", count)
    try:
        data = ok_data(bulk(api, org, entries))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert data["created"] == 1000
    assert count_entries(db, org) == 1000
    inserts = [s for s in statements if "INSERT INTO" in s.upper()]
    # Tags: one INSERT. Entries and change rows: one COPY each, which goes to the driver
    # directly (no SQLAlchemy event sees it): no INSERT of either at all, whatever the count.
    assert len([s for s in inserts if "INTO time_entries" in s]) == 0
    assert len([s for s in inserts if "INTO time_entry_tags" in s]) == 1
    assert len([s for s in inserts if "INTO changes" in s]) == 0
    assert len(statements) < 25, statements
    with db.connect() as conn:
        tagged = conn.execute(
            text("SELECT count(*) FROM time_entry_tags WHERE org_id = :org"), {"org": org.id}
        ).scalar_one()
        logged = conn.execute(
            text("SELECT count(*) FROM changes WHERE org_id = :org AND entity = 'time_entry'"),
            {"org": org.id},
        ).scalar_one()
    assert tagged == 3000
    assert logged == 1000


def test_bulk_limits(api: httpx.Client, org: OrgHandle) -> None:
    assert invalid_fields(bulk(api, org, [])) == {"entries"}
    assert invalid_fields(bulk(api, org, [item(0)] * 1001)) == {"entries"}
    refused(
        api.post(org.path("/time-entries/bulk"), json={"entries": {}}, headers=org.owner.headers),
        422,
        "VALIDATION_ERROR",
    )


def _problems(response: httpx.Response) -> list[tuple[int, str | None, str]]:
    body = refused(response, 422, "VALIDATION_ERROR")
    for detail in body["details"]:
        assert set(detail) == {"index", "field", "error_code", "message"}, detail
        assert detail["message"]
    indexes = [d["index"] for d in body["details"]]
    assert indexes == sorted(indexes)
    # Within one item, in the schema's field order: compared here by field.
    problems = [(d["index"], d["field"], d["error_code"]) for d in body["details"]]
    return sorted(problems, key=lambda problem: (problem[0], problem[1] or ""))


def test_malformed_items_are_listed_by_index(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    entries: list[Any] = [
        item(0),
        {"start_at": "nope"},
        item(2, end_at=item(1)["start_at"]),  # ends before it starts
        item(3, color="red"),
        7,
        {"end_at": item(5)["end_at"], "tag_ids": ["not-a-uuid"]},
    ]
    response = bulk(api, org, entries)
    assert _problems(response) == [
        (1, "start_at", "VALIDATION_ERROR"),
        (2, "end_at", "VALIDATION_ERROR"),
        (3, "color", "VALIDATION_ERROR"),
        (4, None, "VALIDATION_ERROR"),
        (5, "start_at", "VALIDATION_ERROR"),
        (5, "tag_ids.0", "VALIDATION_ERROR"),
    ]
    assert "5 of 6" in response.json()["error"]
    assert "after start_at" in response.json()["details"][1]["message"]
    assert count_entries(db, org) == 0


def test_malformed_items_and_rule_failures_come_in_one_answer(
    api: httpx.Client, db: Engine
) -> None:
    org = make_org(db, prevent_overlaps=True)
    archived = make_project(db, org, archived=True)
    entries = [
        item(0, length_hours=2),
        {"start_at": "nope", "end_at": item(0)["end_at"]},
        item(1),  # overlaps item 0
        item(3, project_id=str(archived)),
        item(4, length_hours=25),
        item(6, user_id=str(uuid.uuid4())),
        item(8, billable="sometimes"),
    ]
    assert _problems(bulk(api, org, entries)) == [
        (1, "start_at", "VALIDATION_ERROR"),
        (2, "start_at", "CONFLICT"),
        (3, "project_id", "BUSINESS_RULE"),
        (4, "end_at", "BUSINESS_RULE"),
        (5, "user_id", "NOT_FOUND"),
        (6, "billable", "VALIDATION_ERROR"),
    ]
    assert count_entries(db, org) == 0


def test_a_batch_of_malformed_items_only(api: httpx.Client, db: Engine, org: OrgHandle) -> None:
    response = bulk(api, org, [{}, {"start_at": item(0)["start_at"], "user_id": 3}])
    assert _problems(response) == [
        (0, "start_at", "VALIDATION_ERROR"),
        (1, "user_id", "VALIDATION_ERROR"),
    ]
    assert count_entries(db, org) == 0
