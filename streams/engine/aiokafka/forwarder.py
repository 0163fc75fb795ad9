"""Publishing forwarded messages and dead letters through a plain aiokafka producer (the writer
process, which runs no Faust app)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from streams.engine.aiokafka.faults import REFUSED_RECORD
from streams.engine.backend import send_all
from streams.engine.batch import Forward

__all__ = ["AioForwarder"]

logger = logging.getLogger(__name__)


class AioForwarder:
    """Sends through a plain aiokafka producer and waits for every delivery."""

    refused_record = REFUSED_RECORD

    def __init__(self, producer: Any) -> None:
        self._producer = producer

    async def deliver(self, forwards: Sequence[Forward]) -> list[BaseException | None]:
        return await send_all(forwards, self._send)

    async def _send(self, f: Forward) -> Any:
        return await self._producer.send(
            f.topic, value=f.value, key=f.key, partition=f.partition, headers=list(f.headers) or None
        )
