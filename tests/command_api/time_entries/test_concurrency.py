"""The database rules hold under concurrent requests (real threads, real HTTP)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import Engine, text

from tests.command_api.locks import race
from tests.command_api.time_entries.helpers import (
    count_entries,
    create_entry,
    make_project,
    make_tag,
    make_task,
    refused,
    running_timers,
)
from tests.conftest import LiveServer
from tests.factories import OrgHandle, make_org

CONCURRENCY = 20


def hammer(
    server: LiveServer, send: Callable[[httpx.Client], httpx.Response]
) -> list[httpx.Response]:
    """Send CONCURRENCY requests at once, each from its own connection."""
    barrier = threading.Barrier(CONCURRENCY)

    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as client:
            barrier.wait()
            return send(client)

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        return list(pool.map(one, range(CONCURRENCY)))


def test_concurrent_timer_starts_leave_exactly_one_running_timer(
    command_server: LiveServer, db: Engine
) -> None:
    org = make_org(db)
    responses = hammer(
        command_server,
        lambda client: client.post(org.path("/timer/start"), headers=org.owner.headers),
    )
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {201, 409}, [
        r.text for r in responses if r.status_code not in (201, 409)
    ]
    assert statuses.count(201) >= 1
    assert len(running_timers(db, org.owner)) == 1
    # Every started timer but the last was stopped, and none of them overlaps another.
    with db.connect() as conn:
        rows = conn.execute(
            text("SELECT start_at, end_at FROM time_entries WHERE user_id = :u ORDER BY start_at"),
            {"u": org.owner.id},
        ).all()
    assert len(rows) == statuses.count(201)
    for earlier, later in zip(rows, rows[1:], strict=False):
        assert earlier.end_at == later.start_at


def test_concurrent_overlapping_creates_let_exactly_one_through(
    command_server: LiveServer, db: Engine
) -> None:
    org: OrgHandle = make_org(db, prevent_overlaps=True)

    def create(client: httpx.Client) -> httpx.Response:
        return client.post(
            org.path("/time-entries"),
            json={"start_at": "2026-03-02T09:00:00Z", "end_at": "2026-03-02T10:00:00Z"},
            headers=org.owner.headers,
        )

    responses = hammer(command_server, create)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * (CONCURRENCY - 1), [r.text for r in responses]
    assert {r.json()["error_code"] for r in responses if r.status_code == 409} == {"CONFLICT"}
    assert count_entries(db, org) == 1


def test_concurrent_running_timers_through_create_let_exactly_one_through(
    command_server: LiveServer, db: Engine
) -> None:
    org = make_org(db)
    responses = hammer(
        command_server,
        lambda client: client.post(
            org.path("/time-entries"),
            json={"start_at": "2026-03-02T09:00:00Z"},
            headers=org.owner.headers,
        ),
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * (CONCURRENCY - 1), [r.text for r in responses]
    assert len(running_timers(db, org.owner)) == 1


def test_mixed_concurrent_writes_of_one_user_never_fail_with_5xx(
    command_server: LiveServer, db: Engine
) -> None:
    org = make_org(db, prevent_overlaps=True)
    counter = iter(range(CONCURRENCY))
    lock = threading.Lock()

    def mixed(client: httpx.Client) -> httpx.Response:
        with lock:
            n = next(counter)
        headers = org.owner.headers
        if n % 4 == 0:
            return client.post(org.path("/timer/start"), headers=headers)
        if n % 4 == 1:
            return client.post(org.path("/timer/stop"), headers=headers)
        if n % 4 == 2:
            body = {"start_at": "2026-03-02T09:00:00Z", "end_at": "2026-03-02T10:00:00Z"}
            return client.post(org.path("/time-entries"), json=body, headers=headers)
        # n is 3 mod 4 here: every bulk request sends the same hour, so they collide.
        entries = [{"start_at": "2026-03-03T09:00:00Z", "end_at": "2026-03-03T10:00:00Z"}]
        return client.post(
            org.path("/time-entries/bulk"), json={"entries": entries}, headers=headers
        )

    responses = hammer(command_server, mixed)
    assert all(r.status_code < 500 for r in responses), [r.text for r in responses]
    assert len(running_timers(db, org.owner)) <= 1
    with db.connect() as conn:
        overlapping = conn.execute(
            text(
                "SELECT count(*) FROM time_entries a JOIN time_entries b"
                " ON a.user_id = b.user_id AND a.id < b.id"
                " AND tstzrange(a.start_at, a.end_at) && tstzrange(b.start_at, b.end_at)"
                " WHERE a.org_id = :org AND b.org_id = :org"
                " AND a.deleted_at IS NULL AND b.deleted_at IS NULL"
            ),
            {"org": org.id},
        ).scalar_one()
    assert overlapping == 0


# --- Archive, "done" and delete committing while an entry is being written --------------
#
# The test holds the change uncommitted, sends the write, waits until the write queues
# behind it (the references are read FOR SHARE), then commits: the write must see it.


def test_a_project_archived_meanwhile_takes_no_new_entry(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    project = make_project(db, org)
    response = race(
        db,
        "UPDATE projects SET archived = true WHERE id = :id",
        {"id": project},
        lambda: create_entry(api, org, project_id=str(project)),
    )
    body = refused(response, 400, "BUSINESS_RULE")
    assert "archived" in body["error"]
    assert count_entries(db, org) == 0


def test_a_task_done_meanwhile_takes_no_new_timer(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    task = make_task(db, org, make_project(db, org))
    response = race(
        db,
        "UPDATE tasks SET done = true WHERE id = :id",
        {"id": task},
        lambda: api.post(
            org.path("/timer/start"), json={"task_id": str(task)}, headers=org.owner.headers
        ),
    )
    body = refused(response, 400, "BUSINESS_RULE")
    assert "done" in body["error"]
    assert running_timers(db, org.owner) == []


def test_a_tag_deleted_meanwhile_is_not_found(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    tag = make_tag(db, org)
    response = race(
        db,
        "UPDATE tags SET deleted_at = now() WHERE id = :id",
        {"id": tag},
        lambda: create_entry(api, org, tag_ids=[str(tag)]),
    )
    refused(response, 404, "NOT_FOUND")
    assert count_entries(db, org) == 0


def test_a_project_archived_meanwhile_fails_its_bulk_items(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    open_project, doomed = make_project(db, org), make_project(db, org)
    entries = [
        {"start_at": f"2026-03-02T0{hour}:00:00Z", "end_at": f"2026-03-02T0{hour}:30:00Z"}
        | {"project_id": str(project)}
        for hour, project in enumerate([open_project, doomed, open_project, doomed])
    ]
    response = race(
        db,
        "UPDATE projects SET archived = true WHERE id = :id",
        {"id": doomed},
        lambda: api.post(
            org.path("/time-entries/bulk"), json={"entries": entries}, headers=org.owner.headers
        ),
    )
    body = refused(response, 422, "VALIDATION_ERROR")
    assert [(d["index"], d["field"], d["error_code"]) for d in body["details"]] == [
        (1, "project_id", "BUSINESS_RULE"),
        (3, "project_id", "BUSINESS_RULE"),
    ]
    assert count_entries(db, org) == 0


def test_an_organization_deleted_meanwhile_takes_no_entry(api: httpx.Client, db: Engine) -> None:
    """The membership check passed before the delete committed; the policy read (FOR SHARE)
    waits for the delete and then finds no live organization: 404, nothing written."""
    org = make_org(db)
    response = race(
        db,
        "UPDATE organizations SET deleted_at = now() WHERE id = :id",
        {"id": org.id},
        lambda: create_entry(api, org),
    )
    refused(response, 404, "NOT_FOUND")
    assert count_entries(db, org) == 0


def test_an_organization_deleted_meanwhile_takes_no_timer(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    response = race(
        db,
        "UPDATE organizations SET deleted_at = now() WHERE id = :id",
        {"id": org.id},
        lambda: api.post(org.path("/timer/start"), headers=org.owner.headers),
    )
    refused(response, 404, "NOT_FOUND")
    assert running_timers(db, org.owner) == []
