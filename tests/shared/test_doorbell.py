"""The doorbell coalesces: a burst of commits costs one wake-up job, never zero."""

from __future__ import annotations

import pytest
from rq import Queue

from evotrack.embedded import EmbeddedRedis
from shared.config import get_settings
from shared.redis_client import clear_pending_wakeup, redis_client, ring_doorbell


@pytest.fixture
def queue(own_redis: EmbeddedRedis) -> Queue:
    """The wake-up queue on a Redis of the test's own."""
    return Queue(get_settings().wakeup_queue, connection=redis_client())


def test_rings_while_a_job_is_pending_enqueue_nothing_more(queue: Queue) -> None:
    assert all(ring_doorbell() for _ in range(5))
    assert queue.count == 1


def test_once_the_job_started_the_next_ring_enqueues_again(queue: Queue) -> None:
    ring_doorbell()
    clear_pending_wakeup()  # what the job does before it reads the change log
    ring_doorbell()
    ring_doorbell()
    assert queue.count == 2


def test_the_sweeper_rings_even_when_a_job_is_believed_pending(queue: Queue) -> None:
    ring_doorbell()
    queue.empty()  # type: ignore[no-untyped-call]  # the job is lost, its flag still set
    ring_doorbell()
    assert queue.count == 0
    ring_doorbell(force=True)
    assert queue.count == 1
