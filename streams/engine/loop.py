"""The engine's loop and error policy: the rules, which import no Kafka client. A back-end's runner
(``streams.engine.faust``, ``streams.engine.aiokafka``) takes each batch as the flow's ``Batching``
says and hands it to ``Engine.handle`` (``streams.engine.backend`` is what the rules need of it).

For each batch of messages: call the flow's handler once per message, publish what the handlers
forwarded and their table changes (``Changelog``), write their rows, run the after-write hooks,
and only then ack; so an offset is never committed before its rows are in ClickHouse and its
table changes in their changelogs. The error policy lives here and nowhere else:

- a fault that belongs to one event dead-letters that event, and the batch goes on: a message of
  an input topic over a boundary limit (``streams.engine.boundary``: bytes, JSON nesting, Kafka
  timestamp), ``InvalidMessage`` or an unexpected exception from its handler, a forward too
  large for the producer (checked before anything of the batch is sent) or a record the producer
  or the broker refuses as too large or invalid (a bundle of several messages is split to find
  its message; what that message forwarded elsewhere stands);
- rows that ClickHouse refuses as data (``RowsRejected``) are traced to their message by halving
  the batch, and that message is dead-lettered;
- dead-lettering itself cannot fail on a message (``DeadLetters.add``); a dead letter the broker
  refuses is sent again without its value;
- infrastructure faults (ClickHouse unavailable, a disk full, and the back-end's ``Faults``: Kafka
  unavailable, Kafka metadata not settled after a broker restart) are retried in place with
  capped backoff, the backpressure, one log line per retry. A handler that meets one aborts its
  batch, which is handled again from the start: handlers are replay-safe (they tell a replay from
  a new message by its position). A retry of a delivery never re-sends what the batch already delivered;
- the safety net: a batch that fails ``BISECT_AFTER`` times in a row for any other reason (a bug
  in the engine, a hook or a step no rule above foresaw) is halved until the message is found,
  and that message is dead-lettered. Nothing is retried forever but infrastructure.

Rebalances: once the group starts rebalancing, a batch in flight changes no table any more. It is
abandoned at its next await, unacked, and its messages are handled again by whoever owns their
partitions next (the same replay-safety). Otherwise a worker would go on writing table changes for
partitions already handed to another worker, after that worker restored them from the changelog.
Events fetched before the rebalance (an earlier generation of the group) are dropped unhandled by
the runners: they are fetched again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, cast

from sinks.config import Backoff
from sinks.errors import SinkUnavailable
from sinks.tables import Row, Table
from streams.engine.backend import ChangeFlusher, EventScope, Faults, Forwarder, Group, RowWriter
from streams.engine.batch import Forward, Handler, Message, Outcome, Output
from streams.engine.boundary import boundary_fault
from streams.engine.bundle import BUNDLE_HEADER, Item, pack_counted, partition_of, unpack
from streams.engine.dead_letters import DeadLetters
from streams.errors import InvalidMessage
from streams.ops.metrics import END_TO_END_SECONDS, EVENTS, SINK_BATCH_SECONDS
from streams.topics import DLQ_REASON, DLQ_TRUNCATED_FROM

__all__ = [
    "BISECT_AFTER",
    "FORWARD_MAX_BYTES",
    "Batching",
    "Engine",
    "Flow",
    "bundle_forwards",
    "deliver_all",
    "observe_batch",
]

logger = logging.getLogger(__name__)


#: Exceptions that are not a message's fault whatever the back-end, from wherever a handler meets
#: them (a read from ClickHouse, the local disk): retried, never dead-lettered. Each back-end adds
#: its clients' own (``Faults``).
_INFRASTRUCTURE: tuple[type[BaseException], ...] = (
    SinkUnavailable,
    OSError,  # connections refused or reset, disks full
    TimeoutError,
    MemoryError,
)
#: The largest record a handler may forward (key, value and headers, with the record's overhead):
#: Faust's producer refuses a request over 1,000,000 bytes (``producer_max_request_size``).
FORWARD_MAX_BYTES = 1_000_000
_RECORD_OVERHEAD = 128
#: Failures in a row, for a reason that is not infrastructure, before a batch is halved.
BISECT_AFTER = 3


_TOPIC = attrgetter("topic")


class _RetryBatch(Exception):
    """A handler met an infrastructure fault: handle the whole batch again, later."""


class _Abandoned(Exception):
    """A rebalance began while the batch was in flight: drop it, unacked."""


class _NoGroup:
    rebalances = 0

    def rebalancing(self) -> bool:
        return False

    def generation(self) -> int | None:
        return None


class _NoChanges:
    def write(self) -> None:
        return None

    async def flush(self) -> None:
        return None


class _NoEvents:
    """The current-event hook of a back-end that routes nothing by the current event."""

    def __enter__(self) -> _NoEvents:
        return self

    def enter(self, native: Any) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


class _Watch:
    """A batch's view of its group: abandoned once the group's rebalances move past ``start``."""

    def __init__(self, group: Group, start: int | None) -> None:
        self.group = group
        self.start = group.rebalances if start is None else start

    def check(self) -> None:
        if self.group.rebalances != self.start:
            raise _Abandoned


@dataclass(frozen=True)
class Batching:
    """How a flow's runner gathers a batch: ``size`` messages at most (a batch taken from
    bundles is cut to about that many), waiting at most ``seconds`` to fill it, taking at most
    ``take`` records at once (None: ``size``; fewer where each record is a bundle of many
    messages). Built from the settings (``SinkSettings``), which hold the defaults."""

    size: int
    seconds: float
    take: int | None = None

    @property
    def records(self) -> int:
        """The records a runner takes at once."""
        return self.take or self.size


@dataclass(frozen=True)
class Flow:
    """One agent: its name, its handler, the dead-letter topic of its rejects, how its runner
    batches it, whether its message keys are personal data, and whether it reads an input topic
    (its messages are held to the boundary limits, ``streams.engine.boundary``)."""

    name: str
    handler: Handler
    dlq: str
    batching: Batching
    personal_key: bool = False
    boundary: bool = False


class Engine:
    """The rules, driven by a back-end: its runner calls ``handle`` with each batch it took."""

    def __init__(
        self,
        writer: RowWriter,
        forwarder: Forwarder,
        dead_letters: DeadLetters,
        backoff: Backoff,
        *,
        faults: Faults,
        bundled: Mapping[str, int] | None = None,
        changelog: ChangeFlusher | None = None,
        events: Callable[[], EventScope] | None = None,
    ) -> None:
        """``faults``: how the back-end's exceptions are classified; ``bundled``: internal topics
        (name -> partitions) whose forwards travel in bundles; ``changelog``: where handlers'
        table changes wait to be published; ``events``: the back-end's current-event hook."""
        self._writer = writer
        self._forwarder = forwarder
        self._dead_letters = dead_letters
        self._backoff = backoff
        self._infrastructure = _INFRASTRUCTURE + faults.infrastructure
        self._message_faults = faults.message
        self._not_infrastructure = faults.message + faults.refused
        self._bundled = dict(bundled or {})
        self._changelog: ChangeFlusher = changelog or _NoChanges()
        self._events: Callable[[], EventScope] = events or _NoEvents

    @property
    def bundled(self) -> Mapping[str, int]:
        """The internal topics (name -> partitions) whose records are bundles."""
        return self._bundled

    async def handle(
        self, flow: Flow, messages: list[Message], group: Group | None = None, rebalances: int | None = None
    ) -> list[Outcome] | None:
        """Process one batch to the end (retrying faults in place) and count it in the metrics;
        returns the messages' outcomes, or None when a rebalance of ``group`` (its runner's; none:
        never) began (the group's count moved past ``rebalances``, by default its count now) and
        the batch was abandoned, unwritten."""
        started = time.perf_counter()
        try:
            outcomes, wrote = await self._process_until_done(
                flow, messages, _Watch(group or _NoGroup(), rebalances)
            )
        except _Abandoned:
            logger.warning("%s: a rebalance began; a batch of %d is left to the partitions' next owner",
                           flow.name, len(messages))  # fmt: skip
            return None
        counts = Counter(zip(map(_TOPIC, messages), outcomes, strict=True))
        observe_batch(counts, (messages[i].timestamp for i in wrote), started)
        return outcomes

    async def _process_until_done(
        self, flow: Flow, messages: list[Message], watch: _Watch
    ) -> tuple[list[Outcome], set[int]]:
        # ``process`` isolates every fault it knows to its message and retries infrastructure in
        # place. Anything else (a bug in the engine, a hook, a step no rule foresaw) must neither
        # be acked unwritten nor stall every flow behind it: the batch is tried again, and after
        # ``BISECT_AFTER`` failures in a row it is halved until the message is found.
        delays = self._backoff.delays()
        failures = 0
        while True:
            watch.check()
            try:
                return await self._process(flow, messages, watch)
            except (asyncio.CancelledError, _Abandoned):
                raise
            except Exception as exc:
                delay = next(delays)
                if isinstance(exc, _RetryBatch) or self._is_infrastructure(exc):
                    fault = str(exc) if isinstance(exc, _RetryBatch) else _where(exc)
                    logger.warning("%s: batch of %d met an infrastructure fault (%s); handling it again in "
                                   "%.1fs", flow.name, len(messages), fault, delay)  # fmt: skip
                else:
                    failures += 1
                    if failures >= BISECT_AFTER:
                        return await self._bisect(flow, messages, watch, exc)
                    logger.error("%s: batch of %d failed (%s), %d of %d times; handling it again in %.1fs",
                                 flow.name, len(messages), _where(exc), failures, BISECT_AFTER,
                                 delay)  # fmt: skip
            await asyncio.sleep(delay)

    async def _bisect(
        self, flow: Flow, messages: list[Message], watch: _Watch, error: Exception
    ) -> tuple[list[Outcome], set[int]]:
        """The safety net: handle each half of a batch that kept failing on its own (in order, so
        that a key's messages keep their order), down to the one message that fails alone, which is
        dead-lettered."""
        if len(messages) == 1:
            [msg] = messages
            logger.error("%s: %s[%d]@%d failed %d times alone (%s); dead-lettering it", flow.name,
                         msg.topic, msg.partition, msg.offset, BISECT_AFTER, _where(error))  # fmt: skip
            await self._dead_letter_alone(flow, msg, f"internal error: {type(error).__name__}", watch)
            return [Outcome.DEAD_LETTER], set()
        logger.warning("%s: batch of %d failed %d times (%s); halving it to find the message",
                       flow.name, len(messages), BISECT_AFTER, _where(error))  # fmt: skip
        half = len(messages) // 2
        first, wrote_first = await self._process_until_done(flow, messages[:half], watch)
        second, wrote_second = await self._process_until_done(flow, messages[half:], watch)
        return first + second, wrote_first | {i + half for i in wrote_second}

    async def _dead_letter_alone(self, flow: Flow, msg: Message, reason: str, watch: _Watch) -> None:
        """Dead-letter ``msg`` by itself; infrastructure faults are retried in place, anything
        else is logged (the source topic still holds the message at its offset)."""
        delays = self._backoff.delays()
        while True:
            watch.check()
            try:
                await self._send_letters(flow, [(msg, reason)])
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._is_infrastructure(exc):
                    logger.error("%s: the dead letter of %s[%d]@%d could not be written (%s)",
                                 flow.name, msg.topic, msg.partition, msg.offset, _where(exc))  # fmt: skip
                    return
                delay = next(delays)
                logger.warning("%s: dead-lettering met an infrastructure fault (%s); trying again in %.1fs",
                               flow.name, _where(exc), delay)  # fmt: skip
                await asyncio.sleep(delay)

    # ------------------------------------------------------------ one batch
    async def process(
        self, flow: Flow, messages: Sequence[Message], group: Group | None = None
    ) -> list[Outcome]:
        """Handle, forward, write and run after-write hooks for one batch; returns the outcome of
        each message. Returns only when every row is written or its message dead-lettered."""
        return (await self._process(flow, messages, _Watch(group or _NoGroup(), None)))[0]

    async def _process(
        self, flow: Flow, messages: Sequence[Message], watch: _Watch
    ) -> tuple[list[Outcome], set[int]]:
        """``process``, and the indices of the messages whose rows were written. Raises
        ``_Abandoned`` at the first await after a rebalance began (before a later handler can
        change a table)."""
        out = Output()
        outcomes = []
        now = time.time()
        try:
            with self._events() as current:
                for i, msg in enumerate(messages):
                    current.enter(msg.native)
                    outcomes.append(await self._handle(flow, i, msg, out, now))
                    watch.check()
        finally:
            # The handlers' table changes go to their stores in one write per partition, before
            # the first await lets a rebalance revoke the partitions (a batch abandoned or handled
            # again keeps what its handlers wrote, as replays expect).
            self._changelog.write()
        # The batch's table changes reach their changelogs while its forwards are delivered; both
        # before its rows are written and it is acked.
        _, rejected = await asyncio.gather(self._changelog.flush(), self._deliver(out.forwards))
        watch.check()
        rejected = await self._write(out, rejected)
        watch.check()
        if rejected:
            for index in rejected:
                outcomes[index] = Outcome.DEAD_LETTER
            await self._send_letters(flow, [(messages[i], reason) for i, reason in sorted(rejected.items())])
        for hook in out.after_write:
            await hook()
        wrote = {i for sources in out.sources.values() for i in sources} - set(rejected)
        return outcomes, wrote

    async def _send_letters(self, flow: Flow, letters: Sequence[tuple[Message, str]]) -> None:
        """Dead-letter each (message, reason) of ``letters`` outside a batch's own output: publish
        to the flow's DLQ and write the rows; rows ClickHouse refuses are logged (the DLQ topic
        keeps them). Infrastructure faults propagate to the caller's retry."""
        out = Output()
        for msg, reason in letters:
            self._dead_letters.add(out, msg, reason, flow.personal_key, flow.dlq)
        await self._deliver(out.forwards)
        if await self._write(out):
            logger.error("%s: dead-letter rows refused by ClickHouse (kept in the DLQ topic)", flow.name)

    async def _handle(self, flow: Flow, index: int, msg: Message, out: Output, now: float) -> Outcome:
        out.current, out.origin = index, msg.timestamp
        mark = out.mark()
        try:
            if flow.boundary and (fault := boundary_fault(msg, now)) is not None:
                raise InvalidMessage(fault)
            result = flow.handler(msg, out)
            # An Outcome, or an async handler's awaitable (cheaper to tell than isawaitable).
            outcome = result if type(result) is Outcome else await cast(Awaitable[Outcome], result)
            for f in out.forwards[mark[1] :]:
                if (size := _record_bytes(f)) > FORWARD_MAX_BYTES:
                    raise InvalidMessage(f"forward to {f.topic} of {size} bytes is over the producer's "
                                         f"limit of {FORWARD_MAX_BYTES}")  # fmt: skip
            return outcome
        except InvalidMessage as exc:
            reason = exc.reason
        except asyncio.CancelledError:
            raise
        except self._infrastructure as exc:
            if isinstance(exc, self._message_faults):
                reason = f"internal error: {type(exc).__name__}"
            else:
                raise _RetryBatch(_where(exc)) from exc
        except Exception as exc:
            # A fault of this event only (a bug or an input no contract foresaw): dead-letter it and
            # go on. Only the type and place are logged: an exception's text may hold input values.
            logger.error("%s: handler failed on %s[%d]@%d: %s", flow.name, msg.topic, msg.partition,
                         msg.offset, _where(exc))  # fmt: skip
            reason = f"internal error: {type(exc).__name__}"
        out.rollback(mark)
        self._dead_letters.add(out, msg, reason, flow.personal_key, flow.dlq)
        return Outcome.DEAD_LETTER

    async def _deliver(self, forwards: list[Forward]) -> dict[int, str]:
        """Publish ``forwards`` (retrying infrastructure faults in place); returns {message index:
        reason} for the messages a record of which the producer or the broker refused.

        The broker judges a whole produce request, so each refused record is sent again alone
        first; a bundle refused alone is split into one bundle per message. A dead letter refused
        alone is sent without its value (the headers name the source offset, which holds it)."""
        refused: dict[int, str] = {}
        pending = bundle_forwards(forwards, self._bundled)
        queue = deque(f for f, _ in await deliver_all(self._forwarder, pending, self._backoff))
        while queue:
            f = queue.popleft()
            [*result] = await deliver_all(self._forwarder, [f], self._backoff)
            if not result:
                continue
            error = result[0][1]
            sources = sorted(set(f.sources) - {-1})
            if len(sources) > 1:
                queue.extendleft(reversed(_split(f)))
            elif sources:
                reason = f"Kafka refused its record to {f.topic} ({type(error).__name__})"
                refused.setdefault(sources[0], reason)
            elif _is_dead_letter(f) and f.value is not None:
                size = str(len(f.value)).encode()
                queue.appendleft(Forward(f.topic, None, None, (*f.headers, (DLQ_TRUNCATED_FROM, size))))
            else:
                logger.error("a record to %s is not sent: %s", f.topic, _where(error))
        return refused

    def _is_infrastructure(self, exc: BaseException) -> bool:
        return isinstance(exc, self._infrastructure) and not isinstance(exc, self._not_infrastructure)

    async def _write(self, out: Output, rejected: dict[int, str] | None = None) -> dict[int, str]:
        """Write every table's rows but those of the ``rejected`` messages; returns {message index:
        reason} for those and for the messages whose rows were refused. Later tables skip the rows
        of messages refused earlier."""
        rejected = dict(rejected or {})
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


