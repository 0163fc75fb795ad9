"""Rotation of the pseudonym key: every pseudonym in ClickHouse re-derived with the new key.

Pseudonyms are one-way, so the new ones are computed from the raw ids where dampak keeps them:
the table changelogs (the registry and each household's current reports) and the dead-letter
topics. ``rotate_key`` (``dampak rotate-key``) runs with every worker stopped:

1. it reads those topics to their end;
2. it writes every registry row, every household-level report row and every dead letter again,
   with the new key and the same versions (ReplacingMergeTree keeps the row inserted last among
   equal versions, so the new rows replace the old ones);
3. it deletes the rows that still hold a pseudonym of another key (and dead letters whose raw
   message has left its dead-letter topic, whose key it can no longer pseudonymise anew);
4. it records the new key id and the key's fingerprint, which workers check at start (a worker
   with another key, or another key under the same id, refuses to start, so two keys are never
   live at once).

Pseudonyms are told apart by their key id, so a new key needs a new id: a changed key that kept
its id is refused (its fingerprint differs from the recorded one), before anything is written.

Every figure is the same afterwards; no pseudonym of the old key is left in any analyst view. An
interrupted rotation is simply run again.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from clickhouse_connect.driver.client import Client

from sinks.config import Backoff
from sinks.connection import Connection
from sinks.keys import record_key_id, recorded_key
from sinks.tables import DEAD_LETTER_STATE, REGISTRY_STATE, REPORT_STATE, Row, Table
from sinks.writer import ClickHouseWriter
from streams.domain.reports import ReportDoc, enrich
from streams.domain.revision import report_version
from streams.engine.batch import Message
from streams.errors import DampakError
from streams.privacy import Pseudonymizer
from streams.rows import dead_letter_row, registry_row, report_row
from streams.runtime.startup import key_fingerprint
from streams.settings import Settings
from streams.topics import (
    DLQ_INDEX,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_REASON,
    DLQ_TOPIC,
    DLQ_TRUNCATED_FROM,
    INPUT_TOPICS,
    PERSONAL_KEY_TOPICS,
    REPORT_KEY_PREFIX,
    LocalTable,
    changelog_name,
    dlq_name,
    physical_name,
)

__all__ = ["RotationStats", "cmd_rotate_key", "rotate_key"]

logger = logging.getLogger(__name__)

_BATCH = 50_000


@dataclass
class RotationStats:
    households: int = 0
    reports: int = 0
    dead_letters: int = 0
    deleted: dict[str, int] | None = None
    previous_key_id: str | None = None
    key_id: str = ""


def rotate_key(settings: Settings, client: Client) -> RotationStats:
    """Re-derive every pseudonym with ``settings.privacy`` (the new key). Workers must be stopped.

    Raises DampakError when Kafka does not answer or a changelog is missing.
    """
    conn = Connection(client, settings.clickhouse.database)
    try:
        return asyncio.run(_rotate(settings, conn))
    finally:
        conn.close()


async def _rotate(settings: Settings, conn: Connection) -> RotationStats:
    pseudo = Pseudonymizer(settings.privacy)
    fingerprint = key_fingerprint(settings.privacy)
    recorded = await conn.run(recorded_key, conn.client, conn.database)
    if recorded and recorded[0] == pseudo.key_id and recorded[1] and recorded[1] != fingerprint:
        # Old and new pseudonyms would share a prefix, so the old ones could not be told apart
        # and deleted: every household would count twice.
        raise DampakError(
            f"DAMPAK_PRIVACY__HMAC_KEY changed but its id is still {pseudo.key_id!r}: a rotation "
            "tells old pseudonyms from new ones by their key id, so give the new key a new id "
            "(DAMPAK_PRIVACY__KEY_ID) and run `dampak rotate-key` again; nothing was changed"
        )
    writer = ClickHouseWriter(conn, Backoff(initial_s=0.5, max_s=5))
    stats = RotationStats(previous_key_id=recorded[0] if recorded else None)
    stats.key_id = pseudo.key_id
    now = datetime.now(UTC)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=settings.tables.restore_partition_fetch_bytes,
        fetch_max_bytes=settings.tables.restore_fetch_bytes,
        fetch_max_wait_ms=20,
        **settings.kafka.aiokafka_options(),
    )
    registry_changelog = changelog_name(LocalTable.REGISTRY, settings.app_id)
    reports_changelog = changelog_name(LocalTable.HOUSEHOLD_REPORTS, settings.app_id)
    await consumer.start()
    try:
        for partition in range(settings.kafka.partitions):
            registry = await _table(consumer, registry_changelog, partition)
            rows = [registry_row(hid, state, pseudo) for hid, state in registry.items()]
            stats.households += await _write(writer, REGISTRY_STATE, rows)
            docs = await _table(consumer, reports_changelog, partition)
            rows = list(_report_rows(docs, registry, pseudo, now))
            stats.reports += await _write(writer, REPORT_STATE, rows)
        stats.dead_letters = await _dead_letters(consumer, settings, pseudo, writer, conn)
    finally:
        await consumer.stop()
    stats.deleted = await conn.run(_delete_other_keys, conn.client, conn.database, pseudo.key_id)
    await conn.run(record_key_id, conn.client, conn.database, pseudo.key_id, fingerprint)
    logger.info(
        "rotated to key %s: %d households, %d reports, %d dead letters; deleted %s",
        pseudo.key_id, stats.households, stats.reports, stats.dead_letters, stats.deleted,
    )  # fmt: skip
    return stats


async def _table(consumer: AIOKafkaConsumer, topic: str, partition: int) -> dict[str, Any]:
    """The latest value of every key of one changelog partition (JSON keys and values)."""
    out: dict[str, Any] = {}
    for key, value, _ in await _read(consumer, TopicPartition(topic, partition)):
        name = orjson.loads(key)
        if value is None:
            out.pop(name, None)
        else:
            out[name] = orjson.loads(value)
    return out


async def _read(consumer: AIOKafkaConsumer, tp: TopicPartition) -> list[tuple[bytes, bytes | None, Any]]:
    """Every record of ``tp`` from its start to its current end: (key, value, record)."""
    if tp.topic not in await consumer.topics():
        return []
    begin = (await consumer.beginning_offsets([tp]))[tp]
    end = (await consumer.end_offsets([tp]))[tp]
    if end <= begin:
        return []
    consumer.assign([tp])
    consumer.seek(tp, begin)
    records: list[tuple[bytes, bytes | None, Any]] = []
    while await consumer.position(tp) < end:
        fetched = await consumer.getmany(tp, timeout_ms=2000, max_records=100_000)
        for rec in fetched.get(tp, []):
            if rec.offset < end:
                records.append((rec.key, rec.value, rec))
    return records


def _report_rows(
    docs: dict[str, Any], registry: dict[str, Any], pseudo: Pseudonymizer, now: datetime
) -> Iterator[Row]:
    for key, doc in docs.items():
        if not key.startswith(REPORT_KEY_PREFIX) or not isinstance(doc, dict):
            continue  # the per-household index
        report: ReportDoc = doc  # type: ignore[assignment]
        enrichment = enrich(registry.get(report["household_id"] or ""))
        version = report_version(report["revision"], report.get("copy", 0), enrichment.seq)
        yield report_row(report, enrichment, version, pseudo, now, report.get("arrival", 0))


async def _write(writer: ClickHouseWriter, table: Table, rows: list[Row]) -> int:
    for start in range(0, len(rows), _BATCH):
        await writer.insert(table, rows[start : start + _BATCH])
    return len(rows)


async def _dead_letters(
    consumer: AIOKafkaConsumer,
    settings: Settings,
    pseudo: Pseudonymizer,
    writer: ClickHouseWriter,
    conn: Connection,
) -> int:
    """Dead letters again from the dead-letter topics (which keep the raw messages), keeping the
    times recorded when they were first dead-lettered."""
    seen = await conn.run(_dead_letter_times, conn.client, conn.database)
    personal = {physical_name(t, settings) for t in PERSONAL_KEY_TOPICS}
    max_bytes = settings.sink.dead_letter_payload_max_bytes
    rows: list[Row] = []
    for topic in INPUT_TOPICS:
        for key, value, rec in await _read(consumer, TopicPartition(dlq_name(topic, settings), 0)):
            headers = {name: raw.decode("utf-8", "replace") for name, raw in rec.headers or ()}
            if DLQ_TOPIC not in headers:
                continue
            source = headers[DLQ_TOPIC]
            partition, offset = int(headers.get(DLQ_PARTITION, 0)), int(headers.get(DLQ_OFFSET, 0))
            index = int(headers[DLQ_INDEX]) if DLQ_INDEX in headers else None
            msg = Message(source, partition, offset, key, value, None, None, index or 0, index is not None)
            stamp, received = seen.get((source, partition, msg.position if index is not None else offset),
                                       (rec.timestamp / 1000, None))  # fmt: skip
            msg = dataclasses.replace(msg, timestamp=stamp)
            row = dead_letter_row(msg, headers.get(DLQ_REASON, ""), pseudo, source in personal, max_bytes,
                                  received or datetime.now(UTC))  # fmt: skip
            if DLQ_TRUNCATED_FROM in headers:
                row["payload_bytes"] = int(headers[DLQ_TRUNCATED_FROM])
            rows.append(row)
    return await _write(writer, DEAD_LETTER_STATE, rows)


def _dead_letter_times(client: Client, database: str) -> dict[tuple[str, int, int], tuple[float, datetime]]:
    table = DEAD_LETTER_STATE.qualified(database)
    columns = "topic, partition, offset, message_timestamp, received_at"
    result = client.query(f"SELECT {columns} FROM {table} FINAL")
    return {(t, p, o): (stamp.timestamp(), received) for t, p, o, stamp, received in result.result_rows}


def _delete_other_keys(client: Client, database: str, key_id: str) -> dict[str, int]:
    """Delete every row that holds a pseudonym of another key; returns how many per table.

    Dead letters were all written again from their topics before this; one whose key still is
    not of this key (an older key's pseudonym, or a raw key stored before keys were
    pseudonymised) has left its dead-letter topic, and its payload's pseudonyms are old too."""
    prefix = f"{key_id}:"
    deleted = {}
    for table, column in (
        (REGISTRY_STATE, "household_ref"),
        (REPORT_STATE, "household_ref"),
        (DEAD_LETTER_STATE, "key_ref"),
    ):
        where = f"{column} != '' AND NOT startsWith({column}, {{prefix:String}})"
        name = table.qualified(database)
        deleted[table.name] = int(
            client.query(
                f"SELECT count() FROM {name} WHERE {where}", parameters={"prefix": prefix}
            ).result_rows[0][0]
        )
        if deleted[table.name]:
            client.command(f"DELETE FROM {name} WHERE {where}", parameters={"prefix": prefix})
    return deleted


def cmd_rotate_key(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.connection import clickhouse_lock, connect
    from sinks.migrations import init_db
    from streams.ops.admin import check_kafka, group_members

    check_kafka(settings)
    if group_members(settings, settings.app_id):
        raise DampakError(f"workers of {settings.app_id!r} are running: stop every worker first")
    target = settings.clickhouse_target
    with clickhouse_lock(target, blocking=False) as free:
        if target.embedded and not free:
            raise DampakError("a worker holds the embedded engine: stop it first")
        client = connect(target)
        try:
            init_db(client, target.database, server=not target.embedded)
            stats = rotate_key(settings, client)
        finally:
            client.close()
    print(
        f"pseudonyms now use key {stats.key_id!r} (before: {stats.previous_key_id!r}): rewrote "
        f"{stats.households} households, {stats.reports} reports and {stats.dead_letters} dead letters; "
        f"deleted rows of other keys: {stats.deleted}"
    )
    return 0
