"""The analysts' query path: read-only queries confined by the engine itself.

Each query is parsed by ClickHouse's own parser (``EXPLAIN AST``) and allowed only when it is a
SELECT (or WITH ... SELECT) that reads the ``dampak`` database's analyst objects and a few system
tables, calls no table function and no function that reaches files or other hosts, and sets no
setting. It then runs with ``readonly=1``, under limits the engine enforces (rows, time, memory),
on a connection of its own, never the writer's.

The CLI, the demo and the tests call ``query`` (through the worker that holds the embedded engine,
or straight on the engine or server); the worker's ``/query`` calls ``run_query``.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from clickhouse_connect.driver.client import Client

from sinks.config import ClickHouseTarget
from sinks.connection import connect, engine_lock, holder
from sinks.errors import QueryRejected
from sinks.tables import TABLES
from sinks.views import ANALYST_OBJECTS

__all__ = [
    "SYSTEM_TABLES",
    "Limits",
    "QueryResult",
    "Scope",
    "allowed_objects",
    "check_query",
    "query",
    "run_query",
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
_CTE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*|`[^`]+`|\"[^\"]+\")\s+AS\s*\(", re.IGNORECASE)
_NODE = re.compile(r"^(\s*)(\w+)(?: (\S+))?")


@dataclass(frozen=True)
class Limits:
    """What the engine enforces on one analyst query."""

    max_rows: int = 10_000
    timeout_s: float = 30.0
    max_memory_bytes: int = 2 * 1024**3

    @classmethod
    def of(cls, target: ClickHouseTarget) -> Limits:
        """The configured limits of ``target``."""
        return cls(target.query_max_rows, target.query_timeout_s, target.query_max_memory_bytes)

    def settings(self) -> dict[str, Any]:
        return {
            "readonly": 1,
            "max_result_rows": self.max_rows,
            "result_overflow_mode": "break",
            "max_execution_time": max(1, int(self.timeout_s)),
            "max_memory_usage": self.max_memory_bytes,
        }


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
    the engine (with ``parameters`` substituted). Settings in the query are refused by the engine
    itself (``readonly=1``)."""
    text = sql.strip().rstrip(";")
    if not text:
        raise QueryRejected("no SQL given")
    if parameters and not _PLACEHOLDER.search(text):
        # Without a placeholder clickhouse-connect would format the values into the text itself.
        raise QueryRejected("parameters are given but the query has no {name:Type} placeholder")
    try:
        result = client.query(
            f"EXPLAIN AST {text}", parameters=dict(parameters or {}) or None, settings={"readonly": 1}
        )
    except Exception as exc:
        raise QueryRejected(_first_line(exc)) from exc
    lines = [str(row[0]) for row in result.result_rows]
    nodes = [(len(m.group(1)), m.group(2), m.group(3) or "") for line in lines if (m := _NODE.match(line))]
    if not nodes or nodes[0][1] != "SelectWithUnionQuery":
        raise QueryRejected("analyst queries are read-only: a single SELECT (or WITH ... SELECT)")
    allowed = allowed_objects(database, scope)
    internal = {t.name for t in TABLES} | set(ANALYST_OBJECTS)
    ctes = {m.group(1).strip('`"') for m in _CTE.finditer(text)} - internal
    for i, (_, kind, name) in enumerate(nodes):
        parent = _parent(nodes, i)
        if kind == "Function" and name.lower() in DENIED_FUNCTIONS:
            raise QueryRejected(f"the function {name}() is not allowed")
        if kind == "Function" and parent == "TableExpression":
            raise QueryRejected(f"table functions such as {name}() are not allowed")
        table = name if kind == "TableIdentifier" else _in_table(nodes, i)
        if table:
            qualified = table if "." in table else f"{database}.{table}"
            if qualified not in allowed and table not in ctes:
                raise QueryRejected(f"{table} is not an analyst object (see README: tables analysts query)")
    # INTO OUTFILE puts a string literal directly under the top node.
    if any(depth == 1 and kind == "Literal" for depth, kind, _ in nodes):
        raise QueryRejected("INTO OUTFILE is not allowed")


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
    at most ``limits.max_rows`` rows. Raises QueryRejected."""
    check_query(client, sql, database, scope, parameters)
    try:
        result = client.query(
            sql.strip().rstrip(";"), parameters=dict(parameters or {}) or None, settings=limits.settings()
        )
    except Exception as exc:
        raise QueryRejected(_first_line(exc)) from exc
    return list(result.column_names), [tuple(r) for r in result.result_rows[: limits.max_rows]]


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
    """Run an analyst query: through the running worker when it holds the embedded engine,
    straight on the engine (or the configured server) otherwise. Raises QueryRejected."""
    if target.embedded:
        with engine_lock(target, blocking=False) as free:
            if free:
                return _direct(target, sql, parameters, scope)
        return _via_worker(target, sql, parameters, scope, token)
    return _direct(target, sql, parameters, scope)


def _direct(
    target: ClickHouseTarget, sql: str, parameters: Mapping[str, Any] | None, scope: Scope
) -> QueryResult:
    client = connect(target)
    try:
        return run_query(client, sql, parameters, Limits.of(target), target.database, scope)
    finally:
        client.close()


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
        with urllib.request.urlopen(request, timeout=target.query_timeout_s + 5) as resp:
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("error", str(exc))
        raise QueryRejected(detail) from exc
    except urllib.error.URLError as exc:
        raise QueryRejected(f"worker at {url} did not answer: {exc.reason}") from exc
    return answer["columns"], [tuple(r) for r in answer["rows"]]
