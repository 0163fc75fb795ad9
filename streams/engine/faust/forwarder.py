"""Publishing forwarded messages and dead letters through the Faust app's producer (workers)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from streams.engine.backend import send_all
from streams.engine.batch import Forward
from streams.engine.faust.faults import FAULTS

__all__ = ["FaustForwarder"]

logger = logging.getLogger(__name__)

_RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


class FaustForwarder:
    """Sends through Faust topics (created on first use, raw bytes) and waits for every delivery."""

    refused_record = FAULTS.refused

    def __init__(self, app: Any, buffers: Mapping[str, int] | None = None) -> None:
        """``buffers``: topic name -> how many records an agent of it may hold unread (Faust's
        ``stream_buffer_maxsize`` for the others)."""
        self._app = app
        self._buffers = dict(buffers or {})
        self._topics: dict[str, Any] = {}

    def topic(self, name: str) -> Any:
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = self._app.topic(name, internal=False, **_RAW)
            # Set here: faust-streaming's ``App.topic`` takes ``maxsize`` but drops it.
            topic.maxsize = self._buffers.get(name)
        return topic

    async def deliver(self, forwards: Sequence[Forward]) -> list[BaseException | None]:
        return await send_all(forwards, self._send)

    async def _send(self, f: Forward) -> Any:
        return await self.topic(f.topic).send(
            key=f.key, value=f.value, partition=f.partition, headers=list(f.headers) or None
        )
