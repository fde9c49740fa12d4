"""The worker process: an RQ worker on the wake-up queue, then the notifications queue
(`python -m worker.main [--burst]`), with the sweeper and the notification scheduler.

It is a `SimpleWorker`: jobs run in this process. The jobs are short batch jobs, and a
fork per job costs more than the job (NOTES.md measured ~165 jobs/s here against ~62
for the forking worker). Notification jobs are bounded too (an email delivery run stops
claiming after 20 s) and wait behind wake-ups, which come from the first queue. SIGTERM
or SIGINT asks for RQ's warm shutdown: the job in hand finishes, then the process exits;
a second signal stops it at once.

Redis going away, at any moment and for any time, never ends the process: the RQ worker
leaves its loop (worker/rq_worker.py), the sweeper advances the projections meanwhile,
and a new RQ worker starts within about a second of Redis answering again.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

import redis
from pydantic import ValidationError
from rq.exceptions import StopRequested

from shared.config import Settings, get_settings
from shared.logging import configure_logging
from worker.jobs import rq_listening, stop_requested
from worker.notification_scheduler import NotificationScheduler
from worker.rq_worker import REDIS_ERRORS, RedisLostError, WakeupWorker
from worker.sweeper import Sweeper
from worker.webhooks import WebhookScheduler

log = logging.getLogger("evotrack.worker")

FIRST_RETRY_SECONDS = 0.5
# Bounds how long after Redis returns the worker is back on RQ (issue 12).
MAX_RETRY_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 2.0
REPORT_UNREACHABLE_EVERY_SECONDS = 60.0


def _redis_address(connection: redis.Redis) -> str:
    kwargs = connection.connection_pool.connection_kwargs
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


class EarlyStop:
    """Signal handlers for the moments outside RQ's work loop (while waiting for Redis,
    while a worker registers, between losing Redis and working again): a stop request
    then is remembered in `stop_requested`, not lost and not raised mid-reconnect."""

    @classmethod
    def install(cls) -> None:
        signal.signal(signal.SIGTERM, cls._remember)
        signal.signal(signal.SIGINT, cls._remember)

    @classmethod
    def _remember(cls, signum: int, _: FrameType | None) -> None:
        log.info(
            "%s received while starting or reconnecting: stopping", signal.Signals(signum).name
        )
        stop_requested.set()


def connect_redis(url: str, *, max_retry_seconds: float = MAX_RETRY_SECONDS) -> redis.Redis | None:
    """A Redis connection that answers PING, or None when asked to stop first.

    Waits for Redis, trying again at least every `max_retry_seconds`: once Redis is back
    the worker is back within about that long (until then the sweeper projects). A worker
    started before Redis waits, it does not crash-loop; the log says so when the wait
    starts and every minute after."""
    # No socket timeout: RQ sets one that fits its blocking dequeue.
    connection = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS)
    delay = FIRST_RETRY_SECONDS
    next_report_at = 0.0
    while not stop_requested.is_set():
        try:
            connection.ping()
            return connection
        except REDIS_ERRORS as exc:
            if time.monotonic() >= next_report_at:
                log.warning(
                    "Redis at %s is unreachable (%s); retrying every %.1f s",
                    _redis_address(connection),
                    exc,
                    max_retry_seconds,
                )
                next_report_at = time.monotonic() + REPORT_UNREACHABLE_EVERY_SECONDS
        _sleep_unless_stopped(delay)
        delay = min(delay * 2, max_retry_seconds)
    connection.close()
    return None


def _sleep_unless_stopped(seconds: float) -> None:
    stop_requested.wait(seconds)


ROLES = ("all", "projections", "notifications", "webhooks")


def run_worker(settings: Settings, *, burst: bool = False, role: str = "all") -> int:
    """Work the queues of `role` until stopped (or until they are empty with `burst`).

    "projections": the wake-up queue and the sweeper; "notifications": the notifications
    queue and its scheduler; "webhooks": the webhooks queue and its scheduler; "all":
    every one, wake-ups first. `evotrack run` starts workers of each role, so a slow email
    delivery or webhook receiver never holds a projection back. Redis going away never
    ends it: see `_work_until_stopped`."""
    stop_requested.clear()
    rq_listening.clear()
    EarlyStop.install()
    projections = role in ("all", "projections")
    notifications = role in ("all", "notifications")
    webhooks = role in ("all", "webhooks")
    # The sweeper runs even while Redis is away: it advances projections itself then.
    sweeper = (
        Sweeper(settings, stop_requested, rq_listening=rq_listening).start()
        if projections and not burst
        else None
    )
    scheduler = (
        NotificationScheduler(settings, stop_requested).start()
        if notifications and not burst
        else None
    )
    deliveries = (
        WebhookScheduler(settings, stop_requested).start() if webhooks and not burst else None
    )
    # Wake-ups first: RQ takes the next job from the first queue that has one.
    names = [settings.wakeup_queue] if projections else []
    names += [settings.notifications_queue] if notifications else []
    names += [settings.webhooks_queue] if webhooks else []
    try:
        _work_until_stopped(settings, names, burst=burst)
    except StopRequested:
        pass  # a stop signal caught by RQ's handler just outside its loop: a stop like any
    finally:
        stop_requested.set()
        for helper in (sweeper, scheduler, deliveries):
            if helper is not None:
                helper.thread.join(10)
    return 0


def _work_until_stopped(settings: Settings, queue_names: list[str], *, burst: bool) -> None:
    """One RQ worker after another until a stop request (or, with `burst`, until the queues
    are empty): a worker that lost Redis is followed by a new one, registered anew, as soon
    as Redis answers again."""
    while not stop_requested.is_set():
        connection = connect_redis(settings.redis_url)
        if connection is None:
            return
        try:
            ended = _work_one_worker(connection, queue_names, settings, burst=burst)
        finally:
            EarlyStop.install()  # RQ's handlers belong to the worker that just ended
            connection.close()
        if ended:
            return


def _work_one_worker(
    connection: redis.Redis, queue_names: list[str], settings: Settings, *, burst: bool
) -> bool:
    """Register one RQ worker and work the queues with it. True when it ended for good (a
    stop request, or a burst that emptied the queues); False when Redis failed or RQ's loop
    broke off, so that the caller starts another."""
    try:
        worker = WakeupWorker(
            queue_names, connection=connection, wakeup_queue=settings.wakeup_queue
        )
        log.info("worker listening on queues %s", ", ".join(queue_names), extra={"burst": burst})
        worker.work(burst=burst, logging_level=settings.log_level.upper())
    except (RedisLostError, *REDIS_ERRORS) as exc:  # while it registered
        _log_lost_redis(exc)
        return False
    if worker.lost_redis is not None:
        _log_lost_redis(worker.lost_redis)
        return False
    if stop_requested.is_set() or burst:
        return True
    log.error("RQ's work loop ended on its own (see above); starting a new worker")
    _sleep_unless_stopped(FIRST_RETRY_SECONDS)  # no busy loop if it keeps doing so
    return False


def _log_lost_redis(exc: BaseException) -> None:
    log.warning("lost Redis (%s); RQ resumes once it answers, the sweeper projects meanwhile", exc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m worker.main",
        description="Run an RQ worker on the wake-up and notifications queues.",
    )
    parser.add_argument(
        "--burst", action="store_true", help="exit once the queue is empty instead of waiting"
    )
    parser.add_argument(
        "--role",
        choices=ROLES,
        default="all",
        help="projections: the wake-up queue and the sweeper; notifications: the"
        " notifications queue and its scheduler; webhooks: the webhooks queue and its"
        " scheduler; all (default): every one",
    )
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"worker: invalid settings: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    if not settings.redis_url:
        print("worker: REDIS_URL is not set", file=sys.stderr)  # noqa: T201
        return 2
    configure_logging(settings.log_level, json_format=settings.log_json)
    return run_worker(settings, burst=args.burst, role=args.role)


if __name__ == "__main__":
    sys.exit(main())
