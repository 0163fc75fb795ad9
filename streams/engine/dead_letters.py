"""Dead-lettering: a rejected message goes, raw, to ``<topic>-dlq`` with its reason in headers,
and, pseudonymised and size-capped, to the ``dead_letter_state`` table."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sinks.tables import DEAD_LETTER_STATE
from streams.engine.batch import Forward, Message, Output
from streams.privacy import Pseudonymizer
from streams.rows import dead_letter_row
from streams.topics import DLQ_SUFFIX

__all__ = ["DeadLetters"]

logger = logging.getLogger(__name__)


class DeadLetters:
    def __init__(self, pseudo: Pseudonymizer, payload_max_bytes: int) -> None:
        self._pseudo = pseudo
        self._max_bytes = payload_max_bytes

    def add(self, out: Output, msg: Message, reason: str, personal_key: bool) -> None:
        """Add the dead letter of ``msg`` to ``out``. ``reason`` never holds an input value;
        ``personal_key`` says the message key is personal data (pseudonymised in the table)."""
        logger.warning("dead-lettered %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, reason)
        headers = (
            ("dlq.reason", reason.encode()),
            ("dlq.topic", msg.topic.encode()),
            ("dlq.partition", str(msg.partition).encode()),
            ("dlq.offset", str(msg.offset).encode()),
        )
        out.forwards.append(Forward(msg.topic + DLQ_SUFFIX, msg.key, msg.value, headers))
        out.add(
            DEAD_LETTER_STATE,
            dead_letter_row(msg, reason, self._pseudo, personal_key, self._max_bytes, datetime.now(UTC)),
        )
