"""Faults the projections must survive: Redis down during writes, a worker killed with
SIGKILL in the middle of a batch. Each test has its own Redis and its own worker
processes, never the machine's shared ones."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, make_url, text
from sqlalchemy.orm import sessionmaker

import shared.redis_client
from evotrack.embedded import EmbeddedRedis
from projections.rebuild import verify
from projections.registry import PROJECTIONS
from tests.factories import OrgHandle, make_org
from tests.projections.test_property import oracle, projected
from tests.services import ROOT

WORKER_APP = "evotrack-test-worker"


class WorkerProcess:
    """`python -m worker.main` against the test database and the test's own Redis."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        url = make_url(database_url).update_query_dict({"application_name": WORKER_APP})
        self.env = {
            **os.environ,
            "DATABASE_URL": url.render_as_string(hide_password=False),
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "WARNING",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker.main"], cwd=ROOT, env=self.env
        )
        return self

    def send(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(60)


@pytest.fixture
def workers(database_url: str, own_redis: EmbeddedRedis) -> Iterator[Callable[[], WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        worker = WorkerProcess(database_url, own_redis.url).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(signal.SIGKILL)


def add_entries(api: httpx.Client, org: OrgHandle, first_day: int, count: int) -> None:
    start = datetime(2026, 2, 2, 8, tzinfo=UTC) + timedelta(days=first_day)
    entries = [
        {
            "start_at": (start + timedelta(hours=i % 12, days=i // 12)).isoformat(),
            "end_at": (start + timedelta(hours=i % 12, days=i // 12, minutes=50)).isoformat(),
            "billable": i % 3 == 0,
        }
        for i in range(count)
    ]
    for chunk in range(0, count, 1000):
        response = api.post(
            org.path("/time-entries/bulk"),
            json={"entries": entries[chunk : chunk + 1000]},
            headers=org.owner.headers,
        )
        assert response.status_code == 201, response.text


def wait_caught_up(db: Engine, org: OrgHandle, timeout_seconds: float = 60) -> None:
    """Until the projections show exactly what the normalized rows say."""
    deadline = time.monotonic() + timeout_seconds
    while projected(db, org.id) != oracle(db, org.id):
        assert time.monotonic() < deadline, "the projections did not catch up"
        time.sleep(0.1)


def assert_verified(db: Engine, org: OrgHandle) -> None:
    sessions = sessionmaker(bind=db)
    for projector in PROJECTIONS:
        result = verify(sessions, projector.name, org_ids=[org.id])
        assert result.ok, [(d.table, d.samples) for d in result.diffs]


def test_redis_down_during_writes_then_back(
    db: Engine,
    own_redis: EmbeddedRedis,
    api_with_own_redis: httpx.Client,
    workers: Callable[[], WorkerProcess],
) -> None:
    org = make_org(db, hourly_rate_amount=3000)
    workers()
    add_entries(api_with_own_redis, org, 0, 24)
    wait_caught_up(db, org)

    own_redis.stop()
    add_entries(api_with_own_redis, org, 10, 24)  # commands still succeed
    wait_caught_up(db, org)  # the sweeper advanced the projections without Redis

    own_redis.start()
    shared.redis_client._breaker_open_until = 0.0
    add_entries(api_with_own_redis, org, 20, 24)
    wait_caught_up(db, org)
    assert_verified(db, org)


@contextlib.contextmanager
def entries_batches_held(db: Engine) -> Iterator[Callable[[], None]]:
    """Hold writes to proj_entries (reads go on) until the block ends: a worker that starts
    a batch waits inside it, its transaction open. Yields a wait for that moment.

    Watching for the moment a batch runs instead missed it on a loaded machine: the
    worker finished the whole backlog between two looks ("the worker never started a
    batch")."""
    with db.connect() as conn:
        conn.execute(text("LOCK TABLE proj_entries IN EXCLUSIVE MODE"))
        holder = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        yield lambda: wait_until_a_worker_waits_on(db, holder)
        conn.rollback()


def wait_until_a_worker_waits_on(db: Engine, holder: int) -> None:
    """Until the test's worker (its application name, in this database) waits for `holder`."""
    deadline = time.monotonic() + 60  # bounds a failure only
    while not _worker_waits_on(db, holder):
        assert time.monotonic() < deadline, "the worker never started a batch"
        time.sleep(0.05)


def _worker_waits_on(db: Engine, holder: int) -> bool:
    with db.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = :a"
                    # This test's database: another test worker's worker shares the name.
                    " AND datname = current_database()"
                    " AND CAST(:h AS int) = ANY(pg_blocking_pids(pid)))"
                ),
                {"a": WORKER_APP, "h": holder},
            ).scalar_one()
        )


def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(
    db: Engine, api_with_own_redis: httpx.Client, workers: Callable[[], WorkerProcess]
) -> None:
    org = make_org(db, hourly_rate_amount=4500)
    add_entries(api_with_own_redis, org, 0, 3000)  # a backlog of several batches
    with entries_batches_held(db) as in_a_batch:
        worker = workers()
        in_a_batch()
        worker.stop(signal.SIGKILL)  # its batch never commits

    workers()
    wait_caught_up(db, org, timeout_seconds=60)
    assert_verified(db, org)
    with db.connect() as conn:
        projected_entries = conn.execute(
            text("SELECT count(*) FROM proj_entries WHERE org_id = :o"), {"o": org.id}
        ).scalar_one()
    assert projected_entries == 3000


def test_sigterm_finishes_the_batch_and_exits(
    db: Engine, api_with_own_redis: httpx.Client, workers: Callable[[], WorkerProcess]
) -> None:
    org = make_org(db)
    add_entries(api_with_own_redis, org, 0, 2000)
    with entries_batches_held(db) as in_a_batch:
        worker = workers()
        in_a_batch()
        worker.send(signal.SIGTERM)
    assert worker.stop(signal.SIGTERM) == 0  # the batch in hand went on once released
    workers()
    wait_caught_up(db, org, timeout_seconds=60)
    assert_verified(db, org)
