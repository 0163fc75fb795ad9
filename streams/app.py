"""Builds the one ``faust.App`` from settings, with its topics, tables and agents.

``dampak worker`` (or ``python -m streams worker``) runs it.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from streams import alerts, field_reports, households, operations, web
from streams.pipeline import Pipeline, RowSink
from streams.privacy import Pseudonymizer
from streams.settings import Settings
from streams.topics import INPUT_TOPICS, Topic, dlq_name, physical_name

__all__ = ["TABLES", "create_app"]

logger = logging.getLogger(__name__)

TABLES = {
    "registry": "household_id -> registry state (households topic)",
    "household_reports": "household_id -> {report_id: latest report} (field-reports-by-household)",
}


def _credentials(settings: Settings) -> Any:
    k = settings.kafka
    if k.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        return faust.SASLCredentials(
            username=k.sasl_username,
            password=k.sasl_password.get_secret_value() if k.sasl_password else None,
            mechanism=k.sasl_mechanism or "PLAIN",
            ssl_context=k.ssl_context(),
        )
    if k.security_protocol == "SSL":
        return faust.SSLCredentials(k.ssl_context())
    return None


def create_app(settings: Settings, sink: RowSink) -> tuple[faust.App, Pipeline]:
    """The Faust app wired to ``sink``. Topics carry raw bytes; pydantic validates inside agents."""
    k = settings.kafka
    app = faust.App(
        settings.app_id,
        broker=";".join(f"kafka://{server.strip()}" for server in k.bootstrap_servers.split(",")),
        broker_credentials=_credentials(settings),
        store=settings.tables.store,
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=k.partitions,
        topic_replication_factor=k.replication_factor,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_host=settings.web.host,
        web_port=settings.web.port,
        web_bind=settings.web.host,
        autodiscover=False,
        producer_acks=-1,
        # Faust's defaults (no linger, 16 KiB batches) send changelog and repartition records
        # almost one request each; batching them is most of a worker's produce cost.
        producer_linger=0.02,
        producer_max_batch_size=512 * 1024,
        stream_buffer_maxsize=max(4096, settings.sink.batch_size * 2),
        broker_max_poll_records=2000,
        # A topic the consumer saw before it had leaders is picked up at the next refresh.
        consumer_metadata_max_age_ms=15_000,
        # A worker killed without leaving its group blocks the next rebalance until its session
        # expires: keep that short so a restarted worker resumes within seconds.
        broker_session_timeout=10.0,
        # Agents ack only after their rows are written (noack_take), so shutdown need not wait for
        # in-flight events: what is unacked is uncommitted and is processed again after restart.
        # Waiting would hang SIGTERM while ClickHouse is down and a write is being retried.
        stream_wait_empty=False,
        broker_heartbeat_interval=3.0,
    )
    pipeline = Pipeline(settings=settings, sink=sink, pseudo=Pseudonymizer(settings.privacy), app=app)
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    for topic in Topic:
        pipeline.topics[topic] = app.topic(physical_name(topic, settings), internal=False, **raw)
    for topic in INPUT_TOPICS:
        pipeline.dlq[physical_name(topic, settings)] = app.topic(dlq_name(topic, settings), **raw)
    # Changelog-backed tables, all partitioned like the keyed topics (co-partitioned with sources).
    for name, help_text in TABLES.items():
        pipeline.tables[name] = app.Table(
            name,
            default=None,
            partitions=k.partitions,
            help=help_text,
            options=settings.tables.store_options(),
        )
    households.register(pipeline)
    field_reports.register(pipeline)
    alerts.register(pipeline)
    operations.register(pipeline)
    web.register(pipeline)
    return app, pipeline
