"""Webhook deliveries in /metrics, read at scrape time from the delivery log."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from query_api.modules.webhooks.queries import delivery_counts

log = logging.getLogger(__name__)


class DeliveryCollector(Collector):
    def __init__(self, engine: Callable[[], Engine]) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.engine().connect() as conn:
                counts = delivery_counts(conn)
        except Exception as exc:  # a scrape reports what it can
            log.warning("webhook metrics unavailable: %s", exc)
            return
        deliveries = GaugeMetricFamily(
            "evotrack_webhook_deliveries",
            "Webhook deliveries not delivered: pending (retrying: failed at least once) and"
            " failed (given up after 3 days)",
            labels=["status"],
        )
        for status in ("pending", "retrying", "failed"):
            deliveries.add_metric([status], counts[status])
        yield deliveries
        yield GaugeMetricFamily(
            "evotrack_webhooks_disabled",
            "Webhooks disabled (by an admin, or after 3 days of failed deliveries)",
            value=counts["disabled_webhooks"],
        )
