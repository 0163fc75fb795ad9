"""Handlers' view of a Faust table: JSON encoded once, and one store lookup per read.

The tables are declared raw (``key_type=bytes, value_type=bytes``) and ``TableState`` encodes
keys and values itself, to the bytes Faust's JSON codec writes (so changelogs and stores written
before read the same). Through Faust's codecs, a write serialized its key and value twice (for the
store and for the changelog), through several layers each; a read through the table looks up
twice on a hit (Faust asks ``key in store``, then ``store[key]``) and raises on a miss. Reads go
to the serialized store once, in the partition of the current event, as Faust's own do. Writes and
deletes go to the store (RocksDB's in batches, below), in the current event's partition, and their
changelog records to ``Changelog``, which the engine publishes in batches before it acks (see
streams/engine/faust/changelog.py).

With RocksDB, reads and writes go straight to the current event's partition database, and
writes are batched: a change waits in the table's unwritten changes (per partition; reads in the
same batch and in other agents see it there first) until the engine has run the batch's handlers,
and writes them (``Changelog.write``) to RocksDB, one ``WriteBatch`` per partition, before its
first await (so no rebalance revokes a partition meanwhile) and before their changelog records
are published (a flush writes first too). A ``put`` per change cost five times what its share of a
write batch does, and one write to the write-ahead log each. The write comes before the batch's
offsets are acked, so a committed offset never passes a change the store lacks; a worker that
dies before it loses the changes of a batch it never acked, which is handled again.

Faust's own ``_get``/``_set`` also note each key's partition in an LRU index
(``table_key_index_size``), kept under a lock, which only reads *outside* an event use (they
search every partition without it): about 4% of a worker's time for nothing here.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import orjson
from faust.stores.base import SerializedStore
from faust.stores.rocksdb import Store as RocksDBStore
from faust.streams import current_event
from rocksdict import WriteBatch

from streams.engine.faust.changelog import Changelog

__all__ = ["TableState", "encode"]

#: Absent from a partition's unwritten changes (a None there is a deleted key).
_ABSENT: Any = object()

# Faust's JSON codec (faust.utils.json.dumps) writes with these options.
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


def encode(obj: Any) -> bytes:
    """``obj`` as Faust's JSON codec writes it."""
    return orjson.dumps(obj, option=_OPTIONS)


class TableState(MutableMapping[str, Any]):
    def __init__(self, table: Any, changelog: Changelog) -> None:
        self._table = table
        self._changelog = changelog
        self._topic: str = table.changelog_topic.get_topic_name()
        #: RocksDB partition -> the changes not yet written to it (key -> value, None: deleted).
        self._unwritten: dict[int, dict[bytes, bytes | None]] = {}
        changelog.before_publishing(self.write)

    def get(self, key: str, default: Any = None) -> Any:
        store, encoded = self._table.data, encode(key)
        event = current_event()
        if isinstance(store, RocksDBStore) and event is not None:
            partition = event.message.partition
            unwritten = self._unwritten.get(partition)
            raw = _ABSENT if unwritten is None else unwritten.get(encoded, _ABSENT)
            if raw is _ABSENT:
                raw = store._db_for_partition(partition).get(encoded)
        elif isinstance(store, SerializedStore):  # one lookup in the serialized store
            raw = store._get(encoded)
        else:  # the memory store, through the table
            raw = self._table.get(encoded)
        return default if raw is None else orjson.loads(raw)

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None  # type: ignore[arg-type]

    def __setitem__(self, key: str, value: Any) -> None:
        self._change(encode(key), encode(value))

    def __delitem__(self, key: str) -> None:
        self._change(encode(key), None)

    def _change(self, key: bytes, value: bytes | None) -> None:
        event = current_event()
        if event is None:
            raise RuntimeError("a table changed outside of an event")
        store = self._table.data
        # The changelog partition is the event's: tables are co-partitioned with their sources.
        partition = event.message.partition
        if isinstance(store, RocksDBStore):  # written with the batch's others (``write``)
            unwritten = self._unwritten.get(partition)
            if unwritten is None:
                unwritten = self._unwritten[partition] = {}
            unwritten[key] = value
        elif isinstance(store, SerializedStore):  # raw bytes: the store's codec copies them as they are
            store._set(key, value) if value is not None else store._del(key)
        elif value is not None:
            store[key] = value
        else:
            del store[key]
        self._changelog.add(store, self._topic, partition, key, value)

    def write(self) -> None:
        """Write the unwritten changes to RocksDB, one write batch per partition. A partition whose
        write fails keeps its changes (and the exception propagates): they are written next time."""
        store = self._table.data
        while self._unwritten:
            partition, changes = next(iter(self._unwritten.items()))
            batch = WriteBatch(raw_mode=True)
            for key, value in changes.items():
                batch.put(key, value) if value is not None else batch.delete(key)
            store._db_for_partition(partition).write(batch)
            del self._unwritten[partition]

    def __iter__(self) -> Iterator[str]:
        return (orjson.loads(key) for key in self._table.data)

    def __len__(self) -> int:
        return len(self._table.data)
