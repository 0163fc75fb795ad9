"""The analysts' query path against a fake client that answers with the engine's own recorded
parses: the guard (CTE names from the parse, never the text), the caps, streaming up to the cap,
the bound on concurrent queries, and the CLI's route through a worker."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sinks import analyst
from sinks.config import ClickHouseSettings, ClickHouseTarget
from sinks.connection import Connection, ConnectionPool, clickhouse_lock, record_holder
from sinks.errors import QueryBusy, QueryRejected

# What ClickHouse 26.9 (chDB 4.4) answers to EXPLAIN AST and EXPLAIN QUERY TREE run_passes = 0,
# recorded from the engine.
PARSES = {
    ("EXPLAIN AST", "SELECT * FROM `file`('/etc/hostname')"): """
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
    ("EXPLAIN AST", "SELECT file('/etc/hostname')"): """
SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Function file (children 1)
     ExpressionList (children 1)
      Literal '/etc/hostname'
   Set
 Identifier Native
""",
    ("EXPLAIN AST", "SELECT 1 FROM dampak.regions WHERE y IN dampak.report_state"): """
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
 Identifier Native
""",
    ("EXPLAIN AST", "SELECT 1 INTO OUTFILE '/tmp/x'"): """
SelectWithUnionQuery (children 4)
 ExpressionList (children 1)
  SelectQuery (children 1)
   ExpressionList (children 1)
    Literal UInt64_1
 Literal '/tmp/x'
 Set
 Identifier Native
""",
    ("EXPLAIN AST", "INSERT INTO t SELECT 1"): """
InsertQuery   (children 3)
 Identifier t
 SelectWithUnionQuery (children 1)
  ExpressionList (children 1)
   SelectQuery (children 2)
    ExpressionList (children 1)
     Literal UInt64_1
    Set
 Set
""",
    ("EXPLAIN AST", "WITH report_state AS (SELECT 1) SELECT * FROM report_state"): """
SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 4)
   ExpressionList (children 1)
    WithElement (children 1)
     Subquery (children 1)
      SelectWithUnionQuery (children 1)
       ExpressionList (children 1)
        SelectQuery (children 1)
         ExpressionList (children 1)
          Literal UInt64_1
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier report_state
   Set
 Identifier Native
""",
    ("EXPLAIN QUERY TREE run_passes = 0", "WITH report_state AS (SELECT 1) SELECT * FROM report_state"): """
QUERY id: 0
  WITH
    LIST id: 1, nodes: 1
      QUERY id: 2, is_subquery: 1, is_cte: 1, cte_name: report_state
        PROJECTION
          LIST id: 3, nodes: 1
            CONSTANT id: 4, constant_value: UInt64_1, constant_value_type: UInt8
        JOIN TREE
          IDENTIFIER id: 5, identifier: system.one
  PROJECTION
    LIST id: 6, nodes: 1
      MATCHER id: 7, matcher_type: ASTERISK
  JOIN TREE
    IDENTIFIER id: 8, identifier: report_state
  SETTINGS readonly=1
""",
    ("EXPLAIN AST", "WITH p AS (SELECT 1) SELECT * FROM p, dampak.impact_village"): """
SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 4)
   ExpressionList (children 1)
    WithElement (children 1)
     Subquery (children 1)
      SelectWithUnionQuery (children 1)
       ExpressionList (children 1)
        SelectQuery (children 1)
         ExpressionList (children 1)
          Literal UInt64_1
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 2)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier p
    TablesInSelectQueryElement (children 2)
     TableExpression (children 1)
      TableIdentifier dampak.impact_village
     TableJoin
   Set
 Identifier Native
""",
    ("EXPLAIN QUERY TREE run_passes = 0", "WITH p AS (SELECT 1) SELECT * FROM p, dampak.impact_village"): """
QUERY id: 0
  WITH
    LIST id: 1, nodes: 1
      QUERY id: 2, is_subquery: 1, is_cte: 1, cte_name: p
        PROJECTION
          LIST id: 3, nodes: 1
            CONSTANT id: 4, constant_value: UInt64_1, constant_value_type: UInt8
        JOIN TREE
          IDENTIFIER id: 5, identifier: system.one
  PROJECTION
    LIST id: 6, nodes: 1
      MATCHER id: 7, matcher_type: ASTERISK
  JOIN TREE
    CROSS JOIN id: 8
      TABLE EXPRESSION
        IDENTIFIER id: 9, identifier: p
      TABLE EXPRESSION
        IDENTIFIER id: 10, identifier: dampak.impact_village
  SETTINGS readonly=1
""",
    ("EXPLAIN AST", "SELECT * FROM dampak.registry_state /* `dampak.registry_state` AS ( */"): """
SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 3)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier dampak.registry_state
   Set
 Identifier Native
""",
    ("EXPLAIN AST", "SELECT '`dampak.registry_state` AS (' AS s, lat, lon FROM dampak.registry_state"): """
SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 3)
   ExpressionList (children 3)
    Literal '`dampak.registry_state` AS (' (alias s)
    Identifier lat
    Identifier lon
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier dampak.registry_state
   Set
 Identifier Native
""",
    ("EXPLAIN AST", "SELECT * FROM `p\\n  TableIdentifier dampak.impact_village`"): """
SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 3)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier p
  TableIdentifier dampak.impact_village
   Set
 Identifier Native
""",
    ("EXPLAIN AST", "SELECT n FROM dampak.impact_village WHERE e = {e:String}"): """
SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 4)
   ExpressionList (children 1)
    Identifier n
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier dampak.impact_village
   Function equals (children 1)
    ExpressionList (children 2)
     Identifier e
     Literal 'x'
   Set
 Identifier Native
""",
}


