"""The reader's data marks on the real embedded engine: what the displacement check's skip rests on."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sinks.config import Backoff, ClickHouseTarget
from sinks.connection import Connection, connect
from sinks.migrations import init_db
from sinks.reader import ClickHouseReader, LocalRuns
from sinks.tables import CONSUMER_LAG, NOTIFICATION_STATE


def test_data_marks_move_with_every_insert_and_not_with_merges(tmp_path: Path) -> None:
    target = ClickHouseTarget(f"chdb://{tmp_path / 'ch'}", "dampak", tmp_path)
    client = connect(target)
    conn = Connection(client, target.database)
    try:
        init_db(client, target.database)
        reader = ClickHouseReader(LocalRuns(conn, Backoff()))
        marks = lambda: asyncio.run(reader.data_marks((CONSUMER_LAG.name, NOTIFICATION_STATE.name)))  # noqa: E731

        def insert(table: str, n: int) -> None:
            client.command(f"INSERT INTO dampak.{table} (notification_id, sent_at) VALUES ('n{n}', now())"
                           if table == NOTIFICATION_STATE.name else
                           f"INSERT INTO dampak.{table} SELECT * FROM generateRandom() LIMIT 1")  # fmt: skip

        before = marks()
        assert marks() == before
        insert("alerts_state", 1)
        first = marks()
        assert first != before
        insert("alerts_state", 2)
        second = marks()
        assert second != first
        client.command("OPTIMIZE TABLE dampak.alerts_state FINAL")  # a merge inserts nothing
        assert marks() == second
        insert(NOTIFICATION_STATE.name, 3)  # excluded: the check's own records
        assert marks() == second
    finally:
        conn.close()
