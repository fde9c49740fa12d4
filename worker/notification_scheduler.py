"""The notification scheduler: one active per deployment, enqueueing RQ jobs.

Every worker process runs a `NotificationScheduler` thread beside the sweeper. Every tick
it takes a PostgreSQL advisory lock (on an autocommit connection, so no transaction stays
open to hold the change log's watermark back) and, only if it got it, enqueues what is
due onto the notifications queue (`NOTIFICATIONS_QUEUE`):

- `long_running_timers_job` once a minute;
- `weekly_summary_job` for each organization whose Monday 08:00 has come and whose last
  week is not summarized yet;
- `deliver_emails_job` when an email is due, at most once per 15-second slot.

However many workers run, one scheduler enqueues; another takes over within a tick when
its process dies (the lock goes with its connection). The jobs run in the RQ workers
(each listens on the notifications queue after the wake-up queue, so wake-ups go first),
with RQ's retries (`job_retry`). A retry waits in RQ's scheduled-job registry until its
delay is over; the tick then does RQ's scheduler duty for the notifications queue and
puts it back (`release_due_retries`), rather than a scheduler process forked by the RQ
worker (`with_scheduler`), which a worker killed with SIGKILL would leave running.

Job ids are deterministic per (queue, job, period) and enqueued with `unique=True`: a
second tick in the same period, or a second scheduler, enqueues nothing more while the
job waits, runs, retries or has just finished. The ids only spare work: every
notification has a unique dedup key, and every job looks at the database's state, so a
job run twice makes nothing twice, and a job lost with Redis is enqueued again by a later
tick (a weekly summary stays due until it is done).
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.scheduler import RQScheduler
from sqlalchemy import Engine, text

from shared.config import Settings
from shared.db import write_engine, write_sessionmaker
from worker.notifications import (
    SessionFactory,
    deliver_emails_job,
    due_summaries,
    long_running_timers_job,
    weekly_summary_job,
)

log = logging.getLogger("evotrack.notifications.scheduler")

SCHEDULER_LOCK = "evotrack.notifications.scheduler"
TIMER_SLOT_SECONDS = 60
EMAIL_SLOT_SECONDS = 15
JOB_RETRY_DELAYS_SECONDS = (10, 60, 300)
JOB_TIMEOUT_SECONDS = 300
# A finished job keeps its id (and its period) taken for an hour; one that failed every
# retry frees it after an hour, and a later tick enqueues it again if it is still due.
RESULT_TTL_SECONDS = 3600
FAILURE_TTL_SECONDS = 3600


def job_retry() -> Retry:
    return Retry(max=len(JOB_RETRY_DELAYS_SECONDS), interval=list(JOB_RETRY_DELAYS_SECONDS))


@dataclass
class TickReport:
    enqueued: list[str] = field(default_factory=list)
    already_queued: list[str] = field(default_factory=list)


def _slot(now: datetime, seconds: int) -> str:
    start = int(now.timestamp()) // seconds * seconds
    return datetime.fromtimestamp(start, UTC).strftime("%Y%m%dT%H%M%SZ")


def job_id(queue: Queue, key: str) -> str:
    """RQ job ids are global to a Redis: the queue's name keeps deployments apart."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{queue.name}-{key}")


_EMAILS_DUE = """
    SELECT EXISTS (SELECT 1 FROM notifications
        WHERE email_status = 'pending' AND next_attempt_at <= :now
          AND (CAST(:orgs AS uuid[]) IS NULL OR org_id = ANY(:orgs)))
"""


def _emails_due(
    sessions: SessionFactory, now: datetime, org_ids: Sequence[uuid.UUID] | None
) -> bool:
    orgs = list(org_ids) if org_ids is not None else None
    with sessions() as session:
        return bool(session.execute(text(_EMAILS_DUE), {"now": now, "orgs": orgs}).scalar_one())


