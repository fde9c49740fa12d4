"""The sweeper: the reason Redis can be a mere doorbell.

Every `interval` seconds it looks for projections with committed changes beyond their
checkpoint. When this process's RQ worker takes wake-up jobs (`rq_listening`), it rings
the doorbell (a wake-up job, enqueued even when the doorbell believes one is pending:
that one may be lost). Otherwise, or when Redis cannot take the job, it advances the
projections itself. A ring that Redis accepts proves nothing about who will answer it:
after an outage Redis is back before the RQ worker is, and trusting the ring stalled the
projections until the worker reconnected (issue 12). So a ring must also be answered: a
projection still behind at the checkpoint it had when the last sweep rang for it (a job
lost, a worker stuck on a dead connection or busy elsewhere) is advanced by the sweeper
on the next tick. Lost jobs, Redis outages and killed
workers therefore delay a projection by at most about one interval; when the sweeper and
a job advance at once, the projection's lock lets one of them through and the other
skips it. Every few minutes it also prunes the change log behind every checkpoint past
the retention, expired idempotency keys, old sync tombstones and old webhook deliveries.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from projections.runner import projections_behind, prune_change_log
from projections.sync import TOMBSTONE_BATCH, prune_tombstones
from shared.config import Settings
from shared.db import write_sessionmaker
from shared.redis_client import ring_doorbell
from webhooks.service import PRUNE_BATCH, prune_deliveries
from worker.jobs import advance_with_retries, registered_projections

log = logging.getLogger("evotrack.sweeper")

PRUNE_EVERY_SECONDS = 300.0


class Sweeper:
    def __init__(
        self,
        settings: Settings,
        stop: threading.Event,
        *,
        rq_listening: threading.Event,
        interval_seconds: float = 1.0,
    ) -> None:
        self.settings = settings
        self.stop = stop
        self.rq_listening = rq_listening
        self.interval_seconds = interval_seconds
        self._last_prune = 0.0
        # The checkpoints of the projections the last sweep rang for.
        self._rung_at: dict[str, tuple[int, int]] = {}
        self.thread = threading.Thread(target=self._run, name="sweeper", daemon=True)

    def start(self) -> Sweeper:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.wait(self.interval_seconds):
            try:
                self.sweep()
                if time.monotonic() - self._last_prune > PRUNE_EVERY_SECONDS:
                    self.prune()
                    self._last_prune = time.monotonic()
            except Exception:
                # Logged, counted by lag metrics, and retried on the next tick.
                log.exception("sweep failed")

    def sweep(self) -> list[str]:
        """Wake up (or advance) every projection that is behind; return their names."""
        projections = {p.name: p for p in registered_projections()}
        with write_sessionmaker()() as session:
            behind = projections_behind(session, list(projections))
        unanswered = [name for name, at in behind.items() if self._rung_at.get(name) == at]
        if behind and self._rq_answers_the_doorbell():
            self._rung_at, to_advance = behind, unanswered
        else:
            self._rung_at, to_advance = {}, list(behind)
        for name in to_advance:
            if self.stop.is_set():
                break
            advance_with_retries(projections[name])
        return list(behind)

    def _rq_answers_the_doorbell(self) -> bool:
        """Whether a wake-up job is on its way to a worker that takes it now."""
        return self.rq_listening.is_set() and ring_doorbell(force=True)

    def prune(self) -> int:
        names = [p.name for p in registered_projections()]
        pruned = 0
        while not self.stop.is_set():
            with write_sessionmaker()() as session, session.begin():
                deleted = prune_change_log(session, names, self.settings.change_log_retention_days)
                expired = session.execute(
                    text(
                        "DELETE FROM idempotency_keys WHERE id IN (SELECT id FROM"
                        " idempotency_keys WHERE expires_at < now() LIMIT 5000)"
                    )
                )
            pruned += deleted
            if deleted < 5000 and int(getattr(expired, "rowcount", 0) or 0) < 5000:
                break
        if pruned:
            log.info("pruned %d change rows", pruned)
        tombstones = self.prune_sync_tombstones()
        if tombstones:
            log.info("pruned %d sync tombstones", tombstones)
        deliveries = self.prune_webhook_deliveries()
        if deliveries:
            log.info("pruned %d webhook deliveries", deliveries)
        return pruned

    def prune_sync_tombstones(self) -> int:
        """Tombstones of delta sync older than SYNC_RETENTION_DAYS, in small batches."""
        before = datetime.now(UTC) - timedelta(days=self.settings.sync_retention_days)
        pruned = 0
        while not self.stop.is_set():
            with write_sessionmaker()() as session, session.begin():
                deleted = prune_tombstones(session, before)
            pruned += deleted
            if deleted < TOMBSTONE_BATCH:
                break
        return pruned

    def prune_webhook_deliveries(self) -> int:
        """Webhook deliveries done more than WEBHOOK_LOG_RETENTION_DAYS ago, in batches."""
        before = datetime.now(UTC) - timedelta(days=self.settings.webhook_log_retention_days)
        pruned = 0
        while not self.stop.is_set():
            with write_sessionmaker()() as session, session.begin():
                deleted = prune_deliveries(session, before)
            pruned += deleted
            if deleted < PRUNE_BATCH:
                break
        return pruned
