"""Builds the one ``faust.App`` from settings and wires the features onto the engine.

``dampak worker`` (or ``python -m streams worker``) runs it. Each agent is a feature's handler run
by the engine; timers and the HTTP pages are wired here too, and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer

from sinks.connection import Connection, ConnectionPool
from sinks.reader import ClickHouseReader, LocalRuns, RemoteRuns
from sinks.writer import ClickHouseWriter
from streams.engine import Batching, Engine, Flow, RowWriter
from streams.engine.aiokafka.consumer import ConsumerLoop
from streams.engine.dead_letters import DeadLetters
from streams.engine.faust.acks import refuse_acks_from_earlier_generations
from streams.engine.faust.changelog import AioBatchSender, Changelog
from streams.engine.faust.faults import FAULTS
from streams.engine.faust.forwarder import FaustForwarder
from streams.engine.faust.group import FaustGroup
from streams.engine.faust.producer import use_recovering_producer
from streams.engine.faust.resume import seek_before_resuming
from streams.engine.faust.runner import EventContext, FaustRunner
from streams.engine.faust.state import TableState
from streams.features.notifications import Notifier
from streams.features.operations import publish_lag, time_table_recovery
from streams.ops import web
from streams.ops.lag import LagMonitor
from streams.ops.metrics import PrometheusWriteObserver
from streams.privacy import Pseudonymizer
from streams.rows import dead_letter_row
from streams.runtime.flows import bundle_take, feature_deps, topic_flows
from streams.runtime.handoff import RowProducer
from streams.settings import Settings
from streams.topics import (
    INPUT_TOPICS,
    LocalTable,
    Topic,
    dlq_name,
    inputs_group,
    physical_name,
)

__all__ = ["TABLES", "ClickHouseConnections", "create_app"]

logger = logging.getLogger(__name__)

#: dampak's internal topics, whose records are bundles of messages (streams/engine/bundle.py).
BUNDLED = (Topic.HOUSEHOLDS_BY_ID, Topic.REPORTS_BY_ID, Topic.REPORTS_BY_HOUSEHOLD)

#: What each local table holds (its name, changelog and partitioning are in ``streams.topics``).
TABLES = {
    LocalTable.REGISTRY: "household_id -> registry state (households-by-id)",
    LocalTable.HOUSEHOLD_REPORTS: (
        "each household's current reports, one key per report (field-reports-by-household)"
    ),
    LocalTable.REPORT_COPIES: "report_id -> the copy that stands (field-reports-by-id)",
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


def _faust_app(settings: Settings, batching: Batching) -> faust.App:
    k = settings.kafka
    return faust.App(
        settings.app_id,
        broker=";".join(f"kafka://{server.strip()}" for server in k.bootstrap_servers.split(",")),
        broker_credentials=_credentials(settings),
        store=settings.tables.store,
        datadir=str(settings.data_dir / "faust"),
        table_standby_replicas=settings.tables.standby_replicas,
        topic_partitions=k.partitions,
        topic_replication_factor=k.replication_factor,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_host=settings.web.host,
        web_port=settings.web.port,
        web_bind=settings.web.host,
        autodiscover=False,
        producer_acks=-1 if k.producer_acks == "all" else int(k.producer_acks),
        producer_linger=k.producer_linger_ms / 1000,
        producer_max_batch_size=k.producer_batch_bytes,
        stream_buffer_maxsize=max(4096, batching.size * 2),
        broker_max_poll_records=k.consumer_max_poll_records,
        consumer_metadata_max_age_ms=k.consumer_metadata_max_age_ms,
        broker_session_timeout=k.session_timeout_s,
        broker_heartbeat_interval=k.heartbeat_interval_s,
        # The engine acks only after rows are written, so shutdown need not wait for in-flight
        # events: what is unacked is uncommitted and is processed again after restart. Waiting
        # would hang SIGTERM while ClickHouse is down and a write is being retried.
        stream_wait_empty=False,
    )


@dataclass(frozen=True)
class ClickHouseConnections:
    """The ClickHouse connections of a worker that holds ClickHouse (``DAMPAK_ROLE=all``):
    ``writes`` for the writer, ``reads`` for the features' reads (an alert's village statistics),
    ``checks`` for the notifier's (the displacement check reads every report), ``queries`` for the
    analysts'. No read waits behind a write, and no write or feature read behind a slow query."""

    writes: Connection
    reads: Connection
    checks: Connection
    queries: ConnectionPool


