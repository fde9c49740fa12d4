"""How often `evotrack run` had to start a child again, on the APIs' /metrics.

The supervisor is not a web server, so it writes its counts to a small JSON file (named
to its children by `EVOTRACK_SUPERVISOR_STATE`) and the APIs read that file at scrape
time. Without the variable (the APIs served some other way, e.g. compose, where the
container runtime restarts them) there is nothing to report and nothing is reported.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

SUPERVISOR_STATE_ENV = "EVOTRACK_SUPERVISOR_STATE"


def write_restart_counts(path: Path, restarts: Mapping[str, int]) -> None:
    """Replace the file in one step, so a scrape never reads half of it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(dict(restarts)))
    os.replace(partial, path)


def read_restart_counts(path: Path) -> dict[str, int]:
    counts = json.loads(path.read_text())
    return {str(name): int(count) for name, count in counts.items()}


class ChildRestartCollector(Collector):
    """`evotrack_child_restarts_total{child=...}`: restarts of each child of the run."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        path = os.environ.get(SUPERVISOR_STATE_ENV)
        if not path:
            return
        try:
            counts = read_restart_counts(Path(path))
        except (OSError, ValueError, AttributeError) as exc:  # a scrape reports what it can
            log.warning("child restart counts unavailable: %s", exc)
            return
        restarts = CounterMetricFamily(
            "evotrack_child_restarts",
            "Times `evotrack run` started a child again after it died",
            labels=["child"],
        )
        for child, count in counts.items():
            restarts.add_metric([child], count)
        yield restarts


supervision_collector = ChildRestartCollector()
