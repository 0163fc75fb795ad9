"""The engine on a plain consumer group, for flows that keep no table: the input topics' routing
(validate, re-key, forward) in every worker, and the writer's ``sink-rows``.

Faust turns each record into an event and passes it through its conductor, channel queue and
stream, one await at a time; for a flow that only validates and re-keys, that machinery cost more
than the flow (docs/profile-worker.md). Here batches are fetched whole (``getmany``) and handled by
the same engine, with the same error policy.

- A batch is gathered for at most its flows' ``Batching.seconds`` (the shortest among the topics
  it holds) or their ``Batching.records``, and handled one topic at a time.
- Offsets are committed after the batch is handled (forwards delivered, rows written), so nothing
  is committed before it is done. They are committed at most every ``commit_every_s``, when no
  record has come for ``idle_s``, before partitions are handed over, and at shutdown.
- A rebalance abandons the batch in flight at its next await, as in the Faust agents, and the
  revocation waits (up to ``handover_wait_s``) for it to stop, then commits what was done: the
  next owner starts where this one stopped, and never while this one still delivers. Records
  fetched while a rebalance is under way are dropped unhandled: aiokafka starts every partition
  of the new assignment from its committed offset, so they are fetched again by their owner.

A worker's routing waits while its Faust agents rebalance or restore their tables (``ready``):
what it forwards then would land on internal-topic partitions whose owner is being decided, the
window in which Faust's fetcher has dropped records before (streams/engine/faust/resume.py).

Replays are safe for the same reason as in the Faust agents: what the routes forward is decided
by position downstream (a copy seen again is a duplicate), and rows are written idempotently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.errors import KafkaError as AioKafkaError

from sinks.config import Backoff
from streams.engine.batch import messages_of
from streams.engine.loop import Engine, Flow

__all__ = ["ConsumerLoop"]

logger = logging.getLogger(__name__)


class _Revocations(ConsumerRebalanceListener):  # type: ignore[misc]
    """The group as the engine sees it (``backend.Group``), counted from aiokafka's callbacks."""

    def __init__(self, loop: ConsumerLoop) -> None:
        self.rebalances = 0
        self._rebalancing = False
        self._loop = loop

    def rebalancing(self) -> bool:
        return self._rebalancing

    def generation(self) -> int | None:
        return None

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.rebalances += 1  # the batch in flight stops at its next await
        self._rebalancing = True
        await self._loop.hand_over()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._rebalancing = False


