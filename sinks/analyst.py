"""The analysts' query path: read-only queries confined by ClickHouse itself.

Each query is parsed by ClickHouse's own parser (``EXPLAIN AST``) and allowed only when it is a
SELECT (or WITH ... SELECT) that reads the ``dampak`` database's analyst objects and a few system
tables, calls no table function and no function that reaches files or other hosts, and sets no
setting. CTE names come from the parser too (``EXPLAIN QUERY TREE run_passes = 0``), never from
the text. It then runs with ``readonly=1``, under limits ClickHouse enforces (result rows and
bytes, time, memory), on a connection of its own, never the writer's, and its rows are streamed
up to the cap rather than fetched whole.

The CLI, the demo and the tests call ``query`` (through the worker that holds the embedded ClickHouse,
or straight on the embedded ClickHouse or the server); the worker's ``/query`` calls ``run_query``.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from clickhouse_connect.driver.client import Client

from sinks.config import ClickHouseTarget
from sinks.connection import clickhouse_lock, connect, holder
from sinks.errors import QueryRejected
from sinks.tables import TABLES
from sinks.views import ANALYST_OBJECTS, PARAMETERIZED_VIEWS

__all__ = [
    "SYSTEM_TABLES",
    "Limits",
    "QueryResult",
    "Scope",
    "allowed_objects",
    "check_query",
    "query",
    "run_query",
    "session",
]

logger = logging.getLogger(__name__)

QueryResult = tuple[list[str], list[tuple[Any, ...]]]
#: ``analyst``: the analyst objects; ``internal``: every table of the database too (operators).
Scope = Literal["analyst", "internal"]

#: System tables an analyst may read.
SYSTEM_TABLES = frozenset({"one", "numbers", "tables", "columns", "databases", "parts"})
#: Functions that read files or reach other hosts or tables by name, refused anywhere in a query.
DENIED_FUNCTIONS = frozenset(
    {
        "file", "url", "urlcluster", "s3", "s3cluster", "gcs", "hdfs", "hdfscluster", "remote",
        "remotesecure", "cluster", "clusterallreplicas", "mysql", "postgresql", "sqlite", "mongodb",
        "redis", "executable", "azureblobstorage", "azureblobstoragecluster", "jdbc", "odbc", "input",
        "joinget", "joingetornull", "dictionary", "merge", "loop", "iceberg", "deltalake", "hudi",
        "filesystem", "fuzzjson", "view", "viewifpermitted",
    }
)  # fmt: skip
_PLACEHOLDER = re.compile(r"\{\w+:[^}]+\}")
_NODE = re.compile(r"^( *)(\w+)(?: (\S+))?")
_CHILDREN = re.compile(r" \(children (\d+)\)$")
#: A CTE of the parser's query tree: ``QUERY id: 2, is_subquery: 1, is_cte: 1, cte_name: p``.
_CTE_NODE = re.compile(
    r"^ *(?:QUERY|UNION) id: \d+, .*\bis_cte: 1, .*?cte_name: (.*?)(?:, union_mode: \w+)?$"
)
#: ClickHouse error codes a user meets at the limits, and what to tell them.
_LIMIT_CODES = {
    396: "the result is over the cap of {cap} (DAMPAK_CLICKHOUSE__{setting}): aggregate, or add a LIMIT",
    241: "the query needs more than {memory:,} bytes of memory (DAMPAK_CLICKHOUSE__QUERY_MAX_MEMORY_BYTES)",
    159: "the query ran longer than {timeout:g} s (DAMPAK_CLICKHOUSE__QUERY_TIMEOUT_S)",
}
_CODE = re.compile(r"Code: (\d+)")


@dataclass(frozen=True)
class Limits:
    """What ClickHouse enforces on one analyst query."""

    max_rows: int = 10_000
    timeout_s: float = 30.0
    max_memory_bytes: int = 2 * 1024**3
    max_result_bytes: int = 32 * 1024**2

    @classmethod
    def of(cls, target: ClickHouseTarget) -> Limits:
        """The configured limits of ``target``."""
        return cls(
            target.query_max_rows,
            target.query_timeout_s,
            target.query_max_memory_bytes,
            target.query_max_result_bytes,
        )

    def settings(self) -> dict[str, Any]:
        """``throw``, not ``break``: a result over the cap is refused whole, never cut short
        silently (``break`` stops only at a block boundary, and an analyst would take a partial
        answer for the whole)."""
        return {
            "readonly": 1,
            "max_result_rows": self.max_rows,
            "max_result_bytes": self.max_result_bytes,
            "result_overflow_mode": "throw",
            "max_execution_time": max(1, int(self.timeout_s)),
            "max_memory_usage": self.max_memory_bytes,
        }

    def reason(self, exc: BaseException) -> str:
        """What to tell the analyst about a ClickHouse error: the limit it hit, or its first line."""
        match = _CODE.search(str(exc))
        code = getattr(exc, "code", None) or (int(match.group(1)) if match else None)
        hint = _LIMIT_CODES.get(code) if isinstance(code, int) else None
        if hint is None:
            return _first_line(exc)
        over_bytes = "max bytes" in str(exc)
        return hint.format(
            cap=f"{self.max_result_bytes:,} bytes" if over_bytes else f"{self.max_rows:,} rows",
            setting="QUERY_MAX_RESULT_BYTES" if over_bytes else "QUERY_MAX_ROWS",
            memory=self.max_memory_bytes,
            timeout=self.timeout_s,
        )


def allowed_objects(database: str, scope: Scope) -> frozenset[str]:
    """Qualified names a query in ``scope`` may read."""
    names = set(ANALYST_OBJECTS) | ({t.name for t in TABLES} if scope == "internal" else set())
    return frozenset({f"{database}.{n}" for n in names} | {f"system.{t}" for t in SYSTEM_TABLES})


def check_query(
    client: Client,
    sql: str,
    database: str,
    scope: Scope = "analyst",
    parameters: Mapping[str, Any] | None = None,
) -> None:
    """Refuse (QueryRejected) anything but a SELECT over the objects of ``scope``, as parsed by
    ClickHouse (with ``parameters`` substituted). Settings in the query are refused by ClickHouse
    itself (``readonly=1``). Nothing here runs the query: ClickHouse only parses it."""
    text = sql.strip().rstrip(";")
    if not text:
        raise QueryRejected("no SQL given")
    if parameters and not _PLACEHOLDER.search(text):
        # Without a placeholder clickhouse-connect would format the values into the text itself.
        raise QueryRejected("parameters are given but the query has no {name:Type} placeholder")
    nodes = _tree(_explain(client, "EXPLAIN AST", text, parameters))
    if not nodes or nodes[0][1] != "SelectWithUnionQuery":
        raise QueryRejected("analyst queries are read-only: a single SELECT (or WITH ... SELECT)")
    allowed = allowed_objects(database, scope)
    unknown: set[str] = set()
    for i, (_, kind, name) in enumerate(nodes):
        parent = _parent(nodes, i)
        if kind == "Function" and name.lower() in DENIED_FUNCTIONS:
            raise QueryRejected(f"the function {name}() is not allowed")
        if kind == "Function" and parent == "TableExpression":
            # A parameterized view is called like a table function: only dampak's own.
            if (
                _qualified(name, database) not in allowed
                or name.rpartition(".")[2] not in PARAMETERIZED_VIEWS
            ):
                raise QueryRejected(f"table functions such as {name}() are not allowed")
            continue
        table = name if kind == "TableIdentifier" else _in_table(nodes, i)
        if table and _qualified(table, database) not in allowed:
            unknown.add(table)
    # INTO OUTFILE puts a string literal directly under the top node.
    if any(depth == 1 and kind == "Literal" for depth, kind, _ in nodes):
        raise QueryRejected("INTO OUTFILE is not allowed")
    if unknown:
        _only_ctes(client, text, parameters, database, unknown, any(n[1] == "WithElement" for n in nodes))


def _explain(client: Client, explain: str, text: str, parameters: Mapping[str, Any] | None) -> list[str]:
    try:
        result = client.query(
            f"{explain} {text}", parameters=dict(parameters or {}) or None, settings={"readonly": 1}
        )
    except Exception as exc:
        raise QueryRejected(_first_line(exc)) from exc
    return [str(row[0]) for row in result.result_rows]


def _tree(lines: list[str]) -> list[tuple[int, str, str]]:
    """The nodes (depth, kind, name) of an ``EXPLAIN AST`` dump, checked to be one tree whose
    nodes have exactly the children they declare. The dump does not escape identifiers, so a
    name with a line break could print lines that look like nodes; they would break the count."""
    nodes: list[tuple[int, str, str]] = []
    declared: list[int] = []
    found: list[int] = []
    open_nodes: list[int] = []  # the current node's ancestors and itself, by depth
    for line in lines:
        match = _NODE.match(line)
        depth = len(match.group(1)) if match else -1
        if match is None or (depth == 0) != (not nodes) or depth > len(open_nodes):
            raise QueryRejected(_UNREADABLE)
        del open_nodes[depth:]
        if open_nodes:
            found[open_nodes[-1]] += 1
        children = _CHILDREN.search(line)
        declared.append(int(children.group(1)) if children else 0)
        found.append(0)
        nodes.append((depth, match.group(2), match.group(3) or ""))
        open_nodes.append(len(nodes) - 1)
    if declared != found:
        raise QueryRejected(_UNREADABLE)
    return nodes


_UNREADABLE = "the engine's parse of the query is ambiguous (a name with a line break?): rename it"


def _only_ctes(
    client: Client,
    text: str,
    parameters: Mapping[str, Any] | None,
    database: str,
    tables: set[str],
    has_with: bool,
) -> None:
    """Allow the names in ``tables`` only as CTEs: each must be a CTE name in the parser's query
    tree (ClickHouse's own parse; never a pattern over the text, where a comment or a string
    could name one) and name no table or view that exists, so a CTE cannot stand in for one."""
    ctes: set[str] = set()
    if has_with:
        tree = _explain(client, "EXPLAIN QUERY TREE run_passes = 0", text, parameters)
        ctes = {m.group(1) for line in tree if (m := _CTE_NODE.match(line))}
    for table in sorted(tables):
        if table not in ctes:
            raise QueryRejected(f"{table} is not an analyst object (see README: tables analysts query)")
    try:
        result = client.query(
            "SELECT concat(database, '.', name) FROM system.tables", settings={"readonly": 1}
        )
    except Exception as exc:
        raise QueryRejected(_first_line(exc)) from exc
    existing = {str(row[0]) for row in result.result_rows}
    for table in sorted(tables):
        if _qualified(table, database) in existing:
            raise QueryRejected(f"{table} is not an analyst object (see README: tables analysts query)")


def _qualified(table: str, database: str) -> str:
    return table if "." in table else f"{database}.{table}"


def _parent(nodes: list[tuple[int, str, str]], i: int) -> str:
    depth = nodes[i][0]
    for j in range(i - 1, -1, -1):
        if nodes[j][0] < depth:
            return nodes[j][1]
    return ""


_IN_FUNCTIONS = frozenset(
    {"in", "notin", "globalin", "globalnotin", "nullin", "notnullin", "globalnullin", "globalnotnullin"}
)


def _in_table(nodes: list[tuple[int, str, str]], i: int) -> str:
    """The table of ``x IN [db.]table``: an Identifier that is the *second* argument of an
    in-function. (``min(s.lat)`` or the ``x`` of ``x IN (SELECT ...)`` is no table.)"""
    depth, kind, name = nodes[i]
    if kind != "Identifier":
        return ""
    position = 0
    for j in range(i - 1, -1, -1):
        if nodes[j][0] == depth:
            position += 1
            continue
        if nodes[j][0] > depth:
            continue
        # nodes[j] holds the arguments; the function is the node just above it.
        function = nodes[j - 1] if j > 0 and nodes[j - 1][0] == depth - 2 else ("", "", "")
        is_in = function[1] == "Function" and function[2].lower() in _IN_FUNCTIONS
        return name if nodes[j][1] == "ExpressionList" and is_in and position == 1 else ""
    return ""


def run_query(
    client: Client,
    sql: str,
    parameters: Mapping[str, Any] | None,
    limits: Limits,
    database: str = "dampak",
    scope: Scope = "analyst",
) -> QueryResult:
    """Check and run one analyst query with server-side ``parameters``; returns column names and
    at most ``limits.max_rows`` rows. A result over the caps is refused, not cut short. Raises
    QueryRejected."""
    check_query(client, sql, database, scope, parameters)
    # ClickHouse holds a query's result limits on its outermost SELECT only: each branch of a
    # top-level UNION escaped them (ClickHouse 26.9 in chDB 4.4: 200,001 rows under
    # max_result_rows = 20). As the one subquery of a plain SELECT, all of it is held. Limits:
    # https://clickhouse.com/docs/operations/settings/query-complexity
    # (The newline ends a trailing -- comment; the text parsed alone, so it cannot close the
    # parenthesis itself.)
    wrapped = f"SELECT * FROM (\n{sql.strip().rstrip(';')}\n)"
    rows: list[tuple[Any, ...]] = []
    try:
        with client.query_row_block_stream(
            wrapped, parameters=dict(parameters or {}) or None, settings=limits.settings()
        ) as stream:
            columns = list(stream.source.column_names)
            # Streamed block by block, so at most the cap and one block are ever held here.
            for block in stream:
                rows.extend(tuple(row) for row in block)
                if len(rows) > limits.max_rows:
                    raise QueryRejected(limits.reason(_TooManyRows()))
    except QueryRejected:
        raise
    except Exception as exc:
        raise QueryRejected(limits.reason(exc)) from exc
    return columns, rows


class _TooManyRows(Exception):
    """The cap held here too, for a server that let more rows through than it was asked to."""

    code = 396


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if "Cannot modify" in text and "readonly" in text.lower():
        return "SETTINGS cannot be changed in an analyst query (the limits are the engine's)"
    return text.splitlines()[0][:500] if text else repr(exc)


def query(
    target: ClickHouseTarget,
    sql: str,
    parameters: Mapping[str, Any] | None = None,
    scope: Scope = "analyst",
    token: str | None = None,
) -> QueryResult:
    """Run an analyst query: through the running worker when it holds the embedded ClickHouse,
    straight on the embedded ClickHouse (or the configured server) otherwise. Raises QueryRejected."""
    if target.embedded:
        with clickhouse_lock(target, blocking=False) as free:
            if free:
                return _direct(target, sql, parameters, scope)
        return _via_worker(target, sql, parameters, scope, token)
    return _direct(target, sql, parameters, scope)


@contextmanager
def session(
    target: ClickHouseTarget, scope: Scope = "analyst"
) -> Iterator[Callable[[str, Mapping[str, Any] | None], QueryResult]]:
    """Several analyst queries in a row (``dampak report``): like ``query``, but on one connection
    when the engine is free (an embedded engine's connection takes a few tenths of a second to
    open), the embedded engine held for the session; through the worker when it holds it."""
    if target.embedded:
        with clickhouse_lock(target, blocking=False) as free:
            if not free:
                yield lambda sql, parameters: _via_worker(target, sql, parameters, scope, None)
                return
            with _connection(target) as client:
                yield _runner(client, target, scope)
        return
    with _connection(target) as client:
        yield _runner(client, target, scope)


@contextmanager
def _connection(target: ClickHouseTarget) -> Iterator[Client]:
    client = connect(target)
    try:
        yield client
    finally:
        client.close()


def _runner(
    client: Client, target: ClickHouseTarget, scope: Scope
) -> Callable[[str, Mapping[str, Any] | None], QueryResult]:
    limits = Limits.of(target)
    return lambda sql, parameters: run_query(client, sql, parameters, limits, target.database, scope)


def _direct(
    target: ClickHouseTarget, sql: str, parameters: Mapping[str, Any] | None, scope: Scope
) -> QueryResult:
    with _connection(target) as client:
        return _runner(client, target, scope)(sql, parameters)


def _via_worker(
    target: ClickHouseTarget,
    sql: str,
    parameters: Mapping[str, Any] | None,
    scope: Scope,
    token: str | None,
) -> QueryResult:
    record = holder(target)
    if record is None or "url" not in record:
        raise QueryRejected("the embedded engine is locked but no worker address is recorded")
    url = record["url"]
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"sql": sql, "parameters": dict(parameters or {}), "scope": scope}
    request = urllib.request.Request(
        f"{url}/query", data=json.dumps(body, default=str).encode(), headers=headers
    )
    try:
        timeout = target.query_timeout_s + target.query_wait_s + 5
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("error", str(exc))
        raise QueryRejected(detail) from exc
    except urllib.error.URLError as exc:
        raise QueryRejected(f"worker at {url} did not answer: {exc.reason}") from exc
    return answer["columns"], [tuple(r) for r in answer["rows"]]
