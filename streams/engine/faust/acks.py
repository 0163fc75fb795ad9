"""Only processed messages may move a committed offset.

faust-streaming acks a message its stream *skips*: after a rebalance, every message still
buffered from the previous generation of the group is skipped and acked, "so that lag does not
grow" (faust/streams.py). When the same worker is given the same partition again (a rejoin after
a broker outage, a second worker joining and leaving), those offsets count as done: the offset
committed next can pass messages no handler has seen, and a crash before they are fetched again
loses them. An ack from an earlier generation is therefore refused here; the message is fetched
again in the new generation, handled (idempotently) and acked then.
"""

# Works around faust-streaming 0.15.3 acking the messages its stream skips: since faust-streaming
# PR #223 (issue #221, prefetched events out of order after a rebalance) a stream skips a message
# whose ``generation_id`` is not the app's, and then acks it "otherwise the lag would increase"
# (faust/streams.py, ``Stream._py_aiter``: ``do_ack or value is skipped_value``).

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from faust.transport.consumer import Consumer

__all__ = ["refuse_acks_from_earlier_generations"]

logger = logging.getLogger(__name__)

_PATCHED = "_dampak_generation_guard"


def refuse_acks_from_earlier_generations() -> None:
    """Patch Faust's consumer (once per process)."""
    if not getattr(Consumer, _PATCHED, False):
        Consumer.ack = guarded(Consumer.ack)  # type: ignore[method-assign,assignment]
        setattr(Consumer, _PATCHED, True)


def guarded(ack: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """``ack``, refusing messages fetched in an earlier generation of the group."""

    def generation_checked_ack(consumer: Any, message: Any) -> bool:
        generation = getattr(message, "generation_id", None)
        current = getattr(consumer.app, "consumer_generation_id", None)
        if generation is not None and current is not None and generation != current:
            logger.debug("ack of %s:%s from generation %s refused (now %s)",
                         message.tp, message.offset, generation, current)  # fmt: skip
            return False
        return bool(ack(consumer, message))

    return generation_checked_ack