SELECT_ONE = PARSES[("EXPLAIN AST", "SELECT n FROM dampak.impact_village WHERE e = {e:String}")]
#: ``system.tables`` of a migrated database (the part the guard needs).
EXISTING = ["dampak.impact_village", "dampak.regions", "dampak.registry_state", "dampak.report_state"]


class Result:
    def __init__(self, names: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.column_names = tuple(names)
        self.result_rows = rows


class Stream:
    """clickhouse-connect's StreamContext of row blocks: ``source.column_names`` and blocks."""

    def __init__(self, names: list[str], blocks: Iterator[list[tuple[Any, ...]]]) -> None:
        self.source = Result(names, [])
        self.blocks = blocks
        self.closed = False

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True

    def __iter__(self) -> Iterator[list[tuple[Any, ...]]]:
        return self.blocks


class FakeClient:
    def __init__(
        self, names: list[str] | None = None, blocks: list[list[tuple[Any, ...]]] | None = None
    ) -> None:
        self.queries: list[tuple[str, Any, Any]] = []
        self.streams: list[Stream] = []
        self.names = names or ["n"]
        self.blocks = blocks or []
        self.blocks_read = 0
        self.failure: BaseException | None = None

    def query(self, sql: str, parameters: Any = None, settings: Any = None) -> Result:
        self.queries.append((sql, parameters, settings))
        for prefix in ("EXPLAIN AST", "EXPLAIN QUERY TREE run_passes = 0"):
            if sql.startswith(prefix + " "):
                dump = PARSES.get((prefix, sql.removeprefix(prefix + " ")), SELECT_ONE)
                return Result(["explain"], [(line,) for line in dump.strip("\n").splitlines()])
        if "system.tables" in sql:
            return Result(["name"], [(name,) for name in EXISTING])
        raise AssertionError(f"the guard ran {sql!r}: it may only parse")

    def query_row_block_stream(self, sql: str, parameters: Any = None, settings: Any = None) -> Stream:
        self.queries.append((sql, parameters, settings))
        if self.failure is not None:
            raise self.failure

        def blocks() -> Iterator[list[tuple[Any, ...]]]:
            for block in self.blocks:
                self.blocks_read += 1
                yield block

        stream = Stream(self.names, blocks())
        self.streams.append(stream)
        return stream

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT * FROM `file`('/etc/hostname')", "not allowed"),
        ("SELECT file('/etc/hostname')", "function file()"),
        ("SELECT 1 FROM dampak.regions WHERE y IN dampak.report_state", "not an analyst object"),
        ("SELECT 1 INTO OUTFILE '/tmp/x'", "INTO OUTFILE"),
        ("INSERT INTO t SELECT 1", "read-only: a single SELECT"),
        # A CTE named like an internal table does not make the table readable.
        ("WITH report_state AS (SELECT 1) SELECT * FROM report_state", "report_state is not an analyst"),
        # A CTE "definition" in a comment or a string literal is no CTE (issue 27, case 8).
        (
            "SELECT * FROM dampak.registry_state /* `dampak.registry_state` AS ( */",
            "dampak.registry_state is not an analyst object",
        ),
        (
            "SELECT '`dampak.registry_state` AS (' AS s, lat, lon FROM dampak.registry_state",
            "dampak.registry_state is not an analyst object",
        ),
        # A name with a line break prints a line that looks like a node of its own.
        ("SELECT * FROM `p\\n  TableIdentifier dampak.impact_village`", "ambiguous"),
    ],
)
def test_the_guard_reads_the_engines_parse(sql: str, reason: str) -> None:
    client = FakeClient()
    with pytest.raises(QueryRejected, match=reason):
        analyst.check_query(client, sql, "dampak")  # type: ignore[arg-type]
    # Only parses ran: nothing that reads a table (or writes a file) reached the engine.
    assert all(q[0].startswith("EXPLAIN ") or "system.tables" in q[0] for q in client.queries)


