"""`Idempotency-Key` on POST commands: a retry replays the first answer and writes nothing."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import Engine, text

from tests.conftest import LiveServer
from tests.factories import OrgHandle, make_org

ENTRY = {"start_at": "2026-03-02T09:00:00Z", "end_at": "2026-03-02T10:00:00Z"}


def entries_of(db: Engine, org: OrgHandle) -> int:
    with db.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM time_entries WHERE org_id = :org"), {"org": org.id}
            ).scalar_one()
        )


def changes_of(db: Engine, org: OrgHandle) -> int:
    with db.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM changes WHERE org_id = :org AND NOT payload ? 'seeded'"),
                {"org": org.id},
            ).scalar_one()
        )


def post(
    api: httpx.Client, org: OrgHandle, key: str, body: dict[str, str] | None = None
) -> httpx.Response:
    headers = {**org.owner.headers, "Idempotency-Key": key}
    return api.post(org.path("/time-entries"), json=body or ENTRY, headers=headers)


def test_a_retry_replays_the_first_response(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    key = f"retry-{uuid.uuid4()}"
    first = post(api, org, key)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    second = post(api, org, key)
    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert second.headers["X-Consistency-Token"] == first.headers["X-Consistency-Token"]
    assert entries_of(db, org) == 1
    assert changes_of(db, org) == 1


def test_the_body_key_order_does_not_matter(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    key = f"order-{uuid.uuid4()}"
    first = post(api, org, key, {"start_at": ENTRY["start_at"], "end_at": ENTRY["end_at"]})
    second = post(api, org, key, {"end_at": ENTRY["end_at"], "start_at": ENTRY["start_at"]})
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert entries_of(db, org) == 1


def test_the_same_key_with_another_body_is_a_conflict(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    key = f"other-{uuid.uuid4()}"
    assert post(api, org, key).status_code == 201
    other = post(api, org, key, {**ENTRY, "description": "different"})
    assert other.status_code == 409, other.text
    assert other.json()["error_code"] == "CONFLICT"
    assert entries_of(db, org) == 1


def test_a_refused_command_does_not_spend_its_key(api: httpx.Client, db: Engine) -> None:
    org = make_org(db, prevent_overlaps=True)
    assert post(api, org, f"a-{uuid.uuid4()}").status_code == 201
    key = f"b-{uuid.uuid4()}"
    clash = post(api, org, key)
    assert clash.status_code == 409
    assert "Idempotent-Replayed" not in clash.headers
    moved = {"start_at": "2026-03-02T10:00:00Z", "end_at": "2026-03-02T11:00:00Z"}
    # The failed attempt left no key behind: the same key now runs another request.
    assert post(api, org, key, moved).status_code == 201
    assert entries_of(db, org) == 2


def test_keys_belong_to_their_user(api: httpx.Client, db: Engine) -> None:
    one, two = make_org(db), make_org(db)
    key = f"shared-{uuid.uuid4()}"
    assert post(api, one, key).status_code == 201
    again = post(api, two, key)
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert entries_of(db, one) == entries_of(db, two) == 1


def test_concurrent_retries_with_one_key_create_one_entry(
    command_server: LiveServer, db: Engine
) -> None:
    org = make_org(db)
    key = f"race-{uuid.uuid4()}"
    barrier = threading.Barrier(10)

    def attempt(_: int) -> httpx.Response:
        with httpx.Client(base_url=f"{command_server.url}/api/v1", timeout=60) as client:
            barrier.wait()
            return post(client, org, key)

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(attempt, range(10)))
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.json()["data"]["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 9
    assert entries_of(db, org) == 1
    assert changes_of(db, org) == 1


def test_timer_start_is_idempotent_too(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    headers = {**org.owner.headers, "Idempotency-Key": f"timer-{uuid.uuid4()}"}
    first = api.post(org.path("/timer/start"), headers=headers)
    second = api.post(org.path("/timer/start"), headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["data"]["id"] == first.json()["data"]["id"]
    assert entries_of(db, org) == 1
