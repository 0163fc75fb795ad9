"""Builds the one ``faust.App`` from settings and wires the features onto the engine.

``dampak worker`` (or ``python -m streams worker``) runs it. Each agent is a feature's handler run
by the engine; timers and the HTTP pages are wired here too, and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer

from sinks.connection import Connection, ConnectionPool
from sinks.reader import ClickHouseReader, LocalRuns, RemoteRuns
from sinks.writer import ClickHouseWriter
from streams import web
from streams.engine import Engine, Flow, RowWriter
from streams.engine.acks import refuse_acks_from_earlier_generations
from streams.engine.changelog import AioBatchSender, Changelog
from streams.engine.consumer import ConsumerLoop
from streams.engine.dead_letters import DeadLetters
from streams.engine.forwarder import FaustForwarder
from streams.engine.group import FaustGroup
from streams.engine.producer import use_recovering_producer
from streams.engine.resume import seek_before_resuming
from streams.engine.state import TableState
from streams.features.alerts import AlertDeps, estimate_alert_impact, route_alert
from streams.features.field_reports import ReportDeps, decide_report, enrich_report, route_report
from streams.features.households import RegistryDeps, apply_household_change, route_household
from streams.features.notifications import Notifier
from streams.features.operations import publish_lag, time_table_recovery
from streams.handoff import RowProducer
from streams.lag import LagMonitor
from streams.metrics import PrometheusWriteObserver
from streams.privacy import Pseudonymizer
from streams.settings import Settings
from streams.topics import INPUT_TOPICS, Topic, dlq_name, inputs_group, physical_name

__all__ = ["TABLES", "Engines", "create_app"]

logger = logging.getLogger(__name__)

#: dampak's internal topics, whose records are bundles of messages (streams/engine/bundle.py).
BUNDLED = (Topic.HOUSEHOLDS_BY_ID, Topic.REPORTS_BY_ID, Topic.REPORTS_BY_HOUSEHOLD)

#: The changelog-backed tables, all partitioned like the keyed topics (co-partitioned with sources).
TABLES = {
    "registry": "household_id -> registry state (households-by-id)",
    "household_reports": "each household's current reports, one key per report (field-reports-by-household)",
    "report_copies": "report_id -> the copy that stands (field-reports-by-id)",
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


def _faust_app(settings: Settings) -> faust.App:
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
        stream_buffer_maxsize=max(4096, settings.sink.batch_size * 2),
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
class Engines:
    """The ClickHouse connections of a worker that holds the engine (``DAMPAK_ROLE=all``):
    ``writes`` for the writer, ``reads`` for the features' reads (an alert's village statistics),
    ``checks`` for the notifier's (the displacement check reads every report), ``queries`` for the
    analysts'. No read waits behind a write, and no write or feature read behind a slow query."""

    writes: Connection
    reads: Connection
    checks: Connection
    queries: ConnectionPool


