"""``dampak writer``: the one process that owns the embedded ClickHouse when compute workers run
apart (``DAMPAK_ROLE=compute``).

It reads ``sink-rows`` with a plain consumer (group ``<app id>-writer``), inserts each batch's
rows table by table, straight from the bundles into columns (``write_at_once``), commits its
offsets after each write, and serves ``/healthz``, ``/readyz``, ``/metrics`` and ``/query``. A
batch that ClickHouse refuses, or that holds a record other than a bundle of rows, is written
again through the engine, row by row, so that a refused row is traced to its record and
dead-lettered. A batch is as large as ``DAMPAK_SINK__BATCH_SIZE`` records or ``__BATCH_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop
from aiohttp import web
from aiokafka import AIOKafkaConsumer

from sinks.connection import Connection, ConnectionPool, connect
from sinks.errors import RowsRejected
from sinks.writer import ClickHouseWriter
from streams.engine import Batching, Engine, Flow, Outcome, observe_batch
from streams.engine.aiokafka.consumer import ConsumerLoop
from streams.engine.aiokafka.faults import FAULTS
from streams.engine.aiokafka.forwarder import AioForwarder
from streams.engine.dead_letters import DeadLetters
from streams.engine.faust.producer import RecoveringProducer
from streams.ops.metrics import PrometheusWriteObserver
from streams.ops.web import METRICS_CONTENT_TYPE, QueryEndpoint, json_bytes, metrics_body
from streams.privacy import Pseudonymizer
from streams.rows import dead_letter_row
from streams.runtime.handoff import row_columns, write_row
from streams.runtime.startup import check_port_free, held_clickhouse, tune_garbage_collection
from streams.settings import Settings
from streams.topics import Topic, dlq_name, physical_name, writer_group

__all__ = ["run_writer", "write_at_once"]

logger = logging.getLogger(__name__)


def run_writer(settings: Settings) -> int:
    """Run the writer until SIGTERM/SIGINT. Raises DampakError when another process holds the
    embedded ClickHouse."""
    from streams.ops.admin import check_kafka, ensure_topics

    check_port_free(settings)
    check_kafka(settings)
    ensure_topics(settings)
    with held_clickhouse(settings) as (target, client):
        writes = Connection(client, target.database)
        queries = ConnectionPool(
            [
                Connection(connect(target), target.database)
                for _ in range(settings.clickhouse.query_concurrency)
            ],
            settings.clickhouse.query_wait_s,
        )
        tune_garbage_collection()
        # uvloop's event loop, as in the worker.
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
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
    producer = RecoveringProducer(
        bootstrap_servers=k.bootstrap_servers,
        acks="all",
        linger_ms=k.producer_linger_ms,
        request_timeout_s=k.request_timeout_s,
        **k.aiokafka_options(),
    )
    batching = Batching(settings.sink.batch_size, settings.sink.batch_seconds)
    flow = Flow("write_rows", write_row, dlq_name(Topic.SINK_ROWS, settings), batching)
    writer = ClickHouseWriter(writes, settings.sink.retry, PrometheusWriteObserver())
    dead_letters = DeadLetters(
        Pseudonymizer(settings.privacy),
        dead_letter_row,
        settings.sink.dead_letter_payload_max_bytes,
        settings.sink.dead_letter_message_max_bytes,
    )
    engine = Engine(writer, AioForwarder(producer), dead_letters, settings.sink.retry, faults=FAULTS)
    # One batch is written, then its offsets committed (commit_every_s=0), before the next.
    rows = ConsumerLoop(
        engine, {topic: flow}, settings.sink.retry, commit_every_s=0.0, bundled=True,
        at_once=write_at_once(writer),
    )  # fmt: skip
    consumer = AIOKafkaConsumer(**k.group_consumer_options(writer_group(settings.app_id), rows.max_records))
    runner = await _web(settings, queries, consumer)
    await producer.start()
    logger.info("writer: writing %s into %s", topic, settings.clickhouse_target.database)
    task, stopping = asyncio.create_task(rows.run(consumer)), asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await producer.stop()
        await runner.cleanup()


def write_at_once(writer: ClickHouseWriter) -> Callable[[str, list[Any]], Awaitable[bool]]:
    """The writer's way with a batch of ``sink-rows`` records: its rows go from the bundles into
    columns and are inserted table by table, without a message, a handler call or a row dict
    each. False (the engine writes the batch again, row by row) when a record is not a bundle of
    declared rows, or ClickHouse refuses a table's rows: rows are state, so those inserted before
    are inserted again to no effect."""

    async def write(topic: str, records: list[Any]) -> bool:
        started = time.perf_counter()
        decoded = row_columns(records)
        if decoded is None:
            return False
        columns, origins = decoded
        try:
            for table, values in columns.items():
                await writer.insert_columns(table, values)
        except RowsRejected as exc:
            # Table and code only: ClickHouse's text may quote the values.
            logger.warning("ClickHouse refused %s rows (code %s): writing the batch again row by row",
                           exc.table, exc.code)  # fmt: skip
            return False
        observe_batch({(topic, Outcome.OK): len(origins)}, origins, started)
        return True

    return write


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
