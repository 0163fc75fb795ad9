"""The analysts' query path: read-only, limited queries, through the worker that holds the
embedded engine or straight on the engine (or server). The CLI, the demo and the tests call
``query``; the worker's ``/query`` calls ``run_query``.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.config import ClickHouseTarget
from sinks.connection import connect, engine_lock, holder
from sinks.errors import QueryRejected

__all__ = ["QueryResult", "query", "run_query"]

logger = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{\w+:[^}]+\}")

QueryResult = tuple[list[str], list[tuple[Any, ...]]]

_READ_ONLY = re.compile(r"^\s*(\(?\s*SELECT|WITH|SHOW|DESC|DESCRIBE|EXPLAIN|EXISTS)\b", re.IGNORECASE)

# The engine's readonly mode still lets a SELECT write files or reach other hosts: refuse those.
_FORBIDDEN = re.compile(
    r"\bINTO\s+OUTFILE\b|\b(file|url|s3|s3Cluster|gcs|hdfs|remote|remoteSecure|cluster|mysql|postgresql|"
    r"sqlite|mongodb|redis|executable|azureBlobStorage|jdbc|odbc|input)\s*\(",
    re.IGNORECASE,
)


def run_query(
    client: Client, sql: str, parameters: Mapping[str, Any] | None, max_rows: int, timeout_s: float
) -> QueryResult:
    """Run one read-only statement with server-side ``parameters``; returns column names and at
    most ``max_rows`` rows.

    Raises QueryRejected for anything but SELECT/WITH/SHOW/DESCRIBE/EXPLAIN/EXISTS, or when the
    engine rejects the query; the engine also enforces ``readonly``, a row limit and a time limit.
    """
    if not _READ_ONLY.match(sql) or ";" in sql.strip().rstrip(";"):
        raise QueryRejected("only a single read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN)")
    if _FORBIDDEN.search(sql):
        raise QueryRejected("INTO OUTFILE and file/network table functions are not allowed")
    if parameters and not _PLACEHOLDER.search(sql):
        # Without a placeholder clickhouse-connect would format the values into the text itself.
        raise QueryRejected("parameters are given but the query has no {name:Type} placeholder")
    settings = {
        "readonly": 2,
        "max_result_rows": max_rows,
        "result_overflow_mode": "break",
        "max_execution_time": max(1, int(timeout_s)),
    }
    try:
        result = client.query(
            sql.strip().rstrip(";"), parameters=dict(parameters or {}) or None, settings=settings
        )
    except Exception as exc:
        raise QueryRejected(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)) from exc
    return list(result.column_names), [tuple(r) for r in result.result_rows[:max_rows]]


def query(target: ClickHouseTarget, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
    """Run a read-only query: through the running worker when it holds the embedded engine,
    straight on the engine (or the configured server) otherwise. Raises QueryRejected."""
    if target.embedded:
        with engine_lock(target, blocking=False) as free:
            if free:
                return _direct(target, sql, parameters)
        return _via_worker(target, sql, parameters)
    return _direct(target, sql, parameters)


def _direct(target: ClickHouseTarget, sql: str, parameters: Mapping[str, Any] | None) -> QueryResult:
    client = connect(target)
    try:
        return run_query(client, sql, parameters, target.query_max_rows, target.query_timeout_s)
    finally:
        client.close()


def _via_worker(target: ClickHouseTarget, sql: str, parameters: Mapping[str, Any] | None) -> QueryResult:
    record = holder(target)
    if record is None or "url" not in record:
        raise QueryRejected("the embedded engine is locked but no worker address is recorded")
    url = record["url"]
    request = urllib.request.Request(
        f"{url}/query",
        data=json.dumps({"sql": sql, "parameters": dict(parameters or {})}, default=str).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=target.query_timeout_s + 5) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("error", str(exc))
        raise QueryRejected(detail) from exc
    except urllib.error.URLError as exc:
        raise QueryRejected(f"worker at {url} did not answer: {exc.reason}") from exc
    return body["columns"], [tuple(r) for r in body["rows"]]
