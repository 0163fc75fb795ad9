"""Kafka admin and publishing with kafka-python: broker checks, topic creation, the shared
producer, and ``dampak produce``."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import orjson
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streams.errors import DampakError, InvalidMessage
from streams.ops.progress import Progress
from streams.settings import Settings
from streams.topics import INPUT_TOPICS, all_specs, inputs_group, is_changelog, physical_name

__all__ = [
    "broker_answers",
    "check_kafka",
    "check_topic_exists",
    "ensure_topics",
    "group_members",
    "iter_json_lines",
    "produce",
    "producer",
    "read_topic",
]

logger = logging.getLogger(__name__)


def ensure_topics(settings: Settings) -> list[str]:
    """Create every registered topic that does not exist yet; returns the names created."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap_servers, **settings.kafka.client_options()
    )
    try:
        existing = set(admin.list_topics())
        missing = [s for s in all_specs(settings) if s.name not in existing]
        created = []
        for spec in missing:
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            spec.name,
                            num_partitions=spec.partitions,
                            replication_factor=spec.replication_factor,
                            topic_configs=dict(spec.configs),
                        )
                    ]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # another process created it meanwhile
        if created:
            logger.info("created topics: %s", ", ".join(created))
            _wait_for_leaders(admin, {s.name: s.partitions for s in missing if s.name in created})
        _check_partition_counts(admin, settings, existing)
        _apply_declared_configs(admin, settings, existing)
        return created
    finally:
        admin.close()


def _apply_declared_configs(admin: KafkaAdminClient, settings: Settings, existing: set[str]) -> None:
    """Set the declared configs on topics created before they were declared (``sink-rows`` was
    compacted before its rows travelled in keyless bundles, which a compacted topic refuses)."""
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=dict(spec.configs))
        for spec in all_specs(settings)
        if spec.configs and spec.name in existing
    ]
    if not resources:
        return
    try:
        admin.alter_configs(resources)
    except KafkaError as exc:  # e.g. a principal without AlterConfigs: an operator's job then
        names = ", ".join(r.name for r in resources)
        logger.warning("could not set the declared configs of %s (%s); set them by hand", names, exc)


def _check_partition_counts(admin: KafkaAdminClient, settings: Settings, existing: set[str]) -> None:
    """Raises DampakError when a topic that existed already has another partition count than
    declared, or a table's changelog differs from the topics it is co-partitioned with: keys would
    meet their state on another partition. (Checked here, against the broker, once: Faust's own
    check reads a metadata snapshot that can stay partial after a broker restart.)"""
    declared = {s.name: s.partitions for s in all_specs(settings) if s.name in existing}
    for topic in (t for t in existing if is_changelog(t, settings.app_id)):
        declared[topic] = settings.kafka.partitions
    if not declared:
        return
    wrong = [
        f"{t['name']} has {len(t.get('partitions', []))}, not {declared[t['name']]}"
        for t in admin.describe_topics(sorted(declared))
        if not t.get("error_code") and len(t.get("partitions", [])) != declared[t["name"]]
    ]
    if wrong:
        raise DampakError(
            "topics with other partition counts than declared (DAMPAK_KAFKA__PARTITIONS): " + "; ".join(wrong)
        )


def _wait_for_leaders(admin: KafkaAdminClient, topics: dict[str, int], timeout_s: float = 30.0) -> None:
    """Wait until every partition of the new topics has a leader: a consumer that subscribes
    before that ignores the topic until its next metadata refresh."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = admin.describe_topics(list(topics))
        ready = {
            t["name"]
            for t in described
            if not t.get("error_code")
            and sum(1 for p in t.get("partitions", []) if p.get("leader_id", -1) >= 0)
            == topics.get(t["name"], -1)
        }
        if ready >= set(topics):
            return
        time.sleep(0.2)
    logger.warning("topics without leaders after %.0fs: %s", timeout_s, ", ".join(sorted(topics)))


def group_members(settings: Settings, group: str) -> int:
    """How many consumers are members of ``group`` now (0 when it has none or does not exist)."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap_servers, **settings.kafka.client_options()
    )
    try:
        described = admin.describe_groups([group])
    finally:
        admin.close()
    info = described.get(group, {}) if isinstance(described, dict) else {}
    members = info.get("members", []) if isinstance(info, dict) else []
    return len(members)


