"""Webhook deliveries through the worker's processes (`python -m worker.main --role
webhooks`), under faults: a worker killed with SIGKILL in the middle of a send, a receiver
that holds every request beside one that answers at once, Redis away for a while.

Each test has its own Redis (`own_redis`), its own worker processes and its own real HTTP
receivers, never the machine's shared ones. The background projector of the test process
makes the deliveries from the change log, as the projections worker would.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, Row, text

import shared.redis_client
from evotrack.embedded import EmbeddedRedis
from tests.conftest import BackgroundProjector
from tests.factories import OrgHandle, make_org
from tests.webhooks.receiver import Received, receiver
from tests.worker_process import WorkerProcess

WORKER_APP = "evotrack-test-webhooks-worker"
# Bounds a held request only if a test fails before it releases it.
HOLD_BOUND_SECONDS = 120.0


@dataclass
class Workers:
    """The test's webhooks workers: started on demand, all killed at the end."""

    database_url: str
    redis_url: str
    log_dir: Path
    started: list[WorkerProcess] = field(default_factory=list)

    def start(self) -> WorkerProcess:
        log_path = self.log_dir / f"webhooks-worker-{len(self.started)}.log"
        worker = WorkerProcess(
            self.database_url,
            self.redis_url,
            log_path,
            role="webhooks",
            app_name=WORKER_APP,
            env={"ENVIRONMENT": "test"},  # http://127.0.0.1 receivers are allowed
        ).start()
        self.started.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(f"--- {w.log_path.name}\n{w.log()}" for w in self.started)


@pytest.fixture
def workers(database_url: str, own_redis: EmbeddedRedis, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(database_url, own_redis.url, tmp_path)
    yield started
    for worker in started.started:
        worker.kill()


@dataclass
class Gate:
    """A receiver's answer that holds the requests `held(n)` says (n counts from 0) until
    `release()`, and records each request as it arrives, before it is answered: the test
    knows when a sender has one in hand. As a context manager, its end releases what it
    holds (enter it after its receiver: it releases before the receiver shuts down)."""

    held: Callable[[int], bool]
    released: threading.Event = field(default_factory=threading.Event)
    arrivals: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def answer(self, got: Received) -> tuple[int, dict[str, str]]:
        with self.arrived:
            index = len(self.arrivals)
            self.arrivals.append(got)
            self.arrived.notify_all()
        if self.held(index):
            self.released.wait(HOLD_BOUND_SECONDS)
        return 204, {}

    def wait_for(self, count: int, what: str, workers: Workers, timeout: float = 60) -> None:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.arrivals) >= count, timeout):
                pytest.fail(
                    f"{len(self.arrivals)} of {count} requests arrived ({what});"
                    f" worker logs:\n{workers.logs()}"
                )

    def event_ids(self) -> list[str]:
        """The event ids of the requests so far, in order of arrival."""
        with self.arrived:
            return [got.event_id for got in self.arrivals]

    def release(self) -> None:
        self.released.set()

    def __enter__(self) -> Gate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def create_webhook(api: httpx.Client, org: OrgHandle, url: str) -> uuid.UUID:
    response = api.post(
        org.path("/webhooks"),
        json={"url": url, "events": ["time_entry.*"]},
        headers=org.owner.headers,
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["data"]["id"])


def add_entry(api: httpx.Client, org: OrgHandle, hour: int) -> None:
    start_at = datetime(2026, 3, 2, tzinfo=UTC) + timedelta(hours=hour)
    response = api.post(
        org.path("/time-entries"),
        json={
            "start_at": start_at.isoformat(),
            "end_at": (start_at + timedelta(minutes=50)).isoformat(),
        },
        headers=org.owner.headers,
    )
    assert response.status_code == 201, response.text


def deliveries(db: Engine, webhook_id: uuid.UUID) -> list[Row[Any]]:
    """The webhook's deliveries, in the order they are sent (`seq`)."""
    with db.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT event_id, status, attempts FROM webhook_deliveries"
                    " WHERE webhook_id = :w ORDER BY seq"
                ),
                {"w": webhook_id},
            )
        )


