"""What the engine hands to a handler and collects from it: a message, and one batch's output
(rows per table, messages to forward, hooks to run once the rows are written)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sinks.tables import Row, Table
from streams.engine.bundle import BUNDLE_HEADER, INDEX_BITS, unpack

__all__ = ["Forward", "Handler", "Message", "Outcome", "Output", "is_bundle", "messages_of"]

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    """What handling did with a message; also the ``outcome`` label of ``dampak_events_total``."""

    OK = "ok"
    DUPLICATE = "duplicate"
    STALE = "stale"
    DEAD_LETTER = "dead_letter"


# Message and Forward are made for every message and every forward (a row handed to the writer is
# both), so they are not frozen: a frozen dataclass sets each field through object.__setattr__,
# which made one five times slower to build (1.2 against 0.2 us). Nothing changes them.
@dataclass(slots=True)
class Message:
    """One Kafka record as handlers see it: raw bytes, decoded by the handler."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    #: When the message entered dampak (its input's producer timestamp), in seconds, if known.
    timestamp: float | None = None
    #: The Faust event it came from (None in unit tests); the engine needs it, handlers do not.
    native: Any = None
    #: Its index in a bundle (see ``streams.engine.bundle``), and whether it came in one.
    index: int = 0
    in_bundle: bool = False

    @property
    def position(self) -> int:
        """Its place on its partition: offset, then index in its bundle. Handlers compare
        positions, never raw offsets."""
        return (self.offset << INDEX_BITS) | self.index


def messages_of(
    record: Any, timestamp: float | None, native: Any = None, bundled: bool = True
) -> list[Message]:
    """The messages of one Kafka record (Faust's or aiokafka's: topic, partition, offset, key,
    value, headers): the items of the bundle it carries, in order, or the record itself.
    ``timestamp``: the record's, in seconds; a bundled item without its own origin takes it.
    ``bundled``: whether its topic is one of dampak's own that carry bundles; a record of any
    other topic (an input) is itself, whatever headers its publisher set."""
    topic, partition, offset = record.topic, record.partition, record.offset
    if bundled and is_bundle(record.headers):
        try:
            items = unpack(record.value or b"")
        except ValueError:
            logger.error("malformed bundle at %s[%d]@%d", topic, partition, offset)
        else:
            return [
                Message(topic, partition, offset, key, value, origin or timestamp, native, index, True)
                for index, (key, value, origin) in enumerate(items)
            ]
    return [Message(topic, partition, offset, record.key, record.value, timestamp, native)]


def is_bundle(headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None) -> bool:
    """Whether a record with these headers carries a bundle (``streams.engine.bundle``)."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    return any(k == BUNDLE_HEADER[0] for k, _ in pairs)


@dataclass(slots=True)
class Forward:
    """A message to publish before the batch's rows are written (physical topic name)."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    #: An explicit partition (bundles); None lets the producer hash the key.
    partition: int | None = None
    #: When the message this one derives from entered dampak (seconds), carried in bundles.
    origin: float | None = None
    #: The batch index of the message it came from (for a bundle, one per item; -1 for none), so
    #: that a record the producer or the broker refuses dead-letters its message.
    sources: tuple[int, ...] = ()


@dataclass
class Output:
    """Everything handling one batch produced. Rows remember the message (its index in the batch)
    they came from, so that rows ClickHouse refuses can be traced to their message."""

    rows: dict[Table, list[Row]] = field(default_factory=dict)
    sources: dict[Table, list[int]] = field(default_factory=dict)
    forwards: list[Forward] = field(default_factory=list)
    after_write: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    #: Index (in the batch) of the message being handled, and when it entered dampak.
    current: int = 0
    origin: float | None = None
    #: The table of each row added, in order (so that a mark is three lengths).
    added: list[Table] = field(default_factory=list)

    def add(self, table: Table, row: Row) -> None:
        rows = self.rows.get(table)
        if rows is None:
            rows = self.rows[table] = []
            self.sources[table] = []
        rows.append(row)
        self.sources[table].append(self.current)
        self.added.append(table)

    def forward(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.forwards.append(Forward(topic, key, value, origin=self.origin, sources=(self.current,)))

    def then(self, hook: Callable[[], Awaitable[object]]) -> None:
        """Run ``hook`` after the batch's rows are written, before its messages are acked."""
        self.after_write.append(hook)

    def mark(self) -> tuple[int, int, int]:
        return len(self.added), len(self.forwards), len(self.after_write)

    def rollback(self, mark: tuple[int, int, int]) -> None:
        """Drop what was added since ``mark`` (a handler that failed half-way adds nothing)."""
        added, forwards, hooks = mark
        for table in self.added[added:]:
            self.rows[table].pop()
            self.sources[table].pop()
        del self.added[added:]
        del self.forwards[forwards:]
        del self.after_write[hooks:]


#: A handler: decode one message, call pure functions, add rows and forwards to the output.
#: It raises ``InvalidMessage`` for a message that breaks its contract (before changing any state).
Handler = Callable[[Message, Output], "Outcome | Awaitable[Outcome]"]
