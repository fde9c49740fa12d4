"""Redis is a doorbell: with it unreachable, commands still succeed and log their changes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

import shared.redis_client
from evotrack.embedded import EmbeddedRedis
from shared.config import get_settings
from shared.redis_client import redis_client
from tests.conftest import LiveServer
from tests.factories import change_rows, make_org


@pytest.fixture
def server_with_own_redis(
    db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LiveServer, EmbeddedRedis]]:
    """A command API whose Redis is the test's own, never the shared one."""
    redis = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    monkeypatch.setenv("REDIS_URL", redis.url)
    get_settings.cache_clear()
    redis_client.cache_clear()
    try:
        from command_api.main import create_app

        with LiveServer(create_app()) as server:
            yield server, redis
    finally:
        redis.stop()
        monkeypatch.undo()
        get_settings.cache_clear()
        redis_client.cache_clear()
        # Our outage tripped the breaker; the shared Redis is fine, let the next tests use it.
        shared.redis_client._breaker_open_until = 0.0


def test_a_command_succeeds_and_logs_its_change_with_redis_down(
    db: Engine, server_with_own_redis: tuple[LiveServer, EmbeddedRedis]
) -> None:
    server, redis = server_with_own_redis
    org = make_org(db)
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as api:
        assert api.get(f"{server.url}/ready").status_code == 200  # it was our Redis
        redis.stop()
        assert api.get(f"{server.url}/ready").status_code == 503
        response = api.post(
            org.path("/time-entries"),
            json={"start_at": "2026-03-02T09:00:00Z", "end_at": "2026-03-02T10:00:00Z"},
            headers=org.owner.headers,
        )
        assert response.status_code == 201, response.text
        assert response.headers["X-Consistency-Token"].startswith("ct1.")
        entry_id = uuid.UUID(response.json()["data"]["id"])
        (change,) = change_rows(db, entry_id)
        assert change["op"] == "created"
        assert change["org_id"] == org.id
        # The next command does not wait for Redis either (the breaker is open).
        timer = api.post(org.path("/timer/start"), headers=org.owner.headers)
        assert timer.status_code == 201, timer.text
        assert change_rows(db, uuid.UUID(timer.json()["data"]["id"]))