@dataclass(frozen=True)
class _Sinks:
    """Where a worker's rows go and what its features read: ClickHouse itself, or (a compute
    worker) ``sink-rows`` and the writer's ``/query``."""

    writer: ClickHouseWriter | RowProducer
    reader: ClickHouseReader
    checks: ClickHouseReader


def create_app(
    settings: Settings, clickhouse: ClickHouseConnections | None
) -> tuple[faust.App, dict[str, Any]]:
    """The Faust app with its agents, timers and pages; returns it with its tables (name -> table).

    With ``clickhouse`` the worker writes and reads ClickHouse itself; without (a compute worker,
    ``DAMPAK_ROLE=compute``) it hands its rows to ``sink-rows`` and reads through the writer's
    ``/query``. Topics carry raw bytes; handlers validate with pydantic.
    """
    refuse_acks_from_earlier_generations()
    seek_before_resuming()
    use_recovering_producer(settings.kafka.request_timeout_s)
    pseudo = Pseudonymizer(settings.privacy)
    retry = settings.sink.retry
    # How every flow batches, unless it says otherwise (the settings hold the defaults).
    batching = Batching(settings.sink.batch_size, settings.sink.batch_seconds)
    app = _faust_app(settings, batching)
    bundled_topics = {physical_name(t, settings): settings.kafka.partitions for t in BUNDLED}
    forwarder = FaustForwarder(app, dict.fromkeys(bundled_topics, 2 * bundle_take(settings)))
    changelog = _changelog(app, settings)
    sinks = _sinks(settings, clickhouse, forwarder)
    dead_letters = DeadLetters(
        pseudo,
        dead_letter_row,
        settings.sink.dead_letter_payload_max_bytes,
        settings.sink.dead_letter_message_max_bytes,
    )
    # The agents' engine publishes their table changes and keeps Faust's current event; the input
    # routing's (on a plain consumer group) has neither. Both run in the Faust worker, whose
    # clients' faults they classify alike.
    agents = FaustRunner(
        Engine(sinks.writer, forwarder, dead_letters, retry, faults=FAULTS, bundled=bundled_topics,
               changelog=changelog, events=EventContext),
        FaustGroup(app),
    )  # fmt: skip
    _declare_topics(forwarder, settings)
    tables = _tables(app, settings)
    notifier = Notifier(
        sinks.checks, sinks.writer, forwarder, physical_name(Topic.IMPACT_NOTIFICATIONS, settings), retry,
        max_share=settings.notify.check_max_share,
    )  # fmt: skip
    # Handlers read through TableState (one store lookup per read); their writes reach the
    # changelogs through ``changelog``, which the engine publishes before it acks.
    state = {table: TableState(tables[table], changelog) for table in TABLES}
    flows = topic_flows(settings, batching, feature_deps(settings, state, pseudo, sinks.reader, notifier))
    inputs = Engine(sinks.writer, forwarder, dead_letters, retry, faults=FAULTS, bundled=bundled_topics)
    _route_inputs(app, settings, inputs, flows)
    for topic, flow in flows.items():
        if topic not in INPUT_TOPICS:
            _agent(app, agents, forwarder.topic(physical_name(topic, settings)), flow)
    _timers(app, settings, sinks.writer, notifier)
    web.register(app, settings, clickhouse.queries if clickhouse else None)
    return app, tables


def _sinks(settings: Settings, clickhouse: ClickHouseConnections | None, forwarder: FaustForwarder) -> _Sinks:
    retry = settings.sink.retry
    observer = PrometheusWriteObserver()
    if clickhouse is not None:
        return _Sinks(
            ClickHouseWriter(clickhouse.writes, retry, observer),
            ClickHouseReader(LocalRuns(clickhouse.reads, retry, observer.retrying)),
            ClickHouseReader(LocalRuns(clickhouse.checks, retry, observer.retrying)),
        )
    sink_rows = physical_name(Topic.SINK_ROWS, settings)
    bundled = settings.sink.rows_bundled
    writer = RowProducer(forwarder, sink_rows, retry, settings.kafka.partitions, bundled)
    token = settings.web.token.get_secret_value() if settings.web.token else None
    reader = ClickHouseReader(RemoteRuns(settings.writer_url, settings.clickhouse.database, token, retry))
    return _Sinks(writer, reader, reader)


def _declare_topics(forwarder: FaustForwarder, settings: Settings) -> None:
    """Declare every topic the worker reads or writes up front (raw bytes)."""
    for topic in Topic:
        forwarder.topic(physical_name(topic, settings))
    for topic in INPUT_TOPICS:
        forwarder.topic(dlq_name(topic, settings))