class ConsumerLoop:
    """Runs ``flows`` (physical topic -> flow) on ``engine`` in a consumer group; ``run`` takes the
    consumer, an ``AIOKafkaConsumer`` built with ``enable_auto_commit=False`` and
    ``max_poll_records`` of ``max_records``. The loop owns the group's view the engine is handed
    (its rebalances, counted from the consumer's callbacks).

    ``at_once``, if given, is offered each topic's records of a batch first: it handles them all
    at once and returns True, or returns False (having changed nothing that a replay would not
    change again) to leave them to the engine, one message at a time. The writer's inserts take
    this way (``streams.runtime.writer``)."""

    def __init__(
        self,
        engine: Engine,
        flows: Mapping[str, Flow],
        backoff: Backoff,
        *,
        commit_every_s: float = 1.0,
        handover_wait_s: float = 30.0,
        idle_s: float = 1.0,
        bundled: bool = False,
        ready: Callable[[], bool] = lambda: True,
        at_once: Callable[[str, list[Any]], Awaitable[bool]] | None = None,
    ) -> None:
        self._engine = engine
        self._consumer: Any = None
        self._flows = dict(flows)
        self._backoff = backoff
        self._size = max(flow.batching.records for flow in flows.values())
        self._within = {topic: flow.batching.seconds for topic, flow in flows.items()}
        self._commit_every_s = commit_every_s
        self._handover_wait_s = handover_wait_s
        self._idle_s = idle_s
        self._ready = ready
        self._bundled = bundled
        self._at_once = at_once
        self._busy = asyncio.Lock()
        self._done: dict[TopicPartition, int] = {}
        self._committed_at = time.monotonic()
        self.group = _Revocations(self)

    @property
    def max_records(self) -> int:
        """The most records one batch takes (the consumer's ``max_poll_records``)."""
        return self._size

    async def run(self, consumer: Any) -> None:
        """Subscribe ``consumer``, then fetch and handle batches until cancelled; commits what was
        handled and leaves the group on the way out."""
        self._consumer = consumer
        self._consumer.subscribe(list(self._flows), listener=self.group)
        await self._consumer.start()
        try:
            while True:
                while not self._ready():  # the flows downstream are rebalancing or recovering
                    await asyncio.sleep(0.05)
                records = await self._gather()
                # Nothing runs between the fetch and here (an unheld lock is taken without a wait).
                async with self._busy:
                    if not records:  # idle: commit what is done
                        if self._done:
                            await self._commit()
                        continue
                    if self.group.rebalancing():
                        # Fetched in the generation being revoked; the new assignment starts from
                        # the committed offsets (this worker's, committed at the revocation).
                        logger.info("dropped %d records fetched as a rebalance began", len(records))
                        continue
                    await self._handle(records, self.group.rebalances)
                    if time.monotonic() - self._committed_at >= self._commit_every_s:
                        await self._commit()
        finally:
            try:
                if self._done:
                    await asyncio.wait_for(self._commit(), self._handover_wait_s)
            finally:
                await self._consumer.stop()

    async def hand_over(self) -> None:
        """Called as partitions are revoked: wait for the batch in flight to stop, and commit."""
        try:
            await asyncio.wait_for(self._busy.acquire(), self._handover_wait_s)
        except TimeoutError:
            logger.warning("a batch was still in flight %.0f s into a rebalance", self._handover_wait_s)
            return
        try:
            await self._commit()
        finally:
            self._busy.release()

    async def _gather(self) -> list[Any]:
        """Records for one batch: wait for the first, then gather until the batch is full or the
        shortest ``Batching.seconds`` among its topics has passed."""
        records: list[Any] = []
        deadline: float | None = None
        while len(records) < self._size:
            wait = self._idle_s if deadline is None else deadline - time.monotonic()
            if wait <= 0:
                break
            fetched = await self._consumer.getmany(
                timeout_ms=int(wait * 1000), max_records=self._size - len(records)
            )
            now = time.monotonic()
            for tp, batch in fetched.items():
                if batch:
                    records.extend(batch)
                    end = now + self._within[tp.topic]
                    deadline = end if deadline is None else min(deadline, end)
            if deadline is None:
                break  # nothing came for ``idle_s``: the caller commits what is done
        return records

    async def _handle(self, records: list[Any], rebalances: int) -> None:
        by_topic: dict[str, list[Any]] = {}
        last: dict[tuple[str, int], int] = {}
        for r in records:
            by_topic.setdefault(r.topic, []).append(r)
            last[r.topic, r.partition] = r.offset
        for topic, batch in by_topic.items():
            if self._at_once is not None and await self._at_once(topic, batch):
                continue
            messages = [m for r in batch for m in messages_of(r, _seconds(r.timestamp), None, self._bundled)]
            if await self._engine.handle(self._flows[topic], messages, self.group, rebalances) is None:
                return  # abandoned: none of it is committed
        for (topic, partition), offset in last.items():
            self._done[TopicPartition(topic, partition)] = offset + 1

    async def _commit(self) -> None:
        """Commit the offsets handled so far; retry a broker's unavailability with backoff. After a
        rebalance took the partitions, the commit is refused and their next owner handles the
        records again."""
        offsets, delays = dict(self._done), self._backoff.delays()
        while offsets:
            try:
                await self._consumer.commit(offsets)
                break
            except (CommitFailedError, IllegalStateError) as exc:
                logger.warning("offsets not committed (%s): the partitions' next owner handles them again",
                               type(exc).__name__)  # fmt: skip
                break
            except AioKafkaError as exc:
                delay = next(delays)
                logger.warning("committing offsets failed (%s); retrying in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
        for tp, offset in offsets.items():
            if self._done.get(tp) == offset:
                del self._done[tp]
        self._committed_at = time.monotonic()


def _seconds(timestamp_ms: int | None) -> float | None:
    """A record's Kafka timestamp in seconds; None when it has none (Kafka's -1). Any other
    value, before 1970 too, is kept, for the boundary limits to judge."""
    return timestamp_ms / 1000 if timestamp_ms is not None and timestamp_ms != -1 else None
