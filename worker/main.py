"""The worker process: an RQ worker on the wake-up queue, then the notifications queue
(`python -m worker.main [--burst]`), with the sweeper and the notification scheduler.

It is a `SimpleWorker`: jobs run in this process. The jobs are short batch jobs, and a
fork per job costs more than the job (NOTES.md measured ~165 jobs/s here against ~62
for the forking worker). Notification jobs are bounded too (an email delivery run stops
claiming after 20 s) and wait behind wake-ups, which come from the first queue. SIGTERM
or SIGINT asks for RQ's warm shutdown: the job in hand finishes, then the process exits;
a second signal stops it at once.
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
from rq import Queue
from rq.worker import SimpleWorker

from shared.config import Settings, get_settings
from shared.logging import configure_logging
from worker.jobs import stop_requested
from worker.notification_scheduler import NotificationScheduler
from worker.sweeper import Sweeper

log = logging.getLogger("evotrack.worker")

FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 30.0


def _redis_address(connection: redis.Redis) -> str:
    kwargs = connection.connection_pool.connection_kwargs
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


class EarlyStop:
    """A stop request that arrives before RQ's own signal handlers are in place (while
    waiting for Redis, or while the worker registers) is remembered, not lost."""

    requested = False

    @classmethod
    def install(cls) -> None:
        cls.requested = False
        signal.signal(signal.SIGTERM, cls._remember)
        signal.signal(signal.SIGINT, cls._remember)

    @classmethod
    def _remember(cls, signum: int, _: FrameType | None) -> None:
        log.info("%s received while starting: stopping", signal.Signals(signum).name)
        cls.requested = True
        stop_requested.set()


class WakeupWorker(SimpleWorker):
    """RQ's SimpleWorker, honouring a stop request that arrived while it was starting, and
    telling a running job to stop after its current batch."""

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        stop_requested.set()
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()  # type: ignore[no-untyped-call]
        if EarlyStop.requested:
            # What RQ itself records for a warm shutdown requested in the middle of a job:
            # the work loop checks it before taking the next job, then deregisters.
            self._stop_requested = True


def connect_redis(url: str, *, max_retry_seconds: float = MAX_RETRY_SECONDS) -> redis.Redis | None:
    """A Redis connection that answers PING, or None when asked to stop first. Waits for
    Redis with a growing delay and says so in the log each time: a worker started before
    Redis must wait, not crash-loop."""
    # No socket timeout: RQ sets one that fits its blocking dequeue.
    connection = redis.Redis.from_url(url, socket_connect_timeout=5)
    delay = FIRST_RETRY_SECONDS
    while not EarlyStop.requested:
        try:
            connection.ping()
            return connection
        except (redis.RedisError, OSError) as exc:
            log.warning(
                "Redis at %s is unreachable (%s); retrying in %.1f s",
                _redis_address(connection),
                exc,
                delay,
            )
        _sleep_unless_stopped(delay)
        delay = min(delay * 2, max_retry_seconds)
    return None


def _sleep_unless_stopped(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not EarlyStop.requested and time.monotonic() < deadline:
        time.sleep(min(0.1, seconds))


ROLES = ("all", "projections", "notifications")


def run_worker(settings: Settings, *, burst: bool = False, role: str = "all") -> int:
    """Work the queues of `role` until stopped (or until they are empty with `burst`).

    "projections": the wake-up queue and the sweeper; "notifications": the notifications
    queue and its scheduler; "all": both, wake-ups first. `evotrack run` starts one worker
    of each role, so a slow email delivery never holds a projection back."""
    EarlyStop.install()
    stop_requested.clear()
    projections = role in ("all", "projections")
    notifications = role in ("all", "notifications")
    # The sweeper runs even while Redis is away: it advances projections itself then.
    sweeper = Sweeper(settings, stop_requested).start() if projections and not burst else None
    scheduler = (
        NotificationScheduler(settings, stop_requested).start()
        if notifications and not burst
        else None
    )
    try:
        connection = connect_redis(settings.redis_url)
        if connection is None:
            return 0
        # Wake-ups first: RQ takes the next job from the first queue that has one.
        names = [settings.wakeup_queue] if projections else []
        names += [settings.notifications_queue] if notifications else []
        queues = [Queue(name, connection=connection) for name in names]
        worker = WakeupWorker(queues, connection=connection)
        log.info(
            "worker listening on queues %s",
            ", ".join(q.name for q in queues),
            extra={"burst": burst},
        )
        worker.work(burst=burst, logging_level=settings.log_level.upper())
    finally:
        stop_requested.set()
        for helper in (sweeper, scheduler):
            if helper is not None:
                helper.thread.join(10)
    return 0


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
        " notifications queue and its scheduler; all (default): both",
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
