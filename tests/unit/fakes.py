"""The fake back-end that drives the engine in unit tests, behind the same interface as the real
ones (``streams.engine.backend``): a writer, a forwarder, a consumer group, how its exceptions are
classified, a Faust-like stream and a plain consumer; and a fake reader for the features (in the
spirit of quix-streams' ``DummySink`` and arroyo's ``LocalBroker``)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from sinks.config import Backoff
from sinks.errors import RowsRejected, SinkUnavailable
from sinks.tables import Row, Table
from sinks.writer import retrying
from streams.engine import Batching, Engine, Faults, Flow, Forward, Message, Outcome
from streams.engine.dead_letters import DeadLetters
from streams.privacy import Pseudonymizer
from streams.rows import dead_letter_row
from streams.settings import PrivacySettings, SinkSettings

PSEUDO = Pseudonymizer(PrivacySettings())
FAST = Backoff(initial_s=0.001, max_s=0.002)
#: How flows batch in unit tests: as the settings' defaults say.
_SINK = SinkSettings()
BATCHING = Batching(_SINK.batch_size, _SINK.batch_seconds)


class FakeUnavailable(Exception):
    """The fake back-end's client or broker is unavailable: retried in place."""


class FakeUndecodable(FakeUnavailable):
    """The fake back-end cannot decode a message: the message's own fault."""


class FakeRefused(FakeUnavailable):
    """The fake broker refuses a record: never retried, its message is dead-lettered."""


#: How the fake back-end's exceptions are classified.
FAULTS = Faults(infrastructure=(FakeUnavailable,), message=(FakeUndecodable,), refused=(FakeRefused,))


class FakeWriter:
    """Keeps rows per table name, as the real writer would: the first ``unavailable`` attempts
    fail and are retried in place (``sinks.writer.retrying``); ``reject`` refuses any insert
    holding a row it matches (as ClickHouse refuses a whole insert)."""

    def __init__(self, unavailable: int = 0, reject: Callable[[Row], bool] | None = None) -> None:
        self.rows: dict[str, list[Row]] = {}
        self.calls: list[tuple[str, int]] = []
        self.unavailable = unavailable
        self.reject = reject

    async def insert(self, table: Table, rows: Sequence[Row]) -> None:
        await retrying(lambda: self._attempt(table, rows), FAST, lambda error, delay: None)

    async def _attempt(self, table: Table, rows: Sequence[Row]) -> None:
        self.calls.append((table.name, len(rows)))
        if self.unavailable:
            self.unavailable -= 1
            raise SinkUnavailable(table.name, ConnectionError("down"))
        if self.reject and any(self.reject(r) for r in rows):
            raise RowsRejected(table.name, ValueError("out of range"))
        self.rows.setdefault(table.name, []).extend(rows)

    async def write(self, batches: dict[Table, Sequence[Row]]) -> None:
        for table, rows in batches.items():
            await self.insert(table, rows)

    def table(self, name: str) -> list[Row]:
        return self.rows.get(name, [])


class FakeForwarder:
    """Records delivered messages; the first ``failures`` deliveries of matching messages fail."""

    refused_record = FAULTS.refused

    def __init__(self, failures: int = 0, fail_if: Callable[[Forward], bool] = lambda f: True) -> None:
        self.delivered: list[Forward] = []
        self.attempts = 0
        self.failures = failures
        self.fail_if = fail_if

    async def deliver(self, forwards: Sequence[Forward]) -> list[BaseException | None]:
        self.attempts += 1
        out: list[BaseException | None] = []
        for f in forwards:
            if self.failures and self.fail_if(f):
                self.failures -= 1
                out.append(ConnectionError("broker gone"))
            else:
                self.delivered.append(f)
                out.append(None)
        return out

    def on(self, topic: str) -> list[Forward]:
        return [f for f in self.delivered if f.topic == topic]


