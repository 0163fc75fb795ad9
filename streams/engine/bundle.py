"""Bundles: the messages a batch forwards to one partition of an internal topic, in one record.

A forwarded message costs a produce and, downstream, a pass through Faust's per-event machinery;
most of a worker's time went there. So the engine sends what one batch forwards to one partition
of an internal topic as one record, and unpacks it on the other side into the messages it holds,
in order. Partitions are chosen from the key by its CRC-32 (stable across processes and cheap),
so every message of one key lands on one partition, and topics keyed alike stay co-partitioned.

Layout: for each message, when it entered dampak (8-byte big-endian milliseconds, 0 if unknown),
then its key and its value, each as a 4-byte big-endian length (0xFFFFFFFF for null) and the
bytes. The header ``dampak.bundle`` marks the record.
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Iterator, Sequence

__all__ = [
    "BUNDLE_HEADER",
    "INDEX_BITS",
    "MAX_BUNDLE_BYTES",
    "Item",
    "pack",
    "pack_counted",
    "partition_of",
    "unpack",
]

logger = logging.getLogger(__name__)

BUNDLE_HEADER = ("dampak.bundle", b"1")
#: A message's position is its record's offset << INDEX_BITS | its index in the record.
INDEX_BITS = 16
#: Messages per bundle and bytes per bundle (under the producer's 1 MB request limit).
MAX_ITEMS = (1 << INDEX_BITS) - 1
MAX_BUNDLE_BYTES = 900_000
_NULL = 0xFFFFFFFF
_LEN = struct.Struct(">I")
_NULL_LEN = _LEN.pack(_NULL)
_HEAD = struct.Struct(">QI")  # origin (ms), key length
_MS_MAX = (1 << 64) - 1


def partition_of(key: bytes | None, partitions: int) -> int:
    """The partition of ``key`` on dampak's internal topics."""
    return zlib.crc32(key or b"") % partitions


Item = tuple[bytes | None, bytes | None, float | None]  # key, value, origin (seconds)


def pack(items: Sequence[Item]) -> Iterator[bytes]:
    """The records holding ``items`` in order, each at most ``MAX_BUNDLE_BYTES`` (a single larger
    item gets a record of its own) and ``MAX_ITEMS`` items."""
    return (record for record, _ in pack_counted(items))


def pack_counted(items: Sequence[Item]) -> Iterator[tuple[bytes, int]]:
    """``pack``, each record with the number of items it holds."""
    parts: list[bytes] = []
    size = count = 0
    for key, value, origin in items:
        # The origin and the key's length in one struct.
        if key is None:
            encoded = _HEAD.pack(_origin_ms(origin), _NULL)
        else:
            encoded = _HEAD.pack(_origin_ms(origin), len(key)) + key
        encoded += _NULL_LEN if value is None else _LEN.pack(len(value)) + value
        if parts and (size + len(encoded) > MAX_BUNDLE_BYTES or count >= MAX_ITEMS):
            yield b"".join(parts), count
            parts, size, count = [], 0, 0
        parts.append(encoded)
        size += len(encoded)
        count += 1
    if parts:
        yield b"".join(parts), count


def _origin_ms(origin: float | None) -> int:
    # An origin the layout cannot hold (a negative Kafka timestamp, or one past 2^64 ms) is
    # unknown: struct.error here would fail the whole batch's delivery, again at every retry.
    try:
        ms = int((origin or 0) * 1000)
    except (OverflowError, ValueError):  # inf, nan
        return 0
    return ms if 0 <= ms <= _MS_MAX else 0


def unpack(record: bytes) -> list[Item]:
    """The (key, value, origin) items of a bundle, in order. Raises ValueError when malformed."""
    if type(record) is not bytes:  # slices of bytes are bytes (a memoryview's would not be)
        record = bytes(record)
    out: list[Item] = []
    end, at = len(record), 0
    head, length = _HEAD.unpack_from, _LEN.unpack_from
    while at < end:
        if at + 12 > end:
            raise ValueError("truncated bundle")
        ms, size = head(record, at)
        at += 12
        if size == _NULL:
            key = None
        elif at + size > end:
            raise ValueError("truncated bundle")
        else:
            key, at = record[at : at + size], at + size
        if at + 4 > end:
            raise ValueError("truncated bundle")
        (size,) = length(record, at)
        at += 4
        if size == _NULL:
            value = None
        elif at + size > end:
            raise ValueError("truncated bundle")
        else:
            value, at = record[at : at + size], at + size
        out.append((key, value, ms / 1000 if ms else None))
    return out
