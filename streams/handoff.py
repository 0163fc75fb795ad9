"""The hand-off between compute workers and the writer, when they run apart.

A compute worker (``DAMPAK_ROLE=compute``) hands every row to the ``sink-rows`` topic instead of
writing it, one record per row, keyed by table and row identity (``Table.key_columns``), and
acks its input only once the rows are delivered there: nothing is acked before it is durable.
The writer (``dampak writer``) owns the embedded engine, writes those records in large batches
and commits its own offsets after each write. Rows are state, so the topic is compacted and a
record written twice changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import orjson

from sinks.config import Backoff
from sinks.tables import TABLES, Row, Table
from streams.engine import Forward, Forwarder, Message, Outcome, Output, deliver_all
from streams.errors import InvalidMessage

__all__ = ["RowProducer", "decode_row", "row_record", "write_row"]

logger = logging.getLogger(__name__)

_BY_NAME = {t.name: t for t in TABLES}
_DATETIME_COLUMNS = {t.name: {n for n, type_ in t.columns if type_.startswith("DateTime")} for t in TABLES}


def row_record(table: Table, row: Row) -> tuple[bytes, bytes]:
    """The key and value of one row's record on ``sink-rows``."""
    key = f"{table.name}|" + "|".join(str(row[c]) for c in table.key_columns)
    return key.encode(), orjson.dumps({"table": table.name, "row": row})


def decode_row(value: bytes | None) -> tuple[Table, Row]:
    """A ``sink-rows`` record back as its table and row; raises InvalidMessage."""
    try:
        doc = orjson.loads(value or b"")
        table = _BY_NAME[doc["table"]]
        row: Row = doc["row"]
        for name in _DATETIME_COLUMNS[table.name]:
            if isinstance(row.get(name), str):
                row[name] = datetime.fromisoformat(row[name])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidMessage("not a sink-rows record") from exc
    if set(row) != set(table.column_names):
        raise InvalidMessage(f"a {table.name} row without the declared columns")
    return table, row


class RowProducer:
    """The row writer of a compute worker: rows go to ``sink-rows``, delivered before it returns."""

    def __init__(self, forwarder: Forwarder, topic: str, backoff: Backoff) -> None:
        self._forwarder = forwarder
        self._topic = topic
        self._backoff = backoff

    async def insert(self, table: Table, rows: Sequence[Row]) -> None:
        forwards = [Forward(self._topic, *row_record(table, row)) for row in rows]
        await deliver_all(self._forwarder, forwards, self._backoff)


def write_row(msg: Message, out: Output) -> Outcome:
    """The writer's handler: one ``sink-rows`` record to its table."""
    table, row = decode_row(msg.value)
    out.add(table, row)
    return Outcome.OK
