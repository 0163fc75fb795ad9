"""Bulk restore of table partitions from their changelogs, before a worker joins its group.

Faust restores a table partition record by record through its stream machinery (about 10,000
records/s here). A worker that starts with an empty or old local store (a new machine, a lost
volume) would need minutes for a registry of millions of households before it is ready. This
loads every table partition whose local RocksDB store is behind its changelog directly: fetch the
changelog from the persisted offset to its end, write it in RocksDB write batches, and record the
last offset where Faust keeps it. Faust then finds its stores up to date and recovers only what
was written since.

The changelog stays the source of truth: this is the same write Faust's own recovery does
(``Store.apply_changelog_batch``), only batched. A partition later assigned to this worker is
brought up to date by Faust from the recorded offset.

Before either, ``check_local_state`` refuses local stores that remember changelog offsets the
broker does not have (its data was reset, or the data directory met another broker): Faust would
stop with a ConsistencyError several screens long, and the store would not match its changelog.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.errors import DampakError
from streams.settings import Settings

__all__ = ["STALE_STATE_EXIT", "RestoreStats", "StaleLocalState", "bulk_restore", "check_local_state"]

logger = logging.getLogger(__name__)

#: Where Faust's RocksDB store keeps the last changelog offset applied to a partition.
OFFSET_KEY = b"__faust\0offset__"


#: The worker's exit code when its local tables disagree with their changelogs (``dampak demo``
#: rebuilds its own tables on it).
STALE_STATE_EXIT = 3


class StaleLocalState(DampakError):
    """Local table stores that have applied changelog records the broker does not have. Its
    message is one line: what disagrees, why it happens, and the command that fixes it."""

    def __init__(self, directory: Path, stale: list[tuple[TopicPartition, int, int]]) -> None:
        tp, applied, end = stale[0]
        others = f"; {len(stale)} partitions in all" if len(stale) > 1 else ""
        super().__init__(
            f"the local tables in {directory} remember changelog offsets that the broker does not have "
            f"({tp.topic} partition {tp.partition}: applied up to offset {applied}, the changelog ends "
            f"at {end}{others}): the broker's data was reset, or this data directory belongs to another "
            f"broker. Run `rm -rf {directory}` and start the worker again: it rebuilds the tables from "
            "their changelogs"
        )
        self.directory = directory
        self.stale = stale


@dataclass
class RestoreStats:
    records: int = 0
    partitions: int = 0
    seconds: float = 0.0

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def bulk_restore(settings: Settings, tables: dict[str, Any]) -> RestoreStats:
    """Bring the local RocksDB store of every partition of ``tables`` (name -> faust Table) up to
    the end of its changelog. Returns what was loaded. Runs its own event loop (before Faust's)."""
    # Faust's stores are services bound to the loop they are created in: create them here, outside
    # the restore's own loop, so they bind to Faust's.
    stores = {
        table.changelog_topic.get_topic_name(): (table.data, table.partitions) for table in tables.values()
    }
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_restore(settings, stores))
    finally:
        loop.close()


def check_local_state(settings: Settings, tables: dict[str, Any]) -> None:
    """Raise StaleLocalState when a local RocksDB store of ``tables`` (name -> faust Table) has
    applied a changelog offset at or past the end of its changelog on the broker (a changelog
    missing from the broker ends at 0). Stores that do not exist yet are not opened."""
    stores = {
        table.changelog_topic.get_topic_name(): (table.data, table.partitions) for table in tables.values()
    }
    stale: list[tuple[TopicPartition, int, int]] = []
    directory: Path | None = None
    persisted: dict[TopicPartition, int] = {}
    for topic, (store, partitions) in stores.items():
        directory = Path(store.path)
        for p in range(partitions or settings.kafka.partitions):
            offset = _persisted_offset(store, p)
            if offset is not None:
                persisted[TopicPartition(topic, p)] = offset
    if not persisted or directory is None:
        return
    loop = asyncio.new_event_loop()
    try:
        ends = loop.run_until_complete(_end_offsets(settings, list(persisted)))
    finally:
        loop.close()
    for tp, offset in sorted(persisted.items()):
        if offset >= ends.get(tp, 0):
            stale.append((tp, offset, ends.get(tp, 0)))
    if stale:
        raise StaleLocalState(directory, stale)


