"""Prometheus gauges read at scrape time: projection lag and dead letters from PostgreSQL,
the wake-up queue's depth from Redis. A failing source is skipped, never a failed scrape."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from rq import Queue
from sqlalchemy import Engine

from shared.changes import projection_lag

log = logging.getLogger(__name__)


class ProjectionCollector(Collector):
    def __init__(
        self,
        engine: Callable[[], Engine],
        redis: Callable[[], Any],
        queue_name: Callable[[], str],
    ) -> None:
        self.engine = engine
        self.redis = redis
        self.queue_name = queue_name

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._projection_metrics()
        yield from self._queue_metrics()

    def _projection_metrics(self) -> Iterator[GaugeMetricFamily]:
        lag_changes = GaugeMetricFamily(
            "evotrack_projection_lag_changes",
            "Committed changes not yet applied",
            labels=["projection"],
        )
        lag_seconds = GaugeMetricFamily(
            "evotrack_projection_lag_seconds",
            "Age of the oldest unapplied change",
            labels=["projection"],
        )
        dead = GaugeMetricFamily(
            "evotrack_projection_dead_letters", "Open dead letters", labels=["projection"]
        )
        try:
            with self.engine().connect() as conn:
                for row in projection_lag(conn):
                    lag_changes.add_metric([row["name"]], row["lag_changes"])
                    lag_seconds.add_metric([row["name"]], row["lag_seconds"])
                    dead.add_metric([row["name"]], row["dead_letters"])
        except Exception as exc:  # a scrape reports what it can
            log.warning("projection metrics unavailable: %s", exc)
            return
        yield from (lag_changes, lag_seconds, dead)

    def _queue_metrics(self) -> Iterator[GaugeMetricFamily]:
        try:
            depth = Queue(self.queue_name(), connection=self.redis()).count
        except Exception as exc:
            log.warning("queue depth unavailable: %s", exc)
            return
        gauge = GaugeMetricFamily("evotrack_queue_depth", "Jobs waiting", labels=["queue"])
        gauge.add_metric([self.queue_name()], depth)
        yield gauge


_collector: ProjectionCollector | None = None


def register_projection_metrics(
    engine: Callable[[], Engine], redis: Callable[[], Any], queue_name: Callable[[], str]
) -> None:
    """Once per process (both apps may live in one process in tests)."""
    global _collector
    if _collector is None:
        _collector = ProjectionCollector(engine, redis, queue_name)
        REGISTRY.register(_collector)


def metrics_payload() -> bytes:
    """The Prometheus exposition of this app. Under several uvicorn worker processes
    (`PROMETHEUS_MULTIPROC_DIR` set by `evotrack run`), request counters and latencies are
    summed over all of them (prometheus_client's multiprocess mode); the projection gauges
    are read from the database at scrape time either way."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    if _collector is not None:
        registry.register(_collector)
    return generate_latest(registry)
