"""The engine's loop and error policy.

For each batch of events: call the flow's handler once per event, publish what the handlers
forwarded, write their rows, run the after-write hooks, and only then ack; so an offset is never
committed before its rows are in ClickHouse. The error policy lives here and nowhere else:

- a fault that belongs to one event (``InvalidMessage``, or any other exception from its handler)
  dead-letters that event, and the batch goes on;
- rows that ClickHouse refuses as data (``RowsRejected``) are traced to their message by halving
  the batch, and that message is dead-lettered;
- infrastructure faults (ClickHouse or Kafka unavailable) are retried in place with capped
  backoff, the backpressure; a retry never re-sends what the batch already delivered.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import weakref
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from faust.streams import _current_event

from sinks.config import Backoff
from sinks.errors import SinkUnavailable
from sinks.tables import Row, Table
from streams.engine.batch import Forward, Handler, Message, Outcome, Output
from streams.engine.dead_letters import DeadLetters
from streams.errors import InvalidMessage
from streams.metrics import END_TO_END_SECONDS, EVENTS, SINK_BATCH_SECONDS

__all__ = ["Engine", "Flow", "Forwarder", "RowWriter", "deliver_all"]

logger = logging.getLogger(__name__)


class RowWriter(Protocol):
    """Stores rows: retries unavailability in place, raises ``RowsRejected`` for refused data."""

    async def insert(self, table: Table, rows: Sequence[Row]) -> None: ...


class Forwarder(Protocol):
    """Publishes messages; returns, per message, None when delivered or the error."""

    async def deliver(self, forwards: Sequence[Forward]) -> list[BaseException | None]: ...


@dataclass(frozen=True)
class Flow:
    """One agent: its name, its handler, the dead-letter topic of its rejects, and whether its
    message keys are personal data."""

    name: str
    handler: Handler
    dlq: str
    personal_key: bool = False


class Engine:
    def __init__(
        self,
        writer: RowWriter,
        forwarder: Forwarder,
        dead_letters: DeadLetters,
        backoff: Backoff,
        batch_size: int = 10_000,
        batch_seconds: float = 0.2,
    ) -> None:
        self._writer = writer
        self._forwarder = forwarder
        self._dead_letters = dead_letters
        self._backoff = backoff
        self._batch_size = batch_size
        self._batch_seconds = batch_seconds

    # ------------------------------------------------------------ the Faust side
    async def run(self, flow: Flow, stream: Any) -> None:
        """The body of a Faust agent: take events without acking, process, then ack them."""
        async for events in stream.noack_take(self._batch_size, within=self._batch_seconds):
            started = time.perf_counter()
            messages = [_message(event) for event in events]
            outcomes = await self._process_until_done(flow, messages)
            visible = time.time()
            counts: Counter[tuple[str, str]] = Counter()
            for event, msg, outcome in zip(events, messages, outcomes, strict=True):
                counts[msg.topic, outcome.value] += 1
                if msg.timestamp:
                    END_TO_END_SECONDS.observe(max(0.0, visible - msg.timestamp))
                await stream.ack(event)
            for (topic, label), n in counts.items():
                EVENTS.labels(topic, label).inc(n)
            SINK_BATCH_SECONDS.observe(time.perf_counter() - started)

    async def _process_until_done(self, flow: Flow, messages: list[Message]) -> list[Outcome]:
        # ``process`` retries and isolates every fault it knows; anything else is a bug in the
        # engine itself. Never ack what was not written: log, back off, and try the batch again.
        delays = self._backoff.delays()
        while True:
            try:
                return await self.process(flow, messages)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.error("%s: batch of %d failed (%s); retrying", flow.name, len(messages), _where(exc))
                await asyncio.sleep(next(delays))

    # ------------------------------------------------------------ one batch
    async def process(self, flow: Flow, messages: Sequence[Message]) -> list[Outcome]:
        """Handle, forward, write and run after-write hooks for one batch; returns the outcome of
        each message. Returns only when every row is written or its message dead-lettered."""
        out = Output()
        outcomes = [await self._handle(flow, i, msg, out) for i, msg in enumerate(messages)]
        await self._deliver(out.forwards)
        rejected = await self._write(out)
        if rejected:
            letters = Output()
            for index, reason in sorted(rejected.items()):
                outcomes[index] = Outcome.DEAD_LETTER
                self._dead_letters.add(letters, messages[index], reason, flow.personal_key, flow.dlq)
            await self._deliver(letters.forwards)
            if await self._write(letters):
                logger.error("%s: dead-letter rows refused by ClickHouse (kept in the DLQ topic)", flow.name)
        for hook in out.after_write:
            await hook()
        return outcomes

    async def _handle(self, flow: Flow, index: int, msg: Message, out: Output) -> Outcome:
        out.current = index
        mark = out.mark()
        try:
            with _current(msg.native):
                result = flow.handler(msg, out)
                if inspect.isawaitable(result):
                    result = await result
            return result
        except InvalidMessage as exc:
            reason = exc.reason
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A fault of this event only (a bug or an input no contract foresaw): dead-letter it and
            # go on. Only the type and place are logged: an exception's text may hold input values.
            logger.error("%s: handler failed on %s[%d]@%d: %s", flow.name, msg.topic, msg.partition,
                         msg.offset, _where(exc))  # fmt: skip
            reason = f"internal error: {type(exc).__name__}"
        out.rollback(mark)
        self._dead_letters.add(out, msg, reason, flow.personal_key, flow.dlq)
        return Outcome.DEAD_LETTER

    async def _deliver(self, forwards: list[Forward]) -> None:
        await deliver_all(self._forwarder, forwards, self._backoff)

    async def _write(self, out: Output) -> dict[int, str]:
        """Write every table's rows; returns {message index: reason} for messages whose rows were
        refused. Later tables skip the rows of messages refused earlier."""
        rejected: dict[int, str] = {}
        for table, rows in out.rows.items():
            sources = out.sources[table]
            if rejected:
                keep = [i for i, s in enumerate(sources) if s not in rejected]
                rows, sources = [rows[i] for i in keep], [sources[i] for i in keep]
            if rows:
                await self._insert_isolating(table, rows, sources, rejected)
        return rejected

    async def _insert_isolating(
        self, table: Table, rows: list[Row], sources: list[int], rejected: dict[int, str]
    ) -> None:
        """Insert; if refused, halve by message until the refused messages are found. Writes are
        idempotent, so rows inserted again on the way change nothing."""
        try:
            await self._writer.insert(table, rows)
            return
        except (asyncio.CancelledError, SinkUnavailable):
            raise
        except Exception as exc:
            error = exc
        ids = sorted(set(sources))
        if len(ids) == 1:
            code = getattr(error, "code", None)
            detail = f"code {code}" if code is not None else type(error).__name__
            rejected[ids[0]] = f"ClickHouse refused its {table.name} row ({detail})"
            return
        left = set(ids[: len(ids) // 2])
        for part in (left, set(ids) - left):
            pick = [i for i, s in enumerate(sources) if s in part]
            await self._insert_isolating(table, [rows[i] for i in pick], [sources[i] for i in pick], rejected)


async def deliver_all(forwarder: Forwarder, forwards: Sequence[Forward], backoff: Backoff) -> None:
    """Publish ``forwards``; retry only those not delivered, with backoff, until all are."""
    pending, delays = list(forwards), backoff.delays()
    while pending:
        errors = await forwarder.deliver(pending)
        failed = [f for f, err in zip(pending, errors, strict=True) if err is not None]
        if failed:
            first = next(err for err in errors if err is not None)
            delay = next(delays)
            logger.warning("%d of %d messages not delivered (%s); retrying in %.1fs",
                           len(failed), len(pending), _where(first), delay)  # fmt: skip
            await asyncio.sleep(delay)
        pending = failed


def _message(event: Any) -> Message:
    m = event.message
    return Message(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp, event)


@contextmanager
def _current(native: Any) -> Iterator[None]:
    """Faust writes a table change to the changelog partition of the *current event*; noack_take
    hands events over outside that context, so re-establish it (co-partitioning depends on it)."""
    if native is None:
        yield
        return
    token = _current_event.set(weakref.ref(native))
    try:
        yield
    finally:
        _current_event.reset(token)


def _where(exc: BaseException) -> str:
    """An exception's type and innermost place, without its text (which may hold input values)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    place = f" at {tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}" if tb else ""
    return f"{type(exc).__name__}{place}"
