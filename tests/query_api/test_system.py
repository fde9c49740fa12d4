"""The read side's foundations: the consistency wait, authentication from projections,
/system/projections."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine

from shared.config import get_settings
from tests.conftest import BackgroundProjector, LiveServer
from tests.factories import add_member, make_org


@pytest.fixture
def short_wait(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CONSISTENCY_WAIT_SECONDS", "0.3")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_an_admin_reads_the_projections_state_after_their_write(
    api: httpx.Client,
    qapi: httpx.Client,
    query_server: LiveServer,
    db: Engine,
    projector_running: BackgroundProjector,
) -> None:
    org = make_org(db)
    write = api.post(org.path("/tags"), json={"name": "x"}, headers=org.owner.headers)
    token = write.headers["X-Consistency-Token"]
    response = qapi.get(
        "/system/projections", headers={**org.owner.headers, "X-Consistency-Token": token}
    )
    assert response.status_code == 200, response.text
    names = {p["name"] for p in response.json()["data"]}
    assert {"catalog", "entries", "sync"} <= names
    assert all(p["lag_changes"] >= 0 for p in response.json()["data"])
    # A primary: no replica lag (tests/e2e/test_replica.py shows it on a replica).
    assert response.json()["replica"] is None
    metrics = httpx.get(f"{query_server.url}/metrics", timeout=30)
    assert "evotrack_projection_lag_changes" in metrics.text
    assert "evotrack_replica_" not in metrics.text


def test_a_member_may_not_and_an_api_token_authenticates(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    org = make_org(db)
    member = add_member(db, org, "member")
    created = api.post("/auth/api-tokens", json={"name": "script"}, headers=member.headers)
    assert created.status_code == 201, created.text
    # The read side knows the API token once projected: wait for it with the member's JWT.
    waited = qapi.get(
        "/system/projections",
        headers={**member.headers, "X-Consistency-Token": created.headers["X-Consistency-Token"]},
    )
    assert waited.status_code == 403, waited.text
    headers = {"Authorization": f"Bearer {created.json()['data']['token']}"}
    response = qapi.get("/system/projections", headers=headers)
    assert response.status_code == 403  # authenticated by the API token, but not an admin
    assert response.json()["error_code"] == "FORBIDDEN"


def test_a_write_not_yet_projected_is_a_503_projection_lag(
    api: httpx.Client, qapi: httpx.Client, db: Engine, short_wait: None
) -> None:
    org = make_org(db)
    write = api.post(org.path("/tags"), json={"name": "y"}, headers=org.owner.headers)
    response = qapi.get(
        "/system/projections",
        headers={**org.owner.headers, "X-Consistency-Token": write.headers["X-Consistency-Token"]},
    )
    assert response.status_code == 503
    assert response.json()["error_code"] == "PROJECTION_LAG"
    assert response.headers["retry-after"]


def test_a_garbled_consistency_token_is_a_422(qapi: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    response = qapi.get(
        "/system/projections", headers={**org.owner.headers, "X-Consistency-Token": "nonsense"}
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "X-Consistency-Token"


def test_no_credentials_is_a_401(qapi: httpx.Client) -> None:
    response = qapi.get("/system/projections")
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHORIZED"
