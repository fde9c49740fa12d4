"""A worker container's health check (worker/healthcheck.py): healthy while an RQ worker of
its host is registered in Redis, and a clear reason otherwise."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis

from evotrack.embedded import EmbeddedRedis, free_port
from tests.services import ROOT
from worker.healthcheck import check
from worker.rq_worker import WakeupWorker

HOST = socket.gethostname()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis of these tests' own: no other test's workers register in it."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False).start()
    yield server.url
    server.stop()


@pytest.fixture
def connection(redis_server: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    yield client
    client.close()


def registered_worker(connection: redis.Redis, hostname: str = HOST) -> WakeupWorker:
    worker = WakeupWorker(["projections"], connection=connection, wakeup_queue="projections")
    worker.hostname = hostname
    # What RQ does when `evotrack worker` starts to work.
    worker.register_birth()  # type: ignore[no-untyped-call]
    return worker


def test_healthy_while_a_worker_of_this_host_is_registered(
    redis_server: str, connection: redis.Redis
) -> None:
    worker = registered_worker(connection)
    healthy, reason = check(redis_server, HOST)
    assert healthy
    assert worker.name in reason
    assert "queues projections" in reason


def test_unhealthy_without_a_worker_of_this_host(
    redis_server: str, connection: redis.Redis
) -> None:
    registered_worker(connection, hostname="another-container")
    assert check(redis_server, HOST) == (False, f"no RQ worker of {HOST} is registered in Redis")


def test_unhealthy_once_the_worker_is_gone(redis_server: str, connection: redis.Redis) -> None:
    worker = registered_worker(connection)
    # A warm stop deregisters; a killed worker's registration expires instead.
    worker.register_death()  # type: ignore[no-untyped-call]
    assert check(redis_server, HOST)[0] is False
    connection.delete(registered_worker(connection).key)  # its registration expired
    assert check(redis_server, HOST)[0] is False


def test_unhealthy_when_redis_does_not_answer() -> None:
    healthy, reason = check(f"redis://127.0.0.1:{free_port()}/0", HOST)
    assert not healthy
    assert reason.startswith("Redis does not answer")


def test_the_command_compose_runs(redis_server: str, connection: redis.Redis) -> None:
    """`python -m worker.healthcheck`: exit status and reason from the worker's settings."""

    def run() -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "REDIS_URL": redis_server}
        command = [sys.executable, "-m", "worker.healthcheck"]
        return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)

    missing = run()
    assert (missing.returncode, missing.stdout) == (
        1,
        f"unhealthy, no RQ worker of {HOST} is registered in Redis\n",
    )
    registered_worker(connection)
    present = run()
    assert present.returncode == 0
    assert present.stdout.startswith("healthy, registered: ")
