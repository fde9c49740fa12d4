"""Jobs the worker runs.

The command API enqueues `advance_all_projections` by name (shared.redis_client.WAKEUP_JOB)
after every commit. The job is "advance every projection to the current watermark":
duplicate or concurrent wake-ups cost a little work and never apply a change twice (the
runner holds a per-projection lock), so they need no deduplication here.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence

from projections.runner import Projector, advance
from shared.db import write_sessionmaker

log = logging.getLogger(__name__)

REGISTRY_MODULE = "projections.registry"


class ProjectionsFailedError(RuntimeError):
    """One or more projections could not advance; the others did."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__(f"projections failed to advance: {', '.join(names)}")
        self.names = list(names)


def registered_projections() -> list[Projector]:
    """The projectors of `projections.registry.PROJECTIONS`; none while it does not exist."""
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

    This job only walks the registry: the projectors and the runner do the work. Without
    a registry module there is nothing to advance and it returns 0. A projection that
    fails does not hold the others back, but the job still fails (logged with the error,
    visible in RQ's failed registry). The sweeper that covers lost wake-ups is not here yet.
    """
    applied = 0
    failed: list[str] = []
    for projector in registered_projections():
        try:
            result = advance(write_sessionmaker(), projector)
        except Exception:
            log.exception("projection %s failed to advance", projector.name)
            failed.append(projector.name)
            continue
        applied += result.applied
        if result.applied or result.dead_lettered:
            log.info(
                "projection %s advanced",
                projector.name,
                extra={"applied": result.applied, "dead_lettered": result.dead_lettered},
            )
    if failed:
        raise ProjectionsFailedError(failed)
    return applied
