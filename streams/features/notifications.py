"""Notifications on ``impact-notifications``: one message per threshold crossing, never repeated.

What was sent is recorded in ClickHouse (``notifications``) after the message is delivered; a
candidate already recorded is skipped, so a replay sends nothing twice. (A crash between delivery
and recording can repeat one message; its key is the notification id, so consumers can de-duplicate.)
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

import orjson

from sinks.config import Backoff
from sinks.tables import NOTIFICATION_STATE, Row, Table
from streams.domain.notifications import Notice, displaced_notices
from streams.engine import Forward, Forwarder, deliver_all
from streams.rows import notification_row

__all__ = ["Notifier", "NotifierReads"]

logger = logging.getLogger(__name__)


class NotifierReads(Protocol):
    async def sent_notifications(self, ids: Sequence[str]) -> set[str]: ...

    async def displaced_by_regency(self, at_least: int) -> list[tuple[str, str, str, int]]: ...


class _Insert(Protocol):
    async def insert(self, table: Table, rows: Sequence[Row]) -> None: ...


class Notifier:
    def __init__(
        self,
        reader: NotifierReads,
        writer: _Insert,
        forwarder: Forwarder,
        topic: str,
        backoff: Backoff,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._forwarder = forwarder
        self._topic = topic
        self._backoff = backoff
        self._now = now

    async def send_new(self, notices: Sequence[Notice]) -> int:
        """Publish the notices not sent before, then record them; returns how many were sent.
        Kafka and ClickHouse failures are retried in place."""
        if not notices:
            return 0
        done = await self._reader.sent_notifications([n.notification_id for n in notices])
        new = [n for n in notices if n.notification_id not in done]
        if not new:
            return 0
        now = self._now()
        forwards = [
            Forward(
                self._topic,
                n.notification_id.encode(),
                orjson.dumps({**dataclasses.asdict(n), "sent_at": now}),
            )
            for n in new
        ]
        await deliver_all(self._forwarder, forwards, self._backoff)
        for n in new:
            logger.info("notified: %s", n.message)
        await self._writer.insert(NOTIFICATION_STATE, [notification_row(n, now) for n in new])
        return len(new)

    async def check_displacement(self, thresholds: tuple[int, ...]) -> int:
        """Notify every (event, regency) whose reported displaced persons crossed a threshold."""
        low = min(thresholds, default=0)
        if not low:
            return 0
        rows = await self._reader.displaced_by_regency(low)
        return await self.send_new(displaced_notices(rows, thresholds))
