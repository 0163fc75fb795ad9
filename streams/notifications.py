"""Notifications on ``impact-notifications``: one message per threshold crossing, never repeated.

What was sent is recorded in ClickHouse (``notifications``) after the message is delivered; a
candidate already recorded is skipped, so a replay sends nothing twice. (A crash between delivery
and recording can repeat one message; its key is the notification id, so consumers can de-duplicate.)
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.pipeline import Pipeline
from streams.topics import Topic

__all__ = ["Notice", "displaced_notices", "send_new"]

logger = logging.getLogger(__name__)

Notice = dict[str, Any]


def displaced_notices(rows: list[tuple[str, str, str, int]], thresholds: tuple[int, ...]) -> list[Notice]:
    """Notices for every (event, regency) whose reported displaced persons reached a threshold.

    ``rows`` are (event_id, regency_code, regency_name, displaced).
    """
    out = []
    for event_id, regency, name, displaced in rows:
        for t in thresholds:
            if displaced >= t:
                out.append(
                    {
                        "notification_id": f"{event_id}:{regency}:displaced>={t}",
                        "event_id": event_id,
                        "kind": "reported_displaced",
                        "regency_code": regency,
                        "level": str(t),
                        "message": f"{name or regency}: {displaced} persons reported displaced (≥ {t})",
                    }
                )
    return out


async def send_new(p: Pipeline, notices: list[Notice]) -> int:
    """Publish the notices not sent before, then record them; returns how many were sent."""
    if not notices:
        return 0
    ids = ", ".join("'" + n["notification_id"].replace("'", "") + "'" for n in notices)
    db = p.settings.clickhouse.database
    sent = await p.sink.select_columns(
        f"SELECT notification_id FROM {db}.notification_state WHERE notification_id IN ({ids})"
    )
    done = set(sent["notification_id"])
    new = [n for n in notices if n["notification_id"] not in done]
    if not new:
        return 0
    topic = p.topics[Topic.IMPACT_NOTIFICATIONS]
    now = datetime.now(UTC)
    for n in new:
        delivery = await topic.send(
            key=n["notification_id"].encode(), value=orjson.dumps({**n, "sent_at": now})
        )
        await delivery
        logger.info("notified: %s", n["message"])
    await p.sink.write({"notification_state": [{**n, "sent_at": now} for n in new]})
    return len(new)