def wait_until(
    condition: Callable[[], bool], what: str, workers: Workers, timeout: float = 60
) -> None:
    """Poll `condition`; the deadline only bounds a failure, which shows the worker logs."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; worker logs:\n{workers.logs()}")
        time.sleep(0.05)


def statuses(db: Engine, webhook_id: uuid.UUID) -> list[str]:
    return [row.status for row in deliveries(db, webhook_id)]


def wait_delivered(db: Engine, webhook_id: uuid.UUID, count: int, workers: Workers) -> None:
    wait_until(
        lambda: statuses(db, webhook_id) == ["delivered"] * count,
        f"{count} deliveries of webhook {webhook_id} delivered",
        workers,
    )


def first_arrivals(event_ids: list[str]) -> list[str]:
    """Each event id once, where it first arrived (delivery is at least once)."""
    return list(dict.fromkeys(event_ids))


@pytest.mark.parametrize(
    "ring",
    # "ring lost": only the scheduler's job sends, and the worker is killed in it; its job
    # stays "started" in Redis, so the next tick must see that nobody holds the webhook's
    # lock and enqueue it again.
    ["rung", "ring lost"],
)
def test_a_worker_killed_mid_send_leaves_the_delivery_to_the_next(
    db: Engine,
    api: httpx.Client,
    projector_running: BackgroundProjector,
    workers: Workers,
    monkeypatch: pytest.MonkeyPatch,
    ring: str,
) -> None:
    if ring == "ring lost":
        # Only the scheduler's job (one id per webhook) sends: the one the worker dies in.
        monkeypatch.setattr("shared.webhooks.ring_webhooks", lambda _: 0)
    org = make_org(db)
    gate = Gate(held=lambda n: n == 0)
    with receiver(gate.answer) as hook, gate:
        webhook_id = create_webhook(api, org, hook.url)
        first = workers.start()
        add_entry(api, org, 9)
        gate.wait_for(1, "the first send", workers)  # the worker has it in hand
        first.kill()

        workers.start()
        gate.wait_for(2, "the send again after the kill", workers, timeout=30)
        wait_delivered(db, webhook_id, 1, workers)
        sent, again = gate.arrivals[:2]

    assert again.event_id == sent.event_id
    assert again.headers["evotrack-delivery-id"] == sent.headers["evotrack-delivery-id"]
    assert again.body == sent.body
    # The killed attempt left no trace: it was recorded only once it ended.
    assert [(str(d.event_id), d.status, d.attempts) for d in deliveries(db, webhook_id)] == [
        (sent.event_id, "delivered", 1)
    ]
    assert len(gate.arrivals) == 2, gate.event_ids()


def test_a_slow_receiver_holds_back_no_other_webhook(
    db: Engine,
    api: httpx.Client,
    projector_running: BackgroundProjector,
    workers: Workers,
) -> None:
    events = 5
    slow_org, quick_org = make_org(db), make_org(db)
    slow, quick = Gate(held=lambda _: True), Gate(held=lambda _: False)
    with receiver(slow.answer) as slow_hook, slow, receiver(quick.answer) as quick_hook:
        slow_id = create_webhook(api, slow_org, slow_hook.url)
        quick_id = create_webhook(api, quick_org, quick_hook.url)
        workers.start()
        workers.start()
        for hour in range(events):
            add_entry(api, slow_org, hour)
            add_entry(api, quick_org, hour)

        slow.wait_for(1, "the slow receiver's first request", workers)
        quick.wait_for(events, "the quick receiver's deliveries", workers)
        wait_delivered(db, quick_id, events, workers)
        # Still held on its first event: nothing behind the head of its line went out.
        assert set(slow.event_ids()) == {slow.arrivals[0].event_id}
        assert not slow.released.is_set()

        slow.release()
        wait_delivered(db, slow_id, events, workers)

    expected = [str(d.event_id) for d in deliveries(db, slow_id)]
    assert first_arrivals(slow.event_ids()) == expected
    assert quick.event_ids() == [str(d.event_id) for d in deliveries(db, quick_id)]


def test_deliveries_made_while_redis_is_away_arrive_once_it_is_back(
    db: Engine,
    api: httpx.Client,
    own_redis: EmbeddedRedis,
    projector_running: BackgroundProjector,
    workers: Workers,
) -> None:
    events = 3
    org = make_org(db)
    gate = Gate(held=lambda _: False)
    with receiver(gate.answer) as hook:
        webhook_id = create_webhook(api, org, hook.url)
        workers.start()
        add_entry(api, org, 0)
        wait_delivered(db, webhook_id, 1, workers)

        own_redis.stop()
        for hour in range(1, events + 1):
            add_entry(api, org, hour)
        # Made without Redis: rows in PostgreSQL, pending, nothing lost.
        wait_until(
            lambda: statuses(db, webhook_id) == ["delivered"] + ["pending"] * events,
            f"{events} deliveries made while Redis is away",
            workers,
        )

        own_redis.start()
        shared.redis_client._breaker_open_until = 0.0
        wait_delivered(db, webhook_id, 1 + events, workers)

    assert first_arrivals(gate.event_ids()) == [str(d.event_id) for d in deliveries(db, webhook_id)]
