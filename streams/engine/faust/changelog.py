"""Table changes published to their changelogs in batches, one record batch per partition.

Faust publishes a table change as it is made: a message for its producer buffer, a future, a send
through aiokafka (another future), a callback, and a RocksDB write of the persisted offset, for
every change. A report changes three keys, so this was the largest part of a worker's producing.

Here a handler's write waits in its ``TableState`` (reads in the same batch and in other agents
see it there) and its changelog record waits in ``Changelog`` until the engine flushes, after the
batch's handlers and before its messages are acked. The changes are written to the stores first
(RocksDB write batches: ``write``, which the engine calls as soon as the handlers are done); then
each changelog partition's records go out as aiokafka record batches (``send_batch``), in order,
and the store's persisted offset (where a restore resumes reading) is set once per partition, to
the last offset acknowledged.

The records are the bytes Faust itself would write (``TableState`` encodes keys and values as
Faust's JSON codec does), so restores read changelogs written either way. Ordering per key holds:
rounds of records are published one after another, and a round that failed half-way is sent again
from the first batch not acknowledged, before any later round (a record sent twice is harmless in
a compacted changelog; one overtaken by an older value of its key would not be).

The flushing points keep Faust's guarantees: the engine flushes before acking (so a committed
offset never passes a change that is only local), a rebalance flushes what a batch left behind
when it was abandoned before the partitions are handed over, and so does shutdown (bounded, as
a broker that is down must not hang SIGTERM).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from faust.types import TP

from sinks.config import Backoff

__all__ = ["AioBatchSender", "BatchSender", "Changelog"]

logger = logging.getLogger(__name__)

#: One change: key and value (None deletes the key).
Record = tuple[bytes, bytes | None]


class Store(Protocol):
    """The part of a Faust store a published round updates."""

    def set_persisted_offset(self, tp: Any, offset: int) -> None: ...


class BatchSender(Protocol):
    """Publishes records to one partition, in order, in as few record batches as they fit."""

    async def send(self, topic: str, partition: int, records: list[Record]) -> list[Sent]:
        """Queue ``records``; per record batch, how many records it holds and an awaitable of its
        base offset (None when the producer waits for no acknowledgement), or the error that kept
        the rest from being queued."""
        ...


#: One record batch queued: its number of records and its acknowledgement (or why it was not).
Sent = tuple[int, "Awaitable[int | None] | BaseException"]


class Changelog:
    def __init__(self, sender: BatchSender, backoff: Backoff) -> None:
        self._sender = sender
        self._backoff = backoff
        #: (topic, partition) -> its table's store and the records not yet published, in the
        #: order they were made.
        self._pending: dict[tuple[str, int], tuple[Store, list[Record]]] = {}
        #: The latest round being published; each round waits for the one before it.
        self._last: asyncio.Future[None] | None = None
        #: What writes the changes to their stores (``TableState.write``), called at each flush
        #: before anything is published.
        self._writers: list[Callable[[], None]] = []

    def before_publishing(self, write: Callable[[], None]) -> None:
        """Call ``write`` at each flush, first: it writes the changes made so far to their stores."""
        self._writers.append(write)

    def add(self, store: Store, topic: str, partition: int, key: bytes, value: bytes | None) -> None:
        tp = (topic, partition)
        entry = self._pending.get(tp)
        if entry is None:
            entry = self._pending[tp] = (store, [])
        entry[1].append((key, value))

    def write(self) -> None:
        """Write the changes made so far to their stores (``before_publishing``'s writers)."""
        for write in self._writers:
            write()

    async def flush(self) -> None:
        """Return when every change made so far is in its changelog (acknowledged as the producer's
        ``acks`` asks), and in its store. A caller cancelled while waiting does not cancel the
        publishing. A store write that fails raises (nothing is published then): the engine handles
        the batch again, and the next flush writes and publishes what is pending."""
        self.write()
        if self._pending:
            pending, self._pending = self._pending, {}
            self._last = asyncio.ensure_future(self._publish_after(self._last, pending))
        if self._last is not None and not self._last.done():
            await asyncio.shield(self._last)

    async def _publish_after(
        self,
        previous: asyncio.Future[None] | None,
        pending: dict[tuple[str, int], tuple[Store, list[Record]]],
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # never raises: a round retries until it is published
        stores = {tp: store for tp, (store, _) in pending.items()}
        left = {tp: records for tp, (_, records) in pending.items()}
        delays = self._backoff.delays()
        while left:
            failed: dict[tuple[str, int], list[Record]] = {}
            queued = [(tp, records, await self._queue(tp, records)) for tp, records in left.items()]
            for tp, records, sent in queued:  # every partition queued first, then acknowledged
                done, last = await _settle(sent)
                if last is not None:
                    _persist(stores[tp], tp, last)
                if done < len(records):
                    failed[tp] = records[done:]
            if failed:
                delay = next(delays)
                logger.warning("changelog: %d of %d partitions not published; again in %.1fs",
                               len(failed), len(left), delay)  # fmt: skip
                await asyncio.sleep(delay)
            left = failed

    async def _queue(self, tp: tuple[str, int], records: list[Record]) -> list[Sent]:
        try:
            return await self._sender.send(*tp, records)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:  # the sender's own fault: counted as not queued, sent again
            logger.exception("changelog: queueing %s[%d] failed", *tp)
            return [(len(records), exc)]


def _persist(store: Store, tp: tuple[str, int], offset: int) -> None:
    """Where a restore of the partition resumes; one that failed to be kept only lengthens it."""
    try:
        store.set_persisted_offset(TP(*tp), offset)
    except Exception:
        logger.exception("changelog: keeping the persisted offset of %s[%d] failed", *tp)


async def _settle(sent: list[Sent]) -> tuple[int, int | None]:
    """How many records (from the first) were acknowledged before the first batch that failed, and
    the last offset acknowledged. The batches after a failed one settle too, but are sent again:
    they must not stand after an older value of their keys sent again."""
    done, last, failed = 0, None, False
    for count, ack in sent:
        if isinstance(ack, BaseException):
            error: BaseException | None = ack
        else:
            try:
                base = await ack
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception as exc:
                error = exc
            else:
                error = None
                if not failed and base is not None:
                    last = base + count - 1
        if error is not None and not failed:
            logger.warning("changelog batch not published (%s)", type(error).__name__)
            failed = True
        if not failed:
            done += count
    return done, last


class AioBatchSender:
    """``BatchSender`` over an aiokafka producer (Faust's, found when first needed)."""

    def __init__(self, producer: Callable[[], Any]) -> None:
        self._producer = producer

    async def send(self, topic: str, partition: int, records: list[Record]) -> list[Sent]:
        producer, i = self._producer(), 0
        sent: list[Sent] = []
        while i < len(records):
            builder, start = producer.create_batch(), i
            while i < len(records) and builder.append(timestamp=None, key=records[i][0], value=records[i][1]):
                i += 1
            if i == start:
                raise ValueError("a changelog record larger than the producer's batch size")
            try:
                queued = await producer.send_batch(builder, topic, partition=partition)
                sent.append((i - start, _offset(queued)))
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception as exc:
                sent.append((len(records) - start, exc))
                break
        return sent


async def _offset(queued: Awaitable[Any]) -> int | None:
    metadata = await queued
    return None if metadata is None else int(metadata.offset)
