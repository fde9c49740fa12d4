"""The webhooks role of the worker: RQ jobs that send a webhook's due deliveries, and the
scheduler that finds due deliveries in PostgreSQL.

A job sends for one webhook (webhooks/sender.py) for a slice of about 10 s, then, if more
are due, puts itself at the back of the queue: with several webhooks to serve, each gets
its turn, and a slow or dead receiver holds at most one worker process at a time, for one
attempt of at most 10 s, after which its delivery waits out its backoff. The role runs
several processes (WEBHOOK_WORKERS under `evotrack run`) so that one such receiver never
delays another's deliveries.

Jobs are rung when deliveries are made (after the commit that made them). The scheduler
thread looks every second for due deliveries (retries whose backoff is over, rings lost
with Redis, deliveries left by a worker killed mid-send) and enqueues one job per webhook,
with an id that RQ refuses a second time while that job waits or runs. Redis is a doorbell
here too: every delivery is a row in PostgreSQL until it is delivered or given up.
"""

from __future__ import annotations

import functools
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import redis
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select
from sqlalchemy.orm import Session

from command_api.modules.webhooks.models import Webhook, WebhookDelivery
from shared.config import Settings, get_settings
from shared.db import write_engine, write_sessionmaker
from shared.redis_client import WEBHOOK_JOB, WEBHOOK_JOB_TIMEOUT_SECONDS, ring_webhooks
from shared.webhooks import DeliveryStatus
from webhooks.sender import Sender, SendReport, is_sending
from worker.jobs import stop_requested

log = logging.getLogger("evotrack.webhooks")

SCHEDULER_INTERVAL_SECONDS = 1.0


@functools.cache
def sender() -> Sender:
    """One per process: its HTTP client keeps connections to receivers open."""
    return Sender(get_settings(), write_engine(), write_sessionmaker())


def deliver_webhook_job(webhook_id: str) -> int:
    """Send a webhook's due deliveries for a slice; return how many were sent."""
    report: SendReport = sender().deliver_due(
        uuid.UUID(webhook_id), should_stop=stop_requested.is_set
    )
    if report.more_due:
        ring_webhooks([webhook_id])  # its next slice, behind the other webhooks' jobs
    if report.sent:
        log.info(
            "webhook deliveries sent",
            extra={"webhook_id": webhook_id, "sent": report.sent, "delivered": report.delivered},
        )
    return report.sent


def due_webhooks(session: Session, now: datetime) -> list[uuid.UUID]:
    """The enabled webhooks with a pending delivery due at `now`."""
    rows = session.execute(
        select(WebhookDelivery.webhook_id)
        .distinct()
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            Webhook.enabled,
            Webhook.deleted_at.is_(None),
        )
    )
    return list(rows.scalars())


def scheduled_job_id(queue: Queue, webhook_id: uuid.UUID) -> str:
    """One scheduled job per webhook while it waits or runs (job ids are global to a
    Redis: the queue's name keeps deployments apart)."""
    return f"{queue.name}-deliver-{webhook_id}"


class WebhookScheduler:
    """The scheduler thread of a webhooks worker (see the module docstring). Every process
    of the role runs one: the job ids keep them from enqueuing a webhook twice."""

    def __init__(
        self,
        settings: Settings,
        stop: threading.Event,
        *,
        interval_seconds: float = SCHEDULER_INTERVAL_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.stop = stop
        self.interval_seconds = interval_seconds
        self.clock = clock
        self.thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def start(self) -> WebhookScheduler:
        self.thread.start()
        return self

    def _run(self) -> None:
        queue: Queue | None = None
        while not self.stop.wait(self.interval_seconds):
            try:
                queue = queue or Queue(
                    self.settings.webhooks_queue,
                    connection=redis.Redis.from_url(
                        self.settings.redis_url, socket_timeout=5, socket_connect_timeout=5
                    ),
                )
                self.tick(queue)
            except Exception:
                # Logged; the next tick finds the same deliveries due: nothing is lost.
                log.exception("scheduling webhook deliveries failed")

    def tick(self, queue: Queue) -> list[uuid.UUID]:
        """Enqueue a job for each webhook with a delivery due; return those enqueued."""
        with write_sessionmaker()() as session:
            due = due_webhooks(session, self.clock())
        enqueued = []
        for webhook_id in due:
            try:
                self._enqueue(queue, webhook_id)
            except DuplicateJobError:
                if not self._stranded(queue, webhook_id):
                    continue  # its job waits or sends: it will send this one too
                Job.fetch(scheduled_job_id(queue, webhook_id), connection=queue.connection).delete()
                self._enqueue(queue, webhook_id)
            enqueued.append(webhook_id)
        return enqueued

    def _enqueue(self, queue: Queue, webhook_id: uuid.UUID) -> None:
        queue.enqueue(
            WEBHOOK_JOB,
            str(webhook_id),
            job_id=scheduled_job_id(queue, webhook_id),
            unique=True,
            job_timeout=WEBHOOK_JOB_TIMEOUT_SECONDS,
            result_ttl=0,
            failure_ttl=3600,
        )

    def _stranded(self, queue: Queue, webhook_id: uuid.UUID) -> bool:
        """Whether the webhook's scheduled job is one nobody will run: it failed, or the
        worker that started it was killed (RQ keeps such a job "started" for minutes, then
        "failed" for an hour). A job still waiting is not; one started is not while its
        sender holds the webhook's lock."""
        try:
            job = Job.fetch(scheduled_job_id(queue, webhook_id), connection=queue.connection)
        except NoSuchJobError:
            return True  # gone since: enqueue it again
        if job.get_status() in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            return False
        return not is_sending(write_engine(), webhook_id)
