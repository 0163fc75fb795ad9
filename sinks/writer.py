"""Batch inserts into the declared tables, with the retry in place that is the pipeline's
backpressure.

``write`` returns only when every row is stored. An infrastructure failure (ClickHouse unreachable,
out of space, a table missing) is retried with capped exponential backoff; rows that ClickHouse
refuses as data (``RowsRejected``) are raised at once, because retrying them cannot succeed.
Rows are state keyed by entity and version, so a batch written twice changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from operator import itemgetter
from typing import Protocol, TypeVar

from clickhouse_connect.driver.exceptions import DataError
from clickhouse_connect.driver.options import check_pandas

from sinks.config import Backoff
from sinks.connection import Connection
from sinks.errors import RowsRejected, SinkError, SinkUnavailable
from sinks.tables import Row, Table
from sinks.views import INCIDENT_GROUPING_INPUTS, incident_refresh_statements

__all__ = ["ClickHouseWriter", "WriteObserver", "classify", "retrying"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: ClickHouse error codes that are about the rows themselves, not the server.
DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        469,  # VIOLATED_CONSTRAINT
    }
)


class WriteObserver(Protocol):
    """Where the writer reports what it did (Prometheus in the worker, nothing in tests)."""

    def written(self, table: str, rows: int, seconds: float) -> None: ...

    def retrying(self, error: SinkError, delay_s: float) -> None: ...


class _Silent:
    def written(self, table: str, rows: int, seconds: float) -> None:
        pass

    def retrying(self, error: SinkError, delay_s: float) -> None:
        pass


def classify(table: str, exc: BaseException) -> SinkError:
    """A ClickHouse failure as ``RowsRejected`` (the data) or ``SinkUnavailable`` (the rest).

    Client-side conversion errors (a value that does not fit its column) are data errors too.
    """
    if isinstance(exc, SinkError):
        return exc
    data = isinstance(exc, DataError | OverflowError | TypeError | ValueError)
    if data or getattr(exc, "code", None) in DATA_ERROR_CODES:
        return RowsRejected(table, exc)
    return SinkUnavailable(table, exc)


async def retrying(
    call: Callable[[], Awaitable[T]], backoff: Backoff, on_retry: Callable[[SinkError, float], None]
) -> T:
    """Await ``call()`` until it succeeds, sleeping along ``backoff`` after each SinkUnavailable.
    Any other error (RowsRejected included) is raised at once."""
    delays = backoff.delays()
    while True:
        try:
            return await call()
        except SinkUnavailable as exc:
            delay = next(delays)
            on_retry(exc, delay)
            logger.warning("%s; retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)


class ClickHouseWriter:
    """Inserts rows table by table, column-oriented, with the declared column names."""

    def __init__(self, conn: Connection, backoff: Backoff, observer: WriteObserver | None = None) -> None:
        self._conn = conn
        self._backoff = backoff
        self._observer = observer or _Silent()
        # clickhouse-connect imports pandas lazily on the first insert (a second with the GIL
        # held, mid-stream): do it at start instead.
        check_pandas()  # type: ignore[no-untyped-call]

    async def write(self, batches: Mapping[Table, Sequence[Row]]) -> None:
        """Store every row. Retries SinkUnavailable in place; raises RowsRejected for the table
        whose rows ClickHouse refused (earlier tables of ``batches`` are written)."""
        for table, rows in batches.items():
            if rows:
                await self.insert(table, rows)

    async def insert(self, table: Table, rows: Sequence[Row]) -> None:
        """Insert ``rows`` into ``table``, retrying in place until ClickHouse takes them."""
        await self._retrying(self._insert_rows, table, rows)

    async def insert_columns(self, table: Table, columns: Sequence[Sequence[object]]) -> None:
        """``insert`` for rows given column by column, in ``table.column_names`` order."""
        await self._retrying(self._insert, table, columns)

    async def _retrying(self, call: Callable[[Table, T], None], table: Table, data: T) -> None:
        await retrying(lambda: self._conn.run(call, table, data), self._backoff, self._observer.retrying)

    def _insert_rows(self, table: Table, rows: Sequence[Row]) -> None:
        self._insert(table, [list(map(itemgetter(name), rows)) for name in table.column_names])

    def _insert(self, table: Table, columns: Sequence[Sequence[object]]) -> None:
        started = time.perf_counter()
        try:
            self._conn.client.insert(
                table.qualified(self._conn.database),
                columns,
                column_names=table.column_names,
                column_oriented=True,
            )
            if table.name in INCIDENT_GROUPING_INPUTS:
                # The incidents follow the alerts and the operators' decisions: regrouped now, in
                # one statement, from what is stored (a replay regroups to the same).
                for statement in incident_refresh_statements(self._conn.database):
                    self._conn.client.command(statement)
        except Exception as exc:
            raise classify(table.name, exc) from exc
        self._observer.written(table.name, len(columns[0]) if columns else 0, time.perf_counter() - started)
