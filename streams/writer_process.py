"""``dampak writer``: the one process that owns the embedded engine when compute workers run
apart (``DAMPAK_ROLE=compute``).

It reads ``sink-rows`` with a plain consumer (group ``<app id>-writer``), writes each batch through
the engine (so rows ClickHouse refuses are traced to their record and dead-lettered), commits its
offsets after each write, and serves ``/healthz``, ``/readyz``, ``/metrics`` and ``/query``. A
batch is as large as ``DAMPAK_SINK__BATCH_SIZE`` records or ``__BATCH_SECONDS``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import Counter
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer

from sinks.connection import Connection, ConnectionPool, connect
from sinks.writer import ClickHouseWriter
from streams.engine import Engine, Flow, messages_of
from streams.engine.dead_letters import DeadLetters
from streams.engine.forwarder import AioForwarder
from streams.engine.producer import RecoveringProducer
from streams.handoff import write_row
from streams.metrics import EVENTS, SINK_BATCH_SECONDS, PrometheusWriteObserver
from streams.privacy import Pseudonymizer
from streams.settings import Settings
from streams.topics import Topic, dlq_name, physical_name
from streams.web import METRICS_CONTENT_TYPE, QueryEndpoint, json_bytes, metrics_body
from streams.worker import check_port_free, held_engine

__all__ = ["run_writer"]

logger = logging.getLogger(__name__)


def run_writer(settings: Settings) -> int:
    """Run the writer until SIGTERM/SIGINT. Raises DampakError when another process holds the
    embedded engine."""
    from streams.admin import check_kafka, ensure_topics

    check_port_free(settings)
    check_kafka(settings)
    ensure_topics(settings)
    with held_engine(settings) as (target, client):
        writes = Connection(client, target.database)
        queries = ConnectionPool(
            [
                Connection(connect(target), target.database)
                for _ in range(settings.clickhouse.query_concurrency)
            ]
        )
        try:
            asyncio.run(_serve(settings, writes, queries))
        finally:
            queries.close()
            writes.close()
    return 0


async def _serve(settings: Settings, writes: Connection, queries: ConnectionPool) -> None:
    k = settings.kafka
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    topic = physical_name(Topic.SINK_ROWS, settings)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=k.bootstrap_servers,
        group_id=f"{settings.app_id}-writer",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=int(k.session_timeout_s * 1000),
        heartbeat_interval_ms=int(k.heartbeat_interval_s * 1000),
        max_poll_records=settings.sink.batch_size,
        **k.aiokafka_options(),
    )
    producer = RecoveringProducer(
        bootstrap_servers=k.bootstrap_servers,
        acks="all",
        linger_ms=k.producer_linger_ms,
        request_timeout_s=k.request_timeout_s,
        **k.aiokafka_options(),
    )
    engine = Engine(
        ClickHouseWriter(writes, settings.sink.retry, PrometheusWriteObserver()),
        AioForwarder(producer),
        DeadLetters(
            Pseudonymizer(settings.privacy),
            settings.sink.dead_letter_payload_max_bytes,
            settings.sink.dead_letter_message_max_bytes,
        ),
        settings.sink.retry,
    )
    flow = Flow("write_rows", write_row, dlq_name(Topic.SINK_ROWS, settings))
    runner = await _web(settings, queries, consumer)
    await producer.start()
    await consumer.start()
    logger.info("writer: writing %s into %s", topic, settings.clickhouse_target.database)
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=int(settings.sink.batch_seconds * 1000))
            records = [r for rs in batches.values() for r in rs]
            if not records:
                continue
            started = time.perf_counter()
            messages = [
                m for r in records for m in messages_of(r, r.timestamp / 1000 if r.timestamp else None)
            ]
            outcomes = await engine.process(flow, messages)
            await consumer.commit()
            for (t, label), n in Counter(
                (m.topic, o.value) for m, o in zip(messages, outcomes, strict=True)
            ).items():
                EVENTS.labels(t, label).inc(n)
            SINK_BATCH_SECONDS.observe(time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()
        await runner.cleanup()


async def _web(settings: Settings, queries: ConnectionPool, consumer: AIOKafkaConsumer) -> web.AppRunner:
    endpoint = QueryEndpoint(settings, queries)

    def _json(value: Any, status: int = 200) -> web.Response:
        return web.Response(body=json_bytes(value), status=status, content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return _json({"status": "alive"})

    async def readyz(request: web.Request) -> web.Response:
        ready = bool(consumer.assignment())
        return _json({"ready": ready, "partitions_assigned": ready}, 200 if ready else 503)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=metrics_body(), content_type=METRICS_CONTENT_TYPE)

    async def query(request: web.Request) -> web.Response:
        status, body = await endpoint.answer(request.method, request.headers, request.json)
        return _json(body, status)

    app = web.Application()
    app.add_routes(
        [web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics),
         web.route("*", "/query", query)]
    )  # fmt: skip
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.web.host, settings.web.port).start()
    return runner