@dataclass
class FakeRecord:
    """What Faust hands over as ``event.message``."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    generation_id: int | None = None


def consumed(forwards: Sequence[Forward], timestamp: float | None = 1_000) -> list[FakeRecord]:
    """Published ``forwards`` as a consumer reads them back: one record each, offsets in order."""
    return [
        FakeRecord(f.topic, f.partition or 0, offset, f.key, f.value, timestamp, list(f.headers))
        for offset, f in enumerate(forwards)
    ]


@dataclass
class FakeEvent:
    message: FakeRecord


@dataclass
class FakeStream:
    """Yields the given batches through ``noack_take`` and records acks (like a Faust stream)."""

    batches: list[list[Message | FakeRecord]]
    acked: list[FakeRecord] = field(default_factory=list)
    #: The ``max_`` and ``within`` the runner took batches with.
    take: int | None = None
    within: float | None = None

    async def noack_take(self, max_: int, within: float) -> Any:
        self.take, self.within = max_, within
        for batch in self.batches:
            yield [FakeEvent(_record(m)) for m in batch]

    async def ack(self, event: FakeEvent) -> None:
        self.acked.append(event.message)


def _record(m: Message | FakeRecord) -> FakeRecord:
    if isinstance(m, FakeRecord):
        return m
    return FakeRecord(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp)


@dataclass
class FakeGroup:
    """A consumer group whose rebalances the test starts (``backend.Group``)."""

    rebalances: int = 0
    now: int | None = 1
    in_progress: bool = False

    def rebalancing(self) -> bool:
        return self.in_progress

    def generation(self) -> int | None:
        return self.now


class FakeReader:
    def __init__(self, stats: dict[str, list[Any]] | None = None) -> None:
        self.stats = stats or {}
        self.sent: set[str] = set()
        self.displaced: list[tuple[str, str, str, int]] = []
        self.unreported: list[tuple[str, str, str, str, int, int]] = []
        self.checks = 0
        self.marks: tuple[tuple[str, str, int], ...] | Exception = ()

    async def village_stats(self) -> dict[str, list[Any]]:
        return self.stats

    async def sent_notifications(self, ids: Sequence[str]) -> set[str]:
        return {i for i in ids if i in self.sent}

    async def displaced_by_regency(self, at_least: int) -> list[tuple[str, str, str, int]]:
        self.checks += 1
        return [r for r in self.displaced if r[3] >= at_least]

    async def unreported_villages(
        self, at_least_level: int, after_h: float, window_days: int
    ) -> list[tuple[str, str, str, str, int, int]]:
        return [r for r in self.unreported if r[4] >= at_least_level and r[5] >= after_h]

    async def data_marks(self, excluding: Sequence[str] = ()) -> tuple[tuple[str, str, int], ...]:
        if isinstance(self.marks, Exception):
            raise self.marks
        return tuple(m for m in self.marks if m[0] not in excluding)


class FakeConsumer:
    """A plain consumer (``AIOKafkaConsumer``'s methods the consumer loop calls): hands out
    ``fetches`` one per ``getmany`` (then nothing, and the test ends the loop); records commits. A
    fetch may be a coroutine function, to act (revoke) while fetching, or None for a fetch that
    finds nothing."""

    def __init__(self, fetches: list[list[FakeRecord] | Fetch | None], refuse_commits: int = 0) -> None:
        self.fetches = fetches
        self.commits: list[dict[TopicPartition, int]] = []
        self.commits_while_running: list[dict[TopicPartition, int]] = []
        self.refuse_commits = refuse_commits
        self.listener: Any = None
        self.stopped = False
        self.idle = asyncio.Event()

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.stopped = True

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[FakeRecord]]:
        if not self.fetches:
            self.idle.set()
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        fetch = self.fetches.pop(0)
        if fetch is None:  # nothing this time: the batch gathered so far ends
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        if callable(fetch):
            return await fetch(self)
        return by_partition(fetch)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.refuse_commits:
            self.refuse_commits -= 1
            raise CommitFailedError("rebalanced")
        self.commits.append(dict(offsets))


Fetch = Callable[[FakeConsumer], Awaitable[dict[TopicPartition, list[FakeRecord]]]]


def by_partition(records: list[FakeRecord]) -> dict[TopicPartition, list[FakeRecord]]:
    out: dict[TopicPartition, list[FakeRecord]] = {}
    for r in records:
        out.setdefault(TopicPartition(r.topic, r.partition), []).append(r)
    return out


def dead_letters() -> DeadLetters:
    return DeadLetters(PSEUDO, dead_letter_row, 4096)


def engine(writer: Any = None, forwarder: Any = None, **kw: Any) -> Engine:
    """The engine over the fake back-end (``kw``: ``Engine``'s options, its faults too)."""
    kw.setdefault("faults", FAULTS)
    return Engine(writer or FakeWriter(), forwarder or FakeForwarder(), dead_letters(), FAST, **kw)


def message(topic: str, value: bytes | None, key: bytes | None = None, offset: int = 0) -> Message:
    return Message(topic, 0, offset, key, value, 1_669_000_000.0)


def run(handler: Callable[..., Any], deps: Any, messages: list[Message], **kw: Any) -> tuple[
    list[Outcome], FakeWriter, FakeForwarder
]:  # fmt: skip
    """Drive ``handler`` (with ``deps``) through a real engine over fakes; one batch."""
    writer, forwarder = FakeWriter(), FakeForwarder()
    flow = Flow("test", functools.partial(handler, deps), kw.pop("dlq", "dlq"), BATCHING, **kw)
    outcomes = asyncio.run(engine(writer, forwarder).process(flow, messages))
    return outcomes, writer, forwarder
