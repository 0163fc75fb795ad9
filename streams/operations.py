"""Worker-side operations: periodic lag sampling (metrics + ClickHouse) and recovery timing."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from streams.lag import GroupLag, LagMonitor
from streams.metrics import GROUP_LAG, GROUP_LAG_SECONDS, GROUP_STATUS, TABLE_RECOVERY_SECONDS
from streams.pipeline import Pipeline

__all__ = ["lag_rows", "register"]

logger = logging.getLogger(__name__)

_GROUP_CODES = {"OK": 0, "WARN": 1, "ERR": 2}


def lag_rows(groups: list[GroupLag], at: datetime) -> list[dict[str, Any]]:
    return [
        {
            "sampled_at": at,
            "group": g.group,
            "topic": p.topic,
            "partition": p.partition,
            "committed": p.committed,
            "end_offset": p.end,
            "lag": p.lag,
            "lag_seconds": p.lag_seconds,
            "status": p.status,
            "group_status": g.status,
        }
        for g in groups
        for p in g.partitions
    ]


def register(p: Pipeline) -> None:
    app = p.app
    monitor: list[LagMonitor] = []

    @app.timer(p.settings.lag.sample_interval_s, on_leader=True, name="sample_consumer_lag")
    async def sample_consumer_lag() -> None:
        # Blocking kafka-python calls run in a thread; a failed sample is logged, never fatal.
        try:
            loop = asyncio.get_running_loop()
            if not monitor:
                monitor.append(await loop.run_in_executor(None, LagMonitor, p.settings))
            groups = await loop.run_in_executor(None, monitor[0].sample)
        except Exception:
            logger.exception("sampling consumer lag failed")
            return
        for g in groups:
            GROUP_STATUS.labels(g.group).set(_GROUP_CODES[g.status])
            for part in g.partitions:
                labels = (g.group, part.topic, str(part.partition))
                GROUP_LAG.labels(*labels).set(part.lag)
                GROUP_LAG_SECONDS.labels(*labels).set(part.lag_seconds)
        await p.sink.write({"consumer_lag": lag_rows(groups, datetime.now(UTC))})

    @app.task
    async def time_table_recovery() -> None:
        started: float | None = time.monotonic()
        while True:
            ready = bool(app.tables.actives_ready) and not app.rebalancing
            if started is None and not ready:
                started = time.monotonic()
            elif started is not None and ready:
                TABLE_RECOVERY_SECONDS.set(time.monotonic() - started)
                started = None
            await asyncio.sleep(0.1)
