"""Redis: the doorbell that wakes projection workers, and a small fixed-window limiter
(with a fallback in the process while Redis is down).

Redis is never the record of work: when it is down, commands still succeed and the
worker's sweeper finds the changes in PostgreSQL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from functools import lru_cache

import redis
from rq import Queue

from shared.config import get_settings
from shared.rate_limit import LOCAL_RATE_LIMITER, seconds_to_wait, window_of

log = logging.getLogger(__name__)

WAKEUP_JOB = "worker.jobs.advance_all_projections"
# Set while a wake-up job waits in the queue: the doorbell rings (enqueues) only when no
# job is pending, so a burst of commits costs one job, not one each. The job clears the
# flag before it reads the change log (worker.jobs.advance_all_projections), so a commit
# whose ring found the flag set is always seen by that pending job. The expiry only
# bounds the damage of a job lost with the flag set (say, the queue emptied by hand):
# the sweeper catches up meanwhile.
WAKEUP_PENDING_KEY = "evotrack:wakeup:pending"
WAKEUP_PENDING_TTL_SECONDS = 30
_BREAKER_SECONDS = 5.0
_breaker_open_until = 0.0


@lru_cache
def redis_client() -> redis.Redis:
    settings = get_settings()
    timeout = settings.redis_timeout_seconds
    return redis.Redis.from_url(
        settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
    )


def _breaker_open() -> bool:
    return time.monotonic() < _breaker_open_until


def _trip_breaker() -> None:
    global _breaker_open_until
    _breaker_open_until = time.monotonic() + _BREAKER_SECONDS


def ring_doorbell(*, force: bool = False) -> bool:
    """Make sure a wake-up for the projection workers is pending: enqueue one unless one
    already waits (or always, with `force`: the sweeper's ring must not trust a flag
    whose job may have been lost). Never raises: Redis is only a doorbell."""
    if _breaker_open():
        return False
    settings = get_settings()
    try:
        connection = redis_client()
        key = pending_key(settings.wakeup_queue)
        fresh = connection.set(key, 1, nx=not force, ex=WAKEUP_PENDING_TTL_SECONDS)
        if not fresh:
            return True  # a pending job will see this commit
        queue = Queue(settings.wakeup_queue, connection=connection)
        queue.enqueue(WAKEUP_JOB, job_timeout=600, result_ttl=0, failure_ttl=3600)
        return True
    except (redis.RedisError, OSError) as exc:
        _trip_breaker()
        log.warning("wake-up not enqueued, the sweeper will catch up: %s", exc)
        return False


def pending_key(queue_name: str) -> str:
    return f"{WAKEUP_PENDING_KEY}:{queue_name}"


def clear_pending_wakeup() -> None:
    """Called by the wake-up job before it reads the change log: later commits ring again."""
    try:
        redis_client().delete(pending_key(get_settings().wakeup_queue))
    except (redis.RedisError, OSError, ValueError) as exc:  # ValueError: no usable REDIS_URL
        # The flag expires by itself; until then the sweeper covers what it hides.
        log.warning("could not clear the pending wake-up flag: %s", exc)


def hit_rate_limit(key: str, limit: int, window_seconds: int) -> int | None:
    """Count one attempt against `key`; return seconds to wait when over the limit.

    Counted in Redis, shared by every process. While Redis is unreachable (this call
    finds it down, or the breaker is open and no request waits for its timeout) the
    attempt is counted in this process instead (shared.rate_limit): an outage must not
    turn the sign-in limits off.
    """
    if _breaker_open():
        return LOCAL_RATE_LIMITER.hit(key, limit, window_seconds)
    now = time.time()
    full_key = f"evotrack:ratelimit:{key}:{window_of(now, window_seconds)}"
    try:
        pipe = redis_client().pipeline()
        pipe.incr(full_key)
        pipe.expire(full_key, window_seconds + 1)
        count, _ = pipe.execute()
    except (redis.RedisError, OSError, ValueError) as exc:  # ValueError: no usable REDIS_URL
        _trip_breaker()
        log.warning("rate limiter unreachable, counting in this process: %s", exc)
        return LOCAL_RATE_LIMITER.hit(key, limit, window_seconds)
    return seconds_to_wait(int(count), limit, now, window_seconds)


WEBHOOK_JOB = "worker.webhooks.deliver_webhook_job"
# A job sends for a slice of about 10 s, plus one attempt of at most 10 s.
WEBHOOK_JOB_TIMEOUT_SECONDS = 120


def ring_webhooks(webhook_ids: Iterable[object]) -> int:
    """Enqueue a delivery job for each webhook; return how many were enqueued. A job that
    finds another sending for its webhook returns at once, so a ring too many costs little.
    Never raises: the webhooks scheduler finds due deliveries in PostgreSQL."""
    if _breaker_open():
        return 0
    ids = sorted({str(webhook_id) for webhook_id in webhook_ids})
    try:
        queue = Queue(get_settings().webhooks_queue, connection=redis_client())
        with queue.connection.pipeline() as pipe:
            for webhook_id in ids:
                queue.enqueue(
                    WEBHOOK_JOB,
                    webhook_id,
                    job_timeout=WEBHOOK_JOB_TIMEOUT_SECONDS,
                    result_ttl=0,
                    failure_ttl=3600,
                    pipeline=pipe,
                )
            pipe.execute()
    except (redis.RedisError, OSError, ValueError) as exc:
        _trip_breaker()
        log.warning("webhook jobs not enqueued, the scheduler will find them: %s", exc)
        return 0
    return len(ids)