def test_the_guard_allows_analyst_objects_and_ctes() -> None:
    client = FakeClient()
    analyst.check_query(client, "WITH p AS (SELECT 1) SELECT * FROM p, dampak.impact_village", "dampak")  # type: ignore[arg-type]
    # The CTE name came from the parser's query tree, and it names no table.
    assert [q[0].split(" SELECT")[0].split(" WITH")[0] for q in client.queries] == [
        "EXPLAIN AST",
        "EXPLAIN QUERY TREE run_passes = 0",
        "SELECT concat(database, '.', name) FROM system.tables",
    ]
    assert all(q[2] == {"readonly": 1} for q in client.queries)
    analyst.check_query(
        client, "SELECT 1 FROM dampak.regions WHERE y IN dampak.report_state", "dampak", "internal"
    )  # type: ignore[arg-type]


def test_the_caps_are_the_engines_and_a_result_over_them_is_refused() -> None:
    client = FakeClient(blocks=[[(1,), (2,)], [(3,)]])
    sql = "SELECT n FROM dampak.impact_village WHERE e = {e:String}"
    limits = analyst.Limits(max_rows=3, timeout_s=5, max_result_bytes=2**20)
    assert analyst.run_query(client, sql, {"e": "x'"}, limits) == (["n"], [(1,), (2,), (3,)])  # type: ignore[arg-type]
    explain, run = client.queries
    assert explain[1] == {"e": "x'"} and explain[2] == {"readonly": 1}
    wrapped, params, settings = run
    # A top-level UNION escapes the engine's result limits: the query runs as one subquery.
    assert wrapped == f"SELECT * FROM (\n{sql}\n)"
    assert params == {"e": "x'"}
    assert settings == {
        "readonly": 1,
        "max_result_rows": 3,
        "max_result_bytes": 2**20,
        "result_overflow_mode": "throw",
        "max_execution_time": 5,
        "max_memory_usage": 2 * 1024**3,
    }
    with pytest.raises(QueryRejected, match="placeholder"):
        analyst.run_query(client, "SELECT '%' WHERE 1", {"e": "x"}, limits)  # type: ignore[arg-type]


