"""The reads that features need, as named methods with server-side parameters (no value is ever
formatted into SQL). Retried in place like writes: the caller needs the answer to go on."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sinks.config import Backoff
from sinks.connection import Connection
from sinks.errors import SinkError
from sinks.writer import classify, retrying

__all__ = ["ClickHouseReader"]

logger = logging.getLogger(__name__)

Columns = dict[str, list[Any]]


class ClickHouseReader:
    def __init__(
        self,
        conn: Connection,
        backoff: Backoff,
        on_retry: Callable[[SinkError, float], None] = lambda error, delay: None,
    ) -> None:
        self._conn = conn
        self._backoff = backoff
        self._on_retry = on_retry

    async def village_stats(self) -> Columns:
        """Registry statistics per village, column-oriented (``village_stats`` view)."""
        return await self._columns(
            "SELECT village_code, households, persons, kpm_households, vulnerable_persons, pregnant, "
            "lat, lon FROM {db}.village_stats",
            {},
        )

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

    async def _columns(self, sql: str, parameters: dict[str, Any]) -> Columns:
        # ``{db}`` is the configured database, an identifier; values go in as parameters.
        statement = sql.replace("{db}", self._conn.database)
        return await retrying(
            lambda: self._conn.run(self._select, statement, parameters), self._backoff, self._on_retry
        )

    def _select(self, sql: str, parameters: dict[str, Any]) -> Columns:
        try:
            result = self._conn.client.query(sql, parameters=parameters)
        except Exception as exc:
            raise classify("(query)", exc) from exc
        # An empty result may come back without column names (chDB): absent columns read as empty.
        out: Columns = defaultdict(list)
        if result.row_count:
            for name, col in zip(result.column_names, result.result_columns, strict=True):
                out[name] = list(col)
        return out
