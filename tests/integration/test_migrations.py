"""Migrations on the real embedded engine: a database from before migration 12 (reports sorted by
report_id) is rebuilt with its reports sorted by event, keeping every row as it stands, and a run
interrupted at any statement ends in the same state when run again."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from sinks import migrations
from sinks.config import ClickHouseTarget
from sinks.connection import connect
from sinks.migrations import MIGRATIONS, migrate
from sinks.tables import REPORT_STATE

pytestmark = pytest.mark.clickhouse

DB = "dampak"
REBUILD = next(m for m in MIGRATIONS if m.resorts)
_COLUMNS = ", ".join(REPORT_STATE.column_names)


@pytest.fixture
def old_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A database on every migration before the rebuild, its reports sorted by report_id as then,
    holding several versions of some reports (as the worker writes them) and a replayed row."""
    client = connect(ClickHouseTarget(f"chdb://{tmp_path / 'ch'}", DB, tmp_path))
    with monkeypatch.context() as m:
        m.setattr(migrations, "MIGRATIONS", tuple(x for x in MIGRATIONS if x.version < REBUILD.version))
        migrate(client, DB)
    client.command(f"DROP TABLE {DB}.report_state")
    client.command(dataclasses.replace(REPORT_STATE, order_by="report_id").create_statement(DB))
    # Report r<i> at version 1 under E<i%3>; every 4th corrected (version 2), every 5th moved to
    # E9 at version 3 (sorted by report_id, the move replaced the row); every 7th written twice.
    select = (
        f"INSERT INTO {DB}.report_state (report_id, version, retracted, reported_event_id, displaced) "
        "SELECT concat('r', toString(number)), {version:UInt64}, false, {event}, {displaced} "
        "FROM numbers(1000) WHERE {where}"
    )
    for version, event, displaced, where in (
        (1, "concat('E', toString(number % 3))", "toUInt32(1)", "1"),
        (1, "concat('E', toString(number % 3))", "toUInt32(1)", "number % 7 = 0"),
        (2, "concat('E', toString(number % 3))", "toUInt32(2)", "number % 4 = 0"),
        (3, "'E9'", "toUInt32(3)", "number % 5 = 0"),
    ):
        client.command(
            select.replace("{event}", event).replace("{displaced}", displaced).replace("{where}", where),
            parameters={"version": version},
        )
    yield client
    client.close()


def _standing(client: Any) -> list[tuple[Any, ...]]:
    return client.query(
        f"SELECT {_COLUMNS} FROM {DB}.report_state FINAL WHERE NOT retracted ORDER BY report_id"
    ).result_rows


def _sort_key(client: Any) -> str:
    return client.query(
        "SELECT sorting_key FROM system.tables WHERE database = {db:String} AND name = 'report_state'",
        parameters={"db": DB},
    ).result_rows[0][0]


def _tables(client: Any) -> set[str]:
    return {r[0] for r in client.query(f"SHOW TABLES FROM {DB}").result_rows}


def _by_event(client: Any) -> list[tuple[Any, ...]]:
    return client.query(
        f"SELECT reported_event_id, count(), sum(displaced) FROM {DB}.report_state FINAL "
        "WHERE NOT retracted GROUP BY reported_event_id ORDER BY reported_event_id"
    ).result_rows


def test_reports_are_resorted_by_event_with_every_row_as_it_stands(old_database: Any) -> None:
    client = old_database
    before, by_event = _standing(client), _by_event(client)
    assert len(before) == 1000 and _sort_key(client) == "report_id"
    assert [(e, n) for e, n, _ in by_event] == [("E0", 267), ("E1", 267), ("E2", 266), ("E9", 200)]
    assert migrate(client, DB) == [REBUILD.version]
    assert _sort_key(client) == "reported_event_id, report_id"
    assert _standing(client) == before and _by_event(client) == by_event
    assert not {t for t in _tables(client) if t.startswith("report_state_")}
    assert migrate(client, DB) == []  # applied once


@pytest.mark.parametrize("done", range(1, len(REBUILD.sql(DB)) + 1))
def test_a_rebuild_interrupted_after_any_statement_ends_the_same_when_run_again(
    old_database: Any, done: int
) -> None:
    client = old_database
    before = _standing(client)
    for statement in REBUILD.sql(DB)[:done]:
        client.command(statement)
    assert migrate(client, DB) == [REBUILD.version]
    assert _sort_key(client) == "reported_event_id, report_id"
    assert _standing(client) == before
    assert not {t for t in _tables(client) if t.startswith("report_state_")}