def _enqueue(
    queue: Queue, report: TickReport, key: str, function: Callable[..., Any], *args: Any
) -> None:
    id_ = job_id(queue, key)
    try:
        queue.enqueue(
            function,
            *args,
            job_id=id_,
            unique=True,
            retry=job_retry(),
            job_timeout=JOB_TIMEOUT_SECONDS,
            result_ttl=RESULT_TTL_SECONDS,
            failure_ttl=FAILURE_TTL_SECONDS,
        )
    except DuplicateJobError:
        report.already_queued.append(id_)
        return
    report.enqueued.append(id_)


def enqueue_due_jobs(
    queue: Queue,
    sessions: SessionFactory,
    now: datetime,
    *,
    org_ids: Sequence[uuid.UUID] | None = None,
) -> TickReport:
    """Enqueue the jobs due at `now` (see the module docstring); `org_ids` narrows them."""
    report = TickReport()
    at = now.isoformat()
    orgs = [str(o) for o in org_ids] if org_ids is not None else None
    timers = f"long_running_timers-{_slot(now, TIMER_SLOT_SECONDS)}"
    _enqueue(queue, report, timers, long_running_timers_job, at, orgs)
    for week in due_summaries(sessions, now, org_ids=org_ids):
        key = f"weekly_summary-{week.org_id}-{week.first_day.isoformat()}"
        _enqueue(queue, report, key, weekly_summary_job, str(week.org_id), at)
    if _emails_due(sessions, now, org_ids):
        emails = f"deliver_emails-{_slot(now, EMAIL_SLOT_SECONDS)}"
        _enqueue(queue, report, emails, deliver_emails_job, at, orgs)
    return report


def release_due_retries(queue: Queue) -> int:
    """Put back on `queue` the retried jobs whose delay is over (what RQ's scheduler does),
    under RQ's own per-queue scheduler lock; return how many."""
    scheduler = RQScheduler([queue.name], connection=queue.connection, logging_level="WARNING")
    scheduler.acquire_locks()  # type: ignore[no-untyped-call]
    if not scheduler.acquired_locks:
        return 0  # an RQ scheduler somewhere else does it
    try:
        registry = queue.scheduled_job_registry
        due = len(registry.get_jobs_to_schedule())
        scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
        return due
    finally:
        scheduler.release_locks()  # type: ignore[no-untyped-call]


class NotificationScheduler:
    """The scheduler thread of a worker process (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        stop: threading.Event,
        *,
        queue: Callable[[], Queue] | None = None,
        interval_seconds: float = 15.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        engine: Callable[[], Engine] = write_engine,
        sessions: Callable[[], SessionFactory] = write_sessionmaker,
    ) -> None:
        self.settings = settings
        self.stop = stop
        self.queue = queue or self._default_queue
        self.interval_seconds = interval_seconds
        self.clock = clock
        self.engine = engine
        self.sessions = sessions
        self.thread = threading.Thread(target=self._run, name="notifications", daemon=True)

    def _default_queue(self) -> Queue:
        connection = redis.Redis.from_url(
            self.settings.redis_url, socket_timeout=5, socket_connect_timeout=5
        )
        return Queue(self.settings.notifications_queue, connection=connection)

    def start(self) -> NotificationScheduler:
        self.thread.start()
        return self

    def _run(self) -> None:
        queue: Queue | None = None
        while not self.stop.wait(self.interval_seconds):
            try:
                queue = queue or self.queue()
                self.tick(queue=queue)
            except Exception:
                # Logged; the next tick enqueues what is due then (the jobs look at the
                # state, not at what happened since the last tick: nothing is lost).
                log.exception("scheduling notification jobs failed")

    def tick(
        self, org_ids: Sequence[uuid.UUID] | None = None, *, queue: Queue | None = None
    ) -> TickReport | None:
        """Enqueue the due jobs if this is the active scheduler; None when another one is."""
        with self.engine().connect().execution_options(isolation_level="AUTOCOMMIT") as lock:
            if not lock.execute(
                text("SELECT pg_try_advisory_lock(hashtext(:n))"), {"n": SCHEDULER_LOCK}
            ).scalar_one():
                return None
            try:
                queue = queue or self.queue()
                release_due_retries(queue)
                return enqueue_due_jobs(queue, self.sessions(), self.clock(), org_ids=org_ids)
            finally:
                lock.execute(text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": SCHEDULER_LOCK})
