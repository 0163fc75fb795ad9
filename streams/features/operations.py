"""Worker-side operations: periodic lag sampling (metrics and ClickHouse) and recovery timing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sinks.tables import CONSUMER_LAG
from streams.domain.lag import GroupLag
from streams.engine import RowWriter
from streams.ops.metrics import GROUP_LAG, GROUP_LAG_SECONDS, GROUP_STATUS, TABLE_RECOVERY_SECONDS
from streams.rows import lag_rows

__all__ = ["publish_lag", "time_table_recovery"]

logger = logging.getLogger(__name__)

_GROUP_CODES = {"OK": 0, "WARN": 1, "ERR": 2}


async def publish_lag(groups: list[GroupLag], writer: RowWriter, now: datetime | None = None) -> None:
    """Export one lag sample as Prometheus gauges and ``consumer_lag`` rows."""
    for g in groups:
        GROUP_STATUS.labels(g.group).set(_GROUP_CODES[g.status])
        for part in g.partitions:
            labels = (g.group, part.topic, str(part.partition))
            GROUP_LAG.labels(*labels).set(part.lag)
            GROUP_LAG_SECONDS.labels(*labels).set(part.lag_seconds)
    rows = lag_rows(groups, now or datetime.now(UTC))
    if rows:
        await writer.insert(CONSUMER_LAG, rows)


async def time_table_recovery(app: Any, ready: Callable[[Any], bool], poll_s: float = 0.1) -> None:
    """Record how long each recovery of the tables (at start, after a rebalance) takes."""
    started: float | None = time.monotonic()
    while True:
        is_ready = ready(app)
        if started is None and not is_ready:
            started = time.monotonic()
        elif started is not None and is_ready:
            TABLE_RECOVERY_SECONDS.set(time.monotonic() - started)
            started = None
        await asyncio.sleep(poll_s)
