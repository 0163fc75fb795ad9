"""The hand-off between compute workers and the writer, when they run apart.

A compute worker (``DAMPAK_ROLE=compute``) hands every row to the ``sink-rows`` topic instead of
writing it: one message per row, keyed by table and row identity (``Table.key_columns``), and
carried in bundles (``streams.engine.bundle``): the rows a batch hands over to one partition
travel as one record, partitioned by the row's key, so the rows of one key stay in order on one
partition. It acks its input only once the rows are delivered: nothing is acked before it is
durable. The writer (``dampak writer``) unpacks the records into their rows, writes them in large
batches and commits its own offsets after each write. Rows are state (versioned, or the last one
written wins), so a row written twice changes nothing. The topic keeps records for
``DAMPAK_SINK__ROWS_RETENTION_H`` hours: the writer must not be down longer than that.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import orjson

from sinks.config import Backoff
from sinks.tables import TABLES, Row, Table
from streams.engine import Forward, Forwarder, Message, Outcome, Output, bundle_forwards, deliver_all
from streams.errors import InvalidMessage

__all__ = ["RowProducer", "decode_row", "row_record", "write_row"]

logger = logging.getLogger(__name__)

_BY_NAME = {t.name: t for t in TABLES}
_DATETIME_COLUMNS = {t.name: [n for n, type_ in t.columns if type_.startswith("DateTime")] for t in TABLES}
_COLUMNS = {t.name: frozenset(t.column_names) for t in TABLES}


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
        if not isinstance(row, dict):
            raise InvalidMessage(f"a {table.name} row that is not an object")
        for name in _DATETIME_COLUMNS[table.name]:
            if isinstance(row.get(name), str):
                row[name] = datetime.fromisoformat(row[name])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidMessage("not a sink-rows record") from exc
    if row.keys() != _COLUMNS[table.name]:
        raise InvalidMessage(f"a {table.name} row without the declared columns")
    return table, row


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
        forwards = [Forward(self._topic, *row_record(table, row)) for row in rows]
        await deliver_all(self._forwarder, bundle_forwards(forwards, self._bundled), self._backoff)


def write_row(msg: Message, out: Output) -> Outcome:
    """The writer's handler: one row handed over on ``sink-rows`` to its table."""
    table, row = decode_row(msg.value)
    out.add(table, row)
    return Outcome.OK