def _persisted_offset(store: Any, partition: int) -> int | None:
    """The last changelog offset applied to the local store of ``partition`` (None: no store yet,
    or nothing applied)."""
    path = store.partition_path(partition)
    if not Path(path).exists():
        return None
    db = store.rocksdb_options.open(path)
    try:
        value = db.get(OFFSET_KEY)
    finally:
        db.close()
    return int(value) if value is not None else None


async def _end_offsets(settings: Settings, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The end offsets of ``tps`` that exist on the broker."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False,
                                **settings.kafka.aiokafka_options())  # fmt: skip
    await consumer.start()
    try:
        # ``topics()`` reads the cluster's metadata without keeping it: ``partitions_for_topic``
        # would still answer None. A changelog's partitions are its table's, as in ``_restore``.
        existing = await consumer.topics()
        present = [tp for tp in tps if tp.topic in existing]
        return dict(await consumer.end_offsets(present)) if present else {}
    finally:
        await consumer.stop()


async def _restore(settings: Settings, stores: dict[str, tuple[Any, int | None]]) -> RestoreStats:
    started = time.perf_counter()
    stats = RestoreStats()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=settings.tables.restore_partition_fetch_bytes,
        fetch_max_bytes=settings.tables.restore_fetch_bytes,
        fetch_max_wait_ms=20,  # the tail of a changelog: do not wait for records that will not come
        **settings.kafka.aiokafka_options(),
    )
    await consumer.start()
    try:
        existing = await consumer.topics()
        for topic, (store, partitions) in stores.items():
            if topic in existing:  # else a first start: nothing to restore
                tps = [TopicPartition(topic, p) for p in range(partitions or settings.kafka.partitions)]
                records, restored = await _restore_table(consumer, store, tps)
                stats.records += records
                stats.partitions += restored
    finally:
        await consumer.stop()
    stats.seconds = time.perf_counter() - started
    if stats.records:
        logger.info(
            "restored %d changelog records into %d table partitions in %.1fs (%.0f/s)",
            stats.records, stats.partitions, stats.seconds, stats.records_per_s,
        )  # fmt: skip
    return stats


async def _restore_table(
    consumer: AIOKafkaConsumer, store: Any, tps: list[TopicPartition]
) -> tuple[int, int]:
    """Apply the changelog records of ``tps`` past each partition's persisted offset to its
    RocksDB store, all partitions fetched at once. Returns (records, partitions) restored.

    Stops early (leaving the rest to Faust) when the broker returns nothing for a while.
    """
    import rocksdict

    begin, end = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
    dbs: dict[TopicPartition, Any] = {}
    starts: dict[TopicPartition, int] = {}
    try:
        for tp in tps:
            if end[tp] <= begin[tp]:
                continue
            db = store.rocksdb_options.open(store.partition_path(tp.partition))
            persisted = db.get(OFFSET_KEY)
            starts[tp] = max(begin[tp], int(persisted) + 1 if persisted is not None else 0)
            if starts[tp] < end[tp]:
                dbs[tp] = db
            else:
                db.close()
        if not dbs:
            return 0, 0
        consumer.assign(list(dbs))
        for tp in dbs:
            consumer.seek(tp, starts[tp])
        applied, pending, idle_since = 0, set(dbs), time.monotonic()
        while pending:
            fetched = await consumer.getmany(*pending, timeout_ms=1000, max_records=100_000)
            if not fetched:
                if time.monotonic() - idle_since > 30:  # a broker that stopped answering
                    logger.warning(
                        "bulk restore stopped, %d partitions behind (Faust recovers them)", len(pending)
                    )
                    break
                continue
            idle_since = time.monotonic()
            for tp, records in fetched.items():
                batch, last = rocksdict.WriteBatch(raw_mode=True), -1
                for rec in records:
                    if rec.offset >= end[tp]:
                        break
                    if rec.value is None:
                        batch.delete(rec.key)
                    else:
                        batch.put(rec.key, rec.value)
                    last = rec.offset
                    applied += 1
                if last >= 0:
                    batch.put(OFFSET_KEY, str(last).encode())
                    dbs[tp].write(batch)
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
        return applied, len(dbs)
    finally:
        for db in dbs.values():
            db.close()
