"""Jobs the worker runs.

The command API enqueues `advance_all_projections` by name (shared.redis_client.WAKEUP_JOB)
after a commit, unless a wake-up is already pending (the doorbell coalesces a burst of
commits into one job). The job is "advance every projection to the current watermark":
duplicate or concurrent wake-ups cost a little work and never apply a change twice (the
runner holds a per-projection lock), so they need no deduplication here.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Sequence

from projections.projection import Projection
from projections.runner import AdvanceResult, advance, is_transient
from shared.db import write_sessionmaker
from shared.redis_client import clear_pending_wakeup

log = logging.getLogger(__name__)

# Set when the worker is asked to stop: a running job finishes its batch and returns.
stop_requested = threading.Event()

# Set while this process's RQ worker takes wake-up jobs: Redis answered its last heartbeat
# and it waits for a job or works a wake-up. Clear while it has lost Redis, reconnects, is
# suspended or works a job of another queue: the sweeper then advances the projections
# itself (worker/sweeper.py).
rq_listening = threading.Event()

# Transient failures (the database restarting, a dropped connection) are retried here
# with a growing delay; what still fails fails the job, and the sweeper tries again.
RETRY_DELAYS_SECONDS = (0.2, 1.0, 3.0)


def advance_with_retries(projection: Projection) -> AdvanceResult:
    """Advance one projection, retrying transient failures with backoff."""
    for delay in (*RETRY_DELAYS_SECONDS, None):
        try:
            return advance(write_sessionmaker(), projection, should_stop=stop_requested.is_set)
        except Exception as exc:
            if delay is None or not is_transient(exc) or stop_requested.is_set():
                raise
            log.warning(
                "projection %s: transient failure, retrying in %.1f s: %s",
                projection.name,
                delay,
                exc,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


REGISTRY_MODULE = "projections.registry"


class ProjectionsFailedError(RuntimeError):
    """One or more projections could not advance; the others did."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__(f"projections failed to advance: {', '.join(names)}")
        self.names = list(names)


def registered_projections() -> list[Projection]:
    """The projections of `projections.registry.PROJECTIONS`; none while it does not exist."""
    try:
        registry = importlib.import_module(REGISTRY_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != REGISTRY_MODULE:
            raise  # the registry exists but one of its imports is broken: say so
        return []
    return list(registry.PROJECTIONS)


def advance_all_projections() -> int:
    """Advance every projection of `projections.registry.PROJECTIONS` to the current
    watermark; return how many changes were applied.

    This job only walks the registry: the projections and the runner do the work. Without
    a registry module there is nothing to advance and it returns 0. A projection that
    fails does not hold the others back, but the job still fails (logged with the error,
    visible in RQ's failed registry); the sweeper (worker/sweeper.py) tries again.
    """
    clear_pending_wakeup()  # first: a commit that rings from now on enqueues a new job
    applied = 0
    failed: list[str] = []
    for projection in registered_projections():
        try:
            result = advance_with_retries(projection)
        except Exception:
            log.exception("projection %s failed to advance", projection.name)
            failed.append(projection.name)
            continue
        applied += result.applied
        if result.applied or result.dead_lettered:
            log.info(
                "projection %s advanced",
                projection.name,
                extra={"applied": result.applied, "dead_lettered": result.dead_lettered},
            )
    if failed:
        raise ProjectionsFailedError(failed)
    return applied
