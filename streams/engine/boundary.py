"""Limits at the boundary: what a message on an input topic may be before any handler sees it.

The engine checks them for the input flows (``Flow.boundary``); a message over one is
dead-lettered with the limit in its reason, so no upstream system can make a handler, the
redaction of a dead letter or the producer meet input of a size or shape nothing was built for
(a 700-level JSON array stalled all input routing once: issue 27).
"""

from __future__ import annotations

import logging
import re

from schemas.common import EARLIEST, MAX_FUTURE
from streams.engine.batch import Message

__all__ = ["DEPTH_MAX", "MESSAGE_MAX_BYTES", "boundary_fault", "deeper_than"]

logger = logging.getLogger(__name__)

#: Key and value together. The broker's and aiokafka's default limit (1 MiB): a broker configured
#: to take more does not make dampak take more.
MESSAGE_MAX_BYTES = 1 << 20
#: JSON nesting. dampak's contracts nest 5 levels at most (an alert's polygon); the JSON parsers
#: stop at 200 (pydantic) and 1,024 (orjson) levels, and Python's recursion at about 1,000 frames.
DEPTH_MAX = 32

_EARLIEST_S = EARLIEST.timestamp()
_MAX_FUTURE_S = MAX_FUTURE.total_seconds()
# A JSON string, escapes included; one left open runs to the end (possessive: linear time).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.S)
_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
# Both kinds of bracket to one, so that a pass can drop every innermost pair at once.
_PARENS = bytes.maketrans(_BRACKETS, b"()()")


def boundary_fault(msg: Message, now: float) -> str | None:
    """Why ``msg`` is over a boundary limit (a reason that quotes no input value), or None.
    ``now``: seconds since the epoch, for the Kafka timestamp's upper bound."""
    size = len(msg.value or b"") + len(msg.key or b"")
    if size > MESSAGE_MAX_BYTES:
        return f"message of {size} bytes is over the limit of {MESSAGE_MAX_BYTES}"
    if msg.value is not None and deeper_than(msg.value, DEPTH_MAX):
        return f"JSON nested deeper than {DEPTH_MAX} levels"
    ts = msg.timestamp
    # ``not (a <= ts <= b)`` also refuses NaN.
    if ts is not None and not _EARLIEST_S <= ts <= now + _MAX_FUTURE_S:
        return f"Kafka timestamp out of range ({EARLIEST:%Y-%m-%d} to now + {_MAX_FUTURE_S:.0f} s)"
    return None


def deeper_than(value: bytes, limit: int) -> bool:
    """Whether ``value``, when it is JSON (it starts with ``[`` or ``{``), nests brackets deeper
    than ``limit``, counted outside strings, whether they close or not. No recursion, at most
    ``limit + 1`` passes over the brackets; a value with at most ``limit`` brackets is not scanned.
    """
    if value.count(b"[") + value.count(b"{") <= limit:
        return False
    if value.lstrip()[:1] not in (b"[", b"{"):
        return False  # not JSON (CAP XML, text): its own parser bounds it
    parens = _STRING.sub(b"", value).translate(_PARENS, _NOT_BRACKETS)
    # Each pass drops the innermost pairs, one level of nesting. What stays open adds its own
    # levels (exact for JSON that parses; an unparseable one is refused anyway).
    for passes in range(limit + 1):
        inner = parens.replace(b"()", b"")
        if len(inner) == len(parens):
            return passes + parens.count(b"(") > limit
        parens = inner
    return True