def _tables(app: faust.App, settings: Settings) -> dict[str, Any]:
    return {
        name.value: app.Table(
            name.value,
            default=None,
            partitions=settings.kafka.partitions,
            help=help_text,
            options=settings.tables.store_options(),
            key_type=bytes,  # raw: encoded by TableState
            value_type=bytes,
        )
        for name, help_text in TABLES.items()
    }


def _route_inputs(app: faust.App, settings: Settings, engine: Engine, flows: dict[Topic, Flow]) -> None:
    """The input topics' flows keep no table: they run on a plain consumer group of their own
    (streams/engine/aiokafka/consumer.py), the internal topics' flows as Faust agents."""
    inputs = ConsumerLoop(
        engine,
        {physical_name(topic, settings): flow for topic, flow in flows.items() if topic in INPUT_TOPICS},
        settings.sink.retry,
        ready=lambda: bool(app.tables.actives_ready) and not app.rebalancing,
    )

    @app.task
    async def route_inputs() -> None:
        group = inputs_group(settings.app_id)
        options = settings.kafka.group_consumer_options(group, inputs.max_records)
        await inputs.run(AIOKafkaConsumer(**options))


def _changelog(app: faust.App, settings: Settings) -> Changelog:
    """The table changes' changelog records, published through Faust's producer. What a batch
    abandoned at a rebalance left behind is published before the partitions are handed over; at
    shutdown, for as long as a broker answers within the bound."""
    producer: Any = app.producer
    changelog = Changelog(AioBatchSender(producer._ensure_producer), settings.sink.retry)

    @app.on_partitions_revoked.connect
    async def publish_before_handing_over(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await changelog.flush()

    @app.on_before_shutdown.connect
    async def publish_before_stopping(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        try:
            await asyncio.wait_for(changelog.flush(), settings.kafka.request_timeout_s)
        except TimeoutError:
            logger.error("stopping before every table change reached its changelog (no broker answered)")

    return changelog


def _agent(app: faust.App, runner: FaustRunner, channel: Any, flow: Flow) -> None:
    async def agent(stream: Any) -> None:
        await runner.run(flow, stream)

    app.agent(channel, name=flow.name)(agent)


def _timers(app: faust.App, settings: Settings, writer: RowWriter, notifier: Notifier) -> None:
    monitor: list[LagMonitor] = []
    monitor_history: dict[Any, Any] = {}

    # A timer that raises stops the whole worker: each one reports and tries again at its next tick.
    @app.timer(settings.notify.check_interval_s, on_leader=True, name="notify_reported_displacement")
    async def notify_reported_displacement() -> None:
        try:
            await notifier.check_displacement(settings.notify.displaced_thresholds)
        except Exception:
            logger.exception("checking reported displacement for notifications failed")

    notify = settings.notify

    @app.timer(notify.unreported_check_interval_s, on_leader=True, name="notify_unreported_villages")
    async def notify_unreported_villages() -> None:
        if not notify.unreported_after_h:
            return
        try:
            await notifier.check_unreported(
                notify.unreported_level, notify.unreported_after_h, notify.unreported_window_days
            )
        except Exception:
            logger.exception("checking unreported villages for notifications failed")

    @app.timer(settings.lag.sample_interval_s, on_leader=True, name="sample_consumer_lag")
    async def sample_consumer_lag() -> None:
        # Blocking kafka-python calls run in a thread.
        loop = asyncio.get_running_loop()
        try:
            if not monitor:
                fresh = await loop.run_in_executor(None, LagMonitor, settings)
                fresh.history.update(monitor_history)
                monitor_history.clear()
                monitor.append(fresh)
            groups = await loop.run_in_executor(None, monitor[0].sample)
        except Exception as exc:
            # kafka-python's clients may not find a restarted broker again: start new ones at the
            # next tick, keeping the samples' history.
            logger.warning("sampling consumer lag failed (%s); new clients next time", type(exc).__name__)
            if monitor:
                old = monitor.pop()
                monitor_history.update(old.history)
                with contextlib.suppress(Exception):
                    await loop.run_in_executor(None, old.close)
            return
        try:
            await publish_lag(groups, writer)
        except Exception:
            logger.exception("writing consumer lag failed")

    @app.task
    async def table_recovery_timer() -> None:
        await time_table_recovery(app, lambda a: bool(a.tables.actives_ready) and not a.rebalancing)
