"""Prometheus gauges read at scrape time: projection lag and dead letters from PostgreSQL,
the wake-up queue's depth from Redis, and (query API) the replay lag of the replica it
reads. A failing source is skipped, never a failed scrape."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from rq import Queue
from sqlalchemy import Engine

from shared.checkpoints import projection_status, replica_lag
from shared.supervision_metrics import supervision_collector

log = logging.getLogger(__name__)


class ProjectionCollector(Collector):
    def __init__(
        self,
        engine: Callable[[], Engine],
        redis: Callable[[], Any],
        queue_names: Callable[[], Sequence[str]],
    ) -> None:
        self.engine = engine
        self.redis = redis
        self.queue_names = queue_names

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
                for status in projection_status(conn):
                    lag_changes.add_metric([status.name], status.lag_changes)
                    lag_seconds.add_metric([status.name], status.lag_seconds)
                    dead.add_metric([status.name], status.dead_letters)
        except Exception as exc:  # a scrape reports what it can
            log.warning("projection metrics unavailable: %s", exc)
            return
        yield from (lag_changes, lag_seconds, dead)

    def _queue_metrics(self) -> Iterator[GaugeMetricFamily]:
        try:
            connection = self.redis()
            depths = {name: Queue(name, connection=connection).count for name in self.queue_names()}
        except Exception as exc:
            log.warning("queue depth unavailable: %s", exc)
            return
        gauge = GaugeMetricFamily("evotrack_queue_depth", "Jobs waiting", labels=["queue"])
        for name, depth in depths.items():
            gauge.add_metric([name], depth)
        yield gauge


class ReplicaCollector(Collector):
    """The replay of the streaming replica `engine` reads; nothing when it is a primary.
    The projection gauges read on a replica are as of its replay: these say how old that is."""

    def __init__(self, engine: Callable[[], Engine]) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.engine().connect() as conn:
                replica = replica_lag(conn)
        except Exception as exc:  # a scrape reports what it can
            log.warning("replica metrics unavailable: %s", exc)
            return
        if replica is None:
            return
        yield GaugeMetricFamily(
            "evotrack_replica_replay_paused",
            "1 while the replica's WAL replay is paused",
            value=int(replica["replay_paused"]),
        )
        for key, name, documentation in _REPLICA_LAGS:
            if replica[key] is not None:  # unknown while the replica receives nothing
                yield GaugeMetricFamily(name, documentation, value=replica[key])


_REPLICA_LAGS = (
    ("lag_bytes", "evotrack_replica_replay_lag_bytes", "WAL received and not yet replayed"),
    (
        "lag_seconds",
        "evotrack_replica_replay_lag_seconds",
        "0 when replay has caught up with the WAL received, else the time since the last"
        " replayed transaction committed on the primary",
    ),
)

# The collectors read at scrape time, by name: once per process (both apps may live in one
# process in tests).
_collectors: dict[str, Collector] = {}


def register_collector(name: str, make: Callable[[], Collector]) -> None:
    """Register the collector `make` builds, unless one of that name already is."""
    if name not in _collectors:
        _collectors[name] = make()
        REGISTRY.register(_collectors[name])


def register_projection_metrics(
    engine: Callable[[], Engine], redis: Callable[[], Any], queue_names: Callable[[], Sequence[str]]
) -> None:
    register_collector("projections", lambda: ProjectionCollector(engine, redis, queue_names))
    # restarts counted by `evotrack run`
    register_collector("supervision", lambda: supervision_collector)


def register_replica_metrics(engine: Callable[[], Engine]) -> None:
    """By the query API: the replica lag of the database it reads."""
    register_collector("replica", lambda: ReplicaCollector(engine))


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
    for collector in _collectors.values():
        registry.register(collector)
    return generate_latest(registry)
