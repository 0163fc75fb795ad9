"""The ClickHouse layer against a fake client: the writer's retry and error classes, the reader's
parameters, and migrations (the analysts' query path: test_analyst.py)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from sinks.config import Backoff
from sinks.connection import Connection
from sinks.errors import RowsRejected, SinkUnavailable
from sinks.migrations import MIGRATIONS, migrate
from sinks.reader import ClickHouseReader, LocalRuns
from sinks.tables import REPORT_STATE, TABLES
from sinks.views import ANALYST_OBJECTS, VIEWS
from sinks.writer import ClickHouseWriter, classify

FAST = Backoff(initial_s=0.001, max_s=0.004)


class Result:
    def __init__(self, names: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.column_names = names
        self.result_rows = rows
        self.result_columns = [list(c) for c in zip(*rows, strict=True)] if rows else []
        self.row_count = len(rows)


class FakeClient:
    def __init__(self, failures: list[BaseException] | None = None) -> None:
        self.failures = list(failures or [])
        self.commands: list[str] = []
        self.queries: list[tuple[str, Any, Any]] = []
        self.inserts: list[tuple[str, Any, Any]] = []
        self.migrations: set[tuple[int, str]] = set()
        self.answer: Result = Result(["x"], [])

    def command(self, sql: str) -> None:
        self.commands.append(sql)

    def query(self, sql: str, parameters: Any = None, settings: Any = None) -> Result:
        self.queries.append((sql, parameters, settings))
        if self.failures:
            raise self.failures.pop(0)
        if "schema_migrations" in sql and "count()" in sql:
            return Result(["n"], [(int((0, parameters["name"]) in self.migrations),)])
        if "schema_migrations" in sql:
            return Result(["version"], [(v,) for v, _ in self.migrations])
        return self.answer

    def insert(self, table: str, data: Any, column_names: Any = None, column_oriented: bool = False) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.inserts.append((table, data, column_names))
        if table.endswith("schema_migrations"):
            self.migrations.update((v, n) for v, n in data)

    def close(self) -> None:
        pass


class Seen:
    def __init__(self) -> None:
        self.tables: list[tuple[str, int]] = []
        self.retries = 0

    def written(self, table: str, rows: int, seconds: float) -> None:
        self.tables.append((table, rows))

    def retrying(self, error: object, delay_s: float) -> None:
        self.retries += 1


def _row(report_id: str) -> dict[str, Any]:
    return {name: 0 for name in REPORT_STATE.column_names} | {"report_id": report_id}


def test_writer_retries_unavailability_and_inserts_declared_columns() -> None:
    client = FakeClient(
        [OperationalError("connection refused"), DatabaseError("Code: 243. NOT_ENOUGH_SPACE")]
    )
    seen = Seen()
    writer = ClickHouseWriter(Connection(client, "db"), FAST, seen)  # type: ignore[arg-type]
    asyncio.run(writer.write({REPORT_STATE: [_row("a"), _row("b")]}))
    [(table, columns, names)] = client.inserts
    assert table == "db.report_state" and tuple(names) == REPORT_STATE.column_names
    assert columns[0] == ["a", "b"]
    assert seen.retries == 2 and seen.tables == [("report_state", 2)]


def test_writer_raises_rows_rejected_at_once_for_data_errors() -> None:
    for error in (
        DataError("Unable to create native array for column `displaced`"),
        _coded(469),
        _coded(321),
    ):
        client = FakeClient([error])
        writer = ClickHouseWriter(Connection(client, "db"), FAST)  # type: ignore[arg-type]
        with pytest.raises(RowsRejected):
            asyncio.run(writer.insert(REPORT_STATE, [_row("a")]))
        assert not client.failures


def _coded(code: int) -> DatabaseError:
    error = DatabaseError(f"Code: {code}. DB::Exception")
    error.code = code  # type: ignore[attr-defined]
    return error


def test_classification() -> None:
    assert isinstance(classify("t", OverflowError()), RowsRejected)
    assert isinstance(classify("t", _coded(60)), SinkUnavailable)  # UNKNOWN_TABLE: fix the schema, resume
    assert isinstance(classify("t", ConnectionResetError()), SinkUnavailable)


def test_reader_passes_values_as_parameters() -> None:
    client = FakeClient([OperationalError("down")])
    client.answer = Result(["notification_id"], [("a'b",)])
    reader = ClickHouseReader(LocalRuns(Connection(client, "dampak"), FAST))  # type: ignore[arg-type]
    assert asyncio.run(reader.sent_notifications(["a'b", "c"])) == {"a'b"}
    sql, params, _ = client.queries[-1]
    assert "a'b" not in sql and params == {"ids": ["a'b", "c"]} and "dampak.notification_state" in sql
    client.answer = Result(
        ["event_id", "regency_code", "regency_name", "displaced"], [("E", "32.03", "C", 9)]
    )
    assert asyncio.run(reader.displaced_by_regency(5)) == [("E", "32.03", "C", 9)]
    assert client.queries[-1][1] == {"at_least": 5}


def test_migrations_create_declared_tables_once_and_views_on_change() -> None:
    client = FakeClient()
    assert migrate(client, "dampak") == [m.version for m in MIGRATIONS]  # type: ignore[arg-type]
    created = [c for c in client.commands if c.startswith("CREATE TABLE")]
    # Each table once from its declaration, and report_state again under its sort key (migration 12).
    names = [c.split()[5].split(".")[1] for c in created]
    assert sorted(names) == sorted([t.name for t in TABLES] + ["report_state_resorted"])
    assert sum(c.strip().startswith("CREATE OR REPLACE VIEW") for c in client.commands) == len(VIEWS)
    for table in TABLES:
        statement = next(c for c in created if f"dampak.{table.name} (" in c)
        for name, type_ in table.columns:
            assert f"`{name}` {type_}" in statement
    client.commands.clear()
    assert migrate(client, "dampak") == []  # type: ignore[arg-type]
    assert not [c for c in client.commands if "VIEW" in c]  # views unchanged: not re-created


def test_every_table_is_created_by_a_migration() -> None:
    created = {t.name for m in MIGRATIONS for t in m.creates} | {"schema_migrations"}
    assert created == {t.name for t in TABLES}
    assert "impact_village" in ANALYST_OBJECTS and "report_state" not in ANALYST_OBJECTS


def test_on_a_server_the_analyst_role_reads_the_analyst_objects_only() -> None:
    from sinks.migrations import ANALYST_ROLE, init_db

    client = FakeClient()
    client.query = lambda sql, parameters=None, settings=None: Result(["n"], [(10**9,)])  # type: ignore[method-assign]
    init_db(client, "dampak", server=True)  # type: ignore[arg-type]
    grants = [c for c in client.commands if c.startswith("GRANT")]
    assert f"CREATE ROLE IF NOT EXISTS {ANALYST_ROLE}" in client.commands
    assert {g.split()[3] for g in grants} == {f"dampak.{n}" for n in ANALYST_OBJECTS}
    assert not any("_state" in g for g in grants)
    assert all(v.strip().split("\n")[0].endswith("SQL SECURITY DEFINER AS") for v in VIEWS)


def test_every_view_computed_from_the_reports_has_an_incident_scoped_form() -> None:
    from sinks.views import PARAMETERIZED_VIEWS, SCOPED_VIEWS

    def name(statement: str) -> str:
        return re.search(r"VIEW \{db\}\.(\w+)", statement).group(1)  # type: ignore[union-attr]

    # Every view computed from the reports (field_reports, and every view reading one of them).
    impact = {f"impact_{level}" for level in ("village", "district", "regency", "province")}
    assert set(SCOPED_VIEWS) == {
        "field_reports", "household_impact", *impact, "registry_candidates", "estimate_ranges",
        "event_summary", "incidents", "minimum_needs", "entitlements", "shelters",
        "exposed_villages", "coverage",
    }  # fmt: skip
    assert {v for v, column in SCOPED_VIEWS.items() if column == "event_id"} == {"minimum_needs"}
    scoped = {name(v): v for v in VIEWS if name(v) in PARAMETERIZED_VIEWS}
    assert set(scoped) == {f"{v}_of" for v in SCOPED_VIEWS}
    for view, statement in scoped.items():
        # Reads the scoped form of every view computed from the reports, and keeps the incident's rows.
        read = set(re.findall(r"\{db\}\.(\w+)(\(incident = \{\{incident:String\}\}\))?", statement))
        for table, call in read - {(view, "")}:
            assert table not in SCOPED_VIEWS and bool(call) == (table in PARAMETERIZED_VIEWS), (view, table)
        assert statement.rstrip().splitlines()[-1].startswith("WHERE "), view
    assert "reported_event_id IN (SELECT event_id FROM {db}.event_incident" in scoped["field_reports_of"]