def observe_batch(
    counts: Mapping[tuple[str, Outcome], int], origins: Iterable[float | None], started: float
) -> None:
    """Count a batch handled to the end in the metrics: its messages by topic and outcome, the
    end-to-end seconds of those whose rows are now visible (from when each entered dampak, if
    known), and the batch's own time since ``started`` (``time.perf_counter()``)."""
    visible = time.time()
    END_TO_END_SECONDS.observe_all(max(0.0, visible - ts) for ts in origins if ts)
    for (topic, outcome), n in counts.items():
        EVENTS.labels(topic, outcome.value).inc(n)
    SINK_BATCH_SECONDS.observe(time.perf_counter() - started)


def bundle_forwards(forwards: Sequence[Forward], bundled: Mapping[str, int]) -> list[Forward]:
    """``forwards`` with those to ``bundled`` topics (name -> partitions) grouped into one record
    per partition (in order, keyless); the rest as they are."""
    if not bundled:
        return list(forwards)
    plain: list[Forward] = []
    groups: dict[tuple[str, int], list[tuple[Item, int]]] = {}
    for f in forwards:
        partitions = bundled.get(f.topic)
        if partitions is None:
            plain.append(f)
        else:
            item: Item = (f.key, f.value, f.origin)
            source = f.sources[0] if f.sources else -1
            groups.setdefault((f.topic, partition_of(f.key, partitions)), []).append((item, source))
    bundles = [
        bundle for (topic, partition), items in groups.items() for bundle in _bundles(topic, partition, items)
    ]
    return plain + bundles


