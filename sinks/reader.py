"""The reads that features need, as named methods with server-side parameters (no value is ever
formatted into SQL). Retried in place like writes: the caller needs the answer to go on.

The reads run where ClickHouse is: on a connection of the worker's own (``LocalRuns``), or, for a
compute worker beside a separate writer that owns the embedded ClickHouse, through the writer's
``/query`` (``RemoteRuns``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sinks.config import Backoff
from sinks.connection import Connection
from sinks.errors import QueryRejected, SinkError, SinkUnavailable
from sinks.views import VILLAGE_REGISTRY_SQL
from sinks.writer import classify, retrying

__all__ = ["ClickHouseReader", "Columns", "LocalRuns", "RemoteRuns", "Runs"]

logger = logging.getLogger(__name__)

Columns = dict[str, list[Any]]


class Runs(Protocol):
    """Runs one read and returns it column-oriented; retries unavailability in place."""

    database: str

    async def columns(self, sql: str, parameters: dict[str, Any]) -> Columns: ...


class LocalRuns:
    """Reads on a connection of this process."""

    def __init__(
        self,
        conn: Connection,
        backoff: Backoff,
        on_retry: Callable[[SinkError, float], None] = lambda error, delay: None,
    ) -> None:
        self._conn = conn
        self._backoff = backoff
        self._on_retry = on_retry
        self.database = conn.database

    async def columns(self, sql: str, parameters: dict[str, Any]) -> Columns:
        return await retrying(
            lambda: self._conn.run(self._select, sql, parameters), self._backoff, self._on_retry
        )

    def _select(self, sql: str, parameters: dict[str, Any]) -> Columns:
        try:
            result = self._conn.client.query(sql, parameters=parameters or None)
        except Exception as exc:
            raise classify("(query)", exc) from exc
        # An empty result may come back without column names (chDB): absent columns read as empty.
        out: Columns = defaultdict(list)
        if result.row_count:
            for name, col in zip(result.column_names, result.result_columns, strict=True):
                out[name] = list(col)
        return out


class RemoteRuns:
    """Reads through the ``/query`` of the writer that owns the embedded ClickHouse (internal scope)."""

    def __init__(
        self, url: str, database: str, token: str | None, backoff: Backoff, timeout_s: float = 60
    ) -> None:
        self._url = url.rstrip("/") + "/query"
        self._token = token
        self._backoff = backoff
        self._timeout_s = timeout_s
        self.database = database

    async def columns(self, sql: str, parameters: dict[str, Any]) -> Columns:
        loop = asyncio.get_running_loop()
        return await retrying(
            lambda: loop.run_in_executor(None, self._post, sql, parameters),
            self._backoff,
            lambda error, delay: None,
        )

    def _post(self, sql: str, parameters: dict[str, Any]) -> Columns:
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        body = json.dumps({"sql": sql, "parameters": parameters, "scope": "internal"}, default=str).encode()
        request = urllib.request.Request(self._url, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as resp:
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = json.loads(exc.read() or b"{}").get("error", str(exc))
            if exc.code >= 500:
                raise SinkUnavailable("(query)", ConnectionError(detail)) from exc
            raise QueryRejected(detail) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise SinkUnavailable(
                "(query)", ConnectionError(f"the writer at {self._url} did not answer")
            ) from exc
        out: Columns = defaultdict(list)
        for i, name in enumerate(answer["columns"]):
            out[name] = [row[i] for row in answer["rows"]]
        return out


class ClickHouseReader:
    def __init__(self, runs: Runs) -> None:
        self._runs = runs

    async def village_stats(self) -> Columns:
        """Registry statistics per village, column-oriented, with the exact mean position of its
        geolocated households (the published ``village_stats`` view hides a position that is a
        mean over too few; the estimate publishes none)."""
        return await self._columns(VILLAGE_REGISTRY_SQL, {})

    async def displaced_by_regency(self, at_least: int) -> list[tuple[str, str, str, int]]:
        """(event_id, regency_code, regency_name, displaced) of every event and regency with at
        least ``at_least`` reported displaced persons (events with an id only)."""
        cols = await self._columns(
            "SELECT event_id, regency_code, regency_name, displaced FROM {db}.impact_regency "
            "WHERE displaced >= {at_least:UInt64} AND event_id != 'unassigned'",
            {"at_least": at_least},
        )
        return list(
            zip(cols["event_id"], cols["regency_code"], cols["regency_name"], cols["displaced"], strict=True)
        )

    async def data_marks(self, excluding: Sequence[str] = ()) -> tuple[tuple[str, str, int], ...]:
        """Where the inserts into each table stand: (table, partition, highest block number) of
        the database's tables but ``excluding``. Every insert raises its partition's block number
        and merges leave it as it is, so equal marks mean no row was inserted in between."""
        cols = await self._columns(
            "SELECT table, partition_id, max(max_block_number) AS mark FROM system.parts "
            "WHERE database = {db_name:String} AND active AND table NOT IN {excluding:Array(String)} "
            "GROUP BY table, partition_id ORDER BY table, partition_id",
            {"db_name": self._runs.database, "excluding": list(excluding)},
        )
        return tuple(zip(cols["table"], cols["partition_id"], map(int, cols["mark"]), strict=True))

    async def unreported_villages(
        self, at_least_level: int, after_h: float, window_days: int
    ) -> list[tuple[str, str, str, str, int, int]]:
        """(incident_id, village_code, village name, district name, level, hours exposed) of every
        village an incident struck at ``at_least_level`` or more (``exposed_villages``) with no
        report ``after_h`` hours after its exposure, for incidents of the last ``window_days``."""
        cols = await self._columns(
            "SELECT v.incident_id AS incident_id, v.village_code AS village_code, "
            "any(r.name) AS village_name, any(d.name) AS district_name, max(v.level) AS level, "
            "max(dateDiff('hour', v.exposed_since, now64(3))) AS hours "
            "FROM {db}.exposed_villages AS v "
            "LEFT JOIN {db}.regions AS r ON r.code = v.village_code "
            "LEFT JOIN {db}.regions AS d ON d.code = v.district_code "
            "WHERE v.reports = 0 AND v.level >= {level:UInt8} "
            "AND v.exposed_since >= now64(3) - toIntervalDay({days:UInt32}) "
            "AND dateDiff('second', v.exposed_since, now64(3)) >= {seconds:Float64} "
            "GROUP BY v.incident_id, v.village_code ORDER BY v.incident_id, v.village_code",
            {"level": at_least_level, "days": window_days, "seconds": after_h * 3600},
        )
        return list(
            zip(
                cols["incident_id"], cols["village_code"], cols["village_name"], cols["district_name"],
                map(int, cols["level"]), map(int, cols["hours"]), strict=True,
            )
        )  # fmt: skip

    async def sent_notifications(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are recorded as sent."""
        if not ids:
            return set()
        cols = await self._columns(
            "SELECT notification_id FROM {db}.notification_state "
            "WHERE notification_id IN {ids:Array(String)}",
            {"ids": list(ids)},
        )
        return set(cols["notification_id"])

    async def key_record(self) -> tuple[str, str] | None:
        """The pseudonym key recorded last (``privacy_keys``) as (key id, fingerprint), if any."""
        cols = await self._columns(
            "SELECT key_id, fingerprint FROM {db}.privacy_keys ORDER BY recorded_at DESC LIMIT 1", {}
        )
        return (str(cols["key_id"][0]), str(cols["fingerprint"][0])) if cols["key_id"] else None

    async def _columns(self, sql: str, parameters: dict[str, Any]) -> Columns:
        # ``{db}`` is the configured database, an identifier; values go in as parameters.
        return await self._runs.columns(sql.replace("{db}", self._runs.database), parameters)
