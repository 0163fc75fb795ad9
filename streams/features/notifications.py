"""Notifications on ``impact-notifications``: one message per threshold crossing, never repeated.

What was sent is recorded in ClickHouse (``notifications``) after the message is delivered; a
candidate already recorded is skipped, so a replay sends nothing twice. (A crash between delivery
and recording can repeat one message; its key is the notification id, so consumers can de-duplicate.)
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

import orjson

from sinks.config import Backoff
from sinks.tables import CONSUMER_LAG, NOTIFICATION_STATE
from streams.domain.notifications import Notice, displaced_notices, unreported_notices
from streams.engine import Forward, Forwarder, RowWriter, deliver_all
from streams.rows import notification_row

__all__ = ["Notifier", "NotifierReads"]

logger = logging.getLogger(__name__)

#: Tables written on a timer or by the check itself, whose inserts do not change reported figures.
_NOT_READ_BY_THE_CHECK = (CONSUMER_LAG.name, NOTIFICATION_STATE.name)


class NotifierReads(Protocol):
    async def sent_notifications(self, ids: Sequence[str]) -> set[str]: ...

    async def data_marks(self, excluding: Sequence[str] = ()) -> tuple[tuple[str, str, int], ...]: ...

    async def displaced_by_regency(self, at_least: int) -> list[tuple[str, str, str, int]]: ...

    async def unreported_villages(
        self, at_least_level: int, after_h: float, window_days: int
    ) -> list[tuple[str, str, str, str, int, int]]: ...


class Notifier:
    def __init__(
        self,
        reader: NotifierReads,
        writer: RowWriter,
        forwarder: Forwarder,
        topic: str,
        backoff: Backoff,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_share: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``max_share``: the largest share of the leader's time the displacement check may take
        (after a check of d seconds, the next begins no sooner than d * (1/max_share - 1) later)."""
        self._reader = reader
        self._writer = writer
        self._forwarder = forwarder
        self._topic = topic
        self._backoff = backoff
        self._now = now
        #: The data marks the last complete displacement check saw.
        self._checked: tuple[tuple[str, str, int], ...] | None = None
        self._max_share = max_share
        self._clock = clock
        #: When (``clock``) the next displacement check may begin.
        self._not_before = float("-inf")

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

    async def check_unreported(self, at_least_level: int, after_h: float, window_days: int) -> int:
        """Notify every village an incident struck hard (``at_least_level``) that no report has
        come from ``after_h`` hours after; each village once. Time passing is what changes the
        answer, so this check runs on its own timer, not on new rows."""
        rows = await self._reader.unreported_villages(at_least_level, after_h, window_days)
        return await self.send_new(unreported_notices(rows, after_h))

    async def check_displacement(self, thresholds: tuple[int, ...]) -> int:
        """Notify every (event, regency) whose reported displaced persons crossed a threshold.

        The check reads every report, so it is skipped while no row was inserted since the last
        complete one (the figures it reads cannot have changed): an idle worker does not repeat
        it every few seconds beside the work that comes next (an alert's exposure estimate). Its
        cost grows with the reports; the next check waits in proportion to the last one's length,
        so that it never takes more than ``max_share`` of the leader's time from the stream."""
        low = min(thresholds, default=0)
        if not low or self._clock() < self._not_before:
            return 0
        try:
            marks = await self._reader.data_marks(_NOT_READ_BY_THE_CHECK)
        except Exception as exc:  # e.g. a server user without system.parts: check every time
            logger.debug("data marks unavailable (%s); checking anyway", type(exc).__name__)
            marks = None
        if marks is not None and marks == self._checked:
            return 0
        started = self._clock()
        rows = await self._reader.displaced_by_regency(low)
        sent = await self.send_new(displaced_notices(rows, thresholds))
        self._checked = marks
        ended = self._clock()
        self._not_before = ended + (ended - started) * (1 / self._max_share - 1)
        return sent
