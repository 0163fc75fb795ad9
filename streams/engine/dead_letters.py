"""Dead-lettering: a rejected message goes, raw, to a dead-letter topic with its reason in headers,
and, pseudonymised and size-capped, to the ``dead_letter_state`` table, in a row built by the
mapping layer's builder it is given (``streams.rows.dead_letter_row``), so the engine imports no
domain type."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from sinks.tables import DEAD_LETTER_STATE, Row
from streams.engine.batch import Forward, Message, Output
from streams.privacy import Pseudonymizer
from streams.topics import (
    DLQ_INDEX,
    DLQ_KEY_TRUNCATED_FROM,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_REASON,
    DLQ_TOPIC,
    DLQ_TRUNCATED_FROM,
)

__all__ = ["REASON_MAX", "DeadLetterRow", "DeadLetters"]

logger = logging.getLogger(__name__)

#: Reasons are short: a location and a message, never the input.
REASON_MAX = 500
#: Headers and record overhead kept free under the message limit.
_OVERHEAD = 2048
# A last guard on reasons: they never quote values, but a long digit run would be an identifier.
_DIGITS = re.compile(r"[0-9]{12,}")
# What the table's DateTime64(3) holds of a message's Kafka timestamp.
_ROW_EARLIEST_S = datetime(1900, 1, 1, tzinfo=UTC).timestamp()
_ROW_LATEST_S = datetime(2299, 12, 31, tzinfo=UTC).timestamp()


class DeadLetterRow(Protocol):
    """Builds a message's ``dead_letter_state`` row: its key pseudonymised, its payload redacted
    and capped at ``max_bytes``; may raise on a payload it cannot redact."""

    def __call__(
        self,
        msg: Message,
        reason: str,
        pseudo: Pseudonymizer,
        personal_key: bool,
        max_bytes: int,
        now: datetime,
        /,
    ) -> Row: ...


class DeadLetters:
    def __init__(
        self,
        pseudo: Pseudonymizer,
        row: DeadLetterRow,
        payload_max_bytes: int,
        message_max_bytes: int = 900_000,
    ) -> None:
        """``row``: the mapping layer's builder of a dead letter's row."""
        self._pseudo = pseudo
        self._build = row
        self._payload_max = payload_max_bytes
        self._message_max = message_max_bytes

    def add(self, out: Output, msg: Message, reason: str, personal_key: bool, dlq: str) -> None:
        """Add the dead letter of ``msg`` to ``out``, for the topic ``dlq``. ``personal_key`` says
        the message key is personal data (pseudonymised in the table).

        A value too large for the dead-letter topic is cut to fit, with ``dlq.truncated_from``
        giving its size: the source topic keeps the original at the offset in the headers.

        Never raises, whatever the message: dead-lettering is where a message that broke
        everything else goes. A Kafka timestamp the table cannot hold is stored as unknown
        (1970-01-01); a payload that cannot be redacted, as its size and digest
        (``Pseudonymizer.redact_payload``); and if its row still cannot be built, the message
        goes to the dead-letter topic alone, with an error logged.
        """
        reason = _DIGITS.sub("<redacted>", reason)[:REASON_MAX] or "rejected"
        logger.warning("dead-lettered %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, reason)
        headers = [
            (DLQ_REASON, reason.encode()),
            (DLQ_TOPIC, msg.topic.encode()),
            (DLQ_PARTITION, str(msg.partition).encode()),
            (DLQ_OFFSET, str(msg.offset).encode()),
        ]
        if msg.in_bundle:
            headers.append((DLQ_INDEX, str(msg.index).encode()))
        value, key = msg.value, msg.key
        if key is not None and len(key) > self._message_max // 2:
            headers.append((DLQ_KEY_TRUNCATED_FROM, str(len(key)).encode()))
            key = key[:1024]
        room = self._message_max - _OVERHEAD - len(key or b"")
        if value is not None and len(value) > room:
            headers.append((DLQ_TRUNCATED_FROM, str(len(value)).encode()))
            value = value[: max(0, room)]
        out.forwards.append(Forward(dlq, key, value, tuple(headers)))
        try:
            row = self._row(msg, reason, personal_key)
        except Exception as exc:
            logger.error("the dead-letter row of %s[%d]@%d could not be built (%s): in %s only",
                         msg.topic, msg.partition, msg.offset, type(exc).__name__, dlq)  # fmt: skip
            return
        out.add(DEAD_LETTER_STATE, row)

    def _row(self, msg: Message, reason: str, personal_key: bool) -> Row:
        ts = msg.timestamp
        if ts is not None and not _ROW_EARLIEST_S <= ts <= _ROW_LATEST_S:
            msg = replace(msg, timestamp=None)
        now = datetime.now(UTC)
        try:
            return self._build(msg, reason, self._pseudo, personal_key, self._payload_max, now)
        except Exception as exc:
            logger.error("the dead-letter row of %s[%d]@%d is stored without its payload (%s)",
                         msg.topic, msg.partition, msg.offset, type(exc).__name__)  # fmt: skip
        row = self._build(replace(msg, value=None), reason, self._pseudo, personal_key, 0, now)
        row["payload"] = self._pseudo.unredacted(msg.value or b"")
        row["payload_bytes"] = len(msg.value or b"")
        return row
