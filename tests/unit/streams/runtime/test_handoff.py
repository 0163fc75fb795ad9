"""The hand-off of rows from compute workers to the writer: rows travel in bundles, one record per
partition and batch, and come out as one message per row, in order, each accepted by the writer's
handler."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sinks.tables import TABLES
from streams.engine import Forward, Output, bundle_forwards, messages_of
from streams.engine.bundle import BUNDLE_HEADER, partition_of
from streams.runtime.handoff import RowProducer, row_record, write_row
from tests.unit.fakes import FAST, FakeForwarder, FakeRecord, consumed

TABLE = next(t for t in TABLES if t.name == "consumer_lag")


def _row(i: int) -> dict[str, Any]:
    from datetime import UTC, datetime

    row: dict[str, Any] = {}
    for name, type_ in TABLE.columns:
        if type_.startswith("DateTime"):
            row[name] = datetime(2026, 12, 2, tzinfo=UTC)
        elif "Int" in type_ or "Float" in type_:
            row[name] = i
        else:
            row[name] = f"{name}-{i % 7}"
    return row


def test_rows_travel_in_bundles_and_come_out_one_message_each_in_order() -> None:
    forwarder = FakeForwarder()
    rows = [_row(i) for i in range(300)]
    asyncio.run(RowProducer(forwarder, "sink-rows", FAST, partitions=6).insert(TABLE, rows))
    records = forwarder.delivered
    assert 1 <= len(records) <= 6  # one record per partition, not one per row
    assert all(r.headers == (BUNDLE_HEADER,) and r.key is None for r in records)
    out, seen = Output(), []
    for r, record in zip(records, consumed(records), strict=True):
        for msg in messages_of(record, 1.0):
            key, _ = row_record(TABLE, rows[0])  # every row's key names its table
            assert msg.key is not None and msg.key.startswith(key.split(b"|")[0])
            assert partition_of(msg.key, 6) == r.partition  # a key always on one partition
            write_row(msg, out)
            seen.append(msg)
    written = out.rows[TABLE]
    assert len(written) == len(rows)
    # Per partition, in the order they were handed over.
    for p in {m.partition for m in seen}:
        mine = [i for i, row in enumerate(rows) if partition_of(row_record(TABLE, row)[0], 6) == p]
        got = [m for m in seen if m.partition == p]
        assert [m.index for m in got] == list(range(len(got)))
        assert len(got) == len(mine)


def test_an_older_per_row_record_is_still_read() -> None:
    key, value = row_record(TABLE, _row(1))
    [record] = consumed([Forward("sink-rows", key, value)], timestamp=None)
    [msg] = messages_of(record, None)
    out = Output()
    write_row(msg, out)
    assert len(out.rows[TABLE]) == 1


def test_unbundled_rows_are_one_json_record_each_for_a_kafka_engine() -> None:
    forwarder = FakeForwarder()
    rows = [_row(i) for i in range(5)]
    asyncio.run(RowProducer(forwarder, "sink-rows", FAST, partitions=6, bundled=False).insert(TABLE, rows))
    assert [(f.key, f.value) for f in forwarder.delivered] == [row_record(TABLE, r) for r in rows]


def test_a_record_that_is_not_a_declared_row_is_refused() -> None:
    import orjson
    import pytest

    from streams.errors import InvalidMessage
    from streams.runtime.handoff import decode_row

    table, row = decode_row(row_record(TABLE, _row(1))[1])
    assert table is TABLE and row.keys() == set(TABLE.column_names)
    assert decode_row(row_record(TABLE, _row(1), compact=True)[1]) == (table, row) == (TABLE, _row(1))
    values = list(_row(1).values())
    extra = {**_row(1), "nik": "3203010101800001"}
    missing = {k: v for k, v in _row(1).items() if k != TABLE.column_names[0]}
    for value in (
        b"not json",
        orjson.dumps({"table": "no_such_table", "row": _row(1)}),
        orjson.dumps({"table": TABLE.name, "row": [1, 2, 3]}),
        orjson.dumps({"table": TABLE.name, "row": extra}),
        orjson.dumps({"table": TABLE.name, "row": missing}),
        orjson.dumps([TABLE.name]),
        orjson.dumps([TABLE.name, values[1:]]),  # a column short
        orjson.dumps([TABLE.name, [*values, "3203010101800001"]]),  # one too many
        orjson.dumps([TABLE.name, {"row": values}]),
        orjson.dumps(["no_such_table", values]),
        orjson.dumps([TABLE.name, values, "more"]),
    ):
        with pytest.raises(InvalidMessage):
            decode_row(value)


def _bundles(items: list[tuple[bytes, bytes]]) -> list[FakeRecord]:
    return consumed(bundle_forwards([Forward("sink-rows", k, v) for k, v in items], {"sink-rows": 6}))


def test_the_writer_reads_bundles_into_the_columns_the_rows_decode_to() -> None:
    from streams.runtime.handoff import decode_row, row_columns

    other = next(t for t in TABLES if t.name == "notification_state")
    when = datetime(2026, 12, 3, 1, 2, 3, 456789, tzinfo=UTC)
    other_row = {
        name: when if type_.startswith("DateTime") else None if type_.startswith("Nullable") else "n-1"
        for name, type_ in other.columns
    }
    items = [row_record(TABLE, _row(i), compact=True) for i in range(50)]
    records = _bundles([*items, row_record(other, other_row, compact=True)])
    decoded = row_columns(records)
    assert decoded is not None
    columns, origins = decoded
    assert len(origins) == 51 and set(origins) == {1.0}
    # Row by row, as the engine's path decodes them (the same values, so both insert the same).
    one_by_one: dict[Any, list[dict[str, Any]]] = {}
    for r in records:
        for msg in messages_of(r, r.timestamp / 1000):
            table, row = decode_row(msg.value)
            one_by_one.setdefault(table, []).append(row)
    assert set(columns) == set(one_by_one) == {TABLE, other}
    for table, got in columns.items():
        assert [dict(zip(table.column_names, values, strict=True)) for values in zip(*got, strict=True)] == (
            one_by_one[table]
        )
    assert columns[other][other.column_names.index("sent_at")] == [other_row["sent_at"]]


def test_the_writer_leaves_a_batch_it_cannot_read_whole_to_the_engine() -> None:
    import orjson

    from streams.runtime.handoff import row_columns

    good = row_record(TABLE, _row(1), compact=True)
    values = list(orjson.loads(good[1])[1])
    when = TABLE.column_names.index(next(n for n, t in TABLE.columns if t.startswith("DateTime")))
    bad_time = [*values[:when], "yesterday", *values[when + 1 :]]
    assert row_columns(_bundles([good])) is not None
    for value in (
        b"not json",
        orjson.dumps(["no_such_table", values]),
        orjson.dumps([TABLE.name, values[1:]]),  # a column short
        orjson.dumps([TABLE.name, {"row": values}]),
        orjson.dumps({"table": TABLE.name, "row": _row(1)}),  # the one-record form, in a bundle
        orjson.dumps([TABLE.name, bad_time]),
    ):
        assert row_columns(_bundles([good, (good[0], value)])) is None, value
    truncated = _bundles([good])
    truncated[0].value = truncated[0].value[:-3]
    assert row_columns(truncated) is None
    alone = consumed([Forward("sink-rows", *good)])
    assert row_columns(alone) is None  # a record on its own: the engine's


def test_the_writers_insert_declines_a_batch_clickhouse_refuses_and_counts_one_it_wrote() -> None:
    from sinks.errors import RowsRejected
    from streams.ops.metrics import EVENTS
    from streams.runtime.writer import write_at_once

    class Columns:
        def __init__(self, refuse: bool) -> None:
            self.refuse, self.inserted = refuse, []

        async def insert_columns(self, table: Any, columns: Any) -> None:
            if self.refuse:
                raise RowsRejected(table.name, ValueError("out of range"))
            self.inserted.append((table, len(columns[0])))

    records = _bundles([row_record(TABLE, _row(i), compact=True) for i in range(20)])
    before = EVENTS.labels("sink-rows", "ok")._value.get()
    refusing = Columns(refuse=True)
    assert asyncio.run(write_at_once(refusing)("sink-rows", records)) is False  # type: ignore[arg-type]
    assert EVENTS.labels("sink-rows", "ok")._value.get() == before
    taking = Columns(refuse=False)
    assert asyncio.run(write_at_once(taking)("sink-rows", records)) is True  # type: ignore[arg-type]
    assert taking.inserted == [(TABLE, 20)]
    assert EVENTS.labels("sink-rows", "ok")._value.get() == before + 20