def create_app(settings: Settings, engines: Engines | None) -> tuple[faust.App, dict[str, Any]]:
    """The Faust app with its agents, timers and pages; returns it with its tables (name -> table).

    With ``engines`` the worker writes and reads ClickHouse itself; without (a compute worker,
    ``DAMPAK_ROLE=compute``) it hands its rows to ``sink-rows`` and reads through the writer's
    ``/query``. Topics carry raw bytes; handlers validate with pydantic.
    """
    refuse_acks_from_earlier_generations()
    seek_before_resuming()
    use_recovering_producer(settings.kafka.request_timeout_s)
    app = _faust_app(settings)
    pseudo = Pseudonymizer(settings.privacy)
    observer = PrometheusWriteObserver()
    retry = settings.sink.retry
    # A bundle holds what one batch forwarded to one partition. Faust bounds an agent's buffer by
    # records, not bytes: a bundled topic's agent takes a few bundles per partition at a time and
    # holds a few more unread, so a backlog on an internal topic is not read into memory whole.
    bundle_take = 2 * settings.kafka.partitions
    # The flows on the re-keyed topics: bundles taken a few at a time, and not waited for long.
    hop = functools.partial(Flow, take=bundle_take, batch_seconds=settings.sink.hop_batch_seconds)
    bundled_topics = {physical_name(t, settings): settings.kafka.partitions for t in BUNDLED}
    forwarder = FaustForwarder(app, dict.fromkeys(bundled_topics, 2 * bundle_take))
    changelog = _changelog(app, settings)
    writer: ClickHouseWriter | RowProducer
    if engines is not None:
        writer = ClickHouseWriter(engines.writes, retry, observer)
        reader = ClickHouseReader(LocalRuns(engines.reads, retry, observer.retrying))
        checks = ClickHouseReader(LocalRuns(engines.checks, retry, observer.retrying))
    else:
        sink_rows = physical_name(Topic.SINK_ROWS, settings)
        bundled = settings.sink.rows_bundled
        writer = RowProducer(forwarder, sink_rows, retry, settings.kafka.partitions, bundled)
        token = settings.web.token.get_secret_value() if settings.web.token else None
        reader = checks = ClickHouseReader(
            RemoteRuns(settings.writer_url, settings.clickhouse.database, token, retry)
        )
    dead_letters = DeadLetters(
        pseudo, settings.sink.dead_letter_payload_max_bytes, settings.sink.dead_letter_message_max_bytes
    )

    def engine_of(group: Any, changes: Changelog | None) -> Engine:
        return Engine(
            writer, forwarder, dead_letters, retry, batch_size=settings.sink.batch_size,
            batch_seconds=settings.sink.batch_seconds, bundled=bundled_topics, group=group, changelog=changes,
        )  # fmt: skip

    engine = engine_of(FaustGroup(app), changelog)
    # Declare every topic the worker reads or writes up front (raw bytes).
    for topic in Topic:
        forwarder.topic(physical_name(topic, settings))
    for topic in INPUT_TOPICS:
        forwarder.topic(dlq_name(topic, settings))
    tables = {
        name: app.Table(
            name,
            default=None,
            partitions=settings.kafka.partitions,
            help=help_text,
            options=settings.tables.store_options(),
            key_type=bytes,  # raw: encoded by TableState
            value_type=bytes,
        )
        for name, help_text in TABLES.items()
    }
    notifier = Notifier(
        checks, writer, forwarder, physical_name(Topic.IMPACT_NOTIFICATIONS, settings), retry,
        max_share=settings.notify.check_max_share,
    )  # fmt: skip
    context = settings.contracts.context()

    def name(topic: Topic) -> str:
        return physical_name(topic, settings)

    # Handlers read through TableState (one store lookup per read); their writes reach the
    # changelogs through ``changelog``, which the engine publishes before it acks.
    state = {table: TableState(tables[table], changelog) for table in TABLES}
    registry = RegistryDeps(
        state["registry"], state["household_reports"], pseudo, name(Topic.HOUSEHOLDS_BY_ID), context
    )
    reports = ReportDeps(
        state["registry"],
        state["household_reports"],
        state["report_copies"],
        pseudo,
        name(Topic.REPORTS_BY_ID),
        name(Topic.REPORTS_BY_HOUSEHOLD),
        context,
    )
    alerts = AlertDeps(
        reader,
        settings.displacement,
        settings.notify.alert_levels,
        notifier,
        name(Topic.ALERTS_BY_EVENT),
        context,
    )
    households_dlq = dlq_name(Topic.HOUSEHOLDS, settings)
    reports_dlq = dlq_name(Topic.FIELD_REPORTS, settings)
    alerts_dlq = dlq_name(Topic.DISASTER_ALERTS, settings)
    flows = {
        Topic.HOUSEHOLDS: Flow(
            "route_households",
            functools.partial(route_household, registry),
            households_dlq,
            personal_key=True,
            boundary=True,
        ),
        Topic.HOUSEHOLDS_BY_ID: hop(
            "apply_household_changes",
            functools.partial(apply_household_change, registry),
            households_dlq,
            personal_key=True,
        ),
        Topic.FIELD_REPORTS: Flow(
            "route_reports", functools.partial(route_report, reports), reports_dlq, boundary=True
        ),
        Topic.REPORTS_BY_ID: hop("decide_reports", functools.partial(decide_report, reports), reports_dlq),
        Topic.REPORTS_BY_HOUSEHOLD: hop(
            "enrich_reports",
            functools.partial(enrich_report, reports),
            reports_dlq,
            personal_key=True,
        ),
        Topic.DISASTER_ALERTS: Flow(
            "route_alerts",
            functools.partial(route_alert, alerts),
            alerts_dlq,
            batch_seconds=settings.sink.alert_batch_seconds,
            boundary=True,
        ),
        Topic.ALERTS_BY_EVENT: Flow(
            "estimate_alert_impact",
            functools.partial(estimate_alert_impact, alerts),
            alerts_dlq,
            batch_seconds=settings.sink.alert_batch_seconds,
        ),
    }
    # The input topics' flows keep no table: they run on a plain consumer group of their own
    # (streams/engine/consumer.py), the internal topics' flows as Faust agents.
    inputs = ConsumerLoop(
        {name(topic): flow for topic, flow in flows.items() if topic in INPUT_TOPICS},
        retry,
        batch_size=settings.sink.batch_size,
        batch_seconds=settings.sink.batch_seconds,
        ready=lambda: bool(app.tables.actives_ready) and not app.rebalancing,
    )
    inputs_engine = engine_of(inputs.group, None)

    @app.task
    async def route_inputs() -> None:
        group = inputs_group(settings.app_id)
        options = settings.kafka.group_consumer_options(group, settings.sink.batch_size)
        await inputs.run(inputs_engine, AIOKafkaConsumer(**options))

    for topic, flow in flows.items():
        if topic not in INPUT_TOPICS:
            _agent(app, engine, forwarder.topic(name(topic)), flow)
    _timers(app, settings, writer, notifier)
    web.register(app, settings, engines.queries if engines else None)
    return app, tables


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


def _agent(app: faust.App, engine: Engine, channel: Any, flow: Flow) -> None:
    async def agent(stream: Any) -> None:
        await engine.run(flow, stream)

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
