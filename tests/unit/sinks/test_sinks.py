"""The ClickHouse layer against a fake client: the writer's retry and error classes, the reader's
parameters, migrations, and the analysts' query path."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from sinks import analyst
from sinks.config import Backoff, ClickHouseTarget
from sinks.connection import Connection, engine_lock, record_holder
from sinks.errors import QueryRejected, RowsRejected, SinkUnavailable
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
        self.asts: dict[str, str] = {}

    def command(self, sql: str) -> None:
        self.commands.append(sql)

    def query(self, sql: str, parameters: Any = None, settings: Any = None) -> Result:
        self.queries.append((sql, parameters, settings))
        if self.failures:
            raise self.failures.pop(0)
        if sql.startswith("EXPLAIN AST "):
            ast = self.asts.get(sql.removeprefix("EXPLAIN AST "), SELECT_ONE)
            return Result(["explain"], [(line,) for line in ast.strip("\n").splitlines()])
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
    assert {c.split()[5].split(".")[1] for c in created} == {t.name for t in TABLES}
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


# What ClickHouse's parser answers to EXPLAIN AST (recorded from the engine).
SELECT_ONE = """
SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 1)
   ExpressionList (children 1)
    Literal UInt64_1
"""
ASTS = {
    "SELECT * FROM `file`('/etc/hostname')": """
SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 3)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      Function file (children 1)
       ExpressionList (children 1)
        Literal '/etc/hostname'
   Set
 Identifier Native
""",
    "SELECT file('/etc/hostname')": """
SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Function file (children 1)
     ExpressionList (children 1)
      Literal '/etc/hostname'
   Set
""",
    "SELECT 1 FROM dampak.regions WHERE y IN dampak.report_state": """
SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 4)
   ExpressionList (children 1)
    Literal UInt64_1
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier dampak.regions
   Function in (children 1)
    ExpressionList (children 2)
     Identifier y
     Identifier dampak.report_state
   Set
""",
    "SELECT 1 INTO OUTFILE '/tmp/x'": """
SelectWithUnionQuery (children 4)
 ExpressionList (children 1)
  SelectQuery (children 1)
   ExpressionList (children 1)
    Literal UInt64_1
 Literal '/tmp/x'
 Set
""",
    "INSERT INTO t SELECT 1": """
InsertQuery   (children 3)
 Identifier t
 SelectWithUnionQuery (children 1)
""",
    "WITH report_state AS (SELECT 1) SELECT * FROM report_state": """
SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 3)
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier report_state
""",
    "WITH p AS (SELECT 1) SELECT * FROM p, dampak.impact_village": """
SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 3)
   TablesInSelectQuery (children 2)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier p
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier dampak.impact_village
""",
}


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT * FROM `file`('/etc/hostname')", "not allowed"),
        ("SELECT file('/etc/hostname')", "function file()"),
        ("SELECT 1 FROM dampak.regions WHERE y IN dampak.report_state", "not an analyst object"),
        ("SELECT 1 INTO OUTFILE '/tmp/x'", "INTO OUTFILE"),
        ("INSERT INTO t SELECT 1", "read-only: a single SELECT"),
        # A CTE named like an internal table does not make the table readable.
        ("WITH report_state AS (SELECT 1) SELECT * FROM report_state", "not an analyst object"),
    ],
)
def test_the_guard_reads_the_engines_parse(sql: str, reason: str) -> None:
    client = FakeClient()
    client.asts = ASTS
    with pytest.raises(QueryRejected, match=reason):
        analyst.check_query(client, sql, "dampak")  # type: ignore[arg-type]


def test_the_guard_allows_analyst_objects_and_ctes() -> None:
    client = FakeClient()
    client.asts = ASTS
    analyst.check_query(client, "WITH p AS (SELECT 1) SELECT * FROM p, dampak.impact_village", "dampak")  # type: ignore[arg-type]
    assert client.queries[-1][2] == {"readonly": 1}
    analyst.check_query(
        client, "SELECT 1 FROM dampak.regions WHERE y IN dampak.report_state", "dampak", "internal"
    )  # type: ignore[arg-type]


def test_queries_take_parameters_server_side_only() -> None:
    client = FakeClient()
    client.answer = Result(["n"], [(1,), (2,), (3,)])
    sql = "SELECT n FROM t WHERE e = {e:String}"
    cols, rows = analyst.run_query(client, sql, {"e": "x'"}, analyst.Limits(2, 5))  # type: ignore[arg-type]
    assert cols == ["n"] and rows == [(1,), (2,)]
    explain, run = client.queries
    assert explain[1] == {"e": "x'"} and explain[2] == {"readonly": 1}
    _, params, settings = run
    assert params == {"e": "x'"} and settings["readonly"] == 1 and settings["max_result_rows"] == 2
    assert settings["max_memory_usage"] > 0 and settings["max_execution_time"] == 5
    with pytest.raises(QueryRejected, match="placeholder"):
        analyst.run_query(client, "SELECT '%' WHERE 1", {"e": "x"}, analyst.Limits(2, 5))  # type: ignore[arg-type]


@pytest.fixture
def worker_http() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = json.dumps({"columns": ["one"], "rows": [[1]]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()


def test_query_goes_to_the_worker_that_holds_the_engine(
    tmp_path: Path, worker_http: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = worker_http
    target = ClickHouseTarget(f"chdb://{tmp_path / 'ch'}", "dampak", tmp_path)
    direct = FakeClient()
    direct.answer = Result(["one"], [(2,)])
    monkeypatch.setattr(analyst, "connect", lambda t: direct)
    # The engine is free: the query runs on it directly.
    assert analyst.query(target, "SELECT 1 AS one") == (["one"], [(2,)])
    # A worker holds it (here this test holds the lock: flock locks of separate opens of one file
    # exclude each other even in one process): the query goes to the worker's /query.
    record_holder(target, 1, url)
    with engine_lock(target, blocking=True):
        assert analyst.query(target, "SELECT {n:UInt8} AS one", {"n": 1}) == (["one"], [(1,)])
    assert received == [{"sql": "SELECT {n:UInt8} AS one", "parameters": {"n": 1}, "scope": "analyst"}]


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
