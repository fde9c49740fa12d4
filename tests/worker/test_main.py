"""The worker process on a real Redis: it runs the wake-up job, stops warmly on SIGTERM,
and waits for a Redis that is not there yet instead of crashing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.worker import SimpleWorker

from evotrack.embedded import EmbeddedRedis, free_port
from shared.redis_client import WAKEUP_JOB


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis of these tests' own: nothing else enqueues into it or flushes it."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False).start()
    yield server.url
    server.stop()


@pytest.fixture
def queue_name(environment: None) -> str:
    return f"test-wakeup-{uuid.uuid4().hex[:8]}"


def worker_env(queue_name: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "WAKEUP_QUEUE": queue_name,
        "LOG_LEVEL": "INFO",
        **extra,
    }


def start_worker(env: dict[str, str], log_path: Path, *args: str) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "worker.main", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for(condition: Callable[[], bool], timeout_seconds: float, what: str) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def stop_later() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_burst_worker_runs_the_wakeup_job_by_name(
    own_redis: str, queue_name: str, tmp_path: Path
) -> None:
    connection = redis.Redis.from_url(own_redis)
    job = Queue(queue_name, connection=connection).enqueue(WAKEUP_JOB)
    log_path = tmp_path / "worker.log"

    process = start_worker(worker_env(queue_name, own_redis), log_path, "--burst")

    assert process.wait(60) == 0, log_path.read_text()
    job = Job.fetch(job.id, connection=connection)
    assert job.get_status() == JobStatus.FINISHED, log_path.read_text()
    assert isinstance(job.return_value(), int)


def test_sigterm_lets_the_worker_stop_warmly(
    own_redis: str, queue_name: str, tmp_path: Path, stop_later: list[subprocess.Popen[bytes]]
) -> None:
    connection = redis.Redis.from_url(own_redis)
    queue = Queue(queue_name, connection=connection)
    log_path = tmp_path / "worker.log"
    process = start_worker(worker_env(queue_name, own_redis), log_path)
    stop_later.append(process)
    wait_for(lambda: "Listening on" in log_path.read_text(), 60, "the worker to listen")
    assert len(SimpleWorker.all(queue=queue)) == 1

    process.send_signal(signal.SIGTERM)

    assert process.wait(60) == 0, log_path.read_text()
    assert "warm shut down requested" in log_path.read_text()
    assert SimpleWorker.all(queue=queue) == []  # it deregistered on the way out


def test_the_worker_waits_for_redis_and_says_so(
    queue_name: str, tmp_path: Path, stop_later: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    log_path = tmp_path / "worker.log"
    env = worker_env(queue_name, f"redis://127.0.0.1:{port}/0", LOG_JSON="false")
    process = start_worker(env, log_path)
    stop_later.append(process)
    wait_for(lambda: "unreachable" in log_path.read_text(), 60, "a log line about Redis")
    assert process.poll() is None  # still waiting, not crashed

    server = EmbeddedRedis(tmp_path / "redis", port=port, persist=False).start()
    try:
        connection = redis.Redis(port=port)
        job = Queue(queue_name, connection=connection).enqueue(WAKEUP_JOB)
        wait_for(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, 30, "the job")
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, log_path.read_text()
    finally:
        server.stop()


def test_a_stop_request_ends_the_wait_for_redis(
    queue_name: str, tmp_path: Path, stop_later: list[subprocess.Popen[bytes]]
) -> None:
    log_path = tmp_path / "worker.log"
    env = worker_env(queue_name, f"redis://127.0.0.1:{free_port()}/0")
    process = start_worker(env, log_path)
    stop_later.append(process)
    wait_for(lambda: "unreachable" in log_path.read_text(), 60, "a log line about Redis")

    process.send_signal(signal.SIGTERM)

    assert process.wait(60) == 0, log_path.read_text()
    assert "SIGTERM received while starting" in log_path.read_text()


@pytest.mark.parametrize(("role", "runs"), [("projections", "wakeup"), ("notifications", "notify")])
def test_a_worker_of_one_role_leaves_the_other_queue_alone(
    own_redis: str, queue_name: str, tmp_path: Path, role: str, runs: str
) -> None:
    connection = redis.Redis.from_url(own_redis)
    notify_queue = f"{queue_name}-notify"
    jobs = {
        "wakeup": Queue(queue_name, connection=connection).enqueue(WAKEUP_JOB),
        "notify": Queue(notify_queue, connection=connection).enqueue(WAKEUP_JOB),
    }
    log_path = tmp_path / "worker.log"
    env = worker_env(queue_name, own_redis, NOTIFICATIONS_QUEUE=notify_queue)

    process = start_worker(env, log_path, "--burst", "--role", role)

    assert process.wait(60) == 0, log_path.read_text()
    for name, job in jobs.items():
        status = Job.fetch(job.id, connection=connection).get_status()
        assert status == (JobStatus.FINISHED if name == runs else JobStatus.QUEUED), name
