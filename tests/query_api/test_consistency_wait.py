"""The consistency wait (`X-Consistency-Token`) comes after authentication and holds nothing
while it waits: no database connection, no worker thread.

A forged or missing credential is a 401 at once, whatever token it brings. A legitimate
request waits for the projections it reads without holding a connection, so requests that
wait cannot starve the others; past the bound it is a 503 PROJECTION_LAG.

No test here projects in the background unless it says so: projections move only when a
test advances them, so "still waiting" is a state the test controls, not a race.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import sessionmaker

from tests.factories import OrgHandle, make_org

UNREACHABLE = "ct1.ffffffff"  # far beyond any transaction id of a test database
DEADLINE_SECONDS = 60.0  # only bounds a failure


def advance_all_projections(db: Engine) -> None:
    """What the worker does, once: bring every projection up to the watermark (which a
    transaction open anywhere on the server may hold back: callers repeat until done)."""
    from projections.registry import PROJECTIONS
    from projections.runner import advance

    sessions = sessionmaker(bind=db)
    for projector in PROJECTIONS:
        advance(sessions, projector)


def wait_until(condition: Callable[[], bool], what: str, *, meanwhile: Callable[[], None]) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        meanwhile()


def project_until(db: Engine, condition: Callable[[], bool], what: str) -> None:
    wait_until(condition, what, meanwhile=lambda: advance_all_projections(db))


@pytest.fixture
def set_wait_seconds(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[float], None]]:
    """Change CONSISTENCY_WAIT_SECONDS of the query API (it runs in this process)."""
    from shared.config import get_settings

    def set_to(seconds: float) -> None:
        monkeypatch.setenv("CONSISTENCY_WAIT_SECONDS", str(seconds))
        get_settings.cache_clear()

    yield set_to
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def org(db: Engine) -> OrgHandle:
    """An organization whose owner the read side already knows."""
    org = make_org(db)
    project_until(db, lambda: is_projected_member(db, org), "the owner on the read side")
    return org


def is_projected_member(db: Engine, org: OrgHandle) -> bool:
    """The owner, the organization and the membership on the read side (a member row can
    show before its organization's: each table follows its own changes)."""
    with db.connect() as conn:
        found = conn.execute(
            text(
                "SELECT 1 FROM proj_organizations o"
                " JOIN proj_members m ON m.org_id = o.id"
                " JOIN proj_users u ON u.id = m.user_id"
                " WHERE o.id = :org AND m.user_id = :user"
            ),
            {"org": org.id, "user": org.owner.id},
        )
        return found.first() is not None


def idle_in_transaction(db: Engine) -> int:
    with db.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND state = 'idle in transaction'"
                )
            ).scalar_one()
        )


FORGED = {
    "no credential": {},
    "a forged JWT": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"},
    "an unknown API token": {"Authorization": "Bearer evo_" + "x" * 40},
}


@pytest.mark.parametrize("credential", sorted(FORGED))
def test_a_bad_credential_with_a_far_future_token_is_a_401_at_once(
    credential: str, qapi: httpx.Client, org: OrgHandle, db: Engine
) -> None:
    # The default bound of the tests is 30 s: a request that waited would answer 503 and
    # these 60 (more than the pool and the thread pool) would starve one another.
    paths = [
        "/me",
        org.path("/time-entries"),
        org.path("/reports/summary?group_by=user&from=2026-01-01&to=2026-01-31"),
        org.path("/reports/detailed?from=2026-01-01&to=2026-01-31"),
        org.path("/dashboard"),
        "/notifications",
    ]
    headers = {**FORGED[credential], "X-Consistency-Token": UNREACHABLE}
    with ThreadPoolExecutor(max_workers=60) as pool:
        futures = [pool.submit(qapi.get, paths[i % len(paths)], headers=headers) for i in range(60)]
        responses = [f.result() for f in futures]
    for response in responses:
        assert response.status_code == 401, (response.request.url, response.text)
        assert response.json()["error_code"] == "UNAUTHORIZED"


@pytest.mark.parametrize("token", ["nonsense", "ct1.", "ct1.+1a", "ct1.1_0", "ct1. 1a", "ct1.-1"])
def test_a_token_this_service_did_not_issue_is_a_422_naming_the_header(
    token: str, qapi: httpx.Client, org: OrgHandle, set_wait_seconds: Callable[[float], None]
) -> None:
    """Only what the OpenAPI document declares (`ct1.` and hex digits): Python's int()
    reads a sign, underscores and spaces too, and those waited as if issued."""
    set_wait_seconds(0.2)
    response = qapi.get(
        org.path("/time-entries"), headers={**org.owner.headers, "X-Consistency-Token": token}
    )
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["details"]] == ["X-Consistency-Token"]


@pytest.mark.parametrize("token", [UNREACHABLE, "ct1." + "f" * 40])
def test_an_unreachable_token_is_a_503_projection_lag(
    token: str, qapi: httpx.Client, org: OrgHandle, set_wait_seconds: Callable[[float], None]
) -> None:
    set_wait_seconds(0.2)
    response = qapi.get(
        org.path("/time-entries"), headers={**org.owner.headers, "X-Consistency-Token": token}
    )
    assert response.status_code == 503, response.text
    assert response.json()["error_code"] == "PROJECTION_LAG"
    assert int(response.headers["Retry-After"]) >= 1


def test_waiting_requests_hold_no_connection_and_do_not_starve_others(
    api: httpx.Client,
    qapi: httpx.Client,
    org: OrgHandle,
    db: Engine,
    set_wait_seconds: Callable[[float], None],
) -> None:
    from query_api.dependencies import consistency_waits

    set_wait_seconds(10 * DEADLINE_SECONDS)  # the readers wait until this test projects

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    written = api.post(
        org.path("/time-entries"),
        headers=org.owner.headers,
        json={"start_at": start.isoformat(), "end_at": (start + timedelta(hours=1)).isoformat()},
    )
    assert written.status_code == 201, written.text
    entry_id = written.json()["data"]["id"]
    # More waiting readers than the test pool holds connections (30 + 20) and than the
    # server has worker threads (40): each one holding either would starve the rest.
    waiting = 60
    headers = {**org.owner.headers, "X-Consistency-Token": written.headers["X-Consistency-Token"]}
    already = consistency_waits.waiting
    # The readers wait for as long as this test takes to project.
    patient = httpx.Client(base_url=qapi.base_url, timeout=10 * DEADLINE_SECONDS)
    with patient, ThreadPoolExecutor(max_workers=waiting) as pool:
        futures: list[Future[httpx.Response]] = [
            pool.submit(patient.get, org.path("/time-entries"), headers=headers)
            for _ in range(waiting)
        ]
        wait_until(
            lambda: consistency_waits.waiting >= already + waiting,
            "every reader waits",
            meanwhile=lambda: time.sleep(0.02),
        )
        assert idle_in_transaction(db) == 0
        assert not any(f.done() for f in futures)

        # Meanwhile a read without a token is served, and so is one with a reachable token.
        plain = qapi.get(org.path("/time-entries"), headers=org.owner.headers)
        assert plain.status_code == 200, plain.text
        me = qapi.get("/me", headers={**org.owner.headers, "X-Consistency-Token": "ct1.1"})
        assert me.status_code == 200, me.text

        project_until(db, lambda: all(f.done() for f in futures), "the readers' answers")
        responses = [f.result() for f in futures]
    for response in responses:
        assert response.status_code == 200, response.text
        assert [e["id"] for e in response.json()["data"]] == [entry_id]
