"""The writer's inserts on the real embedded engine: a batch of bundles read straight into columns
(``streams.runtime.writer.write_at_once``) stores exactly what the engine's row-by-row path stores,
for every declared table and awkward values; and a batch ClickHouse refuses is left to that path,
which finds the refused row and dead-letters it."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sinks.config import Backoff, ClickHouseTarget
from sinks.connection import Connection, connect
from sinks.migrations import migrate
from sinks.tables import REGISTRY_STATE, TABLES, Row, Table
from sinks.writer import ClickHouseWriter
from streams.engine import Forward, bundle_forwards, messages_of
from streams.runtime.handoff import decode_row, row_record
from streams.runtime.writer import write_at_once

pytestmark = pytest.mark.clickhouse

FAST = Backoff(initial_s=0.01, max_s=0.02)
STRINGS = ["", 'q"uo\\te', "line\nbreak\ttab", "Désa Bâli ✓ 😀", "\x01control", "3203010101800001"]


def _value(type_: str, rng: random.Random, i: int) -> Any:
    if type_.startswith("Nullable(") and i % 3 == 0:
        return None
    type_ = type_.removeprefix("Nullable(")
    if type_.startswith("DateTime"):
        return datetime(2026, 12, 2, tzinfo=UTC) + timedelta(microseconds=rng.randrange(10**12))
    if type_.startswith("Float"):
        return rng.uniform(-1e6, 1e6) if type_.startswith("Float64") else rng.random()
    bits = {"UInt8": 8, "UInt16": 16, "UInt32": 32, "UInt64": 64}
    for name, n in bits.items():
        if type_.startswith(name):
            return rng.choice([0, (1 << n) - 1, rng.randrange(1 << n)])
    if type_.startswith("Int"):
        return rng.randrange(-(1 << 62), 1 << 62)
    if type_ == "Bool":
        return bool(i % 2)
    if type_.startswith("Array"):
        return rng.sample(STRINGS, i % 4)
    return rng.choice(STRINGS) + str(i)


def _rows(table: Table, n: int, rng: random.Random) -> list[Row]:
    return [{name: _value(type_, rng, i) for name, type_ in table.columns} for i in range(n)]


def _records(rows: list[tuple[Table, Row]]) -> list[Any]:
    forwards = [Forward("sink-rows", *row_record(table, row, compact=True)) for table, row in rows]
    return [
        SimpleNamespace(
            topic="sink-rows",
            partition=f.partition,
            offset=offset,
            key=None,
            value=f.value,
            timestamp=1_000,
            headers=list(f.headers),
        )
        for offset, f in enumerate(bundle_forwards(forwards, {"sink-rows": 6}))
    ]


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    target = ClickHouseTarget(f"chdb://{tmp_path / 'ch'}", "at_once", tmp_path)
    client = connect(target)
    client.command("CREATE DATABASE IF NOT EXISTS one_by_one")
    for database in ("at_once", "one_by_one"):
        migrate(client, database)
    yield client
    client.close()


def test_both_ways_of_writing_store_the_same_rows(engine: Any) -> None:
    rng = random.Random(13)
    tables = [t for t in TABLES if t.name != "schema_migrations"]
    rows = [(t, row) for t in tables for row in _rows(t, 200, rng)]
    rng.shuffle(rows)
    records = _records(rows)
    fast = ClickHouseWriter(Connection(engine, "at_once"), FAST)
    assert asyncio.run(write_at_once(fast)("sink-rows", records)) is True
    # The engine's path: every message decoded on its own, its row inserted by name.
    slow = ClickHouseWriter(Connection(engine, "one_by_one"), FAST)
    by_table: dict[Table, list[Row]] = {}
    for r in records:
        for msg in messages_of(r, r.timestamp / 1000):
            table, row = decode_row(msg.value)
            by_table.setdefault(table, []).append(row)
    for table, table_rows in by_table.items():
        asyncio.run(slow.insert(table, table_rows))
    for table in tables:
        # incident_auto_state and incident_state also hold the groupings the store computes after
        # writing alerts and decisions, versioned by the time it computed them: only the rows
        # written here compare.
        derived = (
            " WHERE version < 1000000000000000"
            if table.name.startswith("incident_") and table.name != "incident_link_state"
            else ""
        )
        stored = [
            engine.query(f"SELECT * FROM {table.qualified(db)}{derived} ORDER BY tuple(*)").result_rows
            for db in ("at_once", "one_by_one")
        ]
        assert stored[0] == stored[1], table.name
        assert stored[0], table.name


def test_a_batch_clickhouse_refuses_is_left_to_the_row_by_row_path(engine: Any) -> None:
    rng = random.Random(5)
    rows = _rows(REGISTRY_STATE, 30, rng)
    members = next(n for n, t in REGISTRY_STATE.columns if t == "UInt16")
    rows[17][members] = 70_000  # out of range for a UInt16: refused, not wrapped
    writer = ClickHouseWriter(Connection(engine, "at_once"), FAST)
    records = _records([(REGISTRY_STATE, row) for row in rows])
    assert asyncio.run(write_at_once(writer)("sink-rows", records)) is False
    assert engine.query(f"SELECT count() FROM {REGISTRY_STATE.qualified('at_once')}").result_rows == [(0,)]


@pytest.mark.kafka
def test_the_writer_dead_letters_the_one_row_clickhouse_refuses_and_writes_the_rest(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """End to end through ``dampak writer``: a bundle holding a refused row is written again row by
    row, the row goes to the dead letters (at its position in the bundle), the others are stored."""
    from streams.ops.admin import producer
    from streams.topics import Topic, physical_name
    from tests.integration.conftest import _ports
    from tests.integration.harness import Deployment

    writer = Deployment(uuid.uuid4().hex[:10], tmp_path / "writer", next(_ports))
    rows = _rows(REGISTRY_STATE, 40, random.Random(8))
    members = next(n for n, t in REGISTRY_STATE.columns if t == "UInt16")
    rows[23][members] = 70_000
    try:
        writer.start_worker("writer")
        prod = producer(writer.settings)
        for record in _records([(REGISTRY_STATE, row) for row in rows]):
            prod.send(physical_name(Topic.SINK_ROWS, writer.settings), value=record.value,
                      headers=record.headers, partition=record.partition)  # fmt: skip
        prod.flush()
        prod.close()
        writer.wait_for(
            "SELECT (SELECT count() FROM dampak.registry_state FINAL) AS stored, "
            "(SELECT count() FROM dampak.dead_letters WHERE reason LIKE 'ClickHouse refused%') AS refused",
            [{"stored": 39, "refused": 1}],
            120,
        )
    finally:
        if writer.worker is not None and writer.worker.poll() is None:
            writer.stop_worker()
    writer.delete_topics()