def carry_over_input_offsets(settings: Settings) -> dict[Any, int]:
    """Start the input topics' group where the app's own group left them, once.

    Before the input topics were routed in their own group (``<app id>-inputs``), the Faust app's
    group (``<app id>``) committed them. A worker upgraded from then would start the new group at
    the beginning of the topics and route everything they retain a second time (harmless, since
    copies seen again are duplicates, but slow). When the new group has committed nothing on
    them, the old group's offsets are copied to it. Returns what was copied."""
    app_id, inputs = settings.app_id, inputs_group(settings.app_id)
    topics = {physical_name(t, settings) for t in INPUT_TOPICS}
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap_servers, **settings.kafka.client_options()
    )
    try:
        found = admin.list_group_offsets([app_id, inputs])
        if any(tp.topic in topics for tp in found.get(inputs, {})):
            return {}
        old = {
            tp: meta for tp, meta in found.get(app_id, {}).items() if tp.topic in topics and meta.offset >= 0
        }
        if old:
            refused = [tp for tp, err in admin.alter_group_offsets(inputs, old).items() if err.errno]
            if refused:  # another worker joined the group first and carried them over
                return {}
            logger.info("the input topics' group %s starts where group %s left them", inputs, app_id)
        return {tp: meta.offset for tp, meta in old.items()}
    except KafkaError as exc:  # another worker already started the group: it carried them over
        logger.warning("input offsets not carried over to %s (%s)", inputs, type(exc).__name__)
        return {}
    finally:
        admin.close()


def producer(settings: Settings) -> KafkaProducer:
    """A kafka-python producer with the one shared producer configuration (``KafkaSettings``)."""
    return KafkaProducer(**settings.kafka.producer_options())


def broker_answers(bootstrap_servers: str, timeout_s: float = 2.0, **client_options: object) -> bool:
    """True when a broker at ``bootstrap_servers`` answers a metadata request."""
    # kafka-python retries an unreachable bootstrap for a minute; a refused TCP connect is a fast no.
    if not any(_port_open(server, timeout_s) for server in bootstrap_servers.split(",")):
        return False
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_s * 1000), **client_options
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.describe_cluster()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def check_kafka(settings: Settings, timeout_s: float = 5.0) -> None:
    """Fail fast, with the reason, when the configured brokers cannot be used: none answers, the
    TLS handshake fails, or the SASL credentials are refused. Raises DampakError."""
    import asyncio
    import ssl

    from aiokafka.conn import create_conn
    from aiokafka.errors import KafkaError as AioKafkaError

    k = settings.kafka
    servers = [s.strip() for s in k.bootstrap_servers.split(",") if s.strip()]
    reachable = [s for s in servers if _port_open(s, min(timeout_s, 2.0))]
    if not reachable:
        hint = " (run `dampak up`)" if settings.uses_local_kafka else ""
        raise DampakError(f"no Kafka broker answers at {k.bootstrap_servers}{hint}")
    host, _, port = reachable[0].rpartition(":")
    options = k.aiokafka_options()
    options.pop("security_protocol", None)

    async def probe() -> None:
        conn = await create_conn(
            host, int(port), security_protocol=k.security_protocol, request_timeout_ms=int(timeout_s * 1000),
            **options,
        )  # fmt: skip
        conn.close()

    try:
        asyncio.run(probe())
    except ssl.SSLError as exc:
        raise DampakError(
            f"TLS with Kafka at {reachable[0]} failed ({exc.reason or exc}): check DAMPAK_KAFKA__SSL_CAFILE"
        ) from exc
    except AioKafkaError as exc:
        if "Authentication" in type(exc).__name__ or "Authentication" in str(exc):
            raise DampakError(
                f"Kafka at {reachable[0]} refused the credentials of user {k.sasl_username!r} "
                f"({k.sasl_mechanism}): check DAMPAK_KAFKA__SASL_USERNAME and DAMPAK_KAFKA__SASL_PASSWORD"
            ) from exc
        raise DampakError(f"Kafka at {reachable[0]}: {type(exc).__name__}") from exc
    except OSError as exc:
        raise DampakError(f"Kafka at {reachable[0]} did not answer ({exc})") from exc


