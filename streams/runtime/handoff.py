"""The hand-off between compute workers and the writer, when they run apart.

A compute worker (``DAMPAK_ROLE=compute``) hands every row to the ``sink-rows`` topic instead of
writing it: one message per row, keyed by table and row identity (``Table.key_columns``), and
carried in bundles (``streams.engine.bundle``): the rows a batch hands over to one partition
travel as one record, partitioned by the row's key, so the rows of one key stay in order on one
partition. In a bundle a row is a JSON array of its values in column order; on its own (bundles
off, for a ClickHouse Kafka engine) a JSON object of its columns; the writer reads both. A compute
worker acks its input only once the rows are delivered: nothing is acked before it is durable.
The writer (``dampak writer``) reads a batch's bundles straight into columns, one list per
column of each table (``row_columns``), and inserts those; it commits its own offsets after each
write. Only a batch that holds something else (a record on its own, a malformed one), or whose
insert ClickHouse refuses, goes through the engine one row at a time (``write_row``), which traces
a refused row to its record and dead-letters it. Rows are state (versioned, or the last one
written wins), so a row written twice changes nothing. The topic keeps records for
``DAMPAK_SINK__ROWS_RETENTION_H`` hours: the writer must not be down longer than that.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

import orjson

from sinks.config import Backoff
from sinks.tables import TABLES, Row, Table
from streams.engine import Forward, Forwarder, Message, Outcome, Output, bundle_forwards, deliver_all
from streams.engine.batch import is_bundle
from streams.engine.bundle import unpack
from streams.errors import InvalidMessage, RowsRejected

__all__ = ["RowProducer", "TableColumns", "decode_row", "row_columns", "row_record", "write_row"]

logger = logging.getLogger(__name__)

_BY_NAME = {t.name: t for t in TABLES}
_COLUMNS = {t.name: frozenset(t.column_names) for t in TABLES}
_DATETIME_INDICES = {t.name: [i for i, (_, type_) in enumerate(t.columns) if type_.startswith("DateTime")]
                     for t in TABLES}  # fmt: skip
_DATETIME_COLUMNS = {t.name: [t.column_names[i] for i in _DATETIME_INDICES[t.name]] for t in TABLES}


def _getter(names: Sequence[str]) -> Callable[[Row], tuple[Any, ...]]:
    """A row's values of ``names``, as a tuple (``itemgetter`` of one name gives the value)."""
    if len(names) == 1:
        return lambda row, name=names[0]: (row[name],)  # type: ignore[misc]
    return itemgetter(*names)


#: Per table: a row's values in column order, and the values that key it.
_VALUES = {t.name: _getter(t.column_names) for t in TABLES}
_KEYS = {t.name: _getter(t.key_columns) for t in TABLES}

#: A batch's rows per table, column by column (in the table's column order).
TableColumns = dict[Table, list[list[Any]]]


def row_record(table: Table, row: Row, compact: bool = False) -> tuple[bytes, bytes]:
    """The key and value of one row's record on ``sink-rows``: ``{"table": <name>, "row":
    {<column>: <value>, ...}}``, or with ``compact`` ``[<name>, [<value>, ...]]``, the values in
    the table's column order (half the bytes, and half the time to parse: the form bundles carry,
    which only dampak's writer reads)."""
    key = (f"{table.name}|" + "|".join(map(str, _KEYS[table.name](row)))).encode()
    if compact:
        return key, orjson.dumps((table.name, _VALUES[table.name](row)))
    return key, orjson.dumps({"table": table.name, "row": row})


def _compact_table(name: Any, values: Any) -> Table:
    """The table of a compact row ``[name, values]``. Raises KeyError for an undeclared table and
    InvalidMessage when ``values`` are not its columns."""
    table = _BY_NAME[name]
    if type(values) is not list or len(values) != len(table.column_names):
        raise InvalidMessage(f"a {table.name} row without the declared columns")
    return table


def _datetime(value: Any) -> Any:
    """A DateTime column's value as the insert takes it: ISO text parsed, anything else as it is."""
    return datetime.fromisoformat(value) if type(value) is str else value


def decode_row(value: bytes | None) -> tuple[Table, Row]:
    """A ``sink-rows`` record (either form) back as its table and row; raises InvalidMessage."""
    try:
        doc = orjson.loads(value or b"")
        if isinstance(doc, list):
            name, values = doc
            table = _compact_table(name, values)
            row: Row = dict(zip(table.column_names, values, strict=True))
        else:
            table = _BY_NAME[doc["table"]]
            row = doc["row"]
            if not isinstance(row, dict):
                raise InvalidMessage(f"a {table.name} row that is not an object")
            if row.keys() != _COLUMNS[table.name]:
                raise InvalidMessage(f"a {table.name} row without the declared columns")
        for column in _DATETIME_COLUMNS[table.name]:
            row[column] = _datetime(row[column])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidMessage("not a sink-rows record") from exc
    return table, row


def row_columns(records: Sequence[Any]) -> tuple[TableColumns, list[float | None]] | None:
    """The rows that ``records`` (consumed ``sink-rows`` records) carry, as columns per table, and
    when each row entered dampak (seconds, if known). None when a record is not a bundle of
    compact rows or a row is not one of a declared table's: the writer then hands the batch to
    the engine, row by row, where ``decode_row`` refuses it. The values are those ``decode_row``
    gives, so both paths insert the same."""
    values: dict[str, list[list[Any]]] = {}
    origins: list[float | None] = []
    try:
        for record in records:
            if not is_bundle(record.headers):
                return None
            ts = record.timestamp / 1000 if record.timestamp else None
            for _, value, origin in unpack(record.value or b""):
                name, row = orjson.loads(value or b"")
                _compact_table(name, row)
                rows = values.get(name)
                if rows is None:
                    rows = values[name] = []
                rows.append(row)
                origins.append(origin or ts)
        columns: TableColumns = {}
        for name, rows in values.items():
            cols = columns[_BY_NAME[name]] = list(map(list, zip(*rows, strict=True)))
            for i in _DATETIME_INDICES[name]:
                cols[i] = list(map(_datetime, cols[i]))
    except (InvalidMessage, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return columns, origins


class RowProducer:
    """The row writer of a compute worker: rows go to ``sink-rows`` in bundles, delivered before
    it returns."""

    def __init__(
        self, forwarder: Forwarder, topic: str, backoff: Backoff, partitions: int, bundled: bool = True
    ) -> None:
        """``bundled=False``: one JSON record per row (``DAMPAK_SINK__ROWS_BUNDLED``)."""
        self._forwarder = forwarder
        self._topic = topic
        self._backoff = backoff
        self._bundled = {topic: partitions} if bundled else {}

    async def insert(self, table: Table, rows: Sequence[Row]) -> None:
        compact = bool(self._bundled)
        forwards = [Forward(self._topic, *row_record(table, row, compact)) for row in rows]
        refused = await deliver_all(self._forwarder, bundle_forwards(forwards, self._bundled), self._backoff)
        if refused:  # a record Kafka refused (too large): the engine finds the row's message
            raise RowsRejected(table.name, refused[0][1])


def write_row(msg: Message, out: Output) -> Outcome:
    """The writer's handler: one row handed over on ``sink-rows`` to its table."""
    table, row = decode_row(msg.value)
    out.add(table, row)
    return Outcome.OK