def test_rows_are_streamed_up_to_the_cap_never_fetched_whole() -> None:
    endless = [[(i,)] * 1000 for i in range(1000)]
    client = FakeClient(blocks=endless)
    with pytest.raises(QueryRejected, match=r"over the cap of 2,500 rows .*QUERY_MAX_ROWS"):
        analyst.run_query(client, "SELECT 1", None, analyst.Limits(max_rows=2_500))  # type: ignore[arg-type]
    assert client.blocks_read == 3 and client.streams[0].closed


@pytest.mark.parametrize(
    ("engine_says", "reason"),
    [
        (
            "Code: 396. DB::Exception: Limit for result exceeded, max bytes: 32.00 MiB, current bytes:"
            " 381.47 MiB. (TOO_MANY_ROWS_OR_BYTES)",
            r"over the cap of 33,554,432 bytes .*QUERY_MAX_RESULT_BYTES",
        ),
        (
            "Code: 396. DB::Exception: Limit for result exceeded, max rows: 20.00, current rows: 65.41"
            " thousand. (TOO_MANY_ROWS_OR_BYTES)",
            r"over the cap of 10,000 rows .*QUERY_MAX_ROWS",
        ),
        (
            "Code: 241. DB::Exception: Query memory limit exceeded: would use 2.00 GiB"
            " (MEMORY_LIMIT_EXCEEDED)",
            r"more than 2,147,483,648 bytes of memory .*QUERY_MAX_MEMORY_BYTES",
        ),
        ("Code: 159. DB::Exception: Timeout exceeded: elapsed 30.1 seconds", "longer than 30 s"),
        ("Code: 47. DB::Exception: Unknown expression identifier `x`", "Unknown expression identifier"),
    ],
)
def test_an_engine_limit_is_named_with_its_setting(engine_says: str, reason: str) -> None:
    client = FakeClient()
    client.failure = RuntimeError(engine_says)
    with pytest.raises(QueryRejected, match=reason):
        analyst.run_query(client, "SELECT 1", None, analyst.Limits())  # type: ignore[arg-type]


def test_concurrent_queries_are_bounded_and_answered_after_a_deadline() -> None:
    async def scenario() -> tuple[str, int]:
        pool = ConnectionPool([Connection(FakeClient(), "dampak")], wait_s=0.05)  # type: ignore[arg-type]
        release = threading.Event()
        slow = asyncio.ensure_future(pool.run(lambda client: release.wait(5)))
        await asyncio.sleep(0.01)
        try:
            with pytest.raises(QueryBusy) as busy:
                await pool.run(lambda client: 1)
        finally:
            release.set()
        await slow
        after = await pool.run(lambda client: 2)  # the connection is free again
        pool.close()
        return str(busy.value), after

    message, after = asyncio.run(scenario())
    assert "all 1 analyst connections are busy" in message and "QUERY_WAIT_S" in message
    assert after == 2


def test_the_caps_are_settings() -> None:
    settings = ClickHouseSettings(query_max_result_bytes=8 * 2**20, query_wait_s=1.5)
    target = ClickHouseTarget.of(settings, Path("/tmp/dampak-test"))
    limits = analyst.Limits.of(target)
    assert (limits.max_rows, limits.max_result_bytes) == (10_000, 8 * 2**20)
    assert target.query_wait_s == 1.5


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
    direct = FakeClient(names=["one"], blocks=[[(2,)]])
    monkeypatch.setattr(analyst, "connect", lambda t: direct)
    # The engine is free: the query runs on it directly.
    assert analyst.query(target, "SELECT 1 AS one") == (["one"], [(2,)])
    # A worker holds it (here this test holds the lock: flock locks of separate opens of one file
    # exclude each other even in one process): the query goes to the worker's /query.
    record_holder(target, 1, url)
    with clickhouse_lock(target, blocking=True):
        assert analyst.query(target, "SELECT {n:UInt8} AS one", {"n": 1}) == (["one"], [(1,)])
    assert received == [{"sql": "SELECT {n:UInt8} AS one", "parameters": {"n": 1}, "scope": "analyst"}]
