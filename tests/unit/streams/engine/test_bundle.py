"""Bundles: the layout (origin, key, value with their lengths) round-trips every item, null keys
and values and unknown origins included, records are cut at the size limit, and a truncated or
malformed bundle raises ValueError."""

from __future__ import annotations

import struct

import pytest

from streams.engine.bundle import MAX_BUNDLE_BYTES, Item, pack, pack_counted, unpack


def test_items_round_trip_in_order_nulls_and_unknown_origins_included() -> None:
    items: list[Item] = [
        (b"k1", b'{"a":1}', 1_669_000_000.123),
        (None, b"v", None),
        (b"k3", None, 0.5),
        (None, None, None),
        (b"", b"", float("inf")),  # an origin the layout cannot hold is unknown
        (b"k6", b"x" * 1000, -5.0),
    ]
    [(record, count)] = pack_counted(items)
    assert count == len(items)
    assert unpack(record) == [
        (b"k1", b'{"a":1}', 1_669_000_000.123),
        (None, b"v", None),
        (b"k3", None, 0.5),
        (None, None, None),
        (b"", b"", None),
        (b"k6", b"x" * 1000, None),
    ]
    # The layout, byte for byte: origin (8-byte ms), then key and value with 4-byte lengths.
    assert record.startswith(
        struct.pack(">QI", 1_669_000_000_123, 2) + b"k1" + struct.pack(">I", 7) + b'{"a":1}'
    )
    assert unpack(memoryview(record)) == unpack(record)


def test_records_are_cut_at_the_size_limit_and_a_larger_item_has_its_own() -> None:
    big = b"y" * (MAX_BUNDLE_BYTES // 3)
    items: list[Item] = [(str(i).encode(), big, None) for i in range(7)] + [
        (b"huge", b"z" * MAX_BUNDLE_BYTES, None)
    ]
    records = list(pack_counted(items))
    assert [count for _, count in records] == [2, 2, 2, 1, 1]
    assert all(len(r) <= MAX_BUNDLE_BYTES for r, _ in records[:-1])
    assert [item for r in pack(items) for item in unpack(r)] == items


@pytest.mark.parametrize("cut", [1, 8, 11, 12, 13, 15, 16, 17])
def test_a_truncated_bundle_raises(cut: int) -> None:
    [record] = pack([(b"key", b"value", 1.0)])
    with pytest.raises(ValueError, match="truncated"):
        unpack(record[:cut])
    assert unpack(b"") == []
