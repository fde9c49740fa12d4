"""The sweeper: the reason Redis can be a mere doorbell.

Every `interval` seconds it looks for projections with committed changes beyond their
checkpoint. For each one it rings the doorbell (a wake-up job, enqueued even when the
doorbell believes one is pending: that one may be lost); when Redis cannot take
the job, it advances the projection itself. Lost jobs, Redis outages and killed workers
therefore delay a projection by at most about one interval. Every few minutes it also
prunes the change log behind every checkpoint past the retention, and expired
idempotency keys.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import text

from projections.runner import projections_behind, prune_change_log
from shared.config import Settings
from shared.db import write_sessionmaker
from shared.redis_client import ring_doorbell
from worker.jobs import advance_with_retries, registered_projections

log = logging.getLogger("evotrack.sweeper")

PRUNE_EVERY_SECONDS = 300.0


class Sweeper:
    def __init__(
        self, settings: Settings, stop: threading.Event, *, interval_seconds: float = 1.0
    ) -> None:
        self.settings = settings
        self.stop = stop
        self.interval_seconds = interval_seconds
        self._last_prune = 0.0
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
        projectors = {p.name: p for p in registered_projections()}
        with write_sessionmaker()() as session:
            behind = projections_behind(session, list(projectors))
        if behind and not ring_doorbell(force=True):
            for name in behind:
                if self.stop.is_set():
                    break
                advance_with_retries(projectors[name])
        return behind

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
        return pruned