def _port_open(server: str, timeout_s: float) -> bool:
    host, _, port = server.strip().rpartition(":")
    try:
        with socket.create_connection((host or "localhost", int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def iter_json_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Non-empty lines of a JSON-lines stream, with their line numbers (1-based), read lazily."""
    for number, line in enumerate(stream, start=1):
        line = line.strip()
        if line:
            yield number, line


def _key_of(line: bytes, key_field: str | None, number: int) -> bytes | None:
    if key_field is None:
        return None
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise InvalidMessage(f"line {number}: not JSON ({exc}); use --raw to publish it as is") from exc
    value = doc.get(key_field) if isinstance(doc, dict) else None
    if value is None:
        raise InvalidMessage(f"line {number}: no {key_field!r} field to key the message by")
    return str(value).encode()


def read_topic(settings: Settings, topic: str, max_records: int = 10_000) -> Iterator[list[Any]]:
    """Every record of ``topic`` up to its end when called, in batches, read with no consumer group
    (nothing is committed). Raises DampakError when the topic does not exist."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None, enable_auto_commit=False,
        **settings.kafka.client_options(),
    )  # fmt: skip
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise DampakError(f"topic {topic!r} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            yield from consumer.poll(timeout_ms=1000, max_records=max_records).values()
    finally:
        consumer.close()


def check_topic_exists(settings: Settings, topic: str) -> None:
    """Raises DampakError when ``topic`` is not on the broker (kafka-python would wait a minute for
    its metadata, then fail with a timeout)."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap_servers, **settings.kafka.client_options()
    )
    try:
        exists = topic in admin.list_topics()
    finally:
        admin.close()
    if not exists:
        hint = "`dampak up`" if settings.uses_local_kafka else "the worker"
        raise DampakError(f"topic {topic!r} does not exist on the broker yet ({hint} creates it)")


def produce(
    settings: Settings,
    topic: str,
    lines: Iterable[tuple[int, bytes]],
    key_field: str | None,
    tombstone_keys: Iterable[str] = (),
    raw: bool = False,
    progress: Progress | None = None,
    position: Callable[[], int | None] = lambda: None,
) -> int:
    """Publish JSON lines (each keyed by its ``key_field``) and tombstones; returns messages sent.
    ``lines`` is consumed as it is read: memory stays flat whatever the file's size.

    With ``raw`` a line that is not JSON is sent unkeyed as it is (to exercise dead-lettering).
    Raises InvalidMessage for a line without its key; what came before it has been sent (sending
    it again is harmless: the pipeline ignores re-sent copies).
    """
    prod = producer(settings)
    sent = 0
    try:
        for number, line in lines:
            try:
                key = _key_of(line, key_field, number)
            except InvalidMessage as exc:
                if not raw:
                    prod.flush()
                    raise InvalidMessage(f"{exc} ({sent:,} messages before it were published)") from None
                key = None
            prod.send(topic, key=key, value=line)
            sent += 1
            if progress is not None:
                progress.update(sent, position())
        for key_text in tombstone_keys:
            prod.send(topic, key=key_text.encode(), value=None)
            sent += 1
        prod.flush()
    finally:
        prod.close()
    if progress is not None:
        progress.finish(sent, position())
    return sent
