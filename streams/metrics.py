"""Prometheus metrics of the worker (served on ``/metrics``); every metric is declared here."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "END_TO_END_SECONDS",
    "EVENTS",
    "GROUP_LAG",
    "GROUP_LAG_SECONDS",
    "GROUP_STATUS",
    "SINK_BATCH_SECONDS",
    "SINK_RETRIES",
    "SINK_ROWS",
    "TABLE_RECOVERY_SECONDS",
    "PrometheusWriteObserver",
]

logger = logging.getLogger(__name__)

EVENTS = Counter("dampak_events", "Messages processed, by topic and outcome", ["topic", "outcome"])
SINK_ROWS = Counter("dampak_sink_rows", "Rows written to ClickHouse, by table", ["table"])
SINK_RETRIES = Counter("dampak_sink_retries", "ClickHouse writes retried after a failure")
SINK_BATCH_SECONDS = Histogram(
    "dampak_sink_batch_seconds",
    "Time to process, write and ack one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
END_TO_END_SECONDS = Histogram(
    "dampak_end_to_end_seconds",
    "From a message's Kafka timestamp to its rows being visible in ClickHouse",
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300),
)
TABLE_RECOVERY_SECONDS = Gauge(
    "dampak_table_recovery_seconds", "Duration of the last table recovery from changelogs (after a rebalance)"
)
GROUP_LAG = Gauge("dampak_consumergroup_lag", "Messages not yet consumed", ["group", "topic", "partition"])
GROUP_LAG_SECONDS = Gauge(
    "dampak_consumergroup_lag_seconds",
    "Age of the oldest unconsumed message",
    ["group", "topic", "partition"],
)
GROUP_STATUS = Gauge("dampak_consumergroup_status", "Group status: 0 OK, 1 WARN, 2 ERR", ["group"])


class PrometheusWriteObserver:
    """The ClickHouse writer's reports, as ``dampak_sink_rows_total`` and ``dampak_sink_retries_total``."""

    def written(self, table: str, rows: int, seconds: float) -> None:
        SINK_ROWS.labels(table).inc(rows)

    def retrying(self, error: object, delay_s: float) -> None:
        SINK_RETRIES.inc()
