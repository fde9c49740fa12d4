"""A notifications queue of each test's own on the test Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from rq import Queue


@pytest.fixture
def notification_queue(environment: None, redis_url: str) -> Iterator[Queue]:
    connection = redis.Redis.from_url(redis_url)
    yield Queue(f"test-notifications-{uuid.uuid4().hex[:8]}", connection=connection)
    connection.close()
