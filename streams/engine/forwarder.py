"""Publishing forwarded messages and dead letters: through the Faust app's producer (workers) or a
plain aiokafka producer (the writer)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from streams.engine.batch import Forward

__all__ = ["AioForwarder", "FaustForwarder"]

logger = logging.getLogger(__name__)

_RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


class FaustForwarder:
    """Sends through Faust topics (created on first use, raw bytes) and waits for every delivery."""

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
        return await _deliver(forwards, self._send)

    async def _send(self, f: Forward) -> Any:
        return await self.topic(f.topic).send(
            key=f.key, value=f.value, partition=f.partition, headers=list(f.headers) or None
        )


class AioForwarder:
    """Sends through a plain aiokafka producer (the writer process, which runs no Faust app)."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer

    async def deliver(self, forwards: Sequence[Forward]) -> list[BaseException | None]:
        return await _deliver(forwards, self._send)

    async def _send(self, f: Forward) -> Any:
        return await self._producer.send(
            f.topic, value=f.value, key=f.key, partition=f.partition, headers=list(f.headers) or None
        )


async def _deliver(
    forwards: Sequence[Forward], send: Callable[[Forward], Awaitable[Any]]
) -> list[BaseException | None]:
    """Buffer every forward, then wait for each acknowledgement; one result per forward (None when
    acknowledged). A forward that could not even be buffered is reported, retried by the engine."""
    pending: list[Any] = []
    for f in forwards:
        try:
            pending.append(await send(f))
        except Exception as exc:
            pending.append(exc)
    results: list[BaseException | None] = []
    for p in pending:
        if isinstance(p, BaseException):
            results.append(p)
            continue
        try:
            await p
            results.append(None)
        except Exception as exc:
            results.append(exc)
    return results