def _bundles(topic: str, partition: int, items: Sequence[tuple[Item, int]]) -> Iterator[Forward]:
    at = 0
    for record, count in pack_counted([item for item, _ in items]):
        sources = tuple(source for _, source in items[at : at + count])
        yield Forward(topic, None, record, (BUNDLE_HEADER,), partition, sources=sources)
        at += count


def _split(bundle: Forward) -> list[Forward]:
    """A bundle as one bundle per message (in order), to find the message a record was refused
    for."""
    items = unpack(bundle.value or b"")
    runs: list[list[tuple[Item, int]]] = []
    for item, source in zip(items, bundle.sources, strict=True):
        if runs and runs[-1][-1][1] == source:
            runs[-1].append((item, source))
        else:
            runs.append([(item, source)])
    assert bundle.partition is not None
    return [f for run in runs for f in _bundles(bundle.topic, bundle.partition, run)]


async def deliver_all(
    forwarder: Forwarder, forwards: Sequence[Forward], backoff: Backoff
) -> list[tuple[Forward, BaseException]]:
    """Publish ``forwards``; retry only those not delivered, with backoff, until all are, but
    for those the producer or the broker refused as records (``forwarder.refused_record``: too large,
    invalid), which are never retried: returned with their errors (and each logged)."""
    pending, delays = list(forwards), backoff.delays()
    refused: list[tuple[Forward, BaseException]] = []
    while pending:
        errors = await forwarder.deliver(pending)
        failed: list[Forward] = []
        first: BaseException | None = None
        for f, err in zip(pending, errors, strict=True):
            if err is None:
                continue
            if isinstance(err, forwarder.refused_record):
                logger.error("a record of %d bytes to %s was refused: %s",
                             _record_bytes(f), f.topic, _where(err))  # fmt: skip
                refused.append((f, err))
            else:
                failed.append(f)
                first = first or err
        if first is not None:
            delay = next(delays)
            logger.warning("%d of %d messages not delivered (%s); retrying in %.1fs",
                           len(failed), len(pending), _where(first), delay)  # fmt: skip
            await asyncio.sleep(delay)
        pending = failed
    return refused


def _record_bytes(f: Forward) -> int:
    """About what the producer counts for a record (aiokafka's ``estimate_size_in_bytes``)."""
    headers = sum(len(k) + len(v) for k, v in f.headers) if f.headers else 0  # most have none
    return len(f.key or b"") + len(f.value or b"") + headers + _RECORD_OVERHEAD


def _is_dead_letter(f: Forward) -> bool:
    return any(k == DLQ_REASON for k, _ in f.headers)


def _where(exc: BaseException) -> str:
    """An exception's type and innermost place, without its text (which may hold input values)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    place = f" at {tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}" if tb else ""
    return f"{type(exc).__name__}{place}"
